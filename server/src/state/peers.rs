//! The links between the workers of one process: what one tells the
//! others when it changes something they cache, the count of record bytes
//! they share (see [`super::budget`]), and their metrics.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use super::budget::RecordBytes;
use crate::metrics::Registry;

/// What one worker tells the others of its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    /// This action was created, updated or deleted.
    ActionChanged(String),
    /// A route was added or deleted.
    RoutesChanged,
    /// Messages were appended to this partition of this topic.
    Published { topic: String, partition: u32 },
    /// A subscription was created, deleted or changed.
    SubscriptionsChanged,
}

/// One worker's links to the others.
pub struct Peers {
    /// This worker's index.
    me: usize,
    /// One sender per worker, by index.
    txs: Arc<Vec<Sender<PeerMsg>>>,
    /// Changes made through other workers.
    rx: Receiver<PeerMsg>,
    /// The bytes of invocation records in the store, as the process knows.
    record_bytes: Arc<RecordBytes>,
    /// Every worker's metrics.
    metrics: Arc<Registry>,
}

impl Peers {
    /// Links for `n` workers.
    pub fn mesh(n: usize) -> Vec<Peers> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
        let txs = Arc::new(txs);
        let record_bytes = Arc::new(RecordBytes::default());
        let metrics = Arc::new(Registry::new(n));
        rxs.into_iter()
            .enumerate()
            .map(|(me, rx)| Peers {
                me,
                txs: Arc::clone(&txs),
                rx,
                record_bytes: Arc::clone(&record_bytes),
                metrics: Arc::clone(&metrics),
            })
            .collect()
    }

    /// Every worker's metrics, and this worker's index among them.
    pub fn metrics(&self) -> (&Arc<Registry>, usize) {
        (&self.metrics, self.me)
    }

    /// The count of record bytes the workers of this process share.
    pub(crate) fn record_bytes(&self) -> &RecordBytes {
        &self.record_bytes
    }

    /// The next change made through another worker, if any; a lone
    /// worker has no peers and asks no channel.
    #[inline]
    pub fn try_recv(&self) -> Option<PeerMsg> {
        if self.txs.len() < 2 {
            return None;
        }
        self.rx.try_recv().ok()
    }

    /// Sends `msg` to the other workers.
    pub fn tell(&self, msg: PeerMsg) {
        for (i, tx) in self.txs.iter().enumerate() {
            if i != self.me {
                let _ = tx.send(msg.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reaches_every_other_worker_once() {
        let peers = Peers::mesh(3);
        peers[1].tell(PeerMsg::RoutesChanged);
        assert_eq!(peers[0].try_recv(), Some(PeerMsg::RoutesChanged));
        assert_eq!(peers[2].try_recv(), Some(PeerMsg::RoutesChanged));
        assert_eq!(peers[1].try_recv(), None);
        assert_eq!(peers[0].try_recv(), None);
        let alone = Peers::mesh(1);
        alone[0].tell(PeerMsg::ActionChanged("a".into()));
        assert_eq!(alone[0].try_recv(), None);
    }
}
