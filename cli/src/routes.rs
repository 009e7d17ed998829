//! HTTP routes: the `Route` value, the server's `/routes` API, and the
//! `slcli route add|list|delete` commands.
//!
//! A route maps an HTTP request on slserver's routes listener (a method,
//! an optional host, a path such as `/users/:id`) to an action. `slcli`
//! only manages routes through the management API; the server serves them.

use std::fmt;

use std::io::Write;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::json;

use crate::client::{encode, Client, Method, Reply};
use crate::json;
use crate::output;

/// One route. Built with [`Route::new`], which normalizes it as the server
/// does, so that a route from sl.toml equals the same route from the server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// An HTTP method in capitals, or `*` for any method.
    pub method: String,
    /// A host in lower case, or "" for any host.
    pub host: String,
    pub path: String,
    pub action: String,
}

impl Route {
    /// A route, normalized as the server stores it (see [`normalize_host`]
    /// and [`normalize_path`]), so that a route read from sl.toml equals the
    /// same route listed by the server.
    pub fn new(method: &str, host: &str, path: &str, action: &str) -> Self {
        Self {
            method: method.trim().to_ascii_uppercase(),
            host: normalize_host(host),
            path: normalize_path(path),
            action: action.to_string(),
        }
    }

    /// What the server compares to find conflicting routes: method, host,
    /// and the path with param and wildcard names left out (`/users/:id`
    /// and `/users/:uid` are the same route to it).
    pub fn shape(&self) -> (&str, &str, String) {
        let path: Vec<&str> = self
            .path
            .split('/')
            .map(|seg| match seg.chars().next() {
                Some(':') => ":",
                Some('*') => "*",
                _ => seg,
            })
            .collect();
        (&self.method, &self.host, path.join("/"))
    }

    /// `GET example.com/users/:id`, or `GET /users/:id` for any host.
    pub fn target(&self) -> String {
        format!("{} {}{}", self.method, self.host, self.path)
    }
}

/// `GET example.com/users/:id -> users.get`.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.target(), self.action)
    }
}

/// A host as the server stores it: lower case, without one trailing `.`.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    host.strip_suffix('.').map(str::to_string).unwrap_or(host)
}

/// A path pattern as the server stores it: one trailing `/` dropped (but
/// `/` stays), and the static text of each segment percent-encoded
/// canonically (unreserved characters plain, others `%XX` in capitals).
/// `:param` and `*wildcard` segments, and segments with a broken escape
/// (which the server refuses anyway), are left as they are.
pub fn normalize_path(path: &str) -> String {
    let Some(body) = path.strip_prefix('/') else {
        return path.to_string();
    };
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return "/".to_string();
    }
    let segments: Vec<String> = body.split('/').map(canonical_segment).collect();
    format!("/{}", segments.join("/"))
}

fn canonical_segment(segment: &str) -> String {
    if segment.starts_with(':') || segment.starts_with('*') {
        return segment.to_string();
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => decoded.push(b),
                None => return segment.to_string(),
            }
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return segment.to_string();
    }
    let mut out = String::with_capacity(decoded.len());
    for b in decoded {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A route object as the server sends it (`created` and other fields are ignored).
#[derive(Deserialize)]
#[serde(expecting = "a route (a JSON object)")]
struct Wire {
    method: String,
    #[serde(default)]
    host: Option<String>,
    path: String,
    action: String,
}

impl From<Wire> for Route {
    fn from(w: Wire) -> Self {
        Route::new(&w.method, w.host.as_deref().unwrap_or(""), &w.path, &w.action)
    }
}

/// The routes of the JSON array `body` that `keep` keeps, read one at a time.
fn parse_routes(body: &str, keep: impl Fn(&Route) -> bool) -> Result<Vec<Route>> {
    let mut routes = Vec::new();
    json::each(body, |w: Wire| {
        let route = Route::from(w);
        if keep(&route) {
            routes.push(route);
        }
        Ok(())
    })
    .map_err(|e| anyhow!("the server's answer is not a JSON array of routes: {e}"))?;
    Ok(routes)
}

/// The server's routes that `keep` keeps (the others are not held), or
/// `None` if it has no `/routes` API (an older server).
pub fn fetch(client: &Client, keep: impl Fn(&Route) -> bool) -> Result<Option<Vec<Route>>> {
    let reply = client.send(Method::Get, "/routes", None)?;
    if reply.status == 404 {
        return Ok(None);
    }
    let reply = reply.success()?;
    Ok(Some(parse_routes(&reply.body, keep)?))
}

/// `POST /routes`; the reply whatever its status.
pub fn add(client: &Client, route: &Route) -> Result<Reply> {
    let mut body = json!({"method": route.method, "path": route.path, "action": route.action});
    if !route.host.is_empty() {
        body["host"] = json!(route.host);
    }
    client.send(Method::Post, "/routes", Some(&serde_json::to_vec(&body)?))
}

/// The path and query of `DELETE /routes` for the route at `method`, `host`, `path`.
fn delete_path(method: &str, host: &str, path: &str) -> String {
    let mut query = format!("/routes?method={}&path={}", encode(method), encode(path));
    if !host.is_empty() {
        query.push_str(&format!("&host={}", encode(host)));
    }
    query
}

/// `DELETE /routes?...`; the reply whatever its status.
pub fn delete(client: &Client, route: &Route) -> Result<Reply> {
    client.send(Method::Delete, &delete_path(&route.method, &route.host, &route.path), None)
}

/// The table of `slcli route list` from the server's JSON array: METHOD
/// HOST PATH ACTION, `*` for any host; `[]` without routes.
pub fn table(body: &str, out: &mut dyn Write) -> Result<()> {
    output::table(body, "routes", &["METHOD", "HOST", "PATH", "ACTION"], out, |w: Wire| {
        let r = Route::from(w);
        let host = if r.host.is_empty() { "*".to_string() } else { r.host };
        vec![r.method, host, r.path, r.action]
    })
}

/// `slcli route add`: prints `route added GET /users/:id -> users.get`.
pub fn add_command(client: &Client, json: bool, route: &Route) -> Result<()> {
    if route.path.is_empty() {
        bail!("the path must not be empty; use e.g. /users/:id");
    }
    let reply = add(client, route)?.success()?;
    if json {
        output::emit_json(&reply.body)?;
        return Ok(());
    }
    // Show the route as the server stored it, if it says.
    let stored = serde_json::from_str::<Wire>(&reply.body).map(Route::from).unwrap_or_else(|_| route.clone());
    output::emit(&format!("route added {}", output::visible(&stored.to_string(), output::Lines::One)))?;
    Ok(())
}

/// `slcli route list`.
pub fn list_command(client: &Client, json: bool) -> Result<()> {
    let reply = client.call(Method::Get, "/routes", None)?;
    if json {
        output::emit_json(&reply.body)?;
    } else {
        output::to_stdout(|out| table(&reply.body, out))?;
    }
    Ok(())
}

/// `slcli route delete`: prints `route deleted GET /users/:id`.
pub fn delete_command(client: &Client, json: bool, method: &str, host: &str, path: &str) -> Result<()> {
    let route = Route::new(method, host, path, "");
    let reply = delete(client, &route)?.success()?;
    if json {
        output::emit_json(&reply.body)?;
    } else {
        output::emit(&format!("route deleted {}", output::visible(&route.target(), output::Lines::One)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_normalized_and_shown() {
        let r = Route::new(" get", "Example.COM ", "/users/:id", "users.get");
        assert_eq!((r.method.as_str(), r.host.as_str(), r.path.as_str()), ("GET", "example.com", "/users/:id"));
        assert_eq!(r.to_string(), "GET example.com/users/:id -> users.get");
        assert_eq!(Route::new("*", "", "/x", "y").to_string(), "* /x -> y");
        let a = Route::new("GET", "", "/users/:id/*rest", "a");
        assert_eq!(a.shape(), Route::new("get", "", "/users/:uid/*tail/", "b").shape());
        assert_ne!(a.shape(), Route::new("GET", "", "/users/id/*rest", "a").shape());
        assert_ne!(a.shape(), Route::new("GET", "h", "/users/:id/*rest", "a").shape());
    }

    #[test]
    fn paths_and_hosts_are_normalized_like_the_server_does() {
        for (raw, normal) in [
            ("/", "/"),
            ("//", "/"),
            ("/users/", "/users"),
            ("/users/:id", "/users/:id"),
            ("/static/*path", "/static/*path"),
            ("/a%7e%2f", "/a~%2F"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/a b!", "/a%20b%21"),
            ("/x%zz", "/x%zz"),
            ("/%ff", "/%ff"),
            ("relative", "relative"),
        ] {
            assert_eq!(normalize_path(raw), normal, "{raw}");
        }
        assert_eq!(normalize_host("Example.COM."), "example.com");
        assert_eq!(normalize_host(""), "");
    }

    #[test]
    fn server_routes_are_read_with_or_without_host() {
        let body = r#"[{"method":"GET","host":"","path":"/a","action":"a","created":1},
                      {"method":"POST","host":null,"path":"/b","action":"b"},
                      {"method":"*","path":"/c","action":"c"},
                      {"method":"GET","host":"h.example","path":"/d","action":"d","created":2}]"#;
        let routes = parse_routes(body, |_| true).unwrap();
        assert_eq!(
            routes,
            [
                Route::new("GET", "", "/a", "a"),
                Route::new("POST", "", "/b", "b"),
                Route::new("*", "", "/c", "c"),
                Route::new("GET", "h.example", "/d", "d"),
            ]
        );
        let expected = "\
METHOD  HOST       PATH  ACTION
GET     *          /a    a
POST    *          /b    b
*       *          /c    c
GET     h.example  /d    d
";
        let shown = |body: &str| {
            let mut out = Vec::new();
            table(body, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(shown(body), expected);
        assert_eq!(shown("[]"), "[]\n");
        let e = parse_routes(r#"[{"method":"GET"}]"#, |_| true).unwrap_err().to_string();
        assert!(e.contains("not a JSON array of routes: missing field"), "{e}");
        let only_b = parse_routes(body, |r| r.action == "b").unwrap();
        assert_eq!(only_b, [Route::new("POST", "", "/b", "b")]);
    }

    #[test]
    fn delete_queries_are_form_encoded() {
        assert_eq!(delete_path("GET", "", "/users/:id"), "/routes?method=GET&path=%2Fusers%2F%3Aid");
        assert_eq!(delete_path("*", "example.com", "/a b"), "/routes?method=%2A&path=%2Fa%20b&host=example.com");
    }
}
