//! The commit of published messages: one store call for the publishes of
//! a turn (see `state/publishes.rs`), then each publisher's answer.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use sl_store::{Events, NewMessage, Published, StoreError};

use super::{deliver, partition_of};
use crate::answer::store_error;
use crate::http::Response;
use crate::ids::now_ms;
use crate::state::{PeerMsg, Publish, Publisher, State};

/// Starts the commit of the messages waiting, unless one is in flight.
/// Called once a turn, mostly with none: inlined, so that costs a load
/// and a compare.
#[inline]
pub(crate) fn commit(st: &mut State) {
    if st.publishes.wants_commit() {
        start_commit(st);
    }
}

#[inline(never)]
fn start_commit(st: &mut State) {
    let batch = st.publishes.take();
    let count: usize = batch.iter().map(|p| p.messages.len()).sum();
    let round_robin = st.publishes.round_robin;
    st.publishes.round_robin = round_robin.wrapping_add(count as u32);
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let result = append(store.events(), &batch, round_robin, now_ms());
        move |st: &mut State| committed(st, batch, result)
    });
}

/// Appends the messages of `batch` in one call: the answer of each, in
/// order.
fn append(
    events: &dyn Events,
    batch: &[Publish],
    mut round_robin: u32,
    now_ms: i64,
) -> Result<Vec<Published>, StoreError> {
    let mut partitions: HashMap<&str, Option<u32>> = HashMap::new();
    for m in batch.iter().flat_map(|p| &p.messages) {
        if !partitions.contains_key(m.topic.as_str()) {
            let found = events.get_topic(&m.topic)?.map(|t| t.topic.partitions);
            partitions.insert(&m.topic, found);
        }
    }
    let mut messages = Vec::new();
    let mut slots = Vec::new();
    for m in batch.iter().flat_map(|p| &p.messages) {
        let Some(n) = partitions[m.topic.as_str()] else {
            slots.push(None);
            continue;
        };
        let partition = match &m.key {
            Some(k) => partition_of(k, n),
            None => {
                round_robin = round_robin.wrapping_add(1);
                round_robin % n.max(1)
            }
        };
        slots.push(Some(messages.len()));
        messages.push(NewMessage {
            topic: m.topic.clone(),
            partition,
            key: m.key.clone(),
            payload: m.payload.clone(),
            idempotency_key: m.idempotency_key.clone(),
        });
    }
    let answers = if messages.is_empty() { Vec::new() } else { events.publish(&messages, now_ms)? };
    Ok(slots.into_iter().map(|s| s.and_then(|i| answers.get(i).copied()).unwrap_or(Published::NoTopic)).collect())
}

/// The commit ended: answer each publisher, and poke the partitions that
/// got messages.
fn committed(st: &mut State, batch: Vec<Publish>, result: Result<Vec<Published>, StoreError>) {
    st.publishes.committed();
    let answers = match result {
        Ok(answers) => answers,
        Err(e) => {
            for p in batch {
                match p.from {
                    Publisher::Run { key, id } => {
                        st.exec.runs.resume(key, id, Err(format!("publish: {e}")));
                    }
                    Publisher::Client { conn, .. } => st.outbox.respond(conn, store_error(&e)),
                }
            }
            return;
        }
    };
    let mut answers = answers.into_iter();
    let mut poked: Vec<(String, u32)> = Vec::new();
    for p in batch {
        let mine: Vec<Published> = answers.by_ref().take(p.messages.len()).collect();
        for (m, a) in p.messages.iter().zip(&mine) {
            if let Published::New { partition, .. } = a {
                if !poked.iter().any(|(t, q)| *t == m.topic && q == partition) {
                    poked.push((m.topic.clone(), *partition));
                }
            }
        }
        let topic = p.messages.first().map(|m| m.topic.as_str()).unwrap_or_default();
        let missing = mine.iter().any(|a| matches!(a, Published::NoTopic));
        match p.from {
            Publisher::Run { key, id } => {
                let answer = match mine.first() {
                    Some(Published::New { partition, offset } | Published::Existing { partition, offset }) => {
                        Ok(json!({"offset": offset, "partition": partition}))
                    }
                    _ => Err(format!("publish: no topic named '{topic}'")),
                };
                st.exec.runs.resume(key, id, answer);
            }
            Publisher::Client { conn, batch } => {
                let resp = if missing {
                    Response::error(404, "not_found", &format!("no topic named '{topic}'"))
                } else {
                    client_answer(topic, &mine, batch)
                };
                st.outbox.respond(conn, resp);
            }
        }
    }
    for (topic, partition) in poked {
        deliver::poke(st, &topic, partition);
        st.peers.tell(PeerMsg::Published { topic, partition });
    }
}

/// The answer to `POST /topics/:name` (one message: its place, 201, or 200
/// for a retry of an idempotency key) or `POST /topics/:name/batch` (every
/// message's place, 201).
fn client_answer(topic: &str, answers: &[Published], batch: bool) -> Response {
    let place = |a: &Published| match *a {
        Published::New { partition, offset } => json!({"partition": partition, "offset": offset}),
        Published::Existing { partition, offset } => {
            json!({"partition": partition, "offset": offset, "existing": true})
        }
        Published::NoTopic => json!(null),
    };
    if batch {
        let messages: Vec<_> = answers.iter().map(place).collect();
        return crate::answer::json_response(201, &json!({"topic": topic, "messages": messages}));
    }
    let status = if matches!(answers.first(), Some(Published::Existing { .. })) { 200 } else { 201 };
    let mut body = answers.first().map(place).unwrap_or(json!({}));
    body["topic"] = json!(topic);
    crate::answer::json_response(status, &body)
}
