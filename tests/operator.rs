//! What an operator meets first, run as the built binary: the audit commands
//! against a store that is not there, the front door `/`, `lienthong
//! healthcheck`, and the command line's conventions (`-c`, `LIENTHONG_CONFIG`,
//! `test FILTER`).

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

/// The PostgreSQL test schema shared with the store and queue contract suites.
#[path = "../router/tests/support/pg.rs"]
mod pg;

mod hub_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hub_support::{free_port, write_config, HubProcess};

/// `lienthong ARGS` in `cwd`, with none of the environment that names a config or a store.
fn lienthong_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(args)
        .current_dir(cwd)
        .env_remove("LIENTHONG_CONFIG")
        .env_remove("LIENTHONG_DB")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run lienthong")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file and directory under `dir`, relative to it.
fn entries(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(p).unwrap() {
            let path = e.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Before: `audit verify` in a directory without a store created an empty
/// `data/lienthong.db` and printed "OK: ... 0 trail rows ... chain intact", exit 0.
/// Now every command that reads the store refuses, says which store it looked
/// for and how to name the right one, and leaves the directory as it was.
#[test]
fn audit_commands_without_a_store_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // As `lienthong demo` leaves it: its store is under data/demo/, none in data/.
    std::fs::create_dir_all(dir.path().join("data/demo")).unwrap();
    let before = entries(dir.path());
    let commands: [&[&str]; 6] = [
        &["audit", "verify"],
        &["audit", "verify", "--json"],
        &[
            "audit",
            "export",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
            "--out",
            "bundle.tar",
        ],
        &["messages", "search"],
        &["messages", "show", "01JXXXXXXXXXXXXXXXXXXXXXXX"],
        &["dossier", "timeline", "HS-1"],
    ];
    for args in commands {
        let out = lienthong_in(dir.path(), args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            !out.status.success(),
            "`lienthong {}` succeeded without a store:\n{stdout}{stderr}",
            args.join(" ")
        );
        assert!(
            !stdout.contains("chain intact"),
            "`lienthong {}` vouched for a store that does not exist: {stdout}",
            args.join(" ")
        );
        assert!(
            stderr.contains("no store at data/lienthong.db")
                && stderr.contains("--config")
                && stderr.contains("--db"),
            "`lienthong {}`: the error does not say which store is missing and how to name one: {stderr}",
            args.join(" ")
        );
        assert_eq!(
            entries(dir.path()),
            before,
            "`lienthong {}` created files",
            args.join(" ")
        );
    }
    // A store named with --db that does not exist: refused the same way, even with mode=rwc.
    let missing = dir.path().join("elsewhere/hub.db");
    let url = format!("sqlite://{}?mode=rwc", missing.display());
    let out = lienthong_in(dir.path(), &["audit", "verify", "--db", &url]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("no store at {}", missing.display())),
        "{stderr}"
    );
    assert_eq!(entries(dir.path()), before);
}

/// A file that exists but holds no hub store (an empty file, a typo'd path to
/// some other database) is refused too, and not turned into an empty store.
#[test]
fn audit_verify_refuses_a_file_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.db");
    std::fs::write(&db, b"").unwrap();
    let url = format!("sqlite://{}", db.display());
    let out = lienthong_in(dir.path(), &["audit", "verify", "--db", &url]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("holds no lienthong store"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "the file was written to"
    );
}

/// The same on PostgreSQL: an empty schema (the database is there, the hub's
/// tables are not) is refused, and no table is created in it.
#[test]
fn audit_verify_refuses_an_empty_postgres_schema() {
    let schema = pg::PgSchema::create("noaudit");
    let dir = tempfile::tempdir().unwrap();
    let out = lienthong_in(dir.path(), &["audit", "verify", "--db", &schema.url()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("holds no lienthong store"), "{stderr}");
    let name = schema.url();
    let name = name
        .split("search_path%3D")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .unwrap();
    let tables = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-Atqc"])
        .arg(format!(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{name}'"
        ))
        .output()
        .unwrap();
    assert_eq!(
        text(&tables.stdout).trim(),
        "0",
        "tables were created in {name}"
    );
}

/// A hub on a free port with the hub fixtures' config (its one destination is
/// never called: nothing is posted).
async fn hub(dir: &Path) -> (HubProcess, PathBuf) {
    let port = free_port();
    let config = write_config(dir, port, "http://127.0.0.1:9/sink", "");
    (HubProcess::spawn(&config, port, &[]).await, config)
}

/// Before: `GET /` was a 404; the console is at `/console`.
#[tokio::test]
async fn the_root_redirects_to_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _) = hub(dir.path()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{}/", hub.base)).send().await.unwrap();
    assert!(
        [303, 307, 308].contains(&r.status().as_u16()),
        "GET / answered {}",
        r.status()
    );
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/console")
    );
    // Followed, it ends on the console's sign-in page, not an error.
    let r = reqwest::get(format!("{}/", hub.base)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.url());
    assert!(r.url().path().starts_with("/console"), "{}", r.url());
}
