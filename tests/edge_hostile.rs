//! The hostile-input battery, on every route that takes a body (issue 13).
//!
//! The routes are not listed here: they come from the live table
//! (`GET /api/v1/routes`), so a body-taking route added later is attacked too.
//! Each route gets each hostile body twice, once without credentials and once
//! with the strongest credential its access allows (an admin token, the
//! partner's key; a console route gets no session and must redirect). Every
//! answer must be a 4xx (or the console's 303 to sign-in), never a 5xx, never
//! a hang; API answers must have the `{"error", "reasons"}` shape; nothing
//! sent without credentials may reach the store; and the hub must still be
//! healthy and within a memory bound afterwards.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::time::Duration;

use hub_support::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "hostile-admin-token";
const KEY: &str = "hostile-portal-key";

fn sha256_hex(s: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | sha256sum"))
        .output()
        .expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// (name, content type, body, declared length if it differs from the body's).
fn hostile_bodies() -> Vec<(&'static str, &'static str, Vec<u8>, Option<usize>)> {
    let big = router::limits::MAX_BODY_BYTES + 1;
    vec![
        ("empty", "application/json", Vec::new(), None),
        ("not utf-8", "application/json", b"{\"a\": \"\xC0\xAF\"}".to_vec(), None),
        ("nul bytes", "application/json", b"\0\0\0{\0}".to_vec(), None),
        ("deep nesting", "application/json", "[".repeat(100_000).into_bytes(), None),
        (
            "a million values",
            "application/json",
            format!("[{}1]", "1,".repeat(1_000_000)).into_bytes(),
            None,
        ),
        (
            "duplicate keys",
            "application/json",
            br#"{"content": "a", "content": "b", "code": "X", "code": "Y", "seq": 1}"#.to_vec(),
            None,
        ),
        (
            "wrong type",
            "application/json",
            br#"{"content": 5, "code": [], "seq": "x", "older_than": {}, "ids": "x"}"#.to_vec(),
            None,
        ),
        ("xml bomb", "application/xml", b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xxxxxxxx\"><!ENTITY y \"&x;&x;&x;&x;&x;&x;\">]><a>&y;&y;&y;</a>".to_vec(), None),
        (
            "yaml alias bomb",
            "application/yaml",
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n".to_vec(),
            None,
        ),
        ("form garbage", "application/x-www-form-urlencoded", b"%%%=&&=%ZZ&reason=%00".to_vec(), None),
        ("declared oversize", "application/json", b"{}".to_vec(), Some(big)),
    ]
}

/// Sends one request over a raw socket and returns (status, headers+body text).
async fn send(
    base: &str,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
    declared: Option<usize>,
    auth: &[(String, String)],
) -> (u16, String) {
    let t0 = std::time::Instant::now();
    let mut conn = tokio::net::TcpStream::connect(addr(base)).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nOrigin: {base}\r\nIf-Match: \"1\"\r\nConnection: close\r\n",
        addr(base),
        declared.unwrap_or(body.len())
    );
    for (k, v) in auth {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    if declared.is_none() {
        let _ = conn.write_all(body).await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        read.is_ok() || !answer.is_empty(),
        "{method} {path}: no answer within 20 s"
    );
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // A refusal is cheap: nothing here may wait for a body that is not coming.
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "{method} {path}: answered {status} after {:?}",
        t0.elapsed()
    );
    (status, text)
}

fn concrete(path: &str, message_id: &str) -> Vec<String> {
    let mapping = "portal/dossier-event.to-sink";
    let fill = |p: &str| {
        p.replace("{system}", "portal")
            .replace("{message_type}", "dossier.event")
            .replace("{id}", message_id)
    };
    if path.contains("{*rest}") {
        ["", "/validate", "/preview", "/rollback"]
            .iter()
            .map(|s| fill(&path.replace("{*rest}", &format!("{mapping}{s}"))))
            .collect()
    } else {
        vec![fill(path)]
    }
}

async fn rows(dir: &tempfile::TempDir) -> (i64, i64) {
    let url = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("data/lienthong.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let m = count("SELECT COUNT(*) FROM messages").await;
    let t = count("SELECT COUNT(*) FROM trail").await;
    pool.close().await;
    (m, t)
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_taking_route_survives_the_hostile_battery() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "intake:\n  rate_limit: {{ per_second: 100000, burst: 100000 }}\npartners:\n  portal:\n    api_key_sha256: {}\ntokens:\n  - {{ name: hostile-admin, role: admin, sha256: {} }}\n",
        sha256_hex(KEY),
        sha256_hex(ADMIN)
    );
    let config = write_config(dir.path(), port, &sink.url, &extra);
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let client = reqwest::Client::new();

    // One real message, so that `{id}` routes have something to aim at.
    let (s, v) = post_json(
        &client,
        &hub.base,
        "/inbound/portal/dossier.event",
        &json!({"code": "HOSTILE-0", "seq": 1, "msg_id": "m-hostile-0"}),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // Its delivery writes trail rows of its own; let it finish first.
    wait_until("the first delivery", Duration::from_secs(10), || {
        sink.delivered().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let table: Vec<Value> = client
        .get(format!("{}/api/v1/routes", hub.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body_routes: Vec<&Value> = table
        .iter()
        .filter(|r| matches!(r["method"].as_str(), Some("POST" | "PUT" | "PATCH")))
        .collect();
    assert!(body_routes.len() >= 8, "{table:?}");

    let mut tried = 0;
    for route in body_routes {
        let method = route["method"].as_str().unwrap();
        let kind = route["access"]["kind"].as_str().unwrap();
        let console = route["path"].as_str().unwrap().starts_with("/console");
        for path in concrete(route["path"].as_str().unwrap(), &id) {
            for (name, ct, body, declared) in hostile_bodies() {
                // Without credentials: refused, and nothing stored.
                let before = rows(&dir).await;
                let (status, text) = send(&hub.base, method, &path, ct, &body, declared, &[]).await;
                let ok = match kind {
                    "public" => (400..500).contains(&status) || status == 303 || status == 200,
                    "console" => status == 303 || (400..500).contains(&status),
                    // A declared size over the route's limit is refused at once, before the guard.
                    _ => status == 401 || status == 413,
                };
                assert!(
                    ok,
                    "{method} {path} [{name}] without credentials: {status}\n{text}"
                );
                if kind != "public" {
                    assert_eq!(
                        rows(&dir).await,
                        before,
                        "{method} {path} [{name}] without credentials wrote to the store"
                    );
                }
                // With credentials (console routes have no session here).
                let auth = match kind {
                    "partner" => vec![("Authorization".to_string(), format!("Bearer {KEY}"))],
                    "api" => vec![("Authorization".to_string(), format!("Bearer {ADMIN}"))],
                    _ => vec![],
                };
                if auth.is_empty() {
                    continue;
                }
                let (status, text) =
                    send(&hub.base, method, &path, ct, &body, declared, &auth).await;
                tried += 1;
                assert!(
                    (400..500).contains(&status),
                    "{method} {path} [{name}] as {kind}: {status} (a hostile body must be a 4xx)\n{text}"
                );
                if !console {
                    let json_body = text.split("\r\n\r\n").nth(1).unwrap_or("");
                    let v: Value = serde_json::from_str(json_body)
                        .unwrap_or_else(|_| panic!("{method} {path} [{name}]: not JSON:\n{text}"));
                    assert!(
                        v["error"].is_string() && v["reasons"].is_array(),
                        "{method} {path} [{name}]: not the error shape: {v}"
                    );
                }
            }
        }
    }
    assert!(tried >= 50, "only {tried} authenticated hostile requests");

    let r = client
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the hub is still alive");
    let peak = rss_mib(hub.child.id());
    assert!(peak < 400, "peak RSS {peak} MiB after the battery");
    // And it still accepts a real message.
    let (s, v) = post_json(
        &client,
        &hub.base,
        "/inbound/portal/dossier.event",
        &json!({"code": "HOSTILE-1", "seq": 1, "msg_id": "m-hostile-1"}),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    assert_eq!(s, 202, "{v}");
}
