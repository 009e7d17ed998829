//! Clients waiting on `GET /invocation/:id?wait=N` for an invocation to
//! finish, by invocation id.

use std::collections::HashMap;
use std::time::Instant;

use crate::reactor::ConnRef;

/// A client waiting for an invocation until `deadline`.
pub(crate) struct Waiter {
    pub conn: ConnRef,
    pub deadline: Instant,
}

/// Waiting clients by invocation id.
#[derive(Default)]
pub(crate) struct Waiters {
    by_id: HashMap<String, Vec<Waiter>>,
}

impl Waiters {
    /// `conn` waits for invocation `id` until `deadline`.
    pub fn add(&mut self, id: String, conn: ConnRef, deadline: Instant) {
        self.by_id.entry(id).or_default().push(Waiter { conn, deadline });
    }

    /// The clients waiting for `id`, who are answered now.
    pub fn take(&mut self, id: &str) -> Vec<ConnRef> {
        self.by_id.remove(id).map(|ws| ws.into_iter().map(|w| w.conn).collect()).unwrap_or_default()
    }

    /// The ids waited for.
    pub fn ids(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }

    /// The clients whose wait ran out at `now`, by id, taken out.
    pub fn take_expired(&mut self, now: Instant) -> Vec<(String, Vec<ConnRef>)> {
        let mut out = Vec::new();
        self.by_id.retain(|id, ws| {
            if ws.iter().all(|w| w.deadline > now) {
                return true;
            }
            let (due, keep): (Vec<_>, Vec<_>) = ws.drain(..).partition(|w| w.deadline <= now);
            out.push((id.clone(), due.into_iter().map(|w| w.conn).collect()));
            *ws = keep;
            !ws.is_empty()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waits_end_when_answered_or_when_their_time_runs_out() {
        let t0 = Instant::now();
        let c = |key| ConnRef { key, gen: 1 };
        let mut w = Waiters::default();
        w.add("a".into(), c(1), t0 + Duration::from_secs(1));
        w.add("a".into(), c(2), t0 + Duration::from_secs(5));
        w.add("b".into(), c(3), t0 + Duration::from_secs(1));
        let mut ids = w.ids();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        assert!(w.take_expired(t0).is_empty());
        let mut due = w.take_expired(t0 + Duration::from_secs(2));
        due.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(due, vec![("a".to_string(), vec![c(1)]), ("b".to_string(), vec![c(3)])]);
        assert_eq!(w.ids(), ["a"]);
        assert_eq!(w.take("a"), vec![c(2)]);
        assert!(w.take("a").is_empty() && w.ids().is_empty());
    }
}
