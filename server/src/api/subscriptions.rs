//! `/subscriptions`: creating, listing and deleting subscriptions,
//! resetting their cursors (replay), and their dead letters. A change is
//! told to this process's workers at once (`events::deliver::sync`);
//! other servers see it within half a second.

use serde::Deserialize;
use serde_json::{json, Value};
use sl_store::{DeadLetter, Position, StoreError, Subscription, SubscriptionInfo};

use super::input::{bad_request, check_name, parse_body, query_param};
use super::topics::{short, NAME_RULE};
use crate::answer::{json_response, store_error};
use crate::events::deliver;
use crate::http::Response;
use crate::ids::now_ms;
use crate::reactor::ConnRef;
use crate::state::{PeerMsg, State};

/// Messages a batch may hold at most.
pub(crate) const MAX_BATCH_SIZE: u32 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubscription {
    name: String,
    topic: String,
    action: String,
    #[serde(default = "default_batch_size")]
    batch_size: u32,
    #[serde(default)]
    max_wait_ms: i64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "default_backoff")]
    backoff_ms: i64,
    #[serde(default = "default_backoff_max")]
    backoff_max_ms: i64,
    /// `"beginning"`, `"end"` (the default), `{"offset": N}` or
    /// `{"time": MS}`.
    #[serde(default)]
    start: Option<Value>,
}

fn default_batch_size() -> u32 {
    10
}
fn default_max_retries() -> u32 {
    3
}
fn default_backoff() -> i64 {
    1000
}
fn default_backoff_max() -> i64 {
    300_000
}

/// A position as the API takes it.
fn position(v: Option<&Value>, default: Position) -> Result<Position, Response> {
    let bad = || bad_request("a position is \"beginning\", \"end\", {\"offset\": N} or {\"time\": UNIX_MS}");
    let Some(v) = v else { return Ok(default) };
    match v {
        Value::String(s) if s == "beginning" => Ok(Position::Beginning),
        Value::String(s) if s == "end" => Ok(Position::End),
        Value::Object(o) if o.len() == 1 => {
            if let Some(n) = o.get("offset") {
                n.as_i64().filter(|n| *n >= 0).map(Position::Offset).ok_or_else(bad)
            } else if let Some(t) = o.get("time") {
                t.as_i64().map(Position::Time).ok_or_else(bad)
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// A subscription as the API shows it, with its backlog: the messages of
/// the log past its cursors, and its pending ones.
pub(crate) fn subscription_json(s: &SubscriptionInfo, next: Option<&[i64]>) -> Value {
    let sub = &s.subscription;
    let partitions: Vec<Value> = s
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v =
                json!({"partition": i, "cursor": p.cursor, "pending": p.pending, "owner": p.owner, "epoch": p.epoch});
            if let Some(n) = next.and_then(|n| n.get(i)) {
                v["backlog"] = json!((n - p.cursor).max(0) as u64 + p.pending);
            }
            v
        })
        .collect();
    let mut v = json!({
        "name": sub.name,
        "topic": sub.topic,
        "action": sub.action,
        "batch_size": sub.batch_size,
        "max_wait_ms": sub.max_wait_ms,
        "max_retries": sub.max_retries,
        "backoff_ms": sub.backoff_ms,
        "backoff_max_ms": sub.backoff_max_ms,
        "created": sub.created,
        "dead": s.dead,
        "partitions": partitions,
    });
    if next.is_some() {
        v["backlog"] = json!(v["partitions"]
            .as_array()
            .map_or(0, |a| a.iter().map(|p| p["backlog"].as_u64().unwrap_or(0)).sum::<u64>()));
    }
    v
}

/// A dead letter as the API shows it.
fn dead_json(d: &DeadLetter) -> Value {
    let m = &d.message;
    let payload: Value = serde_json::from_str(&m.payload).unwrap_or(Value::String(m.payload.clone()));
    json!({
        "partition": m.partition,
        "offset": m.offset,
        "key": m.key,
        "published": m.published,
        "payload": payload,
        "attempts": d.attempts,
        "error": d.error,
        "logs": d.logs,
        "invocation": d.invocation,
        "died": d.died,
    })
}

fn check_sub(name: &str) -> Result<(), Response> {
    check_name(name).map_err(|_| bad_request(format!("invalid subscription name '{}': {NAME_RULE}", short(name))))
}

fn no_sub(name: &str) -> Response {
    Response::error(404, "not_found", &format!("no subscription named '{name}'"))
}

/// Tells this process's workers that subscriptions changed.
fn changed(st: &mut State) {
    deliver::sync(st);
    st.peers.tell(PeerMsg::SubscriptionsChanged);
}

/// Runs `job` on the pool; a 2xx answer tells the workers first.
fn later<F>(st: &mut State, conn: ConnRef, job: F)
where
    F: FnOnce(&dyn sl_store::Store) -> Response + Send + 'static,
{
    let store = std::sync::Arc::clone(&st.store);
    st.pool.spawn(move || {
        let resp = job(&*store);
        move |st: &mut State| {
            if (200..300).contains(&resp.status) {
                changed(st);
            }
            st.outbox.respond(conn, resp)
        }
    });
}

/// The next offsets of a topic's partitions, for the backlog.
fn next_offsets(store: &dyn sl_store::Store, topic: &str) -> Option<Vec<i64>> {
    store.events().get_topic(topic).ok().flatten().map(|t| t.partitions.iter().map(|p| p.next).collect())
}

/// `GET /subscriptions`.
pub(super) fn list(st: &mut State, conn: ConnRef) -> Option<Response> {
    st.answer_later(conn, |store| {
        let events = store.events();
        let (list, topics) = match (events.list_subscriptions(now_ms()), events.list_topics()) {
            (Ok(list), Ok(topics)) => (list, topics),
            (Err(e), _) | (_, Err(e)) => return store_error(&e),
        };
        let out: Vec<Value> = list
            .iter()
            .map(|s| {
                let next: Option<Vec<i64>> = topics
                    .iter()
                    .find(|t| t.topic.name == s.subscription.topic)
                    .map(|t| t.partitions.iter().map(|p| p.next).collect());
                subscription_json(s, next.as_deref())
            })
            .collect();
        json_response(200, &out)
    });
    None
}

/// `POST /subscriptions`.
pub(super) fn create(st: &mut State, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: CreateSubscription = parse_body(body)?;
    check_sub(&b.name)?;
    super::topics::check_topic(&b.topic)?;
    check_name(&b.action)?;
    if !(1..=MAX_BATCH_SIZE).contains(&b.batch_size) {
        return Err(bad_request(format!("batch_size must be from 1 to {MAX_BATCH_SIZE}")));
    }
    if !(0..=60_000).contains(&b.max_wait_ms) {
        return Err(bad_request("max_wait_ms must be from 0 to 60000"));
    }
    if b.max_retries > 100 {
        return Err(bad_request("max_retries must be from 0 to 100"));
    }
    if !(0..=86_400_000).contains(&b.backoff_ms) || !(b.backoff_ms..=86_400_000).contains(&b.backoff_max_ms) {
        return Err(bad_request(
            "backoff_ms must be from 0 to 86400000, and backoff_max_ms from backoff_ms to 86400000",
        ));
    }
    let start = position(b.start.as_ref(), Position::End)?;
    let sub = Subscription {
        name: b.name,
        topic: b.topic,
        action: b.action,
        batch_size: b.batch_size,
        max_wait_ms: b.max_wait_ms,
        max_retries: b.max_retries,
        backoff_ms: b.backoff_ms,
        backoff_max_ms: b.backoff_max_ms,
        created: now_ms(),
    };
    later(st, conn, move |store| {
        match store.get_action(&sub.action) {
            Ok(Some(_)) => {}
            Ok(None) => return Response::error(404, "not_found", &format!("no action named '{}'", sub.action)),
            Err(e) => return store_error(&e),
        }
        let events = store.events();
        match events.create_subscription(&sub, start) {
            Ok(()) => match events.get_subscription(&sub.name, now_ms()) {
                Ok(Some(info)) => {
                    json_response(201, &subscription_json(&info, next_offsets(store, &sub.topic).as_deref()))
                }
                Ok(None) => no_sub(&sub.name),
                Err(e) => store_error(&e),
            },
            Err(StoreError::AlreadyExists(_)) => {
                Response::error(409, "conflict", &format!("a subscription named '{}' already exists", sub.name))
            }
            Err(StoreError::NotFound(_)) => {
                Response::error(404, "not_found", &format!("no topic named '{}'", sub.topic))
            }
            Err(e) => store_error(&e),
        }
    });
    Ok(None)
}

/// `GET /subscriptions/:name`.
pub(super) fn get(st: &mut State, conn: ConnRef, name: &str) -> Result<Option<Response>, Response> {
    check_sub(name)?;
    let name = name.to_string();
    st.answer_later(conn, move |store| match store.events().get_subscription(&name, now_ms()) {
        Ok(Some(info)) => {
            json_response(200, &subscription_json(&info, next_offsets(store, &info.subscription.topic).as_deref()))
        }
        Ok(None) => no_sub(&name),
        Err(e) => store_error(&e),
    });
    Ok(None)
}

/// `DELETE /subscriptions/:name`.
pub(super) fn delete(st: &mut State, conn: ConnRef, name: &str) -> Result<Option<Response>, Response> {
    check_sub(name)?;
    let name = name.to_string();
    later(st, conn, move |store| match store.events().delete_subscription(&name) {
        Ok(true) => json_response(200, &json!({"deleted": true})),
        Ok(false) => no_sub(&name),
        Err(e) => store_error(&e),
    });
    Ok(None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    to: Value,
}

/// `POST /subscriptions/:name/reset` with `{"to": POSITION}`: replay (or
/// skip) from there; pending retries are dropped.
pub(super) fn reset(st: &mut State, conn: ConnRef, name: &str, body: &[u8]) -> Result<Option<Response>, Response> {
    check_sub(name)?;
    let b: Reset = parse_body(body)?;
    let to = position(Some(&b.to), Position::End)?;
    let name = name.to_string();
    later(st, conn, move |store| match store.events().reset_subscription(&name, to) {
        Ok(Some(cursors)) => json_response(200, &json!({"name": name, "cursors": cursors})),
        Ok(None) => no_sub(&name),
        Err(e) => store_error(&e),
    });
    Ok(None)
}

/// `?partition=P&offset=O` naming one dead letter, or neither for all.
fn one(query: &str) -> Result<Option<(u32, i64)>, Response> {
    match (query_param(query, "partition"), query_param(query, "offset")) {
        (None, None) => Ok(None),
        (Some(p), Some(o)) => match (p.parse(), o.parse()) {
            (Ok(p), Ok(o)) => Ok(Some((p, o))),
            _ => Err(bad_request("?partition= and ?offset= must be integers")),
        },
        _ => Err(bad_request("give both ?partition= and ?offset= (one dead letter), or neither (all)")),
    }
}

/// `GET /subscriptions/:name/dead?limit=N`: oldest death first.
pub(super) fn dead(st: &mut State, conn: ConnRef, name: &str, query: &str) -> Result<Option<Response>, Response> {
    check_sub(name)?;
    let limit = match query_param(query, "limit") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(bad_request("?limit= must be from 1 to 1000")),
        },
    };
    let name = name.to_string();
    st.answer_later(conn, move |store| {
        let events = store.events();
        match events.get_subscription(&name, now_ms()) {
            Ok(Some(_)) => {}
            Ok(None) => return no_sub(&name),
            Err(e) => return store_error(&e),
        }
        match events.list_dead(&name, limit) {
            Ok(list) => json_response(200, &list.iter().map(dead_json).collect::<Vec<_>>()),
            Err(e) => store_error(&e),
        }
    });
    Ok(None)
}

/// `POST /subscriptions/:name/dead/redrive[?partition=P&offset=O]`.
pub(super) fn redrive(st: &mut State, conn: ConnRef, name: &str, query: &str) -> Result<Option<Response>, Response> {
    check_sub(name)?;
    let which = one(query)?;
    let name = name.to_string();
    later(st, conn, move |store| dead_change(store, &name, which, true));
    Ok(None)
}

/// `DELETE /subscriptions/:name/dead[?partition=P&offset=O]`.
pub(super) fn purge(st: &mut State, conn: ConnRef, name: &str, query: &str) -> Result<Option<Response>, Response> {
    check_sub(name)?;
    let which = one(query)?;
    let name = name.to_string();
    later(st, conn, move |store| dead_change(store, &name, which, false));
    Ok(None)
}

fn dead_change(store: &dyn sl_store::Store, name: &str, which: Option<(u32, i64)>, redrive: bool) -> Response {
    let events = store.events();
    match events.get_subscription(name, now_ms()) {
        Ok(Some(_)) => {}
        Ok(None) => return no_sub(name),
        Err(e) => return store_error(&e),
    }
    let done = if redrive { events.redrive_dead(name, which) } else { events.purge_dead(name, which) };
    match done {
        Ok(0) if which.is_some() => {
            let (p, o) = which.unwrap_or_default();
            Response::error(404, "not_found", &format!("no dead letter at partition {p}, offset {o} of '{name}'"))
        }
        Ok(n) => {
            let key = if redrive { "redriven" } else { "purged" };
            let mut body = serde_json::Map::new();
            body.insert(key.to_string(), json!(n));
            json_response(200, &Value::Object(body))
        }
        Err(e) => store_error(&e),
    }
}
