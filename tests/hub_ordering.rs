//! Ordering per (correlation id, destination) across retries.
//!
//! The sink answers 503 to the first three attempts for dossier `SLOW`. Its five
//! messages must still arrive in acceptance order (later ones wait while the first
//! retries), and the messages of dossiers `A` and `B`, accepted in between, must
//! flow meanwhile instead of queueing behind it.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hub_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrying_dossier_holds_back_only_its_own_messages() {
    let failures = Arc::new(AtomicU32::new(0));
    let f = failures.clone();
    let fault: Fault = Arc::new(move |body| {
        (body["code"] == "SLOW" && f.fetch_add(1, Ordering::SeqCst) < 3)
            .then_some(StatusCode::SERVICE_UNAVAILABLE)
    });
    let sink = Sink::start(Some(fault)).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let client = reqwest::Client::new();

    let mut first_slow_id = String::new();
    for seq in 1..=5 {
        for code in ["SLOW", "A", "B"] {
            let (status, body) = post_json(
                &client,
                &hub.base,
                "/inbound/portal/dossier.event",
                &json!({"code": code, "seq": seq}),
                &[],
            )
            .await;
            assert_eq!(status, 202, "{body}");
            assert_eq!(body["correlation_id"], code);
            if code == "SLOW" && seq == 1 {
                first_slow_id = body["id"].as_str().unwrap().to_string();
            }
        }
    }
    wait_until("15 deliveries", Duration::from_secs(30), || {
        sink.delivered().len() >= 15
    })
    .await;

    let hits = sink.hits.lock().unwrap().clone();
    for code in ["SLOW", "A", "B"] {
        let seqs: Vec<i64> = hits
            .iter()
            .filter(|h| h.body["code"] == code && h.status < 300)
            .map(|h| h.body["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            vec![1, 2, 3, 4, 5],
            "dossier {code} arrived out of order"
        );
    }
    // While SLOW#1 was failing, nothing later of SLOW was even attempted.
    let slow: Vec<(i64, u16)> = hits
        .iter()
        .filter(|h| h.body["code"] == "SLOW")
        .map(|h| (h.body["seq"].as_i64().unwrap(), h.status))
        .collect();
    assert_eq!(
        &slow[..4],
        &[(1, 503), (1, 503), (1, 503), (1, 200)],
        "{slow:?}"
    );
    // Other dossiers flowed: all of A and B were delivered before SLOW's first success.
    let slow_ok = hits
        .iter()
        .find(|h| h.body["code"] == "SLOW" && h.status < 300)
        .unwrap()
        .at;
    for code in ["A", "B"] {
        let last = hits
            .iter()
            .filter(|h| h.body["code"] == code)
            .map(|h| h.at)
            .max()
            .unwrap();
        assert!(last < slow_ok, "dossier {code} waited behind SLOW");
    }
    // The trail and the delivery record show the retries.
    let m: serde_json::Value = client
        .get(format!("{}/api/messages/{first_slow_id}", hub.base))
        .bearer_auth(AUDIT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["deliveries"][0]["state"], "delivered", "{m}");
    assert_eq!(m["deliveries"][0]["attempts"], 4, "{m}");
    // The recorded version is the versioned mapping store's (a fresh store imports the
    // file as version 1), not the `version:` written in the file.
    assert_eq!(m["deliveries"][0]["mapping_version"], 1, "{m}");
    let trail: serde_json::Value = client
        .get(format!("{}/api/messages/{first_slow_id}/trail", hub.base))
        .bearer_auth(AUDIT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "received",
            "routed",
            "mapped",
            "attempt",
            "attempt",
            "attempt",
            "attempt",
            "delivered",
            // The read of the message just above, by the test's auditor token.
            "audit.read"
        ],
        "{trail}"
    );
    let rows = trail.as_array().unwrap();
    assert_eq!(rows[3]["detail"]["status"], 503);
    assert_eq!(rows[3]["detail"]["error_class"], "transient");
}
