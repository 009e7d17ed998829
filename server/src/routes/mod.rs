//! Routes: HTTP method + optional host + path pattern → a value (the
//! server uses the action name), and the table requests are matched against.
//!
//! ```text
//! slcli route add GET /users/:id get_user
//! slcli route add GET /static/*path files --host example.com
//! ```
//!
//! # Methods
//!
//! `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `OPTIONS`, `HEAD`, or `*` for
//! any method. Routes are added case-insensitively and stored upper-case.
//! Request methods are compared exactly, as HTTP methods are case-sensitive:
//! a request with `get` or any other method (`PROPFIND`) only matches `*`
//! routes.
//!
//! # Hosts
//!
//! A route's host is empty (any host) or a host name: letters, digits, `-`
//! and `.`, non-empty labels of at most 63 characters, at most 253
//! characters, no port. It is compared case-insensitively, and one trailing
//! `.` is ignored. A request's `Host` header has its port stripped (an IPv6
//! literal such as `[::1]:8080` matches only any-host routes).
//!
//! # Patterns
//!
//! A pattern starts with `/` and is made of segments separated by `/`.
//! `/` alone is the root (no segments). A segment is one of:
//!
//! - static text: the unreserved URL characters `A-Z a-z 0-9 - . _ ~` as
//!   they are, anything else percent-encoded (`%21` for `!`, `%C3%A9` for
//!   `é`). It is decoded when the route is added and must decode to UTF-8;
//!   `:` and `*` are only allowed at a segment's start, and the segments `.`
//!   and `..` are rejected (clients resolve them before sending);
//! - `:name`, a param: it matches exactly one non-empty segment;
//! - `*name`, a wildcard, only as the last segment: it matches the rest of
//!   the path, zero or more segments.
//!
//! Names are `[A-Za-z_][A-Za-z0-9_]*` and unique within a pattern. Empty
//! segments (`/a//b`) are rejected. One trailing slash is dropped (`/users/`
//! is `/users`). At most [`MAX_SEGMENTS`] segments and [`MAX_PATTERN_LEN`]
//! bytes. The normalised pattern (reported in [`Match::pattern`] and
//! conflict messages) has no trailing slash and static text re-encoded
//! canonically: unreserved characters plain, anything else `%XX` upper-case
//! (`/a%7e%2f` becomes `/a~%2F`).
//!
//! # Matching a request
//!
//! The raw request path (no query string, not decoded) must start with
//! `/`; one trailing slash is ignored (`/users/` matches `/users`). It is
//! split at `/` and each segment is percent-decoded *after* splitting, so
//! `%2F` stays inside its segment (`/files/a%2Fb` gives `:name` = `a/b`),
//! and `+` is a plain `+`. A path with an empty segment (`/a//b`) is
//! [`Lookup::NotFound`]; a segment with an invalid escape (`%zz`, `%4`) or
//! one that decodes to invalid UTF-8 makes it [`Lookup::BadPath`] (a 400),
//! whatever the routes. Dot segments are not resolved: `..` is matched
//! literally, and a param can capture it.
//!
//! Param values are decoded; a wildcard's value is the decoded rest of the
//! path, segments joined with `/`, without a leading `/`, and empty when
//! nothing remains (`/static/*path` matches `/static` with `path` = "").
//!
//! # Precedence
//!
//! 1. **Host.** The routes bound to the request's host are tried first. If
//!    none of their patterns matches the path (with any method), the
//!    any-host routes are tried. If some does but not for this method, the
//!    answer is 405 from the host's routes alone: a host's routes shadow the
//!    any-host routes for the paths they cover.
//! 2. **Path**, segment by segment from the left: a static segment beats a
//!    param, a param beats a wildcard, and a pattern that ends at this
//!    segment beats a wildcard matching zero segments. This is a
//!    depth-first search with backtracking: with `/users/new` and
//!    `/users/:id/edit`, the path `/users/new/edit` finds no static
//!    continuation after `new` and matches the param branch.
//! 3. **Method.** Among routes with the same pattern shape, an exact method
//!    beats `HEAD`'s fallback to `GET`, which beats `*`. The search only
//!    stops at a pattern that has a route for the request's method (or its
//!    fallbacks); otherwise it backtracks, so with `GET /users/new` and
//!    `POST /users/:id`, `POST /users/new` is served by `/users/:id`.
//! 4. When some pattern matches the path but none has a route for the
//!    method, the answer is [`Lookup::MethodNotAllowed`] with the methods
//!    of every pattern matching the path, sorted, plus `HEAD` when `GET` is
//!    among them (HEAD falls back to GET).
//!
//! # Conflicts
//!
//! Two routes conflict when they have the same method, the same host and
//! patterns of the same shape: the same static text in the same places,
//! params in the same places whatever their names, a wildcard at the same
//! place. `/users/:id` and `/users/:uid` conflict; `/users/:id` and
//! `/users/new` do not (precedence decides), nor `GET /a` and `* /a`, nor a
//! host route and an any-host route. Adding a conflicting route fails with
//! [`RouteError::Conflict`] naming the route already there.
//!
//! # Cost
//!
//! Each host has a trie of segments: static children in a hash map, one
//! param child, so a lookup walks one node per segment (plus backtracking,
//! bounded by the trie's size), whatever the number of routes. Host routes
//! are kept in a hash map keyed by the lower-case host; a lookup lower-cases
//! the request's host into a stack buffer (only when it has upper-case
//! letters) and skips the map when no route has a host. Lookups allocate
//! only the params `Vec` and the decoded param values: a percent-encoded
//! segment compared with static text is decoded into a stack buffer, and
//! validation decodes through one.

mod error;
mod pattern;
mod pct;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

pub use error::RouteError;
use pattern::{Method, Pattern, METHODS};
pub use pattern::{MAX_HOST_LEN, MAX_PATTERN_LEN, MAX_SEGMENTS};
use tree::{Node, Route};

/// A route's method, host and pattern, normalised (see [`normalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    /// Upper-case, or `*`.
    pub method: &'static str,
    /// Lower-case; "" for any host.
    pub host: String,
    /// The normalised pattern.
    pub pattern: String,
}

impl fmt::Display for RouteKey {
    /// `GET example.com/users/:id`, or `GET /users/:id` for any host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.method, self.host, self.pattern)
    }
}

/// Validates and normalises a route's method, host and pattern as
/// [`RouteTable::insert`] does, e.g. to store and show routes canonically.
pub fn normalize(method: &str, host: &str, pattern: &str) -> Result<RouteKey, RouteError> {
    let (method, host, pattern) = parse(method, host, pattern)?;
    Ok(RouteKey { method: method.as_str(), host, pattern: pattern.text })
}

fn parse(method: &str, host: &str, pattern: &str) -> Result<(Method, String, Pattern), RouteError> {
    Ok((Method::parse(method)?, pattern::parse_host(host)?, pattern::parse_pattern(pattern)?))
}

/// The outcome of [`RouteTable::lookup`].
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, T> {
    Found(Match<'a, T>),
    /// The path matches routes, but none for this method: the methods that
    /// would match (for a 405 with an Allow header), sorted.
    MethodNotAllowed(Vec<String>),
    NotFound,
    /// The path has a segment whose percent-encoding is invalid or decodes
    /// to invalid UTF-8 (the server answers 400); the message says which.
    BadPath(String),
}

/// The route a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a, T> {
    pub value: &'a T,
    /// The route's pattern as normalised (for logs and args.http).
    pub pattern: &'a str,
    /// Params in pattern order, names without ':' / '*', values
    /// percent-decoded. A `*rest` value is the remaining path (decoded
    /// segments joined with '/', without a leading '/'; may be empty string
    /// when nothing remains).
    pub params: Vec<(&'a str, String)>,
}

/// One route of a table, as listed by [`RouteTable::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a, T> {
    pub method: &'static str,
    /// "" for any host.
    pub host: &'a str,
    pub pattern: &'a str,
    pub value: &'a T,
}

/// A route table: values of type T (the server uses the action name) by
/// method, host and path pattern. See the [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// Routes for any host.
    any: Node<T>,
    /// Routes by lower-case host; a host is removed with its last route.
    hosts: HashMap<Box<str>, Node<T>, foldhash::fast::RandomState>,
    len: usize,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable { any: Node::default(), hosts: HashMap::default(), len: 0 }
    }
}

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route. method: "GET", "POST", "PUT", "PATCH", "DELETE",
    /// "OPTIONS", "HEAD" or "*" (any); case-insensitive input, stored
    /// upper-case. host: "" for any host, else a host name
    /// (case-insensitive, no port). Fails on a malformed input or a conflict
    /// with an existing route, leaving the table as it was.
    pub fn insert(&mut self, method: &str, host: &str, pattern: &str, value: T) -> Result<(), RouteError> {
        let (method, host, pattern) = parse(method, host, pattern)?;
        self.conflict(method, &host, &pattern)?;
        let tree = if host.is_empty() { &mut self.any } else { self.hosts.entry(host.into()).or_default() };
        let params = pattern.params.into_boxed_slice();
        tree.routes_mut(&pattern.segments).push(Route { method, pattern: pattern.text.into(), params, value });
        self.len += 1;
        Ok(())
    }

    /// Checks what [`insert`](Self::insert) would say, without inserting.
    pub fn check(&self, method: &str, host: &str, pattern: &str) -> Result<(), RouteError> {
        let (method, host, pattern) = parse(method, host, pattern)?;
        self.conflict(method, &host, &pattern)
    }

    fn conflict(&self, method: Method, host: &str, pattern: &Pattern) -> Result<(), RouteError> {
        let tree = if host.is_empty() { Some(&self.any) } else { self.hosts.get(host) };
        match tree.and_then(|t| t.routes(&pattern.segments)).and_then(|r| r.iter().find(|r| r.method == method)) {
            Some(existing) => Err(RouteError::Conflict {
                existing: format!("{} {host}{}", existing.method.as_str(), existing.pattern),
            }),
            None => Ok(()),
        }
    }

    /// Removes the route with exactly this method, host and pattern (after
    /// the same normalisation as insert, param names included); returns its
    /// value. `None` when there is no such route or the input is malformed.
    pub fn remove(&mut self, method: &str, host: &str, pattern: &str) -> Option<T> {
        let (method, host, pattern) = parse(method, host, pattern).ok()?;
        let route = if host.is_empty() {
            self.any.remove(&pattern.segments, method, &pattern.text)
        } else {
            let tree = self.hosts.get_mut(host.as_str())?;
            let route = tree.remove(&pattern.segments, method, &pattern.text);
            if tree.is_empty() {
                self.hosts.remove(host.as_str());
            }
            route
        }?;
        self.len -= 1;
        Some(route.value)
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every route, sorted by host, pattern and method.
    pub fn entries(&self) -> Vec<Entry<'_, T>> {
        let mut out = Vec::with_capacity(self.len);
        let trees = std::iter::once(("", &self.any)).chain(self.hosts.iter().map(|(h, t)| (&**h, t)));
        for (host, tree) in trees {
            tree.for_each(&mut |r: &Route<T>| {
                out.push(Entry { method: r.method.as_str(), host, pattern: &r.pattern, value: &r.value })
            });
        }
        out.sort_by(|a, b| (a.host, a.pattern, a.method).cmp(&(b.host, b.pattern, b.method)));
        out
    }

    /// Looks a request up. `host` is the Host header as sent (may carry
    /// ":port", any case; "" when absent), `path` is the raw request path
    /// without the query string, NOT percent-decoded.
    pub fn lookup(&self, method: &str, host: &str, path: &str) -> Lookup<'_, T> {
        let rest = match request_path(path) {
            Ok(rest) => rest,
            Err(bad) => return bad.map_or(Lookup::NotFound, Lookup::BadPath),
        };
        let method = Method::from_request(method);
        if let Some(tree) = self.host_tree(host) {
            if let Some(found) = resolve(tree, rest, method) {
                return found;
            }
        }
        resolve(&self.any, rest, method).unwrap_or(Lookup::NotFound)
    }

    /// The methods the routes a request for `host` (the Host header, as in
    /// [`lookup`](Self::lookup)) can match serve, whatever the path: its
    /// host's routes and the any-host ones, `HEAD` with `GET`, every
    /// method if a `*` route is among them, and `OPTIONS` (for `OPTIONS *`,
    /// which asks this). Sorted.
    pub fn methods(&self, host: &str) -> Vec<&'static str> {
        let mut set = Method::Options.bit();
        for tree in self.host_tree(host).into_iter().chain([&self.any]) {
            tree.for_each(&mut |r: &Route<T>| set |= r.method.bit());
        }
        if set & Method::Any.bit() != 0 {
            set = !0;
        }
        if set & Method::Get.bit() != 0 {
            set |= Method::Head.bit();
        }
        METHODS.iter().filter(|m| **m != Method::Any && set & m.bit() != 0).map(|m| m.as_str()).collect()
    }

    /// The trie of the request's host, if any route has that host. Does not
    /// allocate: the host is lower-cased into a stack buffer when needed.
    fn host_tree(&self, header: &str) -> Option<&Node<T>> {
        if self.hosts.is_empty() || header.starts_with('[') {
            return None; // no host routes, or an IPv6 literal
        }
        let name = header.split_once(':').map_or(header, |(name, _port)| name);
        let name = name.strip_suffix('.').unwrap_or(name);
        if !name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.hosts.get(name);
        }
        let mut buf = [0u8; MAX_HOST_LEN];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        self.hosts.get(std::str::from_utf8(lower).ok()?)
    }
}

/// The answer of one trie: `None` when no pattern matches the path.
fn resolve<'a, T>(tree: &'a Node<T>, rest: &str, method: Option<Method>) -> Option<Lookup<'a, T>> {
    if let Some(route) = tree.find(rest, method) {
        return Some(Lookup::Found(matched(route, rest)));
    }
    let mut set = 0u8;
    if !tree.allowed(rest, &mut set) {
        return None;
    }
    if set & Method::Get.bit() != 0 {
        set |= Method::Head.bit();
    }
    Some(Lookup::MethodNotAllowed(
        METHODS.iter().filter(|m| set & m.bit() != 0).map(|m| m.as_str().to_owned()).collect(),
    ))
}

/// The request path without its leading and one trailing '/', checked.
/// `Err(None)`: not found (no leading '/', or an empty segment);
/// `Err(Some(message))`: a bad segment.
fn request_path(path: &str) -> Result<&str, Option<String>> {
    let rest = path.strip_prefix('/').ok_or(None)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(rest);
    }
    if rest.split('/').any(str::is_empty) {
        return Err(None);
    }
    for (i, segment) in rest.split('/').enumerate() {
        if let Err(bad) = pct::check(segment) {
            return Err(Some(match bad {
                pct::BadSegment::Escape(at) => {
                    let escape: String = segment[at..].chars().take(3).collect();
                    format!("invalid percent-encoding {escape:?} in path segment {}", i + 1)
                }
                pct::BadSegment::Utf8 => format!("path segment {} does not decode to UTF-8", i + 1),
            }));
        }
    }
    Ok(rest)
}

/// The match of `route` for the path `rest`, with its params decoded.
fn matched<'a, T>(route: &'a Route<T>, rest: &str) -> Match<'a, T> {
    let mut params = Vec::with_capacity(route.params.len());
    let (mut rest, mut index) = (rest, 0);
    for param in route.params.iter() {
        while index < param.index {
            rest = rest.split_once('/').map_or("", |(_, tail)| tail);
            index += 1;
        }
        let raw = if param.wildcard { rest } else { rest.split_once('/').map_or(rest, |(segment, _)| segment) };
        params.push((&*param.name, pct::decode_string(raw)));
    }
    Match { value: &route.value, pattern: &route.pattern, params }
}
