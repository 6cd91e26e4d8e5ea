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
        .env_remove("LIENTHONG_HEALTHCHECK_URL")
        .env_remove("LIENTHONG_SERVER__LISTEN")
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

/// `lienthong demo` prints the console's address and an admin and an auditor
/// sign-in that work there, says they are for the demo only, and gives the
/// `audit verify` command for its own store. Runs the demo until it has printed
/// its header (before its traffic is done), then kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_sign_ins_that_work_and_its_audit_command() {
    use std::io::BufRead;
    hub_support::init();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LIENTHONG_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut header = Vec::new();
    while !header.iter().any(|l: &String| l.contains("audit verify")) {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the demo printed only:\n{}", header.join("\n")));
        header.push(line);
    }
    let out = header.join("\n");
    let field = |marker: &str, word: &str| -> String {
        let line = header
            .iter()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no line with {marker:?} in:\n{out}"));
        let mut words = line.split_whitespace();
        words.find(|w| *w == word);
        words
            .next()
            .unwrap_or_else(|| panic!("no {word:?} in {line:?}"))
            .to_string()
    };
    let console = field("console", "console");
    let base = console.trim_end_matches("/console").to_string();
    assert!(console.ends_with("/console"), "{out}");
    let admin = field("demo-admin", "token");
    let auditor = field("demo-auditor", "token");
    assert_ne!(admin, auditor);
    assert!(out.contains("for this demo only"), "{out}");
    assert!(
        out.contains(&format!(
            "lienthong audit verify --db sqlite://{}",
            data.join("lienthong.db").display()
        )),
        "{out}"
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for token in [&admin, &auditor] {
        let r = http
            .post(format!("{base}/console/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&lang=en"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "signing in with a printed token");
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("lt_session=") && !c.starts_with("lt_session=;"))
            .map(|c| c.split(';').next().unwrap().to_string())
            .expect("a session cookie");
        let r = http
            .get(format!("{base}/console"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the console after signing in");
    }
    // The roles are the ones printed: only the admin token may change a mapping.
    let put = |token: &str| {
        http.put(format!("{base}/api/v1/mappings/x/y"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    assert_eq!(put(&auditor).await.unwrap().status(), 403);
    let s = put(&admin).await.unwrap().status().as_u16();
    assert!(s != 401 && s != 403, "the admin token was refused: {s}");
}

/// Tokens from the environment (`LIENTHONG_TOKENS__<NAME>__ROLE` / `__SHA256`),
/// for deployments that keep them out of the config file. Before: "not a
/// known setting", and the hub did not start.
#[tokio::test]
async fn a_token_from_the_environment_signs_in() {
    hub_support::init();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, "http://127.0.0.1:9/sink", "");
    // SHA-256 of "env-token-for-the-test".
    let sha = "f702c4cc227f39902e443c0481cf0a7b407cf53a6acf6c35a79d2c6d50e7d5de";
    let token = "env-token-for-the-test";
    let hub = HubProcess::spawn(
        &config,
        port,
        &[
            ("LIENTHONG_TOKENS__OPS_READER__ROLE", "auditor"),
            ("LIENTHONG_TOKENS__OPS_READER__SHA256", sha),
        ],
    )
    .await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/routes", hub.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// `lienthong healthcheck` (the container healthcheck) exits 0 when `/readyz`
/// answers 2xx, at `--url` or at the config's `server.listen`, and non-zero
/// with a reason when nothing answers. Before: no such command (the deploy
/// files used `/dev/tcp`, which dash does not have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_on_a_ready_hub_and_fails_on_a_closed_port() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, config) = hub(dir.path()).await;
    let out = lienthong_in(dir.path(), &["healthcheck", "--url", &hub.base]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("ready"), "{}", text(&out.stdout));
    let out = lienthong_in(dir.path(), &["healthcheck", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "with -c: {}", text(&out.stderr));
    // As in the image: no flags, the listen address from the environment (0.0.0.0 asked on loopback).
    let port = hub.base.rsplit(':').next().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("healthcheck")
        .env_remove("LIENTHONG_CONFIG")
        .env_remove("LIENTHONG_HEALTHCHECK_URL")
        .env("LIENTHONG_SERVER__LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "with LIENTHONG_SERVER__LISTEN: {}",
        text(&out.stderr)
    );

    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let out = lienthong_in(
        dir.path(),
        &["healthcheck", "--url", &closed, "--timeout", "2s"],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a closed port passed: {stderr}");
    assert!(
        stderr.contains(&format!("{closed}/readyz")) && stderr.contains("unhealthy"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // Something answers, but /readyz says it cannot take work: unhealthy, with its reason.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/readyz",
        axum::routing::get(|| async {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "store not ready: disk full\n",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = lienthong_in(dir.path(), &["healthcheck", "--url", &busy]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a 503 passed: {stderr}");
    assert!(
        stderr.contains("503") && stderr.contains("store not ready: disk full"),
        "{stderr}"
    );
}

/// `-c` is `--config` and `LIENTHONG_CONFIG` names the config for `check` as
/// for `serve` and the audit commands. Before: `check -c` was a usage error
/// and `check` ignored the variable.
#[test]
fn check_takes_dash_c_and_lienthong_config() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "server:\n  lisen: 127.0.0.1:1\n").unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["check", "-c", bad.to_str().unwrap()])
        .current_dir(repo)
        .env_remove("LIENTHONG_CONFIG")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("lisen"),
        "check -c did not read the file: {stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("check")
        .current_dir(repo)
        .env("LIENTHONG_CONFIG", &bad)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "LIENTHONG_CONFIG was ignored: {stderr}"
    );
    assert!(stderr.contains("lisen"), "{stderr}");
}

/// Before: a filter that matched no mapping printed "0 passed, 0 failed" and
/// exited 0, so a typo in CI ran nothing and passed.
#[test]
fn test_with_a_filter_that_matches_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("router/tests/fixtures/mappings");
    let (m, s) = (fx.join("good"), fx.join("schemas"));
    let (m, s) = (m.to_str().unwrap(), s.to_str().unwrap());
    let out = lienthong_in(
        dir.path(),
        &["test", "--mappings", m, "--schemas", s, "no-such-mapping"],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{}{stderr}", text(&out.stdout));
    assert!(
        stderr.contains("no test case matches `no-such-mapping`"),
        "{stderr}"
    );
    // The same files with no filter pass: the failure is the filter's.
    let out = lienthong_in(dir.path(), &["test", "--mappings", m, "--schemas", s]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

/// `messages show` prints times as the Department reads them and the
/// message's trail, and the trail names the CLI's user from the OS account
/// even with `$USER` and `$LOGNAME` unset (a cron job, a systemd unit).
/// Before: no trail, epoch milliseconds only, and the actor `cli:unknown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_show_has_local_times_the_trail_and_the_os_user() {
    let sink = hub_support::Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, hub_support::OPEN_INTAKE);
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let (s, v) = hub_support::post_json(
        &reqwest::Client::new(),
        &hub.base,
        "/inbound/portal/dossier.event",
        &serde_json::json!({ "code": "SHOW-1", "seq": 1, "msg_id": "m-show-1" }),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    hub_support::wait_until("delivered", std::time::Duration::from_secs(20), || {
        !sink.delivered().is_empty()
    })
    .await;
    drop(hub);

    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["messages", "show", &id, "--config"])
        .arg(&config)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("LIENTHONG_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let local = shown["message"]["received_at_local"]
        .as_str()
        .unwrap_or_default();
    assert!(local.ends_with("+07:00"), "Vietnam time: {shown}");
    let trail = shown["trail"].as_array().expect("the trail is shown");
    let kinds: Vec<&str> = trail.iter().filter_map(|t| t["kind"].as_str()).collect();
    for k in ["received", "delivered", "audit.read"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let me = text(&Command::new("id").arg("-un").output().unwrap().stdout)
        .trim()
        .to_string();
    let read = trail.iter().find(|t| t["kind"] == "audit.read").unwrap();
    assert_eq!(read["actor"], format!("cli:{me}"), "{read}");
}
