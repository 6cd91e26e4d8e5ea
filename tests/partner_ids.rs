//! Partner-facing ids across replays (issue 14, defect 4): a partner must be
//! able to recognise a replay of something it already applied. And what an
//! operator sees of a partner that stays down (defect 9): the queue-depth
//! gauge returns to 0 when nothing waits, and an exhausted dead letter says
//! that retrying is over and what to do, not that a retry will come.
//!
//! Against the built binary and a recording HTTP partner. On the main of
//! 2026-12-04 every replay went out with a new `Idempotency-Key` (the new
//! delivery's id), so a partner that had applied the request, but whose answer
//! was lost or refused, applied it a second time.
//!
//! What holds now: an as-sent replay (one message, or dead letters in bulk)
//! sends the key the partner was sent before; a new key is an explicit
//! `new_ids: true`, recorded in the trail; a remap replay (new content) always
//! has a new key, and `new_ids` with it is refused as meaningless.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use hub_support::*;
use serde_json::{json, Value};

async fn post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {AUDIT_TOKEN}");
    post_json(http, base, path, &body, &[("authorization", &auth)]).await
}

/// The keys the partner saw, in order, for requests carrying `code`.
fn keys_for(sink: &Sink, code: &str) -> Vec<(String, u16)> {
    sink.hits
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.body["code"] == code)
        .map(|h| (h.idempotency_key.clone(), h.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_keep_the_partner_facing_key_unless_told_otherwise() {
    // The partner refuses (400, permanent) while `refusing`; it records every key.
    let refusing = Arc::new(AtomicBool::new(true));
    let r = refusing.clone();
    let fault: Fault =
        Arc::new(move |_| r.load(Ordering::SeqCst).then_some(StatusCode::BAD_REQUEST));
    let sink = Sink::start(Some(fault)).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let http = reqwest::Client::new();

    let mut ids = Vec::new();
    for code in ["PK-1", "PK-2"] {
        let (s, v) = post_json(
            &http,
            &hub.base,
            "/inbound/portal/dossier.event",
            &json!({ "code": code, "seq": 1, "msg_id": format!("m-{code}") }),
            &[],
        )
        .await;
        assert_eq!(s, 202, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        until_states(&hub.base, &id, &["dead"]).await;
        ids.push(id);
    }
    let first_key = |code: &str| keys_for(&sink, code)[0].0.clone();
    let (k1, k2) = (first_key("PK-1"), first_key("PK-2"));
    assert!(!k1.is_empty() && k1 != k2, "{k1} {k2}");
    refusing.store(false, Ordering::SeqCst);

    // One message, as sent: the dry run says which key, the replay sends it.
    let path = format!("/api/v1/messages/{}/replay", ids[0]);
    let (s, v) = post(
        &http,
        &hub.base,
        &path,
        json!({"reason": "partner fixed its validation", "dry_run": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["targets"][0]["partner_key"], k1.as_str(), "{v}");
    let (s, v) = post(
        &http,
        &hub.base,
        &path,
        json!({"reason": "partner fixed its validation"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    until_states(&hub.base, &ids[0], &["dead", "delivered"]).await;
    let seen = keys_for(&sink, "PK-1");
    assert_eq!(
        seen.last().unwrap(),
        &(k1.clone(), 200),
        "an as-sent replay must carry the key the partner was sent: {seen:?}"
    );

    // Dead letters in bulk, as sent: the same.
    let (s, v) = post(
        &http,
        &hub.base,
        "/api/v1/dead-letters/replay",
        json!({"destination": "sink", "reason": "bulk after the fix"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    until_states(&hub.base, &ids[1], &["dead", "delivered"]).await;
    let seen = keys_for(&sink, "PK-2");
    assert_eq!(seen.last().unwrap(), &(k2.clone(), 200), "{seen:?}");

    // A new key only when asked for, and the trail says so.
    let (s, v) = post(
        &http,
        &hub.base,
        &path,
        json!({"reason": "the partner lost it; send as new", "new_ids": true, "targets": ["sink"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let new_delivery = v["new_deliveries"][0].as_str().unwrap().to_string();
    until_states(&hub.base, &ids[0], &["dead", "delivered", "delivered"]).await;
    let seen = keys_for(&sink, "PK-1");
    assert_eq!(
        seen.last().unwrap(),
        &(new_delivery.clone(), 200),
        "{seen:?}"
    );
    let timeline = api_get(&hub.base, "/api/v1/dossiers/PK-1/timeline").await;
    let replayed: Vec<&Value> = timeline["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "replayed")
        .collect();
    assert_eq!(replayed.len(), 2, "{timeline}");
    assert_eq!(replayed[0]["detail"]["idempotency_key"], k1.as_str());
    assert_eq!(replayed[0]["detail"]["new_idempotency_key"], false);
    assert_eq!(
        replayed[1]["detail"]["idempotency_key"],
        new_delivery.as_str()
    );
    assert_eq!(replayed[1]["detail"]["new_idempotency_key"], true);

    // A remap sends new content, so always a new key: `new_ids` there is refused.
    let (s, v) = post(
        &http,
        &hub.base,
        &path,
        json!({"reason": "x", "mode": "remap", "new_ids": true, "dry_run": true}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("new_ids"), "{v}");
}

async fn depth_gauge(http: &reqwest::Client, base: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("lienthong_queue_depth{destination=\"sink\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_delivery_says_so_and_the_depth_gauge_drains_to_zero() {
    let fault: Fault = Arc::new(|_| Some(StatusCode::SERVICE_UNAVAILABLE));
    let sink = Sink::start(Some(fault)).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("max_attempts: 20", "max_attempts: 3")
        .replace("initial: 100ms, max: 400ms", "initial: 700ms, max: 700ms");
    std::fs::write(&config, text).unwrap();
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let http = reqwest::Client::new();
    let (s, v) = post_json(
        &http,
        &hub.base,
        "/inbound/portal/dossier.event",
        &json!({ "code": "EX-1", "seq": 1, "msg_id": "m-ex-1" }),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        depth_gauge(&http, &hub.base).await,
        Some(1.0),
        "one delivery waits for the sink"
    );
    until_states(&hub.base, &id, &["dead"]).await;
    assert_eq!(
        depth_gauge(&http, &hub.base).await,
        Some(0.0),
        "nothing waits any more: the gauge must say 0, not its last value"
    );
    let m = api_get(&hub.base, &format!("/api/v1/messages/{id}")).await;
    let out = &m["outputs"][0];
    assert_eq!(out["error_class"], "exhausted", "{m}");
    let err = out["last_error"].as_str().unwrap();
    assert!(
        err.contains("gave up after 3 attempt(s)") && err.contains("replay it"),
        "{err}"
    );
    assert!(
        !err.contains("will retry"),
        "an exhausted delivery promises no retry: {err}"
    );
}
