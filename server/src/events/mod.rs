//! Events: messages published to topics, and subscriptions that deliver
//! them to actions in batches (see `sl_store::Events` for the model and
//! `state/deliveries.rs` for how a batch is made and what its outcome
//! writes).
//!
//! - [`publish`]: the group commit of messages, from `POST /topics/:name`
//!   and from actions' `publish()`. Each message's partition is chosen
//!   here: a stable hash of its key ([`partition_of`]), or round robin
//!   for a message without a key.
//! - [`deliver`]: the partitions this worker delivers: their leases, the
//!   reads of their logs, the batches they run and the commits of their
//!   outcomes. A publish through this process pokes the partition it went
//!   to, so its delivery starts at once; others' publishes are seen by a
//!   look at the log every [`deliver::POLL_EVERY`].
//! - [`retention`]: deleting messages past their topic's bounds.
//!
//! Nothing here blocks: every store call runs on the pool and comes back
//! as a continuation.

pub(crate) mod deliver;
pub(crate) mod publish;
pub(crate) mod retention;

/// The partition of a message with key `key`, of `partitions`: FNV-1a
/// (64 bits) of the key's bytes, modulo the count. Written here because
/// it must never change between versions or processes (a key's messages
/// must keep going to one partition), which `std`'s hasher does not
/// promise; it is six lines.
pub(crate) fn partition_of(key: &str, partitions: u32) -> u32 {
    (fnv1a(key.as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_goes_to_one_partition_and_keys_spread() {
        // Fixed values: a change here would move keys between partitions
        // of existing topics.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(partition_of("user-1", 1), 0);
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[partition_of(&format!("key-{i}"), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }
}
