//! Intake as an attacker meets it (issue 13, items 3, 4, 5, 7 and 8, and the
//! shutdown and auth-scheme items): against the running binary, over raw
//! sockets where an HTTP client library would hide what the hub does.
//!
//! Each test here failed on the main of 2026-12-03:
//! * a declared oversize body without credentials wrote a message and a trail row;
//! * a request to a made-up system created a metric series named after it;
//! * the body was read before the credentials were checked;
//! * a signed request replayed with a new `Idempotency-Key` was a new message;
//! * nothing bounded the requests in flight;
//! * a trickled header, an idle keep-alive socket and a stalled body were held open;
//! * the draining 503 had no `Connection: close`;
//! * `Authorization: BEARER <key>` was refused.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::time::{Duration, Instant};

use hub_support::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "edge-portal-key";
const SECRET: &str = "edge-hmac-secret";
const EV: &str = "/inbound/portal/dossier.event";

/// SHA-256 hex of the key, computed the way the example config tells administrators to.
fn key_sha() -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{KEY}' | sha256sum"))
        .output()
        .expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A hub with the `portal` partner (API key and HMAC secret), and `lines`
/// (already indented) added under its `server:` section.
async fn start_with_server(lines: &str) -> (HubProcess, Sink, tempfile::TempDir) {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hmac.secret"), SECRET).unwrap();
    let port = free_port();
    let extra = format!(
        "intake:\n  rate_limit: {{ per_second: 100000, burst: 100000 }}\npartners:\n  portal:\n    api_key_sha256: {}\n    hmac_secret_file: {}\n",
        key_sha(),
        dir.path().join("hmac.secret").display(),
    );
    let config = write_config(dir.path(), port, &sink.url, &extra);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("server:\n", &format!("server:\n{lines}"), 1),
    )
    .unwrap();
    let hub = HubProcess::spawn(&config, port, &[]).await;
    (hub, sink, dir)
}

/// Writes `head` on a fresh connection and reads the answer (or up to `wait`).
async fn raw(base: &str, head: &str, wait: Duration) -> (Option<u16>, String) {
    let mut conn = TcpStream::connect(addr(base)).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if head_complete(&buf) {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    (status_of(&text), text)
}

fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

fn status_of(text: &str) -> Option<u16> {
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// Rows in the hub's SQLite store: (messages, trail).
async fn rows(dir: &tempfile::TempDir) -> (i64, i64) {
    let url = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("data/lienthong.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let m: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    let t: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trail")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    (m, t)
}

fn dossier(code: &str) -> String {
    json!({"code": code, "seq": 1, "msg_id": format!("msg-{code}")}).to_string()
}

/// Item 4: nothing is stored for a caller that has not authenticated, even on
/// the 413 path, which needs no body at all; an authenticated 413 still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_oversize_declaration_writes_nothing() {
    let (hub, _sink, dir) = start_with_server("").await;
    let before = rows(&dir).await;
    let head = format!(
        "POST {EV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\nX-Junk: {}\r\nConnection: close\r\n\r\n",
        "A".repeat(8000)
    );
    for _ in 0..50 {
        let (status, text) = raw(&hub.base, &head, Duration::from_secs(5)).await;
        assert_eq!(status, Some(401), "{text}");
    }
    assert_eq!(
        rows(&dir).await,
        before,
        "unauthenticated requests wrote to the store"
    );
    // The same declaration from the partner is refused and recorded, as before.
    let authed = head.replace(
        "Connection: close",
        &format!("Authorization: Bearer {KEY}\r\nConnection: close"),
    );
    let (status, text) = raw(&hub.base, &authed, Duration::from_secs(5)).await;
    assert_eq!(status, Some(413), "{text}");
    let after = rows(&dir).await;
    assert_eq!(after.0, before.0 + 1, "the partner's 413 is recorded");
}

/// Item 8, first half: the credentials are checked from the headers, before a
/// byte of the body is read. The client sends only the headers of a large body;
/// the hub answers 401 at once instead of waiting for the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_before_the_body_is_read() {
    let (hub, _sink, _dir) = start_with_server("").await;
    let head = format!(
        "POST {EV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n"
    );
    let t0 = Instant::now();
    let (status, text) = raw(&hub.base, &head, Duration::from_secs(5)).await;
    assert_eq!(
        status,
        Some(401),
        "no answer before the body was sent: {text}"
    );
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // A bad signature needs the body, but a stale or malformed one does not.
    let stale = chrono::Utc::now().timestamp() - 3600;
    let head = format!(
        "POST {EV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\nX-Timestamp: {stale}\r\nX-Signature: sha256=00\r\n\r\n"
    );
    let (status, text) = raw(&hub.base, &head, Duration::from_secs(5)).await;
    assert_eq!(status, Some(401), "{text}");
    assert!(text.contains("clock"), "{text}");
}

/// Item 3: labels come only from configured systems; anything else is `unknown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_systems_create_no_metric_series() {
    let (hub, _sink, _dir) = start_with_server("").await;
    let client = reqwest::Client::new();
    for i in 0..200 {
        let r = client
            .post(format!("{}/inbound/made-up-{i}/x", hub.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let metrics = client
        .get(format!("{}/metrics", hub.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("made-up-"),
        "a request path became a metric label"
    );
    assert!(
        metrics.contains("system=\"unknown\""),
        "unconfigured systems are counted under `unknown`:\n{metrics}"
    );
}

/// Item 5: the signature covers `Idempotency-Key`, so a signed request
/// replayed with new keys is refused instead of becoming new messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_cannot_be_replayed_with_a_new_idempotency_key() {
    let (hub, sink, _dir) = start_with_server("").await;
    let client = reqwest::Client::new();
    let body = dossier("REPLAY-1");
    let ts = chrono::Utc::now().timestamp();
    let sig = router::intake::auth::sign_request(
        SECRET.as_bytes(),
        ts,
        &[("Idempotency-Key", "k-original")],
        body.as_bytes(),
    );
    let post = |key: &'static str| {
        client
            .post(format!("{}{EV}", hub.base))
            .header("content-type", "application/json")
            .header("x-timestamp", ts.to_string())
            .header("x-signature", sig.clone())
            .header("idempotency-key", key)
            .body(body.clone())
            .send()
    };
    let first = post("k-original").await.unwrap();
    assert_eq!(first.status(), 202, "{:?}", first.text().await);
    for key in ["k-2", "k-3", "k-4"] {
        let r = post(key).await.unwrap();
        assert_eq!(r.status(), 401, "a replay with `{key}` was let in");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["reasons"][0]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{v}"
        );
    }
    // The same request again is the same message.
    let again = post("k-original").await.unwrap();
    assert_eq!(again.status(), 202);
    let v: Value = again.json().await.unwrap();
    assert_eq!(v["duplicate"], true, "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.delivered().len(), 1, "delivered once");
}

/// RFC 9110: the auth scheme is case-insensitive, at intake as on the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let (hub, _sink, _dir) = start_with_server("").await;
    let client = reqwest::Client::new();
    for (i, scheme) in ["Bearer", "bearer", "BEARER", "bEaReR"].iter().enumerate() {
        let r = client
            .post(format!("{}{EV}", hub.base))
            .header("content-type", "application/json")
            .header("authorization", format!("{scheme} {KEY}"))
            .body(dossier(&format!("CASE-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "scheme `{scheme}`");
    }
    // And the API: an auditor token with a lower-case scheme.
    let r = client
        .get(format!("{}/api/v1/routes", hub.base))
        .header("authorization", format!("bearer {AUDIT_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An unauthenticated query that does not parse is 401, not 400.
    let r = client
        .get(format!(
            "{}/api/v1/mappings/x/diff?from=not-a-number",
            hub.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Item 8, second half: the requests in flight are bounded; more are shed
/// with 503 and `Retry-After`, while the probes still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_limit_are_shed_with_retry_after() {
    let (hub, _sink, _dir) = start_with_server("  max_concurrent_requests: 2\n").await;
    // Two authenticated requests whose bodies never come hold both slots.
    let head = format!(
        "POST {EV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 1000\r\n\r\n{{"
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr(&hub.base)).await.unwrap();
        c.write_all(head.as_bytes()).await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = reqwest::Client::new()
        .post(format!("{}{EV}", hub.base))
        .header("content-type", "application/json")
        .bearer_auth(KEY)
        .body(dossier("SHED-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("max_concurrent_requests"),
        "{v}"
    );
    let r = reqwest::get(format!("{}/healthz", hub.base)).await.unwrap();
    assert_eq!(r.status(), 200, "the probes are outside the limit");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = post_json(
        &reqwest::Client::new(),
        &hub.base,
        EV,
        &serde_json::from_str(&dossier("SHED-2")).unwrap(),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    assert_eq!(s, 202, "{v}");
}

/// Item 7: header-read, idle keep-alive and body-read timeouts close what a
/// slow or silent client holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_timed_out() {
    let (hub, _sink, _dir) = start_with_server(
        "  header_read_timeout: 1s\n  body_read_timeout: 1s\n  request_timeout: 5s\n",
    )
    .await;

    // Headers trickled one line every 400 ms: closed after about a second.
    let mut c = TcpStream::connect(addr(&hub.base)).await.unwrap();
    let t0 = Instant::now();
    c.write_all(format!("POST {EV} HTTP/1.1\r\n").as_bytes())
        .await
        .unwrap();
    let mut closed = false;
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if c.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut b = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), c.read(&mut b)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled header was held for {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());

    // An idle kept-alive connection after one answer: closed.
    let mut c = TcpStream::connect(addr(&hub.base)).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t0 = Instant::now();
    let eof = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(eof.is_ok(), "an idle keep-alive socket stayed open for 5 s");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());

    // A body that claims 100 bytes and sends 10: 408, not held.
    let head = format!(
        "POST {EV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 100\r\n\r\n{{\"code\":1"
    );
    let t0 = Instant::now();
    let (status, text) = raw(&hub.base, &head, Duration::from_secs(6)).await;
    assert_eq!(status, Some(408), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert!(text.contains("body_read_timeout"), "{text}");
}

/// The 503 sent while draining carries `Retry-After` and `Connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_draining_answer_closes_the_connection_and_says_when_to_retry() {
    // A partner that takes 5 s per delivery keeps the hub draining for its
    // whole drain deadline (2 s in the test config).
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/", slow.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "ok"
    });
    tokio::spawn(async move { axum::serve(slow, app).await });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &slow_url, OPEN_INTAKE);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("timeout: 2s", "timeout: 10s");
    std::fs::write(&config, text).unwrap();
    let mut hub = HubProcess::spawn(&config, port, &[]).await;
    let client = reqwest::Client::new();
    let (s, v) = post_json(
        &client,
        &hub.base,
        EV,
        &serde_json::from_str(&dossier("DRAIN-1")).unwrap(),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await; // the delivery is in flight
    hub.sigterm();
    let head = format!(
        "POST {EV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    let answer = loop {
        let (status, text) = raw(&hub.base, &head, Duration::from_secs(2)).await;
        if status == Some(503) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no 503 while draining; last: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 2"), "{answer}");
    assert!(lower.contains("connection: close"), "{answer}");
}

/// Logs: a `%0A` in a path cannot forge a log line, a `%00` cannot write a NUL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_path_cannot_forge_a_log_line() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let log_path = dir.path().join("hub.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until("the hub to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr(&base)).is_ok()
    })
    .await;
    let r = reqwest::Client::new()
        .post(format!(
            "{base}/inbound/portal/x%0A2026-12-04T00:00:00Z%20INFO%20forged%20admin%20login%00end"
        ))
        .header("content-type", "application/json")
        .body(dossier("LOG-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read(&log_path).unwrap();
    assert!(!text.contains(&0), "a NUL byte reached the log");
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("forged"), "the request was logged:\n{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-12-04T00:00:00Z"),
            "a forged log line:\n{text}"
        );
    }
}
