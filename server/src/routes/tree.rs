//! The segment trie of one host (or of the any-host routes).
//!
//! A node stands for a path prefix of static segments and params. It holds
//! its static children in a hash map keyed by decoded text, at most one
//! param child (routes with params in the same place share it whatever the
//! names), the routes whose pattern ends at the node, and the routes whose
//! pattern ends with a wildcard right after it. Each route list holds at
//! most one route per method.

use std::collections::HashMap;

use super::pattern::{Method, Param, Segment, MAX_PATTERN_LEN};
use super::pct;

/// A route as stored.
#[derive(Clone, Debug)]
pub(crate) struct Route<T> {
    pub method: Method,
    /// The normalised pattern.
    pub pattern: Box<str>,
    pub params: Box<[Param]>,
    pub value: T,
}

#[derive(Clone, Debug)]
pub(crate) struct Node<T> {
    /// Hashed with foldhash (seeded per process) rather than SipHash: a
    /// lookup hashes every static segment of the path.
    statics: HashMap<Box<str>, Node<T>, foldhash::fast::RandomState>,
    param: Option<Box<Node<T>>>,
    /// Routes whose pattern ends here.
    here: Vec<Route<T>>,
    /// Routes whose pattern ends with a wildcard after this node.
    rest: Vec<Route<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node { statics: HashMap::default(), param: None, here: Vec::new(), rest: Vec::new() }
    }
}

/// The first segment of `rest` and what follows it ("" when none).
fn next_segment(rest: &str) -> (&str, &str) {
    rest.split_once('/').unwrap_or((rest, ""))
}

/// The route of `routes` that serves `method`: the exact method, then for
/// HEAD a GET route, then a `*` route.
fn pick<T>(routes: &[Route<T>], method: Option<Method>) -> Option<&Route<T>> {
    let with = |m: Method| routes.iter().find(|r| r.method == m);
    method
        .and_then(with)
        .or_else(|| if method == Some(Method::Head) { with(Method::Get) } else { None })
        .or_else(|| with(Method::Any))
}

/// Adds the methods of `routes` to `set`; whether there were any.
fn add_methods<T>(routes: &[Route<T>], set: &mut u8) -> bool {
    for r in routes {
        *set |= r.method.bit();
    }
    !routes.is_empty()
}

impl<T> Node<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.statics.is_empty() && self.param.is_none() && self.here.is_empty() && self.rest.is_empty()
    }

    /// The route list a pattern of these segments ends in, if its nodes exist.
    pub(crate) fn routes(&self, segments: &[Segment]) -> Option<&Vec<Route<T>>> {
        let mut node = self;
        for segment in segments {
            node = match segment {
                Segment::Static(text) => node.statics.get(text)?,
                Segment::Param => node.param.as_deref()?,
                Segment::Wildcard => return Some(&node.rest),
            };
        }
        Some(&node.here)
    }

    /// The route list a pattern of these segments ends in, creating nodes.
    pub(crate) fn routes_mut(&mut self, segments: &[Segment]) -> &mut Vec<Route<T>> {
        let mut node = self;
        for segment in segments {
            node = match segment {
                Segment::Static(text) => node.statics.entry(text.clone()).or_default(),
                Segment::Param => node.param.get_or_insert_with(Box::default),
                Segment::Wildcard => return &mut node.rest,
            };
        }
        &mut node.here
    }

    /// Removes the route with this method and normalised pattern, and the
    /// nodes it leaves empty.
    pub(crate) fn remove(&mut self, segments: &[Segment], method: Method, pattern: &str) -> Option<Route<T>> {
        let take = |routes: &mut Vec<Route<T>>| {
            let i = routes.iter().position(|r| r.method == method && &*r.pattern == pattern)?;
            Some(routes.swap_remove(i))
        };
        let Some((first, tail)) = segments.split_first() else {
            return take(&mut self.here);
        };
        match first {
            Segment::Wildcard => take(&mut self.rest),
            Segment::Static(text) => {
                let child = self.statics.get_mut(text)?;
                let removed = child.remove(tail, method, pattern);
                if child.is_empty() {
                    self.statics.remove(text);
                }
                removed
            }
            Segment::Param => {
                let child = self.param.as_deref_mut()?;
                let removed = child.remove(tail, method, pattern);
                if child.is_empty() {
                    self.param = None;
                }
                removed
            }
        }
    }

    /// The route serving `method` for the request path `rest` (the segments
    /// after this node, '/'-separated, each non-empty and valid; "" for
    /// none), by precedence: static child, param child, wildcard, depth
    /// first, so a dead end backtracks to the next alternative. Each node
    /// is visited at most once, so the cost is bounded by the trie, never
    /// exponential.
    pub(crate) fn find(&self, rest: &str, method: Option<Method>) -> Option<&Route<T>> {
        if rest.is_empty() {
            if let Some(route) = pick(&self.here, method) {
                return Some(route);
            }
        } else {
            let (segment, tail) = next_segment(rest);
            if let Some(route) = self.static_child(segment).and_then(|child| child.find(tail, method)) {
                return Some(route);
            }
            if let Some(route) = self.param.as_deref().and_then(|child| child.find(tail, method)) {
                return Some(route);
            }
        }
        pick(&self.rest, method)
    }

    /// Adds to `set` the methods of every route whose pattern matches `rest`;
    /// whether there was any.
    pub(crate) fn allowed(&self, rest: &str, set: &mut u8) -> bool {
        let mut any = false;
        if rest.is_empty() {
            any |= add_methods(&self.here, set);
        } else {
            let (segment, tail) = next_segment(rest);
            if let Some(child) = self.static_child(segment) {
                any |= child.allowed(tail, set);
            }
            if let Some(child) = self.param.as_deref() {
                any |= child.allowed(tail, set);
            }
        }
        any | add_methods(&self.rest, set)
    }

    /// The static child for a raw (still percent-encoded) request segment.
    fn static_child(&self, raw: &str) -> Option<&Node<T>> {
        if self.statics.is_empty() {
            None
        } else if raw.as_bytes().contains(&b'%') {
            self.static_child_decoded(raw)
        } else {
            self.statics.get(raw)
        }
    }

    /// Decodes into a stack buffer: static segments are at most
    /// [`MAX_PATTERN_LEN`] bytes decoded, so a longer segment matches none.
    /// Not inlined, to keep the buffer out of the recursive frames.
    #[inline(never)]
    fn static_child_decoded(&self, raw: &str) -> Option<&Node<T>> {
        let mut buf = [0u8; MAX_PATTERN_LEN];
        let len = pct::decode_into(raw, &mut buf)?;
        self.statics.get(std::str::from_utf8(&buf[..len]).ok()?)
    }

    /// Calls `f` on every route.
    pub(crate) fn for_each<'a>(&'a self, f: &mut impl FnMut(&'a Route<T>)) {
        self.here.iter().chain(&self.rest).for_each(&mut *f);
        for child in self.statics.values().chain(self.param.as_deref()) {
            child.for_each(f);
        }
    }
}
