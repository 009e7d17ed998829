//! Route table behaviour: matching, precedence, hosts, methods, conflicts.

use super::*;

fn table(routes: &[(&str, &str, &str, &str)]) -> RouteTable<String> {
    let mut t = RouteTable::new();
    for &(method, host, pattern, value) in routes {
        t.insert(method, host, pattern, value.to_owned()).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    }
    t
}

/// The value and params a lookup found; panics otherwise.
fn found(t: &RouteTable<String>, method: &str, host: &str, path: &str) -> (String, Vec<(String, String)>) {
    match t.lookup(method, host, path) {
        Lookup::Found(m) => (m.value.clone(), m.params.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()),
        other => panic!("{method} {host}{path}: {other:?}"),
    }
}

fn value(t: &RouteTable<String>, method: &str, path: &str) -> String {
    found(t, method, "", path).0
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|&(n, v)| (n.to_owned(), v.to_owned())).collect()
}

fn bad_path(t: &RouteTable<String>, path: &str) -> String {
    match t.lookup("GET", "", path) {
        Lookup::BadPath(msg) => msg,
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn static_param_and_root() {
    let t = table(&[("GET", "", "/", "root"), ("GET", "", "/users", "list"), ("GET", "", "/users/:id", "one")]);
    assert_eq!(value(&t, "GET", "/"), "root");
    assert_eq!(value(&t, "GET", "/users"), "list");
    assert_eq!(found(&t, "GET", "", "/users/42"), ("one".into(), params(&[("id", "42")])));
    assert_eq!(t.lookup("GET", "", "/nope"), Lookup::NotFound);
    assert_eq!(t.lookup("GET", "", "/users/42/x"), Lookup::NotFound);
    assert_eq!(t.lookup("GET", "", "users"), Lookup::NotFound);
    assert_eq!(t.lookup("GET", "", ""), Lookup::NotFound);
    match t.lookup("GET", "", "/users/7") {
        Lookup::Found(m) => assert_eq!(m.pattern, "/users/:id"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn static_beats_param_beats_wildcard() {
    let t = table(&[
        ("GET", "", "/users/new", "static"),
        ("GET", "", "/users/:id", "param"),
        ("GET", "", "/users/*rest", "wild"),
        ("GET", "", "/users", "exact"),
    ]);
    assert_eq!(value(&t, "GET", "/users/new"), "static");
    assert_eq!(value(&t, "GET", "/users/old"), "param");
    assert_eq!(found(&t, "GET", "", "/users/a/b"), ("wild".into(), params(&[("rest", "a/b")])));
    // A pattern ending here beats a wildcard matching zero segments.
    assert_eq!(value(&t, "GET", "/users"), "exact");
}

#[test]
fn backtracking() {
    let t = table(&[
        ("GET", "", "/users/new", "new"),
        ("GET", "", "/users/:id/edit", "edit"),
        ("GET", "", "/a/b/c", "abc"),
        ("GET", "", "/a/:x/d", "axd"),
        ("GET", "", "/a/*rest", "arest"),
    ]);
    assert_eq!(found(&t, "GET", "", "/users/new/edit"), ("edit".into(), params(&[("id", "new")])));
    assert_eq!(value(&t, "GET", "/users/new"), "new");
    assert_eq!(value(&t, "GET", "/a/b/c"), "abc");
    assert_eq!(found(&t, "GET", "", "/a/b/d"), ("axd".into(), params(&[("x", "b")])));
    // Neither the static nor the param branch continues: back to the wildcard.
    assert_eq!(found(&t, "GET", "", "/a/b/e"), ("arest".into(), params(&[("rest", "b/e")])));
    assert_eq!(found(&t, "GET", "", "/a/b/c/d"), ("arest".into(), params(&[("rest", "b/c/d")])));
}

#[test]
fn trailing_slash_and_empty_segments() {
    let t = table(&[("GET", "", "/users/", "list"), ("GET", "", "/users/:id", "one"), ("GET", "", "/f/*p", "f")]);
    assert_eq!(value(&t, "GET", "/users"), "list");
    assert_eq!(value(&t, "GET", "/users/"), "list");
    assert_eq!(found(&t, "GET", "", "/users/1/"), ("one".into(), params(&[("id", "1")])));
    assert_eq!(t.lookup("GET", "", "/users//"), Lookup::NotFound);
    assert_eq!(t.lookup("GET", "", "//users"), Lookup::NotFound);
    assert_eq!(t.lookup("GET", "", "/f/a//b"), Lookup::NotFound);
    assert_eq!(found(&t, "GET", "", "/f/a/b/"), ("f".into(), params(&[("p", "a/b")])));
    assert_eq!(t.lookup("GET", "", "/"), Lookup::NotFound);
}

#[test]
fn percent_decoding() {
    let t = table(&[
        ("GET", "", "/files/:name", "file"),
        ("GET", "", "/caf%C3%A9", "cafe"),
        ("GET", "", "/a%21b", "bang"),
        ("GET", "", "/x/*rest", "rest"),
    ]);
    assert_eq!(found(&t, "GET", "", "/files/a%2Fb"), ("file".into(), params(&[("name", "a/b")])));
    assert_eq!(found(&t, "GET", "", "/files/a+b%20c"), ("file".into(), params(&[("name", "a+b c")])));
    assert_eq!(found(&t, "GET", "", "/files/%C3%A9t%c3%a9"), ("file".into(), params(&[("name", "été")])));
    // A static segment matches however the request spells it.
    assert_eq!(value(&t, "GET", "/caf%C3%A9"), "cafe");
    assert_eq!(value(&t, "GET", "/caf%c3%a9"), "cafe");
    assert_eq!(value(&t, "GET", "/café"), "cafe");
    assert_eq!(value(&t, "GET", "/a!b"), "bang");
    assert_eq!(value(&t, "GET", "/a%21b"), "bang");
    assert_eq!(value(&t, "GET", "/c%61f%C3%A9"), "cafe");
    assert_eq!(found(&t, "GET", "", "/x/a%2Fb/c%20d"), ("rest".into(), params(&[("rest", "a/b/c d")])));
    // %2F does not split: one segment "a/b" is no static "a" then "b".
    let t2 = table(&[("GET", "", "/a/b", "ab")]);
    assert_eq!(t2.lookup("GET", "", "/a%2Fb"), Lookup::NotFound);
}

#[test]
fn bad_paths() {
    let t = table(&[("GET", "", "/files/:name", "file")]);
    assert_eq!(bad_path(&t, "/files/%zz"), "invalid percent-encoding \"%zz\" in path segment 2");
    assert_eq!(bad_path(&t, "/files/a%4"), "invalid percent-encoding \"%4\" in path segment 2");
    assert_eq!(bad_path(&t, "/files/%FF"), "path segment 2 does not decode to UTF-8");
    assert_eq!(bad_path(&t, "/files/%C3"), "path segment 2 does not decode to UTF-8");
    // Whatever the routes: the request is malformed.
    assert_eq!(bad_path(&t, "/%zz/x"), "invalid percent-encoding \"%zz\" in path segment 1");
    assert_eq!(bad_path(&RouteTable::new(), "/%FE"), "path segment 1 does not decode to UTF-8");
    // A long encoded segment cannot match static text but is still valid.
    let long = format!("/files/{}", "%41".repeat(2000));
    assert_eq!(found(&t, "GET", "", &long).1, params(&[("name", &"A".repeat(2000))]));
}

#[test]
fn wildcard_zero_one_many() {
    let t = table(&[("GET", "", "/static/*path", "static"), ("GET", "", "/*all", "all")]);
    assert_eq!(found(&t, "GET", "", "/static"), ("static".into(), params(&[("path", "")])));
    assert_eq!(found(&t, "GET", "", "/static/"), ("static".into(), params(&[("path", "")])));
    assert_eq!(found(&t, "GET", "", "/static/a.css"), ("static".into(), params(&[("path", "a.css")])));
    assert_eq!(found(&t, "GET", "", "/static/css/x/a.css"), ("static".into(), params(&[("path", "css/x/a.css")])));
    assert_eq!(found(&t, "GET", "", "/"), ("all".into(), params(&[("all", "")])));
    assert_eq!(found(&t, "GET", "", "/other/x"), ("all".into(), params(&[("all", "other/x")])));
}

#[test]
fn params_in_pattern_order() {
    let t = table(&[("GET", "", "/orgs/:org/repos/:repo/tree/*path", "tree")]);
    let (_, got) = found(&t, "GET", "", "/orgs/acme/repos/sl/tree/src/main.rs");
    assert_eq!(got, params(&[("org", "acme"), ("repo", "sl"), ("path", "src/main.rs")]));
    // Routes sharing a param node keep their own names.
    let t = table(&[("GET", "", "/u/:id", "get"), ("PUT", "", "/u/:uid", "put")]);
    assert_eq!(found(&t, "GET", "", "/u/1").1, params(&[("id", "1")]));
    assert_eq!(found(&t, "PUT", "", "/u/1").1, params(&[("uid", "1")]));
}

#[test]
fn hosts_with_port_and_case() {
    let t =
        table(&[("GET", "example.com", "/", "ex"), ("GET", "", "/", "any"), ("GET", "API.example.com", "/", "api")]);
    assert_eq!(found(&t, "GET", "example.com", "/").0, "ex");
    assert_eq!(found(&t, "GET", "Example.COM:8081", "/").0, "ex");
    assert_eq!(found(&t, "GET", "example.com.", "/").0, "ex");
    assert_eq!(found(&t, "GET", "api.EXAMPLE.com:80", "/").0, "api");
    assert_eq!(found(&t, "GET", "other.com", "/").0, "any");
    assert_eq!(found(&t, "GET", "", "/").0, "any");
    assert_eq!(found(&t, "GET", "[::1]:8080", "/").0, "any");
    assert_eq!(found(&t, "GET", &"A".repeat(300), "/").0, "any");
}

#[test]
fn host_falls_back_to_any_host() {
    let t = table(&[
        ("GET", "example.com", "/special", "special"),
        ("GET", "example.com", "/users/:id", "host-user"),
        ("GET", "", "/users/:id", "any-user"),
        ("POST", "", "/special", "any-post"),
        ("GET", "", "/health", "health"),
    ]);
    assert_eq!(found(&t, "GET", "example.com", "/users/1").0, "host-user");
    assert_eq!(found(&t, "GET", "other.com", "/users/1").0, "any-user");
    // No host route matches the path: any-host routes serve it.
    assert_eq!(found(&t, "GET", "example.com", "/health").0, "health");
    assert_eq!(t.lookup("GET", "other.com", "/special"), Lookup::MethodNotAllowed(vec!["POST".into()]));
    // A host route matches the path, with another method: the host's 405 stands.
    assert_eq!(
        t.lookup("POST", "example.com", "/special"),
        Lookup::MethodNotAllowed(vec!["GET".into(), "HEAD".into()])
    );
    assert_eq!(t.lookup("GET", "example.com", "/missing"), Lookup::NotFound);
}

#[test]
fn methods_head_and_any() {
    let t = table(&[
        ("GET", "", "/a", "get-a"),
        ("*", "", "/a", "any-a"),
        ("HEAD", "", "/b", "head-b"),
        ("GET", "", "/b", "get-b"),
        ("*", "", "/c", "any-c"),
        ("get", "", "/d", "get-d"),
    ]);
    assert_eq!(value(&t, "GET", "/a"), "get-a");
    assert_eq!(value(&t, "POST", "/a"), "any-a");
    assert_eq!(value(&t, "PROPFIND", "/a"), "any-a");
    assert_eq!(value(&t, "HEAD", "/a"), "get-a"); // GET beats * for HEAD
    assert_eq!(value(&t, "HEAD", "/b"), "head-b");
    assert_eq!(value(&t, "GET", "/b"), "get-b");
    assert_eq!(value(&t, "DELETE", "/c"), "any-c");
    assert_eq!(value(&t, "HEAD", "/d"), "get-d");
    // Request methods are case-sensitive.
    assert_eq!(t.lookup("get", "", "/d"), Lookup::MethodNotAllowed(vec!["GET".into(), "HEAD".into()]));
}

#[test]
fn method_not_allowed_lists_sorted_methods() {
    let t = table(&[
        ("PUT", "", "/u/:id", "put"),
        ("DELETE", "", "/u/:id", "del"),
        ("PATCH", "", "/u/me", "patch-me"),
        ("OPTIONS", "", "/u/*rest", "opts"),
    ]);
    let allowed = |path| match t.lookup("POST", "", path) {
        Lookup::MethodNotAllowed(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(allowed("/u/1"), ["DELETE", "OPTIONS", "PUT"]);
    assert_eq!(allowed("/u/me"), ["DELETE", "OPTIONS", "PATCH", "PUT"]);
    assert_eq!(allowed("/u/me/x"), ["OPTIONS"]);
    assert_eq!(t.lookup("POST", "", "/v"), Lookup::NotFound);
    assert_eq!(
        t.lookup("HEAD", "", "/u/1"),
        Lookup::MethodNotAllowed(vec!["DELETE".into(), "OPTIONS".into(), "PUT".into()])
    );
}

#[test]
fn method_aware_backtracking() {
    let t = table(&[("GET", "", "/users/new", "new"), ("POST", "", "/users/:id", "post")]);
    assert_eq!(found(&t, "POST", "", "/users/new"), ("post".into(), params(&[("id", "new")])));
    assert_eq!(value(&t, "GET", "/users/new"), "new");
    assert_eq!(t.lookup("GET", "", "/users/1"), Lookup::MethodNotAllowed(vec!["POST".into()]));
}

fn conflict(t: &RouteTable<String>, method: &str, host: &str, pattern: &str) -> String {
    match t.check(method, host, pattern) {
        Err(RouteError::Conflict { existing }) => existing,
        other => panic!("{method} {host}{pattern}: {other:?}"),
    }
}

#[test]
fn conflicts() {
    let mut t = table(&[
        ("GET", "", "/users/:id", "one"),
        ("GET", "Example.com", "/users/:id", "host"),
        ("GET", "", "/files/*path", "files"),
        ("GET", "", "/a", "a"),
        ("GET", "", "/caf%c3%a9", "cafe"),
    ]);
    assert_eq!(conflict(&t, "GET", "", "/users/:uid"), "GET /users/:id");
    assert_eq!(conflict(&t, "get", "", "/users/:uid/"), "GET /users/:id");
    assert_eq!(conflict(&t, "GET", "EXAMPLE.COM", "/users/:x"), "GET example.com/users/:id");
    assert_eq!(conflict(&t, "GET", "", "/files/*rest"), "GET /files/*path");
    assert_eq!(conflict(&t, "GET", "", "/a/"), "GET /a");
    assert_eq!(conflict(&t, "GET", "", "/caf%C3%A9"), "GET /caf%C3%A9");
    let err = t.insert("GET", "", "/users/:uid", "dup".into()).unwrap_err();
    assert_eq!(err.to_string(), "route conflicts with GET /users/:id");
    assert_eq!(t.len(), 5);
    for (method, host, pattern) in [
        ("GET", "", "/users/new"),
        ("GET", "", "/users/:id/edit"),
        ("GET", "", "/users/*rest"),
        ("*", "", "/a"),
        ("POST", "", "/a"),
        ("HEAD", "", "/a"),
        ("GET", "other.com", "/a"),
        ("GET", "", "/files/:name"),
        ("GET", "", "/files"),
    ] {
        assert_eq!(t.check(method, host, pattern), Ok(()), "{method} {host}{pattern}");
        t.insert(method, host, pattern, "x".into()).unwrap();
    }
    assert_eq!(t.len(), 14);
    assert_eq!(conflict(&t, "*", "", "/a"), "* /a");
}

#[test]
fn invalid_input_is_reported_by_insert_and_check() {
    let mut t: RouteTable<String> = RouteTable::new();
    let invalid = |r: Result<(), RouteError>| match r {
        Err(RouteError::Invalid(msg)) => msg,
        other => panic!("{other:?}"),
    };
    assert!(invalid(t.insert("FETCH", "", "/a", "x".into())).contains("invalid method \"FETCH\""));
    assert!(invalid(t.insert("GET", "a:80", "/a", "x".into())).contains("port"));
    assert!(invalid(t.check("GET", "", "a")).contains("must start with '/'"));
    assert!(t.is_empty());
    assert_eq!(t.remove("FETCH", "", "/a"), None);
}

#[test]
fn check_does_not_insert() {
    let t: RouteTable<String> = RouteTable::new();
    assert_eq!(t.check("GET", "example.com", "/a"), Ok(()));
    assert!(t.is_empty());
    assert_eq!(t.lookup("GET", "example.com", "/a"), Lookup::NotFound);
}

#[test]
fn remove_then_reinsert() {
    let mut t = table(&[
        ("GET", "", "/users/:id", "one"),
        ("GET", "", "/users/:id/posts", "posts"),
        ("GET", "example.com", "/users/:id", "host"),
        ("GET", "", "/f/*p", "f"),
    ]);
    assert_eq!(t.remove("GET", "", "/users/:uid"), None); // names must match too
    assert_eq!(t.remove("POST", "", "/users/:id"), None);
    assert_eq!(t.remove("GET", "", "/nope"), None);
    assert_eq!(t.remove("get", "", "/users/:id/"), Some("one".into()));
    assert_eq!(t.len(), 3);
    assert_eq!(t.lookup("GET", "", "/users/1"), Lookup::NotFound);
    assert_eq!(value(&t, "GET", "/users/1/posts"), "posts");
    t.insert("GET", "", "/users/:uid", "again".into()).unwrap();
    assert_eq!(found(&t, "GET", "", "/users/1"), ("again".into(), params(&[("uid", "1")])));

    assert_eq!(t.remove("GET", "EXAMPLE.com", "/users/:id"), Some("host".into()));
    assert!(t.hosts.is_empty(), "a host goes with its last route");
    assert_eq!(found(&t, "GET", "example.com", "/users/1").0, "again");
    assert_eq!(t.remove("GET", "", "/f/*p"), Some("f".into()));
    assert_eq!(t.lookup("GET", "", "/f/x"), Lookup::NotFound);
    assert_eq!(t.remove("GET", "", "/users/:id/posts"), Some("posts".into()));
    assert_eq!(t.remove("GET", "", "/users/:uid"), Some("again".into()));
    assert!(t.is_empty());
    assert!(t.any.is_empty(), "empty nodes are pruned");
    t.insert("GET", "", "/users/:id", "back".into()).unwrap();
    assert_eq!(value(&t, "GET", "/users/2"), "back");
}

#[test]
fn entries_clone_and_normalize() {
    let t = table(&[("get", "Example.com", "/b/", "1"), ("*", "", "/a", "2"), ("POST", "", "/a", "3")]);
    let listed: Vec<_> = t.entries().into_iter().map(|e| (e.method, e.host, e.pattern, e.value.as_str())).collect();
    assert_eq!(listed, [("*", "", "/a", "2"), ("POST", "", "/a", "3"), ("GET", "example.com", "/b", "1")]);
    let copy = t.clone();
    assert_eq!(copy.len(), 3);
    assert_eq!(found(&copy, "GET", "example.com", "/b").0, "1");
    let key = normalize("delete", "Example.COM.", "/x/%7e/:id/").unwrap();
    assert_eq!(key.to_string(), "DELETE example.com/x/~/:id");
    assert_eq!(normalize("GET", "", "/").unwrap().to_string(), "GET /");
}

#[test]
fn ten_thousand_routes() {
    let mut t = RouteTable::new();
    for i in 0..10_000 {
        t.insert("GET", "", &format!("/r{i}/items/:id"), i).unwrap();
        t.insert("PUT", "", &format!("/r{i}/items/:id/tags/:tag"), i + 100_000).unwrap();
    }
    for i in 0..100 {
        t.insert("GET", &format!("h{i}.example.com"), &format!("/r{i}/items/:id"), i + 200_000).unwrap();
    }
    assert_eq!(t.len(), 20_100);
    for i in 0..10_000 {
        let id = format!("x{i}");
        match t.lookup("GET", "", &format!("/r{i}/items/{id}")) {
            Lookup::Found(m) => {
                assert_eq!(*m.value, i);
                assert_eq!(m.params, [("id", id.clone())]);
                assert_eq!(m.pattern, format!("/r{i}/items/:id"));
            }
            other => panic!("{i}: {other:?}"),
        }
        match t.lookup("PUT", "", &format!("/r{i}/items/{id}/tags/t{i}")) {
            Lookup::Found(m) => {
                assert_eq!(*m.value, i + 100_000);
                assert_eq!(m.params, [("id", id), ("tag", format!("t{i}"))]);
            }
            other => panic!("{i}: {other:?}"),
        }
        let host = format!("H{}.Example.com:8080", i % 200);
        let want = if i < 100 { i + 200_000 } else { i };
        match t.lookup("GET", &host, &format!("/r{i}/items/1")) {
            Lookup::Found(m) => assert_eq!(*m.value, want, "{host} /r{i}"),
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(t.lookup("GET", "", "/r10000/items/1"), Lookup::NotFound);
    assert_eq!(t.lookup("POST", "", "/r5/items/1"), Lookup::MethodNotAllowed(vec!["GET".into(), "HEAD".into()]));
}

#[test]
fn methods_served_for_a_host_for_options_asterisk() {
    let mut t = table(&[
        ("GET", "a.example", "/", "a"),
        ("POST", "", "/items", "post"),
        ("DELETE", "b.example", "/items/:id", "del"),
        ("*", "z.example", "/x", "any"),
    ]);
    assert_eq!(t.methods("a.example"), ["GET", "HEAD", "OPTIONS", "POST"]);
    assert_eq!(t.methods("B.Example:8081"), ["DELETE", "OPTIONS", "POST"]);
    assert_eq!(t.methods("c.example"), ["OPTIONS", "POST"]);
    assert_eq!(t.methods(""), ["OPTIONS", "POST"]);
    assert_eq!(t.methods("z.example"), ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]);
    t.remove("POST", "", "/items");
    assert_eq!(t.methods("c.example"), ["OPTIONS"]);
    assert_eq!(RouteTable::<String>::new().methods("x"), ["OPTIONS"]);
}
