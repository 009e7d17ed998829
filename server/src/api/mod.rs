//! The management and invocation API: which endpoint a request names,
//! whether its token allows it, and the handlers (by resource:
//! [`actions`], [`invocations`], [`routes`], [`topics`], [`subscriptions`],
//! [`schedules`]).
//!
//! A handler answers at once (`Ok(Some(response))` or `Err(response)`) or
//! starts work on the pool or the executor (`Ok(None)`), whose answer
//! reaches the outbox later; [`handle`] puts an answer given at once there
//! too.

mod actions;
mod idempotency;
mod input;
mod invocations;
mod metrics;
mod routes;
mod schedules;
mod subscriptions;
mod topics;

use input::{check_name, not_allowed, segments};
pub(crate) use invocations::commit_submits;

use crate::answer::json_response;
use crate::auth::{Access, Denied};
use crate::http::{Head, Method, Request, Response};
use crate::reactor::ConnRef;
use crate::state::State;

/// Serves one API request; the answer goes in the state's outbox, now or
/// later.
pub(crate) fn handle(st: &mut State, conn: ConnRef, req: Request) {
    if let Some(resp) = endpoint(st, conn, req) {
        st.outbox.respond(conn, resp);
    }
}

/// Whether the token a request carries (`authorization`) allows `method`
/// (HEAD counted as GET) on the endpoint of path segments `segs`: a 401 or
/// 403 if not.
fn access(st: &State, segs: &[&str], method: &Method, authorization: Option<&[u8]>) -> Result<(), Response> {
    let need = match (segs, method) {
        (["ping"], _) => Access::Public,
        (["actions", _, "block"], Method::Post)
        | (["actions", _], Method::Post)
        | (["invocation", _], Method::Get)
        | (["topics", _], Method::Post)
        | (["topics", _, "batch"], Method::Post) => Access::Invoke,
        _ => Access::Admin,
    };
    match st.tokens.check(authorization, need) {
        Ok(()) => Ok(()),
        Err(Denied::Unauthenticated) => {
            Err(Response::error(401, "unauthorized", "missing or invalid API token (send Authorization: Bearer TOKEN)")
                .with_header("WWW-Authenticate", "Bearer"))
        }
        Err(Denied::Forbidden) => {
            Err(Response::error(403, "forbidden", "this token may only run actions and read their results"))
        }
    }
}

/// GET for HEAD: the API answers both alike.
fn as_get(method: &Method) -> Method {
    if *method == Method::Head {
        Method::Get
    } else {
        method.clone()
    }
}

/// The token check of a request whose head is in and body is not, so that
/// an unauthenticated client's body is never read.
pub(crate) fn admit(st: &State, head: &Head) -> Result<(), Response> {
    let (buf, n) = segments(head.path());
    access(st, &buf[..n], &as_get(&head.method), head.authorization.as_deref())
}

/// Finds the endpoint of a request and runs its handler. `None` means the
/// answer comes later.
fn endpoint(st: &mut State, conn: ConnRef, mut req: Request) -> Option<Response> {
    if req.path == "*" {
        // `OPTIONS *` (the parser lets `*` through for OPTIONS alone): the
        // methods the API serves, to anyone, as it tells nothing more than
        // the README.
        return Some(Response::empty(204).with_header("Allow", "DELETE, GET, HEAD, OPTIONS, POST, PUT"));
    }
    let method = as_get(&req.method);
    let (buf, n) = segments(&req.path);
    let segs = &buf[..n];
    if let Err(resp) = access(st, segs, &method, req.authorization.as_deref()) {
        return Some(resp);
    }
    let result = match (segs, &method) {
        (["ping"], Method::Get) => Ok(Some(Response::text(200, "OK"))),
        (["ping"], _) => Err(not_allowed("GET")),
        (["actions"], Method::Get) => Ok(actions::list(st, conn)),
        (["actions"], Method::Post) => actions::create(st, conn, &req.body),
        (["actions"], _) => Err(not_allowed("GET, POST")),
        (["actions", name], Method::Get) => check_name(name).map(|_| actions::get(st, conn, name)),
        (["actions", name], Method::Put) => check_name(name).and_then(|_| actions::update(st, conn, name, &req.body)),
        (["actions", name], Method::Delete) => check_name(name).map(|_| actions::delete(st, conn, name)),
        (["actions", name], Method::Post) => check_name(name)
            .and_then(|_| invocations::submit(st, conn, name, &req.body, req.idempotency_key.as_deref())),
        (["actions", _], _) => Err(not_allowed("GET, PUT, DELETE, POST")),
        (["actions", _, "block"], Method::Post) if req.idempotency_key.is_some() => Err(Response::error(
            400,
            "bad_request",
            "Idempotency-Key applies to asynchronous submits (POST /actions/NAME), not to blocking runs",
        )),
        (["actions", name, "block"], Method::Post) => {
            check_name(name).and_then(|_| invocations::run_blocking(st, conn, name, std::mem::take(&mut req.body)))
        }
        (["actions", _, "block"], _) => Err(not_allowed("POST")),
        (["invocation", id], Method::Get) => invocations::get(st, conn, id, &req.query),
        (["invocation", _], _) => Err(not_allowed("GET")),
        (["invocations"], Method::Get) => invocations::list(st, conn, &req.query),
        (["invocations"], _) => Err(not_allowed("GET")),
        (["routes"], Method::Get) => Ok(routes::list(st, conn)),
        (["routes"], Method::Post) => routes::create(st, conn, &req.body),
        (["routes"], Method::Delete) => routes::delete(st, conn, &req.query),
        (["routes"], _) => Err(not_allowed("GET, POST, DELETE")),
        (["plugins"], Method::Get) => Ok(Some(json_response(200, &st.plugins.infos()))),
        (["plugins"], _) => Err(not_allowed("GET")),
        (["metrics"], Method::Get) => metrics::get(st, conn),
        (["metrics"], _) => Err(not_allowed("GET")),
        (["topics"], Method::Get) => Ok(topics::list(st, conn)),
        (["topics"], Method::Post) => topics::create(st, conn, &req.body),
        (["topics"], _) => Err(not_allowed("GET, POST")),
        (["topics", name], Method::Get) => topics::check_topic(name).map(|_| topics::get(st, conn, name)),
        (["topics", name], Method::Put) => {
            topics::check_topic(name).and_then(|_| topics::update(st, conn, name, &req.body))
        }
        (["topics", name], Method::Delete) => topics::check_topic(name).map(|_| topics::delete(st, conn, name)),
        (["topics", name], Method::Post) => topics::check_topic(name)
            .and_then(|_| topics::publish(st, conn, name, &req.query, &req.body, req.idempotency_key.as_deref())),
        (["topics", _], _) => Err(not_allowed("GET, PUT, DELETE, POST")),
        (["topics", name, "batch"], Method::Post) => {
            topics::check_topic(name).and_then(|_| topics::publish_batch(st, conn, name, &req.body))
        }
        (["topics", _, "batch"], _) => Err(not_allowed("POST")),
        (["topics", name, "messages"], Method::Get) => {
            topics::check_topic(name).and_then(|_| topics::read(st, conn, name, &req.query))
        }
        (["topics", _, "messages"], _) => Err(not_allowed("GET")),
        (["schedules"], Method::Get) => Ok(schedules::list(st, conn)),
        (["schedules"], Method::Post) => schedules::create(st, conn, &req.body),
        (["schedules"], _) => Err(not_allowed("GET, POST")),
        (["schedules", name], Method::Get) => schedules::get(st, conn, name),
        (["schedules", name], Method::Delete) => schedules::delete(st, conn, name),
        (["schedules", _], _) => Err(not_allowed("GET, DELETE")),
        (["subscriptions"], Method::Get) => Ok(subscriptions::list(st, conn)),
        (["subscriptions"], Method::Post) => subscriptions::create(st, conn, &req.body),
        (["subscriptions"], _) => Err(not_allowed("GET, POST")),
        (["subscriptions", name], Method::Get) => subscriptions::get(st, conn, name),
        (["subscriptions", name], Method::Delete) => subscriptions::delete(st, conn, name),
        (["subscriptions", _], _) => Err(not_allowed("GET, DELETE")),
        (["subscriptions", name, "reset"], Method::Post) => subscriptions::reset(st, conn, name, &req.body),
        (["subscriptions", _, "reset"], _) => Err(not_allowed("POST")),
        (["subscriptions", name, "dead"], Method::Get) => subscriptions::dead(st, conn, name, &req.query),
        (["subscriptions", name, "dead"], Method::Delete) => subscriptions::purge(st, conn, name, &req.query),
        (["subscriptions", _, "dead"], _) => Err(not_allowed("GET, DELETE")),
        (["subscriptions", name, "dead", "redrive"], Method::Post) => {
            subscriptions::redrive(st, conn, name, &req.query)
        }
        (["subscriptions", _, "dead", "redrive"], _) => Err(not_allowed("POST")),
        _ => Err(Response::error(404, "not_found", &format!("no route for {} {}", req.method.as_str(), req.path))),
    };
    result.unwrap_or_else(Some)
}
