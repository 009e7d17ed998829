//! Serving routes: a request on the web listener runs the action its route
//! names, with arguments built from the request ([`args`]), and the
//! action's result becomes the HTTP response.
//!
//! # Responses
//!
//! - a value returned by `main` becomes `200` with its JSON;
//! - `return nil, message` becomes `400` with `{"error": {"kind": "action", "message": ...}}`;
//! - an error or a limit becomes `500` with `{"error": {"kind": "internal", ...}}`: the
//!   message is hidden from the client unless `Server { debug = true }`; the
//!   invocation record keeps it, and the `X-SL-Invocation` header names it;
//! - `http.response{status = ..., headers = {...}, body = ...}` sets status,
//!   headers and a text, binary or JSON body. It returns a plain table
//!   marked with the key `$sl_response`: `status`, `headers`, and `body`
//!   (text), `body_base64` (other bytes) or `json` (a table body), which is
//!   also what `invoke` returns to a caller of such an action. The status
//!   is a final one, 200 to 599: a 1xx (an interim response, which clients
//!   read past to the next one, which the body could forge) is an invalid
//!   web response, a 500 whose record says why. A 204 or 304 is sent
//!   without a body whatever the action gave (the response writer sees to
//!   that, as to HEAD answers having none);
//! - `OPTIONS *` is answered here: 204 with the methods of the routes for
//!   the request's host in `Allow`.
//!
//! The request's host is its `Host` header, or the authority of an
//! absolute-form target (`GET http://host/path`), which replaces it.
//!
//! How results and failures become responses is [`crate::answer`]'s, shared
//! with the API.

mod args;

use sl_store::{InvocationRecord, JsonArgs};

use crate::exec::{Job, Reply};
use crate::http::{Request, Response};
use crate::ids::{new_invocation_id, now_ms};
use crate::invoke;
use crate::reactor::ConnRef;
use crate::routes::Lookup;
use crate::sandbox::Args;
use crate::state::State;

/// Serves a request of the web listener; the answer goes in the state's
/// outbox, now or when the action finishes.
pub(crate) fn handle(st: &mut State, conn: ConnRef, req: Request) {
    if let Some(resp) = serve(st, conn, req) {
        st.outbox.respond(conn, resp);
    }
}

/// Finds the request's route and starts its action. `None`: the answer
/// comes when the action finishes.
fn serve(st: &mut State, conn: ConnRef, req: Request) -> Option<Response> {
    // The Host header, or the authority of an absolute-form target, which
    // replaces it (RFC 9112, 3.2.2).
    let host = req.host();
    if req.path == "*" {
        // `OPTIONS *` (the parser lets `*` through for OPTIONS alone): the
        // methods this host's routes serve.
        return Some(Response::empty(204).with_header("Allow", st.routes.methods(host).join(", ")));
    }
    let (action, pattern, params) = match st.routes.lookup(req.method.as_str(), host, &req.path) {
        Lookup::Found(m) => (
            m.value.clone(),
            m.pattern.to_string(),
            m.params.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Vec<_>>(),
        ),
        Lookup::MethodNotAllowed(allowed) => {
            let allow = allowed.join(", ");
            return Some(
                Response::error(405, "method_not_allowed", &format!("method not allowed; use {allow}"))
                    .with_header("Allow", allow),
            );
        }
        Lookup::NotFound => {
            let path: String = req.path.chars().take(200).collect();
            return Some(Response::error(404, "not_found", &format!("no route for {} {path}", req.method.as_str())));
        }
        Lookup::BadPath(message) => return Some(Response::error(400, "bad_request", &message)),
    };
    if let Err(resp) = invoke::check_room(st) {
        return Some(resp);
    }
    let args = match args::route_args(&req, &pattern, &params) {
        Ok(a) => a,
        Err(resp) => return Some(resp),
    };
    // The record takes the arguments' text when the run starts, if it is kept.
    let record = InvocationRecord::queued(new_invocation_id(), action, JsonArgs::empty(), false, now_ms());
    invoke::start(st, Job { args: Some(Args::Value(args)), ..Job::new(record, Reply::WebClient(conn)) });
    None
}
