//! Hostile values in bodies and settings (issue 13, item 6 and the duplicate-key
//! item): against the running binary and the CLI. Each failed on the main of
//! 2026-12-03: a duplicate key was accepted (last one wins), and an age or a
//! duration past the edge of the arithmetic was accepted and wrapped.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::process::Command;
use std::time::Duration;

use hub_support::*;
use serde_json::{json, Value};

const ADMIN: &str = "edge-input-admin-token";

fn sha256_hex(s: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | sha256sum"))
        .output()
        .expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn tokens() -> String {
    format!(
        "{OPEN_INTAKE}tokens:\n  - {{ name: test-admin, role: admin, sha256: {} }}\n  - {{ name: test-auditor, role: auditor, sha256: {} }}\n",
        sha256_hex(ADMIN),
        sha256_hex(AUDIT_TOKEN)
    )
}

fn lienthong(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_json_keys_are_refused_naming_the_key() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, &tokens());
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let r = reqwest::Client::new()
        .post(format!("{}/inbound/portal/dossier.event", hub.base))
        .header("content-type", "application/json")
        .body(r#"{"code": "DUP-1", "seq": 1, "msg_id": "m-dup", "code": "DUP-2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("duplicate key `code`"), "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.delivered().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_age_past_the_arithmetic_is_refused_and_prunes_nothing() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, &tokens());
    let mut hub = HubProcess::spawn(&config, port, &[]).await;
    let client = reqwest::Client::new();
    let (s, v) = post_json(
        &client,
        &hub.base,
        "/inbound/portal/dossier.event",
        &json!({"code": "AGE-1", "seq": 1, "msg_id": "m-age"}),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    for age in ["99999999999999999d", "9300000000000000s", "36501d"] {
        let r = client
            .post(format!("{}/api/v1/audit/prune", hub.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "older_than": age }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{age}: {v}");
        assert!(
            v["reasons"][0].as_str().unwrap().contains("older_than"),
            "{v}"
        );
    }
    hub.kill9();

    let cfg = config.to_str().unwrap();
    let (ok, text) = lienthong(&[
        "audit",
        "prune",
        "--config",
        cfg,
        "--older-than",
        "9300000000000000s",
    ]);
    assert!(!ok, "{text}");
    assert!(text.contains("--older-than"), "{text}");
    assert!(text.contains("100 years"), "{text}");

    // The message's payload is still there.
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let m: Value = client
        .get(format!("{}/api/v1/messages/{id}", hub.base))
        .bearer_auth(AUDIT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        m.to_string().contains("AGE-1"),
        "the payload was pruned: {m}"
    );
}

#[test]
fn settings_past_the_arithmetic_are_refused_by_check_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 1, "http://127.0.0.1:9/", OPEN_INTAKE);
    let text = std::fs::read_to_string(&config).unwrap();
    let bad = text
        .replace("drain_deadline: 2s", "drain_deadline: 99999999999h")
        .replace("timeout: 2s", "timeout: 1e300s")
        + "retention:\n  payloads: 99999999999999999d\n";
    std::fs::write(&config, bad).unwrap();
    let (ok, text) = lienthong(&["check", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{text}");
    for key in ["server.drain_deadline", "retention.payloads", "timeout"] {
        assert!(text.contains(key), "`{key}` not named:\n{text}");
    }
}
