//! Schedules: the firings of cron and `@every` schedules, each an
//! asynchronous invocation of the schedule's action.
//!
//! Every [`SCAN_EVERY`], the first worker of each server lists the
//! schedules on its pool and fires what is due: `sl_schedule::Schedule::due`
//! says which scheduled times to run (in the schedule's time zone, with
//! its catch-up policy and jitter), and each firing is
//!
//! 1. checked against the overlap policy: with `skip` or `queue`, while
//!    the invocation of the schedule's last firing (made before this scan)
//!    is still queued or running, a due firing is skipped (moved past, not
//!    run) or waits for a later scan, and runs once that one ended, as one
//!    firing for all that came due meanwhile (the most recent); the
//!    firings one scan makes (a catch-up) all go;
//! 2. enqueued as an invocation of the action, whose arguments are the
//!    schedule's with `schedule = {name, scheduled, scheduled_at,
//!    caught_up}` added (`caught_up`: a missed firing the catch-up policy
//!    runs late),
//!    under the idempotency key `sl:schedule:NAME:TIME`;
//! 3. recorded with `Schedules::advance_schedule`, a compare-and-set of the
//!    schedule's last scheduled time.
//!
//! So every firing is made exactly once across the servers sharing a
//! store, with no lease: two servers that find the same firing due write
//! one invocation between them (the second enqueue finds the key), and
//! only one moves the schedule on; the other sees the value moved and
//! leaves the schedule to the next scan. A crash between the enqueue and
//! the compare-and-set leaves the invocation once, and the next scan finds
//! it by its key. The key lives as long as the invocation's record
//! (`Invocations.retention`), far longer than a scan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sl_schedule::{CatchUp, Overlap, Schedule};
use sl_store::{
    Enqueued, IdempotencyKey, InvocationRecord, InvocationStatus, JsonArgs, ScheduleInfo, ScheduleRecord, Store,
    StoreError, Submit,
};
use tracing::{debug, warn};

use crate::ids::{new_invocation_id, now_ms};
use crate::queue;
use crate::state::State;

/// How often the schedules are looked at.
pub(crate) const SCAN_EVERY: Duration = Duration::from_millis(500);

/// The parsed form of a stored schedule (its settings were checked when it
/// was created).
pub(crate) fn parse(rec: &ScheduleRecord) -> Result<Schedule, String> {
    let catch_up: CatchUp = rec.catch_up.parse().map_err(|e: sl_schedule::ScheduleError| e.to_string())?;
    let overlap: Overlap = rec.overlap.parse().map_err(|e: sl_schedule::ScheduleError| e.to_string())?;
    Schedule::parse(&rec.spec, Some(&rec.time_zone), rec.created)
        .map(|s| {
            s.with_name(rec.name.clone()).with_jitter_ms(rec.jitter_ms).with_catch_up(catch_up).with_overlap(overlap)
        })
        .map_err(|e| e.to_string())
}

/// A firing made or skipped by a scan.
#[derive(Debug)]
pub(crate) struct Fired {
    pub schedule: String,
    /// Its scheduled time, Unix ms.
    pub scheduled: i64,
    /// When it was enqueued (or skipped), Unix ms.
    pub at: i64,
    pub skipped: bool,
}

/// Scans the schedules when due (on the first worker only).
pub(crate) fn tick(st: &mut State, now: Instant) {
    if st.peers.metrics().1 != 0 || st.schedules.scanning {
        return;
    }
    if st.schedules.scanned.is_some_and(|t| now.duration_since(t) < SCAN_EVERY) {
        return;
    }
    st.schedules.scanning = true;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let result = scan(&*store);
        move |st: &mut State| scanned(st, result)
    });
}

fn scanned(st: &mut State, result: Result<Vec<Fired>, StoreError>) {
    st.schedules.scanning = false;
    st.schedules.scanned = Some(Instant::now());
    let fired = match result {
        Ok(fired) => fired,
        Err(e) => {
            warn!("cannot fire the schedules: {e}");
            return;
        }
    };
    if fired.iter().any(|f| !f.skipped) {
        st.consumer.may_have_queued();
        queue::kick(st);
    }
    for f in &fired {
        debug!(schedule = %f.schedule, scheduled = f.scheduled, skipped = f.skipped, "schedule fired");
        if st.cfg.server.metrics {
            st.peers.metrics().0.schedule(&f.schedule).fired(f.at.saturating_sub(f.scheduled), f.skipped);
        }
    }
}

/// Fires every schedule's due firings.
fn scan(store: &dyn Store) -> Result<Vec<Fired>, StoreError> {
    let mut fired = Vec::new();
    for info in store.schedules().list_schedules()? {
        // One schedule's failure does not hold up the others.
        if let Err(e) = fire_due(store, &info, now_ms(), &mut fired) {
            warn!(schedule = %info.schedule.name, "cannot fire: {e}");
        }
    }
    Ok(fired)
}

/// The arguments of a firing: the schedule's, with `schedule` set
/// (`caught_up`: it is run late, by the catch-up policy, after downtime).
pub(crate) fn firing_args(args: &str, name: &str, scheduled: i64, caught_up: bool) -> JsonArgs {
    let mut value: serde_json::Value =
        serde_json::from_str(args).unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
    if !value.is_object() {
        value = serde_json::Value::Object(Default::default());
    }
    let at = chrono::DateTime::from_timestamp_millis(scheduled)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    value["schedule"] =
        serde_json::json!({"name": name, "scheduled": scheduled, "scheduled_at": at, "caught_up": caught_up});
    JsonArgs::from_value(&value)
}

/// With `queue`, the firing that waited for the last one to end, once it
/// did: the most recent scheduled time due, if one came due after `last`
/// (the due ones left out since, as missed, make this one firing).
fn held(schedule: &Schedule, last: i64, now: i64) -> Option<i64> {
    let first = schedule.next_after(last)?;
    if schedule.fire_at(first) > now {
        return None;
    }
    let mut t = schedule.prev_before(now.saturating_add(1))?;
    if schedule.fire_at(t) > now {
        t = schedule.prev_before(t)?;
    }
    (t > last).then_some(t)
}

/// Fires the due firings of one schedule, oldest first, stopping at the
/// first one another server got to first.
fn fire_due(store: &dyn Store, info: &ScheduleInfo, now: i64, out: &mut Vec<Fired>) -> Result<(), StoreError> {
    let rec = &info.schedule;
    let schedule = match parse(rec) {
        Ok(s) => s,
        Err(e) => {
            warn!(schedule = %rec.name, "a stored schedule does not parse: {e}");
            return Ok(());
        }
    };
    let mut last = info.last_fired;
    let mut times = schedule.due(last, now).times;
    if times.is_empty() && schedule.overlap() == Overlap::Queue {
        times.extend(held(&schedule, last.unwrap_or(rec.created), now));
    }
    if times.is_empty() {
        // Nothing due: no store call (most schedules, most scans).
        return Ok(());
    }
    // The overlap policy looks at the invocation made before this scan:
    // the firings of one scan (catching up) all go.
    let busy = schedule.overlap() != Overlap::Allow
        && match &info.last_invocation {
            Some(id) => store
                .get_invocation(id)?
                .is_some_and(|r| matches!(r.status, InvocationStatus::Queued | InvocationStatus::Running)),
            None => false,
        };
    for t in times {
        if busy {
            if schedule.overlap() == Overlap::Queue {
                // Waits for the next scan.
                return Ok(());
            }
            if !store.schedules().advance_schedule(&rec.name, last, t, None)? {
                return Ok(());
            }
            last = Some(t);
            out.push(Fired { schedule: rec.name.clone(), scheduled: t, at: now_ms(), skipped: true });
            continue;
        }
        let id = new_invocation_id();
        // Missed: its fire instant was more than the grace before now.
        let caught_up = now.saturating_sub(schedule.fire_at(t)) >= schedule.grace_ms() as i64;
        let args = firing_args(&rec.args, &rec.name, t, caught_up);
        let record = InvocationRecord::queued(id.clone(), rec.action.clone(), args, true, now_ms());
        let key = IdempotencyKey {
            key: format!("sl:schedule:{}:{t}", rec.name),
            fingerprint: format!("schedule {}", rec.name),
        };
        let id = match store.enqueue_invocations(&[Submit { record, key: Some(key) }])?.pop() {
            Some(Enqueued::Existing { id, .. }) => id,
            _ => id,
        };
        if !store.schedules().advance_schedule(&rec.name, last, t, Some(&id))? {
            return Ok(());
        }
        out.push(Fired { schedule: rec.name.clone(), scheduled: t, at: now_ms(), skipped: false });
        last = Some(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_firing_carries_its_scheduled_time() {
        let args = firing_args(r#"{"report": "daily", "schedule": 1}"#, "nightly", 1_765_184_400_000, false);
        let v: serde_json::Value = serde_json::from_str(args.as_str()).unwrap();
        assert_eq!(v["report"], "daily");
        assert_eq!(
            v["schedule"],
            serde_json::json!({"name": "nightly", "scheduled": 1_765_184_400_000i64,
                "scheduled_at": "2025-12-08T09:00:00.000Z", "caught_up": false})
        );
        // Arguments that are not an object are replaced.
        let args = firing_args("[1]", "x", 0, true);
        assert!(args.as_str().contains("\"schedule\""));
    }
}
