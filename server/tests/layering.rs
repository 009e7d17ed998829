//! Layering: no two files of `server/src` import each other, directly or
//! through other files.
//!
//! A file imports another when it names an item that file defines, in a
//! `use` item (`use super::hook::{self, LimitKind}`, grouped or not) or as a
//! path in code (`super::env::new_state()`, `crate::sandbox::Doc`). Paths
//! are followed through the `use` items of the files on their way:
//! `crate::sandbox::Doc` names `sandbox/args.rs`, which defines `Doc`, not
//! `sandbox/mod.rs`, which re-exports it; a path that ends at a module
//! names that module's file. A `pub use` is a passage, not an import,
//! unless its file uses the name itself; `mod x;` declares, it does not
//! import. Items after `#[cfg(test)]`, and files declared by
//! `#[cfg(test)] mod x;`, are left out: tests may import what they test.
//! `main.rs` is left out: it is another crate, which nothing here imports.
//!
//! Limits: the sources are read as text and tokenized, not parsed or
//! type-checked. A reference that cannot be followed to a file is ignored:
//! an external crate, a method call (`x.f()`, or of an `impl` in another
//! file), a name made by a macro, an item of an inline `mod m { .. }`, a
//! `#[path]` module. So a cycle can be missed; the ones reported are there.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

const ITEMS: [&str; 9] = ["fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod"];

/// What one source file defines, binds and names.
#[derive(Default)]
struct File {
    name: String,
    /// Its module path: `["sandbox", "env"]` for `sandbox/env.rs`.
    module: Vec<String>,
    defs: HashSet<String>,
    /// Name bound by a `use` item -> (its path as written, `pub`).
    binds: HashMap<String, (Vec<String>, bool)>,
    /// Paths of glob `use` items, and whether they are `pub`.
    globs: Vec<(Vec<String>, bool)>,
    /// Paths written in code (`a::b::c`).
    paths: Vec<Vec<String>>,
    /// Identifiers used outside `use` items and declarations.
    used: HashSet<String>,
    /// Modules declared `#[cfg(test)] mod x;`.
    test_mods: Vec<String>,
}

/// The tokens of Rust source that matter here: identifiers, `::` and
/// single punctuation. Comments are dropped; literals and lifetimes become
/// `"` and `'`.
fn tokenize(src: &str) -> Vec<String> {
    let s: Vec<char> = src.chars().collect();
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let word_char = |c: &char| c.is_alphanumeric() || *c == '_';
    let skip = |i: usize, f: &dyn Fn(&char) -> bool| i + s[i.min(s.len())..].iter().take_while(|c| f(c)).count();
    // The index after the closing quote of a string whose text starts at `i`.
    let string_end = |mut i: usize, raw: bool, hashes: usize| loop {
        match at(i) {
            '\0' => return i,
            '\\' if !raw => i += 2,
            '"' if (1..=hashes).all(|k| at(i + k) == '#') => return i + 1 + hashes,
            _ => i += 1,
        }
    };
    let (mut out, mut i) = (Vec::new(), 0);
    while i < s.len() {
        let (start, c, next) = (i, s[i], at(i + 1));
        i += 1;
        match c {
            '/' if next == '/' => i = skip(i, &|c| *c != '\n'),
            '/' if next == '*' => {
                let (mut depth, mut j) = (1, i + 1);
                while depth > 0 && j < s.len() {
                    let step = match (s[j], at(j + 1)) {
                        ('/', '*') => 1,
                        ('*', '/') => -1,
                        _ => 0,
                    };
                    (depth, j) = (depth + step, j + 1 + usize::from(step != 0));
                }
                i = j;
            }
            '"' => (i, _) = (string_end(i, false, 0), out.push("\"".into())),
            // A character ('x', '\n', '\u{7f}') or a lifetime ('a).
            '\'' if next == '\\' => (i, _) = (skip(i + 2, &|c| *c != '\'') + 1, out.push("'".into())),
            '\'' if at(i + 1) == '\'' => (i, _) = (i + 2, out.push("'".into())),
            '\'' => (i, _) = (skip(i, &word_char), out.push("'".into())),
            ':' if next == ':' => (i, _) = (i + 1, out.push("::".into())),
            c if word_char(&c) => {
                i = skip(start, &word_char);
                let word: String = s[start..i].iter().collect();
                let hashes = skip(i, &|c| *c == '#') - i;
                let raw = word.ends_with('r');
                if ["b", "c", "r", "br", "cr"].contains(&&*word) && at(i + hashes) == '"' && (raw || hashes == 0) {
                    (i, _) = (string_end(i + hashes + 1, raw, hashes), out.push("\"".into()));
                } else if word == "r" && hashes == 1 {
                    i += 1; // a raw identifier: its name follows `r#`
                } else if !(word == "b" && at(i) == '\'') {
                    out.push(word);
                }
            }
            c if !c.is_whitespace() => out.push(c.to_string()),
            _ => {}
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// Reads the `use` tree at `t[*i..]` under `path`: (path, Some(name)) for
/// each name it binds, (path, None) for each glob.
fn use_tree(t: &[String], i: &mut usize, mut path: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tok = |i: usize| t.get(i).map_or("", String::as_str);
    loop {
        match tok(*i) {
            "{" => {
                *i += 1;
                while !matches!(tok(*i), "}" | "") {
                    use_tree(t, i, path.clone(), out);
                    *i += usize::from(tok(*i) == ",");
                }
                return *i += 1;
            }
            "*" => return (*i += 1, out.push((path, None))).1,
            "::" => *i += 1,
            w if is_ident(w) => {
                if w != "self" || path.is_empty() {
                    path.push(w.to_string());
                }
                *i += 1;
                if tok(*i) != "::" {
                    let renamed = tok(*i) == "as";
                    let name = if renamed { tok(*i + 1).to_string() } else { path.last().unwrap().clone() };
                    return (*i += 2 * usize::from(renamed), out.push((path, Some(name)))).1;
                }
            }
            _ => return,
        }
    }
}

/// Reads what a file (its tokens `t`) defines, binds and names, leaving out
/// the items after `#[cfg(test)]`.
fn read_file(name: &str, module: Vec<String>, t: &[String]) -> File {
    let mut f = File { name: name.to_string(), module, ..File::default() };
    let tok = |k: usize| t.get(k).map_or("", String::as_str);
    let cfg_test = ["#", "[", "cfg", "(", "test", ")", "]"].map(String::from);
    let mut i = 0;
    while i < t.len() {
        let (word, prev, next) = (t[i].as_str(), tok(i.wrapping_sub(1)), tok(i + 1));
        if t[i..].starts_with(&cfg_test) {
            let (start, mut depth) = (i + cfg_test.len(), 0);
            i = start;
            while i < t.len() && (i == start || depth > 0 || !matches!(tok(i - 1), "}" | ";")) {
                depth += i32::from(matches!(tok(i), "{" | "(" | "[")) - i32::from(matches!(tok(i), "}" | ")" | "]"));
                i += 1;
            }
            if let Some(m) = t[start..i].windows(3).find(|w| w[0] == "mod" && w[2] == ";") {
                f.test_mods.push(m[1].clone());
            }
            continue;
        } else if word == "use" {
            let open = t[..i].iter().rposition(|p| p == "(").unwrap_or(0);
            let public = prev == "pub" || (prev == ")" && tok(open.wrapping_sub(1)) == "pub");
            let mut uses = Vec::new();
            i += 1;
            use_tree(t, &mut i, Vec::new(), &mut uses);
            for (path, name) in uses {
                match name {
                    Some(name) => _ = f.binds.insert(name, (path, public)),
                    None => f.globs.push((path, public)),
                }
            }
            i = t[i.min(t.len())..].iter().position(|t| t == ";").map_or(t.len(), |p| i + p);
        } else if is_ident(word) {
            if ITEMS.contains(&word) && prev != "*" && is_ident(next) && !["fn", "unsafe", "extern"].contains(&next) {
                f.defs.insert(next.to_string());
            } else if word == "macro_rules" && next == "!" {
                f.defs.insert(tok(i + 2).to_string());
            } else if !ITEMS.contains(&prev) {
                f.used.insert(word.to_string());
            }
            if prev != "::" && next == "::" {
                let mut path = vec![word.to_string()];
                while tok(i + 1) == "::" && is_ident(tok(i + 2)) {
                    (i, _) = (i + 2, path.push(t[i + 2].clone()));
                }
                f.paths.push(path);
            }
        }
        i += 1;
    }
    f
}

struct Crate {
    files: Vec<File>,
    modules: HashMap<Vec<String>, usize>,
}

impl Crate {
    /// `path` as written in `file`, from the crate root (`None` if it
    /// leaves the crate).
    fn absolute(&self, file: &File, path: &[String], depth: usize) -> Option<Vec<String>> {
        let (mut module, mut rest) = (file.module.clone(), path);
        match path.first()?.as_str() {
            "crate" => (module, rest) = (Vec::new(), &path[1..]),
            "super" | "self" => {
                let n = path.iter().take_while(|s| *s == "super" || *s == "self").count();
                let up = path[..n].iter().filter(|s| *s == "super").count();
                (module, rest) = (module[..module.len().checked_sub(up)?].to_vec(), &path[n..]);
            }
            _ if self.modules.contains_key(&[&module[..], &path[..1]].concat()) => {}
            first => {
                let (bound, _) = file.binds.get(first).filter(|_| depth < 8)?;
                return Some([self.absolute(file, bound, depth + 1)?, path[1..].to_vec()].concat());
            }
        }
        Some([&module[..], rest].concat())
    }

    /// The file that defines what the absolute `path` names, and the name.
    fn resolve(&self, path: &[String], depth: usize) -> Option<(usize, String)> {
        let mut module = Vec::new();
        while path.len() > module.len() && self.modules.contains_key(&path[..=module.len()]) {
            module.push(path[module.len()].clone());
        }
        let index = *self.modules.get(&module)?;
        let (file, rest) = (&self.files[index], &path[module.len()..]);
        let Some(name) = rest.first() else {
            return Some((index, module.last().map_or("crate".into(), String::clone)));
        };
        if file.defs.contains(name) || depth > 8 {
            return file.defs.contains(name).then(|| (index, name.clone()));
        }
        if let Some((bound, _)) = file.binds.get(name) {
            return self.resolve(&[self.absolute(file, bound, 0)?, rest[1..].to_vec()].concat(), depth + 1);
        }
        let mut globs = file.globs.iter().filter_map(|(glob, _)| self.absolute(file, glob, 0));
        globs.find_map(|glob| self.resolve(&[glob, rest.to_vec()].concat(), depth + 1))
    }
}

/// The import cycles of a crate given as (path under `src`, source) pairs:
/// one description per set of files that reach each other.
fn cycles(sources: &[(String, String)]) -> Vec<String> {
    let mut files: Vec<File> = (sources.iter().filter(|(name, _)| name != "main.rs"))
        .map(|(name, src)| {
            let stem = name.strip_suffix(".rs").unwrap_or(name);
            let stem = stem.strip_suffix("/mod").unwrap_or(stem);
            read_file(name, stem.split('/').filter(|_| stem != "lib").map(String::from).collect(), &tokenize(src))
        })
        .collect();
    let tests: HashSet<_> = files
        .iter()
        .flat_map(|f| f.test_mods.iter().map(|m| [&f.module[..], std::slice::from_ref(m)].concat()))
        .collect();
    files.retain(|f| !tests.contains(&f.module));
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let modules = files.iter().enumerate().map(|(i, f)| (f.module.clone(), i)).collect();
    let krate = Crate { files, modules };

    // edges[a][b]: the names file a takes from file b.
    let mut edges = vec![BTreeMap::<usize, BTreeSet<String>>::new(); krate.files.len()];
    for (a, f) in krate.files.iter().enumerate() {
        let binds = f.binds.iter().filter(|(name, (_, public))| !public || f.used.contains(*name));
        let globs = f.globs.iter().filter(|(_, public)| !public);
        for path in binds.map(|(_, (path, _))| path).chain(globs.map(|(path, _)| path)).chain(&f.paths) {
            let target = krate.absolute(f, path, 0).and_then(|path| krate.resolve(&path, 0));
            if let Some((b, name)) = target.filter(|(b, _)| *b != a) {
                edges[a].entry(b).or_default().insert(name);
            }
        }
    }

    // The sets of files on a cycle that reach each other, each named once.
    let reach: Vec<HashSet<usize>> = (0..edges.len())
        .map(|v| {
            let (mut seen, mut todo) = (HashSet::new(), vec![v]);
            while let Some(u) = todo.pop() {
                todo.extend(edges[u].keys().filter(|&&w| seen.insert(w)));
            }
            seen
        })
        .collect();
    let together = |u: usize, v: usize| reach[u].contains(&v) && reach[v].contains(&u);
    let first = (0..edges.len()).filter(|&v| together(v, v) && !(0..v).any(|u| together(u, v)));
    let name = |i: usize| krate.files[i].name.as_str();
    let describe = |v: usize| {
        let set: Vec<usize> = (0..edges.len()).filter(|&u| together(u, v)).collect();
        let list: Vec<_> = set.iter().map(|&i| name(i)).collect();
        let mut text = format!("{} files import each other: {}", set.len(), list.join(", "));
        for &a in &set {
            for (&b, names) in edges[a].iter().filter(|(b, _)| set.contains(b)) {
                let names: Vec<_> = names.iter().map(String::as_str).collect();
                text += &format!("\n    {} -> {}: {}", name(a), name(b), names.join(", "));
            }
        }
        text
    };
    first.map(describe).collect()
}

#[test]
fn no_two_files_import_each_other() {
    let (src, mut dirs, mut sources) = (Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), Vec::new(), Vec::new());
    dirs.push(src.clone());
    while let Some(dir) = dirs.pop() {
        for path in std::fs::read_dir(dir).expect("server/src").map(|e| e.expect("a directory entry").path()) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
                sources.push((name, std::fs::read_to_string(&path).expect("a source file")));
            }
        }
    }
    let found = cycles(&sources);
    assert!(
        found.is_empty(),
        "import cycles between files of server/src (see tests/layering.rs):\n{}",
        found.join("\n")
    );
}

/// The checker can fail: a cycle through re-exports in `a/mod.rs` is found;
/// test code, comments and a `pub use` its file does not use are not imports.
#[test]
fn the_checker_finds_a_cycle_through_re_exports() {
    let tree = [
        ("lib.rs", "mod a;\npub use a::Thing;"),
        (
            "a/mod.rs",
            "mod x;\nmod y;\n#[cfg(test)]\nmod tests;\npub use x::Thing;\npub(crate) use y::{Other as Renamed};",
        ),
        (
            "a/x.rs",
            "use super::Renamed;\npub struct Thing(Renamed);\n#[cfg(test)]\nmod tests {\n    use crate::a::y::*;\n}",
        ),
        ("a/y.rs", "/// [`super::Thing`] is no import.\npub struct Other;\nfn f() -> crate::Thing {\n    todo!()\n}"),
        ("a/tests.rs", "use super::x::Thing;\nuse super::y::Other;"),
    ];
    let tree: Vec<_> = tree.iter().map(|(name, src)| (name.to_string(), src.to_string())).collect();
    let found = "2 files import each other: a/x.rs, a/y.rs\n    a/x.rs -> a/y.rs: Other\n    a/y.rs -> a/x.rs: Thing";
    assert_eq!(cycles(&tree), [found]);
    let fixed: Vec<_> = tree.iter().map(|(name, src)| (name.clone(), src.replace("crate::Thing", "()"))).collect();
    assert_eq!(cycles(&fixed), Vec::<String>::new());
}
