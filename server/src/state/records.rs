//! Invocation records on their way to the store: batched into one write at
//! a time, kept while the store cannot take them, and the recently
//! finished ones whose ids their clients know served from memory until
//! the store has them.
//!
//! A batch is written once its first record has waited [`LINGER`], or
//! once [`LINGER_RECORDS`] wait: a record a turn would otherwise be a
//! transaction each (sampled successes of a busy action come one every
//! hundred runs), and a transaction costs more than the record.
//!
//! Memory stays bounded either way:
//! - while the store takes records more slowly than runs make them, the
//!   backlog is [`full`](Records::full) at [`MAX_BACKLOG`] records, and runs
//!   that would add one wait before they start (see [`crate::invoke`]);
//! - while the store fails, runs go on (warm actions keep working) and,
//!   beyond [`MAX_PENDING_RECORDS`], the records of blocking runs are
//!   dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sl_store::{InvocationRecord, JsonArgs};

/// Most records kept while the store cannot be written; beyond it the
/// records of blocking invocations (whose clients have their answer) are
/// dropped first.
pub(crate) const MAX_PENDING_RECORDS: usize = 100_000;

/// Records written or waiting to be, beyond which runs that make one wait
/// (while the store keeps up, if slowly).
pub(crate) const MAX_BACKLOG: usize = 2_048;

/// Bytes of records written or waiting to be (about), beyond which runs
/// that make one wait.
pub(crate) const MAX_BACKLOG_BYTES: usize = 32 << 20;

/// How long the first record of a batch waits for others before the batch
/// is written.
pub(crate) const LINGER: Duration = Duration::from_millis(5);

/// Records waiting beyond which a batch is written at once.
pub(crate) const LINGER_RECORDS: usize = 256;

/// How long after a failed write the next is tried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The key of the object that stands for a value too big to keep in a
/// record: `{"$sl_truncated": {"over": LIMIT}}`.
pub(crate) const TRUNCATED_MARK: &str = "$sl_truncated";

/// Request headers whose values the record of a route run does not keep.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Bounds what the record of a blocking or route run keeps (its client
/// has had the answer; the record is for looking back): the arguments and
/// the result, each replaced by a marker if its JSON is over `limit`
/// bytes, and the logs and error message cut at `limit` bytes. With
/// `redact`, the route's credential headers (`Authorization`,
/// `Proxy-Authorization`, `Cookie`) in `args.http.headers` are replaced by
/// `[redacted]`. The cost is bounded by `limit`, whatever the sizes.
/// Returns about how many bytes the record holds now.
pub(crate) fn bound(rec: &mut InvocationRecord, limit: usize, redact: bool) -> usize {
    if redact && rec.args.len() <= limit {
        redact_credentials(&mut rec.args);
    }
    if rec.args.len() > limit {
        rec.args = JsonArgs::from_value(&truncated(limit));
    }
    let mut size = rec.args.len();
    if let Some(result) = &mut rec.result {
        size += bound_value(result, limit);
    }
    cut(&mut rec.logs, limit, "logs");
    if let Some(error) = &mut rec.error {
        cut(&mut error.message, limit, "message");
    }
    size + nominal_size(rec)
}

/// About how many bytes a record holds beyond its arguments and result
/// (for those of asynchronous runs, which are not bounded, the guess for
/// everything: they are few, as many as `Invocations.concurrency` runs).
pub(crate) fn nominal_size(rec: &InvocationRecord) -> usize {
    512 + rec.logs.len() + rec.error.as_ref().map_or(0, |e| e.message.len())
}

/// Replaces the values of the credential headers in `args.http.headers`
/// by `[redacted]`. Arguments that do not name one (as a JSON string) are
/// left as they are, unparsed.
fn redact_credentials(args: &mut JsonArgs) {
    let text = args.as_str();
    if !CREDENTIAL_HEADERS.iter().any(|name| text.contains(&format!("\"{name}\""))) {
        return;
    }
    let Ok(mut v) = args.to_value() else { return };
    if let Some(Value::Object(headers)) = v.get_mut("http").and_then(|h| h.get_mut("headers")) {
        for name in CREDENTIAL_HEADERS {
            if let Some(v) = headers.get_mut(name) {
                *v = Value::String("[redacted]".into());
            }
        }
    }
    *args = JsonArgs::from_value(&v);
}

/// What stands for a value whose JSON is over `limit` bytes.
fn truncated(limit: usize) -> Value {
    serde_json::json!({ TRUNCATED_MARK: { "over": limit } })
}

/// Replaces `v` by the truncation marker if its JSON is over `limit` bytes;
/// returns the size of its JSON (the marker's, if replaced).
fn bound_value(v: &mut Value, limit: usize) -> usize {
    /// Counts bytes up to a limit, then refuses more.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.checked_sub(buf.len()).ok_or_else(|| std::io::Error::other("over"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(limit);
    if serde_json::to_writer(&mut count, v).is_err() {
        *v = truncated(limit);
        return 40;
    }
    limit - count.0
}

/// Cuts `text` to at most `limit` bytes (at a character boundary), saying
/// so at its end.
fn cut(text: &mut String, limit: usize, what: &str) {
    if text.len() <= limit {
        return;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("\n[{what} cut: {dropped} more bytes not kept]"));
}

/// Records waiting to be stored, and the recently finished.
#[derive(Default)]
pub(crate) struct Records {
    pending: Vec<InvocationRecord>,
    /// A batch is being written.
    in_flight: bool,
    /// How many records it holds.
    in_flight_len: usize,
    /// About how many bytes the pending records hold (twice for the ones
    /// also in `recent`), and the batch in flight.
    pending_bytes: usize,
    in_flight_bytes: usize,
    /// About how many bytes the pending records, and the batch in flight,
    /// take in the store (each counted once): what the store budget counts.
    pending_stored: usize,
    in_flight_stored: usize,
    /// The size of each pending record and of each in the batch in flight,
    /// in order (what `pending_stored` and `in_flight_stored` add up).
    pending_sizes: Vec<usize>,
    in_flight_sizes: Vec<usize>,
    /// After a failed write, no new attempt before this.
    retry_at: Option<Instant>,
    /// When the oldest pending record was queued (the clock is read once a
    /// batch, when the first record comes).
    since: Option<Instant>,
    /// Finished invocations whose ids their clients know (asynchronous
    /// ones, and runs of routes) and whose records are not yet stored.
    recent: HashMap<String, InvocationRecord>,
}

impl Records {
    /// Queues a record of about `size` bytes to be written with the next
    /// batch.
    pub fn add(&mut self, rec: InvocationRecord, size: usize) {
        if self.pending.is_empty() {
            self.since = Some(Instant::now());
        }
        self.pending_bytes += size;
        self.pending_stored += size;
        self.pending_sizes.push(size);
        self.pending.push(rec);
    }

    /// Queues the record (of about `size` bytes) of an invocation whose id
    /// its client knows, and serves it from memory until the store has it.
    pub fn add_known(&mut self, rec: InvocationRecord, size: usize) {
        self.recent.insert(rec.id.clone(), rec.clone());
        self.pending_bytes += size;
        self.add(rec, size);
    }

    /// A finished invocation's record not yet in the store.
    pub fn recent(&self, id: &str) -> Option<&InvocationRecord> {
        self.recent.get(id)
    }

    /// Whether a batch is to be written now: none is in flight, records
    /// wait, the last failure is [`RETRY_AFTER`] old, and the first record
    /// has waited [`LINGER`] or [`LINGER_RECORDS`] wait.
    pub fn due(&self) -> bool {
        self.writable()
            && (self.retry_at.is_some()
                || self.pending.len() >= LINGER_RECORDS
                || self.since.is_none_or(|since| since.elapsed() >= LINGER))
    }

    /// Whether a batch may be written now, however short the records
    /// waited: none is in flight, records wait, and the last failure is
    /// [`RETRY_AFTER`] old (the clock is read only after a failure).
    fn writable(&self) -> bool {
        !self.in_flight && !self.pending.is_empty() && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// When a batch will be [`due`](Self::due), if records wait and none
    /// is in flight: for the loop to wake then.
    pub fn next_due(&self) -> Option<Instant> {
        if self.in_flight || self.pending.is_empty() {
            return None;
        }
        self.retry_at.or(self.since.map(|since| since + LINGER))
    }

    /// Whether records wait to be written or are being written.
    pub fn unsaved(&self) -> bool {
        self.in_flight || !self.pending.is_empty()
    }

    /// Whether the backlog is full: [`MAX_BACKLOG`] records or
    /// [`MAX_BACKLOG_BYTES`] or more are waiting or being written, and the
    /// store is not failing.
    pub fn full(&self) -> bool {
        (self.pending.len() + self.in_flight_len >= MAX_BACKLOG
            || self.pending_bytes + self.in_flight_bytes >= MAX_BACKLOG_BYTES)
            && self.retry_at.is_none()
    }

    /// The records to write now, if one may be written (the caller asks
    /// [`due`](Self::due) first, to let them linger): the oldest, as many
    /// as hold at most `max_bytes` together (at least one); the write is
    /// then in flight until [`stored`](Self::stored) or
    /// [`failed`](Self::failed).
    pub fn take_batch(&mut self, max_bytes: usize) -> Option<Vec<InvocationRecord>> {
        if !self.writable() {
            return None;
        }
        let (mut n, mut bytes) = (0, 0);
        for &size in &self.pending_sizes {
            if n > 0 && bytes + size > max_bytes {
                break;
            }
            n += 1;
            bytes += size;
        }
        self.in_flight = true;
        self.in_flight_len = n;
        self.in_flight_stored = bytes;
        self.pending_stored -= bytes;
        // `pending_bytes` counts some records twice: move about theirs.
        self.in_flight_bytes = if n == self.pending.len() { self.pending_bytes } else { bytes.min(self.pending_bytes) };
        self.pending_bytes -= self.in_flight_bytes;
        self.in_flight_sizes = self.pending_sizes.drain(..n).collect();
        if n == self.pending.len() {
            return Some(std::mem::take(&mut self.pending));
        }
        Some(self.pending.drain(..n).collect())
    }

    /// About how many bytes the batch in flight will take in the store.
    pub fn in_flight_stored(&self) -> usize {
        self.in_flight_stored
    }

    /// The batch was written; returns about how many bytes it takes in
    /// the store.
    pub fn stored(&mut self, batch: &[InvocationRecord]) -> usize {
        self.in_flight = false;
        self.in_flight_len = 0;
        self.in_flight_bytes = 0;
        self.retry_at = None;
        for rec in batch {
            self.recent.remove(&rec.id);
        }
        self.in_flight_sizes.clear();
        std::mem::take(&mut self.in_flight_stored)
    }

    /// Writing the batch failed at `now`: keep it, before what came since,
    /// and try again later. Beyond [`MAX_PENDING_RECORDS`], records of
    /// blocking invocations are dropped, oldest first; returns how many.
    pub fn failed(&mut self, mut batch: Vec<InvocationRecord>, now: Instant) -> usize {
        self.in_flight = false;
        self.in_flight_len = 0;
        self.pending_bytes += std::mem::take(&mut self.in_flight_bytes);
        self.in_flight_stored = 0;
        self.retry_at = Some(now + RETRY_AFTER);
        batch.append(&mut self.pending);
        let mut sizes = std::mem::take(&mut self.in_flight_sizes);
        sizes.append(&mut self.pending_sizes);
        let before = batch.len();
        if before > MAX_PENDING_RECORDS {
            let mut excess = before - MAX_PENDING_RECORDS;
            let recent = &mut self.recent;
            let kept: Vec<bool> = batch
                .iter()
                .map(|r| {
                    if excess > 0 && !r.is_async {
                        excess -= 1;
                        recent.remove(&r.id);
                        return false;
                    }
                    true
                })
                .collect();
            let mut flags = kept.iter();
            batch.retain(|_| flags.next().copied().unwrap_or(true));
            let mut flags = kept.iter();
            sizes.retain(|_| flags.next().copied().unwrap_or(true));
        }
        let dropped = before - batch.len();
        // `pending_bytes` does not keep each record's: take the average.
        self.pending_bytes -= self.pending_bytes / before.max(1) * dropped;
        self.pending_stored = sizes.iter().sum();
        self.pending_sizes = sizes;
        self.pending = batch;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Records {
        fn add_sized(&mut self, rec: InvocationRecord) {
            self.add(rec, 100);
        }
        fn add_known_sized(&mut self, rec: InvocationRecord) {
            self.add_known(rec, 100);
        }
    }

    fn rec(id: &str, is_async: bool) -> InvocationRecord {
        InvocationRecord::queued(id.into(), "a".into(), serde_json::Value::Null, is_async, 0)
    }

    #[test]
    fn a_batch_is_due_once_its_first_record_lingered_or_enough_wait() {
        let mut r = Records::default();
        assert!(!r.due() && r.next_due().is_none());
        r.add_sized(rec("1", false));
        let at = r.next_due().unwrap();
        assert!(at > Instant::now() && at <= Instant::now() + LINGER);
        assert!(!r.due(), "it lingers");
        std::thread::sleep(LINGER);
        assert!(r.due());
        assert_eq!(r.take_batch(usize::MAX).map(|b| b.len()), Some(1));
        assert!(!r.due() && r.next_due().is_none(), "one in flight");
        r.stored(&[rec("1", false)]);
        for i in 0..LINGER_RECORDS {
            assert!(!r.due(), "{i} wait");
            r.add_sized(rec(&i.to_string(), false));
        }
        assert!(r.due(), "enough wait: at once");
    }

    #[test]
    fn one_batch_at_a_time_and_known_records_served_until_stored() {
        let mut r = Records::default();
        assert!(r.take_batch(usize::MAX).is_none() && !r.unsaved());
        r.add_sized(rec("1", false));
        r.add_known_sized(rec("2", true));
        assert!(r.recent("2").is_some() && r.recent("1").is_none());
        let batch = r.take_batch(usize::MAX).unwrap();
        assert_eq!(batch.len(), 2);
        r.add_sized(rec("3", false));
        assert!(r.take_batch(usize::MAX).is_none(), "one write at a time");
        assert_eq!(r.stored(&batch), 200, "each record's size once, whether known or not");
        assert!(r.recent("2").is_none());
        assert_eq!(r.take_batch(usize::MAX).unwrap().len(), 1);
    }

    #[test]
    fn a_batch_holds_at_most_its_bytes_but_at_least_one_record() {
        let mut r = Records::default();
        r.add(rec("1", false), 300);
        r.add_known(rec("2", true), 300);
        r.add(rec("3", false), 300);
        let batch = r.take_batch(650).unwrap();
        assert_eq!(batch.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.in_flight_stored(), 600);
        // Failed: the batch goes back first, sizes and all.
        r.failed(batch, Instant::now());
        r.retry_at = None;
        let batch = r.take_batch(100).unwrap();
        assert_eq!(batch.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["1"], "one, however big");
        assert_eq!(r.stored(&batch), 300);
        let batch = r.take_batch(usize::MAX).unwrap();
        assert_eq!(r.stored(&batch), 600);
        assert!(!r.unsaved() && !r.full());
    }

    #[test]
    fn a_failed_batch_is_kept_first_and_retried_later() {
        let mut r = Records::default();
        r.add_sized(rec("1", false));
        let batch = r.take_batch(usize::MAX).unwrap();
        r.add_sized(rec("2", false));
        let now = Instant::now();
        assert_eq!(r.failed(batch, now), 0);
        assert!(!r.due(), "not before a second");
        r.retry_at = Some(now);
        let again = r.take_batch(usize::MAX).unwrap();
        assert_eq!(again.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn records_keep_at_most_the_limit_of_each_field_and_no_credentials() {
        let mut r = rec("1", false);
        r.args = serde_json::json!({"small": 1, "http": {"headers": {
            "authorization": "Bearer secret", "cookie": "session=s3cret", "x-other": "kept"}}})
        .into();
        r.result = Some(Value::String("x".repeat(300)));
        r.logs = "é".repeat(150);
        r.error = Some(sl_store::InvocationError { kind: "runtime".into(), message: "m".repeat(10) });
        bound(&mut r, 200, true);
        let args = r.args.to_value().unwrap();
        let headers = &args["http"]["headers"];
        assert_eq!(
            (&headers["authorization"], &headers["cookie"]),
            (&serde_json::json!("[redacted]"), &serde_json::json!("[redacted]"))
        );
        assert_eq!(headers["x-other"], "kept");
        assert_eq!(r.result, Some(serde_json::json!({TRUNCATED_MARK: {"over": 200}})));
        assert!(
            r.logs.starts_with(&"é".repeat(100)) && r.logs.ends_with("\n[logs cut: 100 more bytes not kept]"),
            "{}",
            r.logs
        );
        assert_eq!(r.error.unwrap().message, "m".repeat(10));
        // Without redaction the headers stay; a big argument goes.
        let mut r = rec("2", false);
        r.args = serde_json::json!({"http": {"headers": {"cookie": "c"}}, "body": "y".repeat(1000)}).into();
        bound(&mut r, 500, false);
        assert_eq!(r.args.to_value().unwrap(), serde_json::json!({TRUNCATED_MARK: {"over": 500}}));
        let mut r = rec("3", false);
        r.args = serde_json::json!({"http": {"headers": {"cookie": "c"}}}).into();
        bound(&mut r, 500, false);
        assert_eq!(r.args.to_value().unwrap()["http"]["headers"]["cookie"], "c");
        // Arguments with no credential are kept as they were given.
        let mut r = rec("4", false);
        r.args = JsonArgs::parse(r#"{ "http": {"headers": {"x": "a cookie"}} }"#.into()).unwrap();
        bound(&mut r, 500, true);
        assert_eq!(r.args.as_str(), r#"{ "http": {"headers": {"x": "a cookie"}} }"#);
    }

    #[test]
    fn the_backlog_is_full_while_the_store_keeps_up_slowly_but_not_while_it_fails() {
        let mut r = Records::default();
        for i in 0..MAX_BACKLOG - 1 {
            r.add_sized(rec(&i.to_string(), false));
        }
        assert!(!r.full());
        r.add_sized(rec("last", false));
        assert!(r.full());
        let batch = r.take_batch(usize::MAX).unwrap();
        assert!(r.full(), "records being written count");
        r.stored(&batch);
        assert!(!r.full());
        for i in 0..MAX_BACKLOG {
            r.add_sized(rec(&i.to_string(), false));
        }
        let batch = r.take_batch(usize::MAX).unwrap();
        r.failed(batch, Instant::now());
        assert!(!r.full(), "a failing store holds nothing up: its records are dropped beyond the cap");
        // Few records, but big ones.
        let mut r = Records::default();
        r.add(rec("a", false), MAX_BACKLOG_BYTES / 2);
        assert!(!r.full());
        r.add(rec("b", false), MAX_BACKLOG_BYTES / 2);
        assert!(r.full());
    }

    #[test]
    fn beyond_the_cap_blocking_records_are_dropped_first() {
        let mut r = Records::default();
        for i in 0..MAX_PENDING_RECORDS {
            r.add_known_sized(rec(&format!("a{i}"), true));
        }
        r.add_known_sized(rec("b0", false));
        r.add_known_sized(rec("b1", false));
        let batch = r.take_batch(usize::MAX).unwrap();
        r.add_sized(rec("b2", false));
        let dropped = r.failed(batch, Instant::now());
        assert_eq!(dropped, 3);
        assert_eq!(r.pending.len(), MAX_PENDING_RECORDS);
        assert!(r.pending.iter().all(|x| x.is_async));
        assert!(r.recent("b0").is_none() && r.recent("a0").is_some());
    }
}
