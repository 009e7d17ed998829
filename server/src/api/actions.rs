//! `/actions`: creating, reading, updating, listing and deleting actions.
//! Compiles and store calls run on the blocking pool; the answers come
//! back through the outbox.

use std::sync::Arc;

use serde::Deserialize;
use sl_store::{ActionRecord, Limits, RunCounts, RunKind, StoreError};

use super::input::{bad_request, check_name, decode_code, encode_code, parse_body};
use crate::answer::{json_response, store_error};
use crate::exec::budget_for;
use crate::housekeeping::action_changed;
use crate::http::Response;
use crate::ids::now_ms;
use crate::reactor::ConnRef;
use crate::sandbox::{self, InvokeError};
use crate::state::State;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    code: String,
    #[serde(default)]
    maxmem: u64,
    #[serde(default)]
    timeout: u64,
    #[serde(default)]
    instructions: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    code: Option<String>,
    maxmem: Option<u64>,
    timeout: Option<u64>,
    instructions: Option<u64>,
}

fn action_json(rec: &ActionRecord, with_code: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": rec.name,
        "version": rec.version,
        "size": rec.bytecode.len(),
        "maxmem": rec.limits.maxmem,
        "timeout": rec.limits.timeout,
        "instructions": rec.limits.instructions,
        "checksum": rec.checksum,
        "created": rec.created,
        "updated": rec.updated,
    });
    if with_code {
        v["code"] = serde_json::Value::String(encode_code(&rec.source));
    }
    v
}

/// The `runs` of `GET /actions/:name`: each kind's succeeded and failed
/// runs, as stored (about a second behind).
fn runs_json(counts: &RunCounts) -> serde_json::Value {
    let mut runs = serde_json::Map::new();
    for kind in RunKind::ALL {
        let o = counts.of(kind);
        runs.insert(kind.as_str().into(), serde_json::json!({ "succeeded": o.succeeded, "failed": o.failed }));
    }
    serde_json::Value::Object(runs)
}

/// `GET /actions`.
pub(super) fn list(st: &mut State, conn: ConnRef) -> Option<Response> {
    st.answer_later(conn, |store| match store.list_actions() {
        Ok(list) => {
            let v: Vec<serde_json::Value> = list
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "name": m.name, "size": m.size, "maxmem": m.limits.maxmem, "timeout": m.limits.timeout,
                        "instructions": m.limits.instructions, "version": m.version, "created": m.created, "updated": m.updated,
                    })
                })
                .collect();
            json_response(200, &v)
        }
        Err(e) => store_error(&e),
    });
    None
}

/// Refuses limits above this server's maxima.
fn check_limits(st: &State, limits: &Limits) -> Result<(), Response> {
    let l = &st.cfg.limits;
    for (name, v, max) in [
        ("maxmem", limits.maxmem, l.max_maxmem),
        ("timeout", limits.timeout, l.max_timeout),
        ("instructions", limits.instructions, l.max_instructions),
    ] {
        if v > max {
            return Err(bad_request(format!("{name} = {v} is above this server's maximum of {max}")));
        }
    }
    Ok(())
}

/// `POST /actions`.
pub(super) fn create(st: &mut State, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: CreateBody = parse_body(body)?;
    check_name(&b.name)?;
    let source = decode_code(&b.code)?;
    let limits = Limits { maxmem: b.maxmem, timeout: b.timeout, instructions: b.instructions };
    check_limits(st, &limits)?;
    let cfg = st.cfg.limits;
    let name = b.name;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let now = now_ms();
        let mut rec = ActionRecord {
            name: name.clone(),
            version: 1,
            source,
            bytecode: Vec::new(),
            checksum: String::new(),
            limits,
            created: now,
            updated: now,
        };
        let resp = match sandbox::compile_with(&name, &rec.source, budget_for(&rec, &cfg), &libraries(&*store)) {
            Err(e) => compile_error(&e),
            Ok(c) => {
                rec.bytecode = c.bytecode;
                rec.checksum = c.checksum;
                match store.create_action(&rec) {
                    Ok(()) => {
                        json_response(201, &serde_json::json!({"name": name, "version": 1, "size": rec.bytecode.len()}))
                    }
                    Err(StoreError::AlreadyExists(_)) => Response::error(
                        409,
                        "conflict",
                        &format!("action '{name}' already exists (update it with PUT /actions/{name})"),
                    ),
                    Err(e) => store_error(&e),
                }
            }
        };
        move |st: &mut State| {
            if resp.status == 201 {
                action_changed(st, &name);
            }
            st.outbox.respond(conn, resp)
        }
    });
    Ok(None)
}

/// `GET /actions/:name`.
pub(super) fn get(st: &mut State, conn: ConnRef, name: &str) -> Option<Response> {
    let name = name.to_string();
    st.answer_later(conn, move |store| match store.get_action(&name) {
        Ok(Some(rec)) => match store.run_counts(&name) {
            Ok(counts) => {
                let mut v = action_json(&rec, true);
                v["runs"] = runs_json(&counts);
                json_response(200, &v)
            }
            Err(e) => store_error(&e),
        },
        Ok(None) => Response::error(404, "not_found", &format!("no action named '{name}'")),
        Err(e) => store_error(&e),
    });
    None
}

/// `PUT /actions/:name`.
pub(super) fn update(st: &mut State, conn: ConnRef, name: &str, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: UpdateBody = parse_body(body)?;
    if b.code.is_none() && b.maxmem.is_none() && b.timeout.is_none() && b.instructions.is_none() {
        return Err(bad_request("nothing to update: give code, maxmem, timeout or instructions"));
    }
    let source = b.code.as_deref().map(decode_code).transpose()?;
    check_limits(
        st,
        &Limits {
            maxmem: b.maxmem.unwrap_or(0),
            timeout: b.timeout.unwrap_or(0),
            instructions: b.instructions.unwrap_or(0),
        },
    )?;
    let cfg = st.cfg.limits;
    let name = name.to_string();
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let resp = (|| {
            let cur = match store.get_action(&name) {
                Ok(Some(cur)) => cur,
                Ok(None) => return Response::error(404, "not_found", &format!("no action named '{name}'")),
                Err(e) => return store_error(&e),
            };
            let mut next = cur.clone();
            next.version = cur.version + 1;
            next.updated = now_ms().max(cur.updated);
            next.limits.maxmem = b.maxmem.unwrap_or(cur.limits.maxmem);
            next.limits.timeout = b.timeout.unwrap_or(cur.limits.timeout);
            next.limits.instructions = b.instructions.unwrap_or(cur.limits.instructions);
            if let Some(source) = source {
                next.source = source;
            }
            if next.source != cur.source || next.limits != cur.limits {
                match sandbox::compile_with(&name, &next.source, budget_for(&next, &cfg), &libraries(&*store)) {
                    Ok(c) => {
                        next.bytecode = c.bytecode;
                        next.checksum = c.checksum;
                    }
                    Err(e) => return compile_error(&e),
                }
            }
            match store.update_action(&next, cur.version) {
                Ok(()) => json_response(
                    200,
                    &serde_json::json!({"name": name, "version": next.version, "size": next.bytecode.len()}),
                ),
                Err(e) => store_error(&e),
            }
        })();
        move |st: &mut State| {
            action_changed(st, &name);
            st.outbox.respond(conn, resp)
        }
    });
    Ok(None)
}

/// `DELETE /actions/:name`: refused while subscriptions deliver to it or
/// schedules fire it.
pub(super) fn delete(st: &mut State, conn: ConnRef, name: &str) -> Option<Response> {
    let name = name.to_string();
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let readers = store.events().list_subscriptions(crate::ids::now_ms()).map(|subs| {
            subs.into_iter().filter(|s| s.subscription.action == name).map(|s| s.subscription.name).collect::<Vec<_>>()
        });
        let firers = store.schedules().list_schedules().map(|list| {
            list.into_iter().filter(|s| s.schedule.action == name).map(|s| s.schedule.name).collect::<Vec<_>>()
        });
        let resp = match (readers, firers) {
            (Ok(readers), _) if !readers.is_empty() => Response::error(
                409,
                "conflict",
                &format!("action '{name}' receives subscriptions ({}): delete them first", readers.join(", ")),
            ),
            (_, Ok(firers)) if !firers.is_empty() => Response::error(
                409,
                "conflict",
                &format!("schedules fire action '{name}' ({}): delete them first", firers.join(", ")),
            ),
            (Err(e), _) | (_, Err(e)) => store_error(&e),
            (Ok(_), Ok(_)) => match store.delete_action(&name) {
                Ok(true) => Response::text(200, "OK"),
                Ok(false) => Response::error(404, "not_found", &format!("no action named '{name}'")),
                Err(e) => store_error(&e),
            },
        };
        move |st: &mut State| {
            action_changed(st, &name);
            st.outbox.respond(conn, resp)
        }
    });
    None
}

/// Resolves `require` while an action is compiled: the verified bytecode
/// of a library action in the store.
fn libraries(store: &dyn sl_store::Store) -> impl Fn(&str) -> Result<sandbox::Compiled, String> + '_ {
    move |lib| match store.get_action(lib) {
        Ok(Some(rec)) => sandbox::Compiled::verified(rec.bytecode, &rec.checksum).map_err(|e| e.to_string()),
        Ok(None) => Err(format!("require: no library action named '{lib}'")),
        Err(e) => Err(format!("require '{lib}': {e}")),
    }
}

fn compile_error(e: &InvokeError) -> Response {
    match e {
        InvokeError::Internal(m) => Response::error(500, "internal", m),
        other => Response::error(400, "compile", &other.to_string()),
    }
}
