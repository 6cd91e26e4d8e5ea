//! The walls between the rooms (ARCHITECTURE.md, "Crates and who may depend on
//! whom"), checked so that they stay up:
//!
//! * only the store speaks SQL: no statement and no `sqlx` call outside
//!   `router/store/` (crate `lienthong_store`);
//! * the core and the connectors build without a database, a broker or an HTTP
//!   server: their normal dependencies name none of sqlx, lapin, axum, and
//!   neither depends on a crate above it;
//! * the store sits on the core alone: no broker, no HTTP, no router.
//!
//! Cargo already refuses a dependency cycle; these are the arrows it would
//! allow but the design does not.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file, line number, line)` of every line that looks like SQL or a sqlx call.
fn sql_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let statement = ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "];
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.trim_start();
            if code.starts_with("//") {
                return false;
            }
            let quoted = statement
                .iter()
                .any(|s| code.contains(&format!("\"{s}")) || code.contains(&format!("r#\"{s}")));
            // A statement's first line inside a multi-line string.
            let bare = (code.starts_with("SELECT ") && code.contains(" FROM "))
                || code.starts_with("INSERT INTO ")
                || code.starts_with("DELETE FROM ")
                || (code.starts_with("UPDATE ") && code.contains(" SET "));
            quoted || bare || code.contains("sqlx::query")
        })
        .map(|(n, line)| (n + 1, line.trim().to_string()))
        .collect()
}

#[test]
fn only_the_store_speaks_sql() {
    let root = root();
    let store = root.join("router/store");
    let mut files = Vec::new();
    for dir in [
        "src",
        "router/src",
        "router/core/src",
        "router/store/src",
        "connectors",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&store)) {
        for (n, line) in sql_lines(file) {
            found.push(format!(
                "{}:{n}: {line}",
                file.strip_prefix(&root).unwrap().display()
            ));
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside router/store (move it into the store and ask the store a typed question):\n{}",
        found.join("\n")
    );
}

/// The `[dependencies]` keys of a Cargo.toml (not dev- or build-dependencies).
fn normal_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut deps = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['.', '=', ' ']).next().unwrap_or_default();
            deps.push(key.to_string());
        }
    }
    deps
}

#[test]
fn core_and_connectors_need_no_database_broker_or_server() {
    let root = root();
    let forbidden = ["sqlx", "lapin", "axum", "router", "lienthong-router", "sim"];
    for (manifest, also_forbidden) in [
        (
            "router/core/Cargo.toml",
            &["connectors", "lienthong-store", "tokio"][..],
        ),
        ("connectors/Cargo.toml", &["lienthong-store"][..]),
    ] {
        let deps = normal_dependencies(&root.join(manifest));
        assert!(
            deps.iter().any(|d| d == "serde"),
            "{manifest}: read no dependencies ({deps:?}); is the parser still right?"
        );
        let bad: Vec<&String> = deps
            .iter()
            .filter(|d| forbidden.contains(&d.as_str()) || also_forbidden.contains(&d.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "{manifest} depends on {bad:?}: the core and the connectors sit below the store, the queues and the server (ARCHITECTURE.md)"
        );
    }
}

#[test]
fn the_store_sits_on_the_core_alone() {
    let deps = normal_dependencies(&root().join("router/store/Cargo.toml"));
    assert!(deps.iter().any(|d| d == "sqlx"), "{deps:?}");
    let bad: Vec<&String> = deps
        .iter()
        .filter(|d| {
            ["lapin", "axum", "reqwest", "router", "connectors", "sim"].contains(&d.as_str())
        })
        .collect();
    assert!(
        bad.is_empty(),
        "router/store/Cargo.toml depends on {bad:?}: the store sits on lienthong-core alone (ARCHITECTURE.md)"
    );
}

/// Every route the hub serves goes through `auth::routes::Registry::add`, which
/// takes the access the route needs (issue 13): no other code in the hub or the
/// binary calls axum's `Router::route`, `route_service`, `nest` or `nest_service`,
/// so a route cannot be added without an access, and the table the role test
/// walks (`GET /api/v1/routes`) is every route there is. Test code may build its
/// own routers (fake partners).
/// `file:line: line` for every line of non-test code in `files` (before a
/// file's `#[cfg(test)]`, comment lines left out) that `hit` accepts.
fn code_lines_where(files: &[PathBuf], hit: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests inside a file may build what the code may not.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if !l.starts_with("//") && hit(l) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, l));
            }
        }
    }
    found
}

#[test]
fn every_route_is_registered_with_its_access() {
    let mut files = Vec::new();
    for dir in [
        "router/src",
        "router/core/src",
        "router/store/src",
        "connectors/src",
        "src",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let registry = root().join("router/src/auth/routes.rs");
    files.retain(|f| *f != registry);
    let found = code_lines_where(&files, |l| {
        [".route(", ".route_service(", ".nest(", ".nest_service("]
            .iter()
            .any(|call| l.contains(call))
    });
    assert!(
        found.is_empty(),
        "routes added outside auth::routes::Registry::add (register them with their access):\n{}",
        found.join("\n")
    );
}

/// The console's HTML comes from `maud` templates only, which escape every
/// spliced value (router/src/console/layout.rs). Building markup from strings
/// (`format!("<td>{}</td>", ..)`, `push_str("<p>")`) makes escaping opt-in
/// again, and `PreEscaped` turns it off: either would let partner data become
/// markup. This refuses both in the console's code.
#[test]
fn console_html_is_built_by_escaping_templates_only() {
    let mut files = Vec::new();
    rust_files(&root().join("router/src/console"), &mut files);
    assert!(files.len() >= 5, "console files not found: {files:?}");
    let found = code_lines_where(&files, |l| {
        // A string literal that opens a tag: `"<td"`, `"</p>"`, `"<!doctype"`.
        let tag_in_string = l.match_indices("\"<").any(|(i, _)| {
            l[i + 2..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!')
        });
        tag_in_string || l.contains("PreEscaped")
    });
    assert!(
        found.is_empty(),
        "console markup built outside maud's html! (use a template; values are then escaped):\n{}",
        found.join("\n")
    );
}
