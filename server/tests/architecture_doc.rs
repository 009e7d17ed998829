//! `docs/architecture.md` describes the code as it is: every module of
//! the server is named there (a file by its name, a directory of modules
//! as `name/`), and the README links it. A module added without a word in
//! the document fails here.

use std::path::{Path, PathBuf};

fn modules(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("server/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.push(path.clone());
            modules(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if !["lib", "main", "mod"].contains(&stem) && !stem.starts_with("tests") {
                out.push(path);
            }
        }
    }
}

/// Whether `word` stands in `text` on its own (not inside a longer name).
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part(before) && !part(after)
    })
}

#[test]
fn the_architecture_document_names_every_server_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/architecture.md")).expect("docs/architecture.md");
    let mut found = Vec::new();
    modules(&root.join("src"), &mut found);
    assert!(found.len() > 50, "{} modules found", found.len());
    let missing: Vec<String> = found
        .iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?;
            let shown = if p.is_dir() { format!("{name}/") } else { name.to_string() };
            let ok = if p.is_dir() { doc.contains(&shown) } else { names(&doc, name) };
            (!ok).then(|| format!("{} (as `{shown}`)", p.strip_prefix(root).unwrap_or(p).display()))
        })
        .collect();
    assert!(missing.is_empty(), "docs/architecture.md does not name: {}", missing.join(", "));
    let readme = std::fs::read_to_string(root.join("../README.md")).expect("README.md");
    assert!(readme.contains("(docs/architecture.md)"), "the README links docs/architecture.md");
}

#[test]
fn names_are_whole_words() {
    assert!(names("the `conn.rs` file", "conn"));
    assert!(!names("the `conn_ref.rs` file", "conn"));
    assert!(!names("conns", "conn"));
}
