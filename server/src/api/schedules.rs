//! `/schedules`: creating, listing and deleting schedules (see
//! `crate::schedules` for how they fire). A new schedule is fired by the
//! next scan of any server sharing the store, within half a second.

use serde::Deserialize;
use serde_json::{json, Value};
use sl_store::{ScheduleInfo, ScheduleRecord, StoreError};

use super::input::{bad_request, check_name, parse_body};
use super::topics::{short, NAME_RULE};
use crate::answer::{json_response, store_error};
use crate::http::Response;
use crate::ids::now_ms;
use crate::reactor::ConnRef;
use crate::schedules::parse;
use crate::state::State;

/// The longest jitter a schedule may ask for: a day.
const MAX_JITTER_MS: u64 = 86_400_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSchedule {
    name: String,
    action: String,
    spec: String,
    #[serde(default = "utc")]
    time_zone: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default = "skip")]
    overlap: String,
    #[serde(default = "none")]
    catch_up: String,
    #[serde(default)]
    jitter_ms: u64,
}

fn utc() -> String {
    "UTC".into()
}
fn skip() -> String {
    "skip".into()
}
fn none() -> String {
    "none".into()
}

/// RFC 3339 of a Unix millisecond time.
fn rfc3339(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
}

/// A schedule as the API shows it, with its next firing.
fn schedule_json(s: &ScheduleInfo, now: i64) -> Value {
    let rec = &s.schedule;
    let args: Value = serde_json::from_str(&rec.args).unwrap_or(json!({}));
    let next = parse(rec).ok().and_then(|p| p.due(s.last_fired, now).next);
    json!({
        "name": rec.name,
        "action": rec.action,
        "spec": rec.spec,
        "time_zone": rec.time_zone,
        "args": args,
        "overlap": rec.overlap,
        "catch_up": rec.catch_up,
        "jitter_ms": rec.jitter_ms,
        "created": rec.created,
        "last_fired": s.last_fired,
        "last_fired_at": s.last_fired.map_or(Value::Null, rfc3339),
        "last_invocation": s.last_invocation,
        "fired": s.fired,
        "next": next,
        "next_at": next.map_or(Value::Null, rfc3339),
    })
}

fn check_schedule(name: &str) -> Result<(), Response> {
    check_name(name).map_err(|_| bad_request(format!("invalid schedule name '{}': {NAME_RULE}", short(name))))
}

fn no_schedule(name: &str) -> Response {
    Response::error(404, "not_found", &format!("no schedule named '{name}'"))
}

/// `GET /schedules`.
pub(super) fn list(st: &mut State, conn: ConnRef) -> Option<Response> {
    st.answer_later(conn, |store| match store.schedules().list_schedules() {
        Ok(list) => {
            let now = now_ms();
            json_response(200, &list.iter().map(|s| schedule_json(s, now)).collect::<Vec<_>>())
        }
        Err(e) => store_error(&e),
    });
    None
}

/// `POST /schedules`.
pub(super) fn create(st: &mut State, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: CreateSchedule = parse_body(body)?;
    check_schedule(&b.name)?;
    check_name(&b.action)?;
    if b.jitter_ms > MAX_JITTER_MS {
        return Err(bad_request(format!("jitter_ms must be at most {MAX_JITTER_MS} (a day)")));
    }
    let args = match b.args {
        None => "{}".to_string(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(bad_request("args must be a JSON object")),
    };
    let rec = ScheduleRecord {
        name: b.name,
        action: b.action,
        spec: b.spec.trim().to_string(),
        time_zone: b.time_zone,
        args,
        overlap: b.overlap.trim().to_ascii_lowercase(),
        catch_up: b.catch_up.trim().to_ascii_lowercase(),
        jitter_ms: b.jitter_ms,
        created: now_ms(),
    };
    // Every setting as the scheduler will read it.
    let parsed = parse(&rec).map_err(bad_request)?;
    if parsed.never_fires() {
        return Err(bad_request(format!("'{}' matches no date: the schedule would never fire", rec.spec)));
    }
    st.answer_later(conn, move |store| {
        match store.get_action(&rec.action) {
            Ok(Some(_)) => {}
            Ok(None) => return Response::error(404, "not_found", &format!("no action named '{}'", rec.action)),
            Err(e) => return store_error(&e),
        }
        let schedules = store.schedules();
        match schedules.create_schedule(&rec) {
            Ok(()) => match schedules.get_schedule(&rec.name) {
                Ok(Some(info)) => json_response(201, &schedule_json(&info, now_ms())),
                Ok(None) => no_schedule(&rec.name),
                Err(e) => store_error(&e),
            },
            Err(StoreError::AlreadyExists(_)) => {
                Response::error(409, "conflict", &format!("a schedule named '{}' already exists", rec.name))
            }
            Err(e) => store_error(&e),
        }
    });
    Ok(None)
}

/// `GET /schedules/:name`.
pub(super) fn get(st: &mut State, conn: ConnRef, name: &str) -> Result<Option<Response>, Response> {
    check_schedule(name)?;
    let name = name.to_string();
    st.answer_later(conn, move |store| match store.schedules().get_schedule(&name) {
        Ok(Some(info)) => json_response(200, &schedule_json(&info, now_ms())),
        Ok(None) => no_schedule(&name),
        Err(e) => store_error(&e),
    });
    Ok(None)
}

/// `DELETE /schedules/:name`.
pub(super) fn delete(st: &mut State, conn: ConnRef, name: &str) -> Result<Option<Response>, Response> {
    check_schedule(name)?;
    let name = name.to_string();
    st.answer_later(conn, move |store| match store.schedules().delete_schedule(&name) {
        Ok(true) => json_response(200, &json!({"deleted": true})),
        Ok(false) => no_schedule(&name),
        Err(e) => store_error(&e),
    });
    Ok(None)
}
