//! `/topics`: creating, listing, changing and deleting topics, reading
//! their logs, and publishing to them. A publish joins the worker's next
//! commit of messages (`events::publish`); its client hears the offset
//! once the message is durable.

use serde::Deserialize;
use serde_json::{json, Value};
use sl_store::{Message, StoreError, Topic, TopicInfo};

use super::input::{bad_request, check_name, is_blank, parse_body, query_param};
use crate::answer::{json_response, store_error};
use crate::http::Response;
use crate::ids::now_ms;
use crate::reactor::ConnRef;
use crate::state::{Outgoing, Publish, Publisher, State};

/// Partitions a topic may have at most.
pub(crate) const MAX_PARTITIONS: u32 = 256;
/// Messages a batch publish may hold at most.
pub(crate) const MAX_BATCH: usize = 1000;
/// Messages waiting for their commit on a worker at most: past it, a
/// publish is refused with a 503 until the store catches up.
pub(crate) const MAX_WAITING: usize = 65_536;
/// Bytes of a message's key at most.
pub(crate) const MAX_KEY: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    name: String,
    #[serde(default = "default_partitions")]
    partitions: u32,
    #[serde(default)]
    retention_ms: Option<i64>,
    #[serde(default)]
    retention_bytes: Option<u64>,
}

fn default_partitions() -> u32 {
    4
}

/// A change of retention: a field left out keeps its value, `null` lifts
/// the bound.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Retention {
    #[serde(default, deserialize_with = "present")]
    retention_ms: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    retention_bytes: Option<Option<u64>>,
}

/// A field that is there: `Some(None)` for `null`.
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A topic as the API shows it.
pub(crate) fn topic_json(t: &TopicInfo) -> Value {
    json!({
        "name": t.topic.name,
        "partitions": t.topic.partitions,
        "retention_ms": t.topic.retention_ms,
        "retention_bytes": t.topic.retention_bytes,
        "created": t.topic.created,
        "messages": t.messages,
        "bytes": t.bytes,
        "offsets": t.partitions.iter().map(|p| json!({"first": p.first, "next": p.next})).collect::<Vec<_>>(),
    })
}

/// A message as the API shows it: its payload as JSON.
fn message_json(m: &Message) -> Value {
    let payload: Value = serde_json::from_str(&m.payload).unwrap_or(Value::String(m.payload.clone()));
    json!({"partition": m.partition, "offset": m.offset, "key": m.key, "published": m.published, "payload": payload})
}

fn check_retention(ms: Option<i64>, bytes: Option<u64>) -> Result<(), Response> {
    if ms.is_some_and(|ms| ms < 1000) {
        return Err(bad_request("retention_ms must be at least 1000 (or absent: kept for any age)"));
    }
    if bytes == Some(0) {
        return Err(bad_request("retention_bytes must be at least 1 (or absent: no bound)"));
    }
    Ok(())
}

/// `GET /topics`.
pub(super) fn list(st: &mut State, conn: ConnRef) -> Option<Response> {
    st.answer_later(conn, |store| match store.events().list_topics() {
        Ok(list) => json_response(200, &list.iter().map(topic_json).collect::<Vec<_>>()),
        Err(e) => store_error(&e),
    });
    None
}

/// `POST /topics`.
pub(super) fn create(st: &mut State, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: CreateTopic = parse_body(body)?;
    check_name(&b.name).map_err(|_| bad_request(format!("invalid topic name '{}': {}", short(&b.name), NAME_RULE)))?;
    if !(1..=MAX_PARTITIONS).contains(&b.partitions) {
        return Err(bad_request(format!("partitions must be from 1 to {MAX_PARTITIONS}")));
    }
    check_retention(b.retention_ms, b.retention_bytes)?;
    let topic = Topic {
        name: b.name,
        partitions: b.partitions,
        retention_ms: b.retention_ms,
        retention_bytes: b.retention_bytes,
        created: now_ms(),
    };
    st.answer_later(conn, move |store| {
        let events = store.events();
        match events.create_topic(&topic) {
            Ok(()) => match events.get_topic(&topic.name) {
                Ok(Some(info)) => json_response(201, &topic_json(&info)),
                Ok(None) => Response::error(409, "conflict", "the topic was deleted as it was created"),
                Err(e) => store_error(&e),
            },
            Err(StoreError::AlreadyExists(_)) => {
                Response::error(409, "conflict", &format!("a topic named '{}' already exists", topic.name))
            }
            Err(e) => store_error(&e),
        }
    });
    Ok(None)
}

/// What a topic or subscription name may be.
pub(crate) const NAME_RULE: &str = "use 1 to 128 letters, digits, '-', '_' or '.' (but not '.' or '..')";

/// A name cut for an error message.
pub(crate) fn short(name: &str) -> String {
    name.chars().take(140).collect()
}

/// `name` if it is a valid topic name, else a 400.
pub(super) fn check_topic(name: &str) -> Result<(), Response> {
    check_name(name).map_err(|_| bad_request(format!("invalid topic name '{}': {NAME_RULE}", short(name))))
}

/// `GET /topics/:name`.
pub(super) fn get(st: &mut State, conn: ConnRef, name: &str) -> Option<Response> {
    let name = name.to_string();
    st.answer_later(conn, move |store| match store.events().get_topic(&name) {
        Ok(Some(info)) => json_response(200, &topic_json(&info)),
        Ok(None) => no_topic(&name),
        Err(e) => store_error(&e),
    });
    None
}

fn no_topic(name: &str) -> Response {
    Response::error(404, "not_found", &format!("no topic named '{name}'"))
}

/// `PUT /topics/:name`: its retention (`retention_ms`, `retention_bytes`;
/// a field left out is unchanged, `null` lifts the bound).
pub(super) fn update(st: &mut State, conn: ConnRef, name: &str, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: Retention = parse_body(body)?;
    if b.retention_ms.is_none() && b.retention_bytes.is_none() {
        return Err(bad_request("give retention_ms or retention_bytes (a number, or null for no bound)"));
    }
    check_retention(b.retention_ms.flatten(), b.retention_bytes.flatten())?;
    let name = name.to_string();
    st.answer_later(conn, move |store| {
        let events = store.events();
        let old = match events.get_topic(&name) {
            Ok(Some(info)) => info.topic,
            Ok(None) => return no_topic(&name),
            Err(e) => return store_error(&e),
        };
        let ms = b.retention_ms.unwrap_or(old.retention_ms);
        let bytes = b.retention_bytes.unwrap_or(old.retention_bytes);
        match events.set_topic_retention(&name, ms, bytes) {
            Ok(true) => match events.get_topic(&name) {
                Ok(Some(info)) => json_response(200, &topic_json(&info)),
                Ok(None) => no_topic(&name),
                Err(e) => store_error(&e),
            },
            Ok(false) => no_topic(&name),
            Err(e) => store_error(&e),
        }
    });
    Ok(None)
}

/// `DELETE /topics/:name`: refused while subscriptions read it.
pub(super) fn delete(st: &mut State, conn: ConnRef, name: &str) -> Option<Response> {
    let name = name.to_string();
    st.answer_later(conn, move |store| {
        let events = store.events();
        let subs = match events.list_subscriptions(now_ms()) {
            Ok(subs) => subs,
            Err(e) => return store_error(&e),
        };
        let readers: Vec<&str> =
            subs.iter().filter(|s| s.subscription.topic == name).map(|s| s.subscription.name.as_str()).collect();
        if !readers.is_empty() {
            return Response::error(
                409,
                "conflict",
                &format!("topic '{name}' has subscriptions ({}): delete them first", readers.join(", ")),
            );
        }
        match events.delete_topic(&name) {
            Ok(true) => json_response(200, &json!({"deleted": true})),
            Ok(false) => no_topic(&name),
            Err(e) => store_error(&e),
        }
    });
    None
}

/// `GET /topics/:name/messages?partition=P&from=OFFSET&limit=N`: the
/// retained log of one partition (0 by default), from the first retained
/// offset by default, at most 100 messages by default (1000 at most).
pub(super) fn read(st: &mut State, conn: ConnRef, name: &str, query: &str) -> Result<Option<Response>, Response> {
    let number = |key: &str, default: i64| -> Result<i64, Response> {
        match query_param(query, key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| bad_request(format!("?{key}= must be an integer"))),
        }
    };
    let partition = u32::try_from(number("partition", 0)?).map_err(|_| bad_request("?partition= is out of range"))?;
    let from = number("from", 0)?;
    let limit = number("limit", 100)?;
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("?limit= must be from 1 to 1000"));
    }
    let limit = limit as usize;
    let name = name.to_string();
    st.answer_later(conn, move |store| {
        let events = store.events();
        match events.get_topic(&name) {
            Ok(Some(t)) if partition < t.topic.partitions => {}
            Ok(Some(t)) => {
                return bad_request(format!("topic '{name}' has partitions 0 to {}", t.topic.partitions - 1))
            }
            Ok(None) => return no_topic(&name),
            Err(e) => return store_error(&e),
        }
        match events.read_messages(&name, partition, from, limit, 8 << 20) {
            Ok(list) => json_response(200, &list.iter().map(message_json).collect::<Vec<_>>()),
            Err(e) => store_error(&e),
        }
    });
    Ok(None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchMessage {
    #[serde(default)]
    key: Option<String>,
    payload: Value,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// How deep a payload may nest: a batch's arguments hold it three levels
/// down, and Lua takes arguments [`MAX_DEPTH`](crate::sandbox::json::MAX_DEPTH)
/// deep.
pub(crate) const MAX_PAYLOAD_DEPTH: usize = crate::sandbox::json::MAX_DEPTH - 3;

/// A 400 for a payload that nests deeper than [`MAX_PAYLOAD_DEPTH`].
fn check_depth(text: &[u8]) -> Result<(), Response> {
    if crate::sandbox::json::nesting(text) > MAX_PAYLOAD_DEPTH {
        return Err(bad_request(format!("a message may nest at most {MAX_PAYLOAD_DEPTH} levels deep")));
    }
    Ok(())
}

/// A 503 while [`MAX_WAITING`] messages wait for their commit.
fn check_room(st: &State) -> Result<(), Response> {
    if st.publishes.waiting() >= MAX_WAITING {
        return Err(crate::answer::overloaded("too many messages are waiting to be stored; retry"));
    }
    Ok(())
}

fn check_key(key: &Option<String>) -> Result<(), Response> {
    match key {
        Some(k) if k.len() > MAX_KEY => Err(bad_request(format!("a key holds at most {MAX_KEY} bytes"))),
        _ => Ok(()),
    }
}

/// `POST /topics/:name?key=K`: the body (JSON) is the message's payload.
pub(super) fn publish(
    st: &mut State,
    conn: ConnRef,
    name: &str,
    query: &str,
    body: &[u8],
    idempotency_key: Option<&[u8]>,
) -> Result<Option<Response>, Response> {
    let idempotency_key = idempotency_key.map(super::idempotency::key).transpose().map_err(bad_request)?;
    check_room(st)?;
    if is_blank(body) {
        return Err(bad_request("the request body is the message: any JSON value"));
    }
    let payload: &serde_json::value::RawValue =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("the message is not JSON: {e}")))?;
    check_depth(payload.get().as_bytes())?;
    let key = query_param(query, "key").map(|k| k.into_owned());
    check_key(&key)?;
    let message = Outgoing { topic: name.to_string(), key, payload: payload.get().to_string(), idempotency_key };
    st.publishes.push(Publish { from: Publisher::Client { conn, batch: false }, messages: vec![message] });
    Ok(None)
}

/// `POST /topics/:name/batch`: `[{"key": .., "payload": .., "idempotency_key": ..}, ...]`.
pub(super) fn publish_batch(
    st: &mut State,
    conn: ConnRef,
    name: &str,
    body: &[u8],
) -> Result<Option<Response>, Response> {
    check_room(st)?;
    let list: Vec<BatchMessage> = parse_body(body)?;
    if list.is_empty() || list.len() > MAX_BATCH {
        return Err(bad_request(format!("a batch holds 1 to {MAX_BATCH} messages")));
    }
    let mut messages = Vec::with_capacity(list.len());
    for m in list {
        check_key(&m.key)?;
        if let Some(k) = &m.idempotency_key {
            super::idempotency::key(k.as_bytes()).map_err(|e| bad_request(format!("idempotency_key: {e}")))?;
        }
        let payload = m.payload.to_string();
        check_depth(payload.as_bytes())?;
        messages.push(Outgoing { topic: name.to_string(), key: m.key, payload, idempotency_key: m.idempotency_key });
    }
    let mut keys: Vec<&str> = messages.iter().filter_map(|m| m.idempotency_key.as_deref()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad_request("two messages of the batch have the same idempotency_key"));
    }
    st.publishes.push(Publish { from: Publisher::Client { conn, batch: true }, messages });
    Ok(None)
}
