//! Where this worker's consumer of the asynchronous queue stands: how many
//! of its invocations run, and whether a claim is under way.

/// The asynchronous queue's consumer on this worker.
#[derive(Default)]
pub(crate) struct Consumer {
    /// Claimed invocations not yet finished.
    running: usize,
    /// A claim is under way.
    claiming: bool,
    /// Another claim was asked for while one was under way.
    again: bool,
    /// An invocation finished or was submitted: claim at the end of the turn.
    wanted: bool,
}

impl Consumer {
    /// How many invocations to claim now with `concurrency` allowed, or
    /// `None` if no claim starts (one is under way: it is repeated after;
    /// or there is no room). A claim that starts is under way until
    /// [`claimed`](Self::claimed).
    pub fn start_claim(&mut self, concurrency: usize) -> Option<usize> {
        self.wanted = false;
        if self.claiming {
            self.again = true;
            return None;
        }
        let room = concurrency.saturating_sub(self.running);
        if room == 0 {
            return None;
        }
        self.claiming = true;
        self.again = false;
        Some(room)
    }

    /// The claim for `asked` ended with `got` invocations, now running.
    /// Returns whether to claim again at once (it got all it asked for, so
    /// more may wait, or another claim was asked for meanwhile).
    pub fn claimed(&mut self, asked: usize, got: usize) -> bool {
        self.claiming = false;
        self.running += got;
        got == asked || self.again
    }

    /// Takes room for up to `want` invocations that this worker starts
    /// without a claim (submits it queues claimed by itself), with
    /// `concurrency` allowed: none while a claim is under way (it counted
    /// the room before). Each one taken is running until
    /// [`finished`](Self::finished).
    pub fn reserve(&mut self, concurrency: usize, want: usize) -> usize {
        if self.claiming {
            return 0;
        }
        let n = concurrency.saturating_sub(self.running).min(want);
        self.running += n;
        n
    }

    /// A claim failed.
    pub fn claim_failed(&mut self) {
        self.claiming = false;
    }

    /// A claimed invocation finished: room for another.
    pub fn finished(&mut self) {
        self.running = self.running.saturating_sub(1);
        self.wanted = true;
    }

    /// Whether a claim was asked for.
    pub fn wanted(&self) -> bool {
        self.wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_for_the_room_there_is() {
        let mut c = Consumer::default();
        assert_eq!(c.start_claim(4), Some(4));
        assert_eq!(c.start_claim(4), None, "one under way");
        assert!(c.claimed(4, 2), "asked for again meanwhile");
        assert_eq!(c.start_claim(4), Some(2));
        assert!(c.claimed(2, 2), "got all it asked for");
        assert_eq!(c.start_claim(4), None, "no room");
        c.finished();
        assert!(c.wanted());
        assert_eq!(c.start_claim(4), Some(1));
        assert!(!c.wanted());
        assert!(!c.claimed(1, 0));
        c.claim_failed();
        assert_eq!(c.start_claim(4), Some(1));
    }

    #[test]
    fn submits_take_the_room_left_and_none_during_a_claim() {
        let mut c = Consumer::default();
        assert_eq!(c.reserve(4, 3), 3);
        assert_eq!(c.reserve(4, 3), 1, "the room left");
        assert_eq!(c.start_claim(4), None, "no room for a claim");
        c.finished();
        assert_eq!(c.start_claim(4), Some(1));
        assert_eq!(c.reserve(4, 1), 0, "a claim counted the room");
        assert!(!c.claimed(1, 0));
        assert_eq!(c.reserve(4, 5), 1);
    }
}
