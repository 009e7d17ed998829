//! `/routes`: adding, listing and deleting the routes the web listener
//! serves. A change is served by this worker from the moment its client
//! hears of it, and reaches the other workers and servers through
//! [`crate::housekeeping`].

use std::sync::Arc;

use serde::Deserialize;
use sl_store::{RouteRecord, StoreError};

use super::input::{bad_request, check_name, parse_body, query_param};
use crate::answer::{json_response, store_error};
use crate::housekeeping::{routes_changed, table_of};
use crate::http::Response;
use crate::ids::now_ms;
use crate::reactor::ConnRef;
use crate::routes::{normalize, RouteError};
use crate::state::State;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoute {
    method: String,
    path: String,
    action: String,
    #[serde(default)]
    host: String,
}

fn route_json(r: &RouteRecord) -> serde_json::Value {
    serde_json::json!({"method": r.method, "host": r.host, "path": r.path, "action": r.action, "created": r.created})
}

/// `GET /routes`.
pub(super) fn list(st: &mut State, conn: ConnRef) -> Option<Response> {
    st.answer_later(conn, |store| match store.list_routes() {
        Ok(list) => json_response(200, &list.iter().map(route_json).collect::<Vec<_>>()),
        Err(e) => store_error(&e),
    });
    None
}

/// `POST /routes`.
pub(super) fn create(st: &mut State, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
    let b: CreateRoute = parse_body(body)?;
    check_name(&b.action)?;
    let key = normalize(&b.method, &b.host, &b.path).map_err(|e| bad_request(e.to_string()))?;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let resp = (|| {
            // Conflicts are checked against every stored route, so that
            // routes added through other servers count too.
            let existing = match store.list_routes() {
                Ok(list) => list,
                Err(e) => return store_error(&e),
            };
            match table_of(&existing).check(key.method, &key.host, &key.pattern) {
                Ok(()) => {}
                Err(e @ RouteError::Conflict { .. }) => return Response::error(409, "conflict", &e.to_string()),
                Err(e) => return bad_request(e.to_string()),
            }
            match store.get_action(&b.action) {
                Ok(Some(_)) => {}
                Ok(None) => return Response::error(404, "not_found", &format!("no action named '{}'", b.action)),
                Err(e) => return store_error(&e),
            }
            let rec = RouteRecord {
                method: key.method.to_string(),
                host: key.host.clone(),
                path: key.pattern.clone(),
                action: b.action.clone(),
                created: now_ms(),
            };
            match store.create_route(&rec) {
                Ok(()) => json_response(201, &route_json(&rec)),
                Err(StoreError::AlreadyExists(_)) => {
                    Response::error(409, "conflict", &format!("route {} already exists", rec.label()))
                }
                Err(e) => store_error(&e),
            }
        })();
        move |st: &mut State| {
            if resp.status == 201 {
                // Served by this worker from the moment the client hears
                // of it; the reload below catches up the rest.
                let _ = st.routes.insert(key.method, &key.host, &key.pattern, b.action);
                routes_changed(st);
            }
            st.outbox.respond(conn, resp)
        }
    });
    Ok(None)
}

/// `DELETE /routes?method=..&path=..[&host=..]`.
pub(super) fn delete(st: &mut State, conn: ConnRef, query: &str) -> Result<Option<Response>, Response> {
    let method =
        query_param(query, "method").ok_or_else(|| bad_request("give the route's method: ?method=GET&path=/..."))?;
    let path = query_param(query, "path").ok_or_else(|| bad_request("give the route's path: ?method=GET&path=/..."))?;
    let host = query_param(query, "host").unwrap_or_default();
    let key = normalize(&method, &host, &path).map_err(|e| bad_request(e.to_string()))?;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let resp = match store.delete_route(key.method, &key.host, &key.pattern) {
            Ok(true) => json_response(200, &serde_json::json!({"deleted": true})),
            Ok(false) => Response::error(404, "not_found", &format!("no route {key}")),
            Err(e) => store_error(&e),
        };
        move |st: &mut State| {
            if resp.status == 200 {
                st.routes.remove(key.method, &key.host, &key.pattern);
                routes_changed(st);
            }
            st.outbox.respond(conn, resp)
        }
    });
    Ok(None)
}
