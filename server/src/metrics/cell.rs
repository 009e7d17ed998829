//! The cells metrics are kept in: counters, gauges and histograms with one
//! writer each.
//!
//! A cell is written by one thread only (its worker's), so an update is a
//! relaxed load and a relaxed store: no lock and no read-modify-write
//! instruction, as cheap as a plain field. Any thread may read it; a
//! reader sees each value whole (the atomics are 64-bit) and at most a few
//! updates late. [`SharedHistogram`] is the exception, for cells that the
//! threads of a pool write together: it adds with `fetch_add`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A count that only grows. One writer.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Sets the count to a total kept elsewhere (one that only grows).
    #[inline]
    pub fn set(&self, total: u64) {
        self.0.store(total, Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A count that only grows, that several threads add to.
#[derive(Default, Debug)]
pub struct SharedCounter(AtomicU64);

impl SharedCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down. One writer.
#[derive(Default, Debug)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The upper bounds of a histogram's buckets, in the unit values are
/// recorded in (nanoseconds, bytes, instructions), increasing, and how to
/// show them: a bound of `b` is written as `b / scale` (so nanoseconds
/// show as seconds with `scale` 1e9).
#[derive(Debug)]
pub struct Buckets {
    pub bounds: &'static [u64],
    pub scale: f64,
}

impl Buckets {
    /// The bucket of `v`: the first whose bound holds it, or the last one
    /// (past every bound). A scan from the smallest: most values (an
    /// invocation's microseconds, a hello's instructions) are in the first
    /// buckets, found in a compare or two.
    #[inline]
    fn index(&self, v: u64) -> usize {
        self.bounds.iter().position(|&b| v <= b).unwrap_or(self.bounds.len())
    }
}

/// `d` in nanoseconds, at most `u64::MAX` (584 years).
#[inline]
fn nanos(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// Nanoseconds, shown in seconds: 100 µs to 5 minutes.
pub static SECONDS: Buckets = Buckets {
    bounds: &[
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
        10_000_000_000,
        30_000_000_000,
        60_000_000_000,
        300_000_000_000,
    ],
    scale: 1e9,
};

/// The counts of a histogram over [`SHORT_SECONDS`].
pub const SHORT_SECONDS_COUNTS: usize = 16;
/// The counts of a histogram over [`INSTRUCTIONS`] or [`BYTES`].
pub const POWERS_COUNTS: usize = 9;

/// Nanoseconds, shown in seconds, for short things (a turn of the event
/// loop): 10 µs to 1 second.
pub static SHORT_SECONDS: Buckets = Buckets {
    bounds: &[
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        1_000_000_000,
    ],
    scale: 1e9,
};

/// Lua VM instructions: powers of ten from a thousand to ten billion.
pub static INSTRUCTIONS: Buckets = Buckets {
    bounds: &[1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000],
    scale: 1.0,
};

/// Bytes, powers of four from 64 KiB to 1 GiB.
pub static BYTES: Buckets =
    Buckets { bounds: &[64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30], scale: 1.0 };

/// The most buckets a histogram has (the longest list above, plus the
/// one past the last bound).
const MAX_BUCKETS: usize = 20;

/// A distribution of values over `N - 1` bounds (by default [`SECONDS`]'
/// 19). One writer.
#[derive(Debug)]
pub struct Histogram<const N: usize = MAX_BUCKETS> {
    buckets: &'static Buckets,
    /// How many values fell in each bucket (not cumulative): `counts[i]`
    /// those up to `bounds[i]` and above the bound before, the last one
    /// those above every bound.
    counts: [AtomicU64; N],
    /// The sum of the values, in the recorded unit.
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram over `buckets`, which must have `N - 1` bounds.
    pub fn new(buckets: &'static Buckets) -> Self {
        assert!(
            buckets.bounds.len() + 1 == N && N <= MAX_BUCKETS,
            "a histogram of {N} counts over {} bounds",
            buckets.bounds.len()
        );
        Self { buckets, counts: std::array::from_fn(|_| AtomicU64::new(0)), sum: AtomicU64::new(0) }
    }

    /// Records a time, in nanoseconds (the unit of [`SECONDS`] and
    /// [`SHORT_SECONDS`]; centuries at most).
    #[inline]
    pub fn record_time(&self, d: std::time::Duration) {
        self.record(nanos(d));
    }

    /// Records `v`.
    #[inline]
    pub fn record(&self, v: u64) {
        let c = &self.counts[self.buckets.index(v)];
        c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
        self.sum.store(self.sum.load(Relaxed).wrapping_add(v), Relaxed);
    }

    /// Adds what it holds to `into`.
    pub fn add_to(&self, into: &mut Snapshot) {
        into.add(self.buckets, &self.counts, &self.sum);
    }
}

/// A distribution of values that several threads write (a pool's): each
/// update is a `fetch_add`. Over [`SECONDS`]' bounds.
#[derive(Debug)]
pub struct SharedHistogram(Histogram);

impl SharedHistogram {
    /// An empty histogram over `buckets`.
    pub fn new(buckets: &'static Buckets) -> Self {
        Self(Histogram::new(buckets))
    }

    /// Records a time, in nanoseconds.
    pub fn record_time(&self, d: std::time::Duration) {
        self.record(nanos(d));
    }

    /// Records `v`.
    pub fn record(&self, v: u64) {
        self.0.counts[self.0.buckets.index(v)].fetch_add(1, Relaxed);
        self.0.sum.fetch_add(v, Relaxed);
    }

    /// Adds what it holds to `into`.
    pub fn add_to(&self, into: &mut Snapshot) {
        self.0.add_to(into);
    }
}

/// The sum of histograms with the same buckets, read for exposition.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    buckets: Option<&'static Buckets>,
    counts: [u64; MAX_BUCKETS],
    sum: u64,
}

impl Snapshot {
    fn add(&mut self, buckets: &'static Buckets, counts: &[AtomicU64], sum: &AtomicU64) {
        self.buckets = Some(buckets);
        for (into, c) in self.counts.iter_mut().zip(counts) {
            *into = into.wrapping_add(c.load(Relaxed));
        }
        self.sum = self.sum.wrapping_add(sum.load(Relaxed));
    }

    /// Whether a histogram was added to it (one with no values counts).
    pub fn has_buckets(&self) -> bool {
        self.buckets.is_some()
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        let n = self.buckets.map_or(0, |b| b.bounds.len() + 1);
        self.counts[..n].iter().sum()
    }

    /// The sum of the values, in the unit of the exposition.
    pub fn sum(&self) -> f64 {
        self.sum as f64 / self.buckets.map_or(1.0, |b| b.scale)
    }

    /// The cumulative buckets: each bound in the unit of the exposition,
    /// with the count of values up to it; the last is `+Inf` (`None`).
    pub fn cumulative(&self) -> Vec<(Option<f64>, u64)> {
        let Some(b) = self.buckets else { return vec![(None, 0)] };
        let mut total = 0;
        let mut out = Vec::with_capacity(b.bounds.len() + 1);
        for (i, &bound) in b.bounds.iter().enumerate() {
            total += self.counts[i];
            out.push((Some(bound as f64 / b.scale), total));
        }
        total += self.counts[b.bounds.len()];
        out.push((None, total));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_counts_in_the_first_bucket_whose_bound_holds_it() {
        let h: Histogram = Histogram::new(&SECONDS);
        h.record(100_000); // exactly the first bound: le="0.0001"
        h.record(100_001);
        h.record(2_000_000_000);
        h.record(u64::MAX / 2); // past every bound
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        let c = s.cumulative();
        assert_eq!(c[0], (Some(0.0001), 1));
        assert_eq!(c[1], (Some(0.00025), 2));
        assert_eq!(c[12], (Some(1.0), 2));
        assert_eq!(c[13], (Some(2.5), 3));
        assert_eq!(c.last(), Some(&(None, 4)));
        assert_eq!(s.count(), 4);
    }

    #[test]
    fn snapshots_add_histograms_up() {
        let (a, b) = (Histogram::<POWERS_COUNTS>::new(&BYTES), Histogram::<POWERS_COUNTS>::new(&BYTES));
        a.record(1000);
        b.record(1 << 20);
        b.record(3 << 30);
        let mut s = Snapshot::default();
        a.add_to(&mut s);
        b.add_to(&mut s);
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum(), (1000 + (1u64 << 20) + (3u64 << 30)) as f64);
        let c = s.cumulative();
        assert_eq!(c[0], (Some(65536.0), 1));
        assert_eq!(c[2], (Some(1048576.0), 2));
        assert_eq!(c.last(), Some(&(None, 3)));
        assert_eq!(Snapshot::default().cumulative(), vec![(None, 0)]);
        let shared = SharedHistogram::new(&SECONDS);
        shared.record(3_000_000);
        let mut s = Snapshot::default();
        shared.add_to(&mut s);
        assert_eq!((s.count(), s.cumulative()[5]), (1, (Some(0.005), 1)));
    }

    #[test]
    #[should_panic(expected = "a histogram of 20 counts over 8 bounds")]
    fn a_histogram_has_one_count_more_than_bounds() {
        let _: Histogram = Histogram::new(&BYTES);
    }

    #[test]
    fn counters_and_gauges() {
        let c = Counter::default();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let g = Gauge::default();
        g.set(7);
        g.set(3);
        assert_eq!(g.get(), 3);
    }
}
