//! The routes API: `POST /routes`, `GET /routes`, `DELETE /routes?...`,
//! and keeping each reactor's route table in step with the store.

use std::sync::Arc;

use serde::Deserialize;
use sl_store::{RouteRecord, StoreError};
use tracing::{debug, warn};

use super::{bad_request, check_name, json_response, parse_body, query_param, store_error};
use crate::http::Response;
use crate::reactor::{now_ms, ConnRef, PeerMsg, Server};
use crate::routes::{normalize, RouteError, RouteTable};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoute {
    method: String,
    path: String,
    action: String,
    #[serde(default)]
    host: String,
}

/// Where a reactor's route table stands against the store.
#[derive(Default)]
pub(crate) struct RoutesSync {
    /// A listing is under way.
    running: bool,
    /// Another listing was asked for meanwhile.
    again: bool,
    /// The routes the table was built from.
    last: Vec<RouteRecord>,
}

fn route_json(r: &RouteRecord) -> serde_json::Value {
    serde_json::json!({"method": r.method, "host": r.host, "path": r.path, "action": r.action, "created": r.created})
}

/// A route table built from stored routes. Routes that conflict with an
/// earlier one (created concurrently through two servers) are skipped.
fn table_of(routes: &[RouteRecord]) -> RouteTable<String> {
    let mut table = RouteTable::new();
    for r in routes {
        if let Err(e) = table.insert(&r.method, &r.host, &r.path, r.action.clone()) {
            warn!(route = %r.label(), "stored route not served: {e}");
        }
    }
    table
}

impl Server {
    pub(super) fn list_routes(&mut self, conn: ConnRef) -> Option<Response> {
        self.answer_later(conn, |store| match store.list_routes() {
            Ok(list) => json_response(200, &list.iter().map(route_json).collect::<Vec<_>>()),
            Err(e) => store_error(&e),
        });
        None
    }

    pub(super) fn create_route(&mut self, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
        let b: CreateRoute = parse_body(body)?;
        check_name(&b.action)?;
        let key = normalize(&b.method, &b.host, &b.path).map_err(|e| bad_request(e.to_string()))?;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
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
            move |s: &mut Server| {
                if resp.status == 201 {
                    // Served by this reactor from the moment the client
                    // hears of it; the reload below catches up the rest.
                    let _ = s.routes.insert(key.method, &key.host, &key.pattern, b.action);
                    s.routes_changed();
                }
                s.complete(conn, resp)
            }
        });
        Ok(None)
    }

    pub(super) fn delete_route(&mut self, conn: ConnRef, query: &str) -> Result<Option<Response>, Response> {
        let method = query_param(query, "method")
            .ok_or_else(|| bad_request("give the route's method: ?method=GET&path=/..."))?;
        let path =
            query_param(query, "path").ok_or_else(|| bad_request("give the route's path: ?method=GET&path=/..."))?;
        let host = query_param(query, "host").unwrap_or_default();
        let key = normalize(&method, &host, &path).map_err(|e| bad_request(e.to_string()))?;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let resp = match store.delete_route(key.method, &key.host, &key.pattern) {
                Ok(true) => json_response(200, &serde_json::json!({"deleted": true})),
                Ok(false) => Response::error(404, "not_found", &format!("no route {key}")),
                Err(e) => store_error(&e),
            };
            move |s: &mut Server| {
                if resp.status == 200 {
                    s.routes.remove(key.method, &key.host, &key.pattern);
                    s.routes_changed();
                }
                s.complete(conn, resp)
            }
        });
        Ok(None)
    }

    /// A route was added or deleted through this reactor: reload the
    /// routes here and in the other reactors of this process.
    fn routes_changed(&mut self) {
        self.sync_routes();
        self.tell_peers(PeerMsg::RoutesChanged);
    }

    /// Reloads the route table from the store (other servers may have
    /// changed it); the table is rebuilt only when the routes differ.
    pub(crate) fn sync_routes(&mut self) {
        if self.routes_sync.running {
            self.routes_sync.again = true;
            return;
        }
        self.routes_sync.running = true;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let r = store.list_routes();
            move |s: &mut Server| {
                s.routes_sync.running = false;
                match r {
                    Ok(list) if list != s.routes_sync.last => {
                        debug!(routes = list.len(), "route table reloaded");
                        s.routes = table_of(&list);
                        s.routes_sync.last = list;
                    }
                    Ok(_) => {}
                    Err(e) => debug!("cannot reload routes: {e}"),
                }
                if std::mem::take(&mut s.routes_sync.again) {
                    s.sync_routes();
                }
            }
        });
    }
}
