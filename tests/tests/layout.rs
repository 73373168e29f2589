//! The code map's invariants (ARCHITECTURE.md), checked on the source tree:
//! - SQL runs only in stores: `backend/src/store.rs` and each feature's `store.rs` or `store/`;
//! - no feature imports the server module (it only wires them together);
//! - the backend reads the time only through its clock (`time::Clock`);
//! - no source file of `backend`, `engine` or `frontend` is over 600 lines.

use std::path::{Path, PathBuf};

/// The backend's feature folders.
const FEATURES: [&str; 6] = ["ingest", "query", "configs", "tuning", "alerts", "auth"];
const MAX_LINES: usize = 600;
/// What running SQL looks like.
const SQL: &[&str] = &[
    "sqlx::query",
    "QueryBuilder",
    ".fetch_one(",
    ".fetch_all(",
    ".fetch_optional(",
    ".execute(",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, as (path relative to `dir`, text).
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, text));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// Lines of `text` (with their numbers) that contain any of `needles`, outside `//` comments.
fn hits(text: &str, needles: &[&str]) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            needles.iter().any(|n| code.contains(n))
        })
        .map(|(i, line)| (i + 1, line.trim().to_string()))
        .collect()
}

/// Whether a line calls the free `now_ms()` or the system time (a clock's `.now_ms()` is fine).
fn reads_the_system_clock(code: &str) -> bool {
    code.contains("SystemTime::now")
        || code.contains("UNIX_EPOCH")
        || code
            .match_indices("now_ms()")
            .any(|(at, _)| !code[..at].ends_with('.'))
}

fn is_store(rel: &str) -> bool {
    rel == "store.rs"
        || rel.starts_with("store/")
        || rel.ends_with("/store.rs")
        || rel.contains("/store/")
}

#[test]
fn sql_runs_only_in_stores() {
    let mut bad = Vec::new();
    for (rel, text) in sources(&repo().join("backend/src")) {
        if is_store(&rel) {
            continue;
        }
        for (line, code) in hits(&text, SQL) {
            bad.push(format!("backend/src/{rel}:{line}: {code}"));
        }
    }
    assert!(bad.is_empty(), "SQL outside a store:\n{}", bad.join("\n"));
}

#[test]
fn no_feature_imports_the_server_module() {
    let mut bad = Vec::new();
    for (rel, text) in sources(&repo().join("backend/src")) {
        if !FEATURES.iter().any(|f| rel.starts_with(&format!("{f}/"))) {
            continue;
        }
        for (line, code) in hits(&text, &["crate::server", "super::server"]) {
            bad.push(format!("backend/src/{rel}:{line}: {code}"));
        }
    }
    assert!(
        bad.is_empty(),
        "a feature imports the server module:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_backend_reads_the_time_only_through_its_clock() {
    let mut bad = Vec::new();
    for (rel, text) in sources(&repo().join("backend/src")) {
        if rel == "time.rs" {
            continue;
        }
        for (line, code) in hits(&text, &["now_ms()", "SystemTime::now", "UNIX_EPOCH"]) {
            if reads_the_system_clock(&code) {
                bad.push(format!("backend/src/{rel}:{line}: {code}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the wall clock read directly:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut bad = Vec::new();
    for krate in ["backend/src", "engine/src", "frontend/src"] {
        for (rel, text) in sources(&repo().join(krate)) {
            let n = text.lines().count();
            if n > MAX_LINES {
                bad.push(format!("{krate}/{rel}: {n} lines"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The scanners must find what they are meant to find, or every check above passes vacuously.
    let sample =
        "let x = sqlx::query(\"SELECT 1\");\n// sqlx::query in a comment\nlet t = now_ms();";
    assert_eq!(hits(sample, &["sqlx::query"]).len(), 1);
    assert_eq!(
        hits(sample, &["now_ms()"]),
        vec![(3, "let t = now_ms();".to_string())]
    );
    assert!(
        is_store("ingest/store.rs") && is_store("query/store/rollup.rs") && is_store("store.rs")
    );
    assert!(!is_store("ingest/writer.rs") && !is_store("restore.rs"));
    let backend = sources(&repo().join("backend/src"));
    assert!(backend.iter().any(|(rel, _)| rel == "ingest/store.rs"));
    assert!(
        backend
            .iter()
            .filter(|(rel, _)| is_store(rel))
            .any(|(_, text)| !hits(text, &["sqlx::query"]).is_empty()),
        "the stores hold the SQL"
    );
}
