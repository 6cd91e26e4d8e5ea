//! Intake against the running binary: each bad-input case gets its status and
//! every reason, is recorded as rejected with nothing half-stored; authentication
//! (API key, HMAC signature), per-partner rate limiting and idempotency.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::time::Duration;

use hub_support::*;
use serde_json::{json, Value};

const KEY: &str = "portal-test-key";
const SECRET: &str = "portal-hmac-secret";

/// SHA-256 hex of a key, computed the way the example config tells administrators to.
fn sha256_hex(s: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | sha256sum"))
        .output()
        .expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn sign(secret: &str, ts: i64, body: &str) -> String {
    router::intake::auth::sign(secret.as_bytes(), ts, body.as_bytes())
}

async fn start() -> (HubProcess, Sink, tempfile::TempDir) {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hmac.secret"), format!("{SECRET}\n")).unwrap();
    let port = free_port();
    let extra = format!(
        "intake:\n  rate_limit: {{ per_second: 1000, burst: 1000 }}\npartners:\n  portal:\n    api_key_sha256: {}\n    hmac_secret_file: {}\n  station:\n    api_key_sha256: {}\n    rate_limit: {{ per_second: 1, burst: 2 }}\n",
        sha256_hex(KEY),
        dir.path().join("hmac.secret").display(),
        sha256_hex("station-key"),
    );
    let config = write_config(dir.path(), port, &sink.url, &extra);
    let hub = HubProcess::spawn(&config, port, &[]).await;
    (hub, sink, dir)
}

async fn send(
    base: &str,
    path: &str,
    ct: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, Value, Option<String>) {
    let client = reqwest::Client::new();
    let mut rb = client
        .post(format!("{base}{path}"))
        .header("content-type", ct)
        .body(body);
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

async fn message(base: &str, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/messages/{id}"))
        .bearer_auth(AUDIT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_rejects_each_bad_input_clearly_and_accepts_good_input_once() {
    let (hub, sink, _dir) = start().await;
    let b = hub.base.as_str();
    let bearer = vec![("authorization", format!("Bearer {KEY}"))];
    let ev = "/inbound/portal/dossier.event";
    let good = |code: &str| {
        json!({"code": code, "seq": 1, "msg_id": format!("msg-{code}")})
            .to_string()
            .into_bytes()
    };

    // 404: unknown system, unknown message type (after authentication).
    let (s, v, _) = send(
        b,
        "/inbound/nowhere/x",
        "application/json",
        good("X"),
        &bearer,
    )
    .await;
    assert_eq!(s, 404, "{v}");
    assert!(v["reasons"][0].as_str().unwrap().contains("nowhere"), "{v}");
    let (s, v, _) = send(
        b,
        "/inbound/portal/nope",
        "application/json",
        good("X"),
        &bearer,
    )
    .await;
    assert_eq!(s, 404, "{v}");
    assert!(v["reasons"][0].as_str().unwrap().contains("nope"), "{v}");

    // 401: no credentials, wrong key, bad signature, stale timestamp.
    let (s, v, _) = send(b, ev, "application/json", good("X"), &[]).await;
    assert_eq!(s, 401, "{v}");
    let (s, _, _) = send(
        b,
        ev,
        "application/json",
        good("X"),
        &[("authorization", "Bearer wrong".into())],
    )
    .await;
    assert_eq!(s, 401);
    let now = chrono::Utc::now().timestamp();
    let body = String::from_utf8(good("SIG")).unwrap();
    let (s, v, _) = send(
        b,
        ev,
        "application/json",
        body.clone().into_bytes(),
        &[
            ("x-timestamp", now.to_string()),
            ("x-signature", sign("other", now, &body)),
        ],
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["reasons"][0].as_str().unwrap().contains("signature"),
        "{v}"
    );
    let old = now - 3600;
    let (s, _, _) = send(
        b,
        ev,
        "application/json",
        body.clone().into_bytes(),
        &[
            ("x-timestamp", old.to_string()),
            ("x-signature", sign(SECRET, old, &body)),
        ],
    )
    .await;
    assert_eq!(s, 401);
    // A good signature is accepted.
    let (s, v, _) = send(
        b,
        ev,
        "application/json",
        body.clone().into_bytes(),
        &[
            ("x-timestamp", now.to_string()),
            ("x-signature", sign(SECRET, now, &body)),
        ],
    )
    .await;
    assert_eq!(s, 202, "{v}");

    // 415: JSON type posted as XML.
    let (s, v, _) = send(b, ev, "application/xml", good("X"), &bearer).await;
    assert_eq!(s, 415, "{v}");
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{v}"
    );
    let rejected_id = v["id"].as_str().unwrap().to_string();

    // 413: over MAX_BODY_BYTES.
    let big = vec![b' '; router::limits::MAX_BODY_BYTES + 1];
    let (s, v) = send_oversize(b, "POST", ev, "application/json", big, &bearer).await;
    assert_eq!(s, 413, "{v}");

    // 400: malformed JSON and XML, with the position.
    let (s, v, _) = send(b, ev, "application/json", b"{\"code\": ".to_vec(), &bearer).await;
    assert_eq!(s, 400, "{v}");
    let (s, v, _) = send(
        b,
        "/inbound/portal/dossier.xml",
        "application/xml",
        b"<Dossier><code>x</Dossier>".to_vec(),
        &bearer,
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // 422: every schema violation is listed; nothing is delivered.
    let (s, v, _) = send(
        b,
        ev,
        "application/json",
        json!({"code": 5, "seq": -1}).to_string().into_bytes(),
        &bearer,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["reasons"].as_array().unwrap().len() >= 2, "{v}");
    let m = message(b, v["id"].as_str().unwrap()).await;
    assert_eq!(m["state"], "rejected", "{m}");
    assert_eq!(m["deliveries"].as_array().unwrap().len(), 0, "{m}");
    assert!(m["reasons"].as_array().unwrap().len() >= 2, "{m}");
    let m = message(b, &rejected_id).await;
    assert_eq!(m["state"], "rejected", "{m}");

    // Idempotency: by the partner message id, and by the Idempotency-Key header.
    let (s, first, _) = send(b, ev, "application/json", good("IDEM"), &bearer).await;
    assert_eq!(s, 202, "{first}");
    let (s, again, _) = send(b, ev, "application/json", good("IDEM"), &bearer).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(first["id"], again["id"]);
    assert_eq!(again["duplicate"], true);
    let mut h = bearer.clone();
    h.push(("idempotency-key", "key-1".into()));
    let (_, k1, _) = send(
        b,
        ev,
        "application/json",
        json!({"code": "K", "seq": 1}).to_string().into_bytes(),
        &h,
    )
    .await;
    let (_, k2, _) = send(
        b,
        ev,
        "application/json",
        json!({"code": "K", "seq": 1}).to_string().into_bytes(),
        &h,
    )
    .await;
    assert_eq!(k1["id"], k2["id"]);
    assert_eq!(k1["correlation_id"], "K");
    wait_until(
        "deliveries of SIG, IDEM and K",
        Duration::from_secs(15),
        || sink.delivered().len() >= 3,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let codes: Vec<String> = sink
        .delivered()
        .iter()
        .map(|h| h.body["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "IDEM").count(),
        1,
        "{codes:?}"
    );
    assert_eq!(codes.iter().filter(|c| *c == "K").count(), 1, "{codes:?}");
    assert_eq!(
        codes.len(),
        3,
        "only accepted messages are delivered: {codes:?}"
    );

    // 429 with Retry-After once a partner exceeds its rate (burst 2, 1/s).
    let st = vec![("authorization", "Bearer station-key".to_string())];
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..4 {
        let (s, _, r) = send(
            b,
            "/inbound/station/reading",
            "application/json",
            json!({"station": format!("S{i}")}).to_string().into_bytes(),
            &st,
        )
        .await;
        statuses.push(s);
        retry_after = retry_after.or(r);
    }
    assert_eq!(&statuses[..2], &[202, 202], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // The other partner is not affected.
    let (s, _, _) = send(b, ev, "application/json", good("AFTER"), &bearer).await;
    assert_eq!(s, 202);

    // Metrics expose the counters.
    let metrics = reqwest::get(format!("{b}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("lienthong_rejected_total"), "{metrics}");
    assert!(metrics.contains("lienthong_delivered_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_intake_and_keeps_undelivered_messages_queued() {
    // The sink is down (connection refused): deliveries stay queued.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead_port = free_port();
    let config = write_config(
        dir.path(),
        port,
        &format!("http://127.0.0.1:{dead_port}/sink"),
        OPEN_INTAKE,
    );
    let mut hub = HubProcess::spawn(&config, port, &[]).await;
    let client = reqwest::Client::new();
    let (s, v) = post_json(
        &client,
        &hub.base,
        "/inbound/portal/dossier.event",
        &json!({"code": "Q", "seq": 1}),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    hub.sigterm();
    let status = tokio::task::spawn_blocking(move || {
        let s = hub.child.wait().unwrap();
        drop(hub);
        s
    })
    .await
    .unwrap();
    assert!(status.success(), "serve exited with {status}");
    // Restart with the sink up: the queued message is delivered.
    let sink = Sink::start(None).await;
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let _hub = HubProcess::spawn(&config, port, &[]).await;
    wait_until("the queued message", Duration::from_secs(20), || {
        sink.delivered().iter().any(|h| h.body["code"] == "Q")
    })
    .await;
}
