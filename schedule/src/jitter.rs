//! The per-firing jitter offset.
//!
//! Every server that evaluates a schedule must pick the same offset for the
//! same firing, in this version and the next, on every platform. So the hash
//! is fixed here byte for byte instead of coming from
//! [`std::hash::DefaultHasher`] (whose output Rust may change between
//! releases) or from a `Hasher` impl (whose `write_i64` feeds native-endian
//! bytes):
//!
//! 1. FNV-1a, 64 bits (offset basis `0xcbf29ce484222325`, prime
//!    `0x100000001b3`), over the UTF-8 bytes of the schedule name followed by
//!    the scheduled time in Unix milliseconds as 8 bytes, big-endian two's
//!    complement. The time has a fixed length, so no separator is needed.
//! 2. The SplitMix64 finalizer on that value, so that neighbouring times
//!    (which differ in the last byte only) spread over the whole range.
//! 3. The result modulo the jitter in milliseconds. The modulo bias is at
//!    most jitter / 2^64: nil for any real jitter.

/// FNV-1a 64-bit over `bytes`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

/// The SplitMix64 finalizer (Steele, Lea and Flood, 2014).
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The offset in `[0, jitter_ms)` for the firing of schedule `name` at
/// `scheduled_ms`; 0 when `jitter_ms` is 0.
pub(crate) fn offset_ms(name: &str, scheduled_ms: i64, jitter_ms: u64) -> u64 {
    if jitter_ms == 0 {
        return 0;
    }
    let mut bytes = Vec::with_capacity(name.len() + 8);
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(&scheduled_ms.to_be_bytes());
    mix64(fnv1a64(&bytes)) % jitter_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_vectors() {
        // The published FNV-1a test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn splitmix64_reference_value() {
        // SplitMix64 seeded with 0: the first output is the finalizer of the
        // golden-ratio increment.
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn pinned_offsets() {
        // Pinned so that a change of the hash, which would make servers of
        // different versions disagree, fails here first.
        let t = 1_735_689_600_000; // 2025-01-01T00:00:00Z
        let pinned = [
            offset_ms("nightly", t, 60_000),
            offset_ms("nightly", t + 60_000, 60_000),
            offset_ms("report", t, 60_000),
            offset_ms("", t, 1_000),
        ];
        let mut bytes = b"nightly".to_vec();
        bytes.extend_from_slice(&t.to_be_bytes());
        assert_eq!(pinned[0], mix64(fnv1a64(&bytes)) % 60_000);
        assert_eq!(pinned, PINNED);
    }

    /// Computed independently (a Python transcription of the module docs).
    const PINNED: [u64; 4] = [22_934, 35_245, 58_780, 236];

    #[test]
    fn zero_and_one_ms_jitter_give_zero() {
        assert_eq!(offset_ms("x", 123, 0), 0);
        assert_eq!(offset_ms("x", 123, 1), 0);
    }
}
