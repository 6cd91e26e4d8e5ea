//! Hot reload under load: `lienthong serve` takes HTTP intake continuously
//! while an administrator activates new versions of the mapping over and over
//! through `PUT /api/v1/mappings/{id}`. Every message answered 202 must reach
//! the sink exactly once, and each delivery must be consistent with the
//! mapping version the store recorded for it (version N writes `vN-` into
//! `msg_id`, so the bytes themselves say which version produced them).

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hub_support::*;
use serde_json::{json, Value};
use sqlx::Row;

const ID: &str = "portal/dossier-event.to-sink";
const TOKEN: &str = "reload-admin-4d7e1a93c2";

fn sha256_hex(s: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Version `n` of the fixture mapping: `msg_id` becomes `v<n>-<msg_id>`.
fn version_text(original: &str, n: i64) -> String {
    let out = original.replace(
        "  - { target: msg_id, source: msg_id }",
        &format!("  - {{ target: msg_id, template: \"v{n}-{{msg_id}}\" }}"),
    );
    assert_ne!(out, original, "the fixture mapping has the msg_id rule");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapping_mappings_under_load_loses_and_duplicates_nothing() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let fx = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub");
    copy_dir(&fx.join("mappings"), &dir.path().join("mappings"));
    let port = free_port();
    let config = dir.path().join("lienthong.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: 127.0.0.1:{port}\n  drain_deadline: 2s\nstore:\n  data_dir: {data}\npaths:\n  mappings: {m}\n  schemas: {s}\n\
             destinations:\n  sink:\n    url: \"{url}\"\n    timeout: 2s\n    rate_limit: {{ per_second: 5000, burst: 5000 }}\n    concurrency: 32\n    max_attempts: 20\n    backoff: {{ initial: 100ms, max: 400ms, multiplier: 2.0, jitter: 0.0 }}\n\
             {OPEN_INTAKE}tokens:\n  - {{ name: thu, role: admin, sha256: {sha} }}\n",
            data = dir.path().join("data").display(),
            m = dir.path().join("mappings").display(),
            s = fx.join("schemas").display(),
            url = sink.url,
            sha = sha256_hex(TOKEN),
        ),
    )
    .unwrap();
    let mut hub = HubProcess::spawn(&config, port, &[]).await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1/mappings/{ID}", hub.base);
    let original: Value = http
        .get(&api)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        original["version"], 1,
        "the file was imported as version 1: {original}"
    );
    let original = original["content"].as_str().unwrap().to_string();

    // Continuous intake from 4 clients.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..4 {
        let (stop, accepted, base) = (stop.clone(), accepted.clone(), hub.base.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let code = format!("R{c}-{n}");
                let body = json!({ "code": code, "seq": n, "msg_id": format!("m-{code}") });
                let r = client
                    .post(format!("{base}/inbound/portal/dossier.event"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("intake stays up during reloads");
                assert_eq!(
                    r.status().as_u16(),
                    202,
                    "intake answered {} during a reload: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                accepted.lock().unwrap().push(code);
                n += 1;
            }
        }));
    }

    // Meanwhile: 8 activations, each through the gate, with If-Match.
    let swaps = 8;
    let started = Instant::now();
    let mut swap_times = Vec::new();
    for k in 1..=swaps {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let t = Instant::now();
        let r = http
            .put(format!("{api}?comment=load%20swap%20{k}"))
            .bearer_auth(TOKEN)
            .header("if-match", k.to_string())
            .header("content-type", "application/yaml")
            .body(version_text(&original, k + 1))
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(
            status.as_u16(),
            200,
            "swap {k}: {}",
            r.text().await.unwrap_or_default()
        );
        swap_times.push(t.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    eprintln!(
        "{} messages accepted in {:?} while {swaps} versions were activated (gate + swap: min {:?}, max {:?})",
        accepted.len(),
        started.elapsed(),
        swap_times.iter().min().unwrap(),
        swap_times.iter().max().unwrap()
    );

    // Every accepted message arrives exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = sink.delivered().len();
        if got >= accepted.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {} accepted messages delivered",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = sink.delivered();
    let mut per_code: HashMap<String, Vec<Value>> = HashMap::new();
    for h in &hits {
        per_code
            .entry(h.body["code"].as_str().unwrap().to_string())
            .or_default()
            .push(h.body.clone());
    }
    for code in &accepted {
        let n = per_code.get(code).map_or(0, Vec::len);
        assert_eq!(n, 1, "{code} delivered {n} times");
    }
    assert_eq!(
        hits.len(),
        accepted.len(),
        "nothing delivered that was not accepted"
    );

    // The store's recorded version agrees with the bytes that were sent.
    hub.sigterm();
    let url = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("data/lienthong.db").display()
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT correlation_id, mapping_id, mapping_version FROM deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut by_version: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        let code: String = r.get("correlation_id");
        let version: i64 = r.get("mapping_version");
        assert_eq!(r.get::<String, _>("mapping_id"), ID);
        let sent = &per_code[&code][0];
        let msg_id = sent["msg_id"].as_str().unwrap();
        let expected = if version == 1 {
            format!("m-{code}")
        } else {
            format!("v{version}-m-{code}")
        };
        assert_eq!(
            msg_id, expected,
            "{code}: recorded version {version}, sent {msg_id}"
        );
        *by_version.entry(version).or_default() += 1;
    }
    assert_eq!(rows.len(), accepted.len());
    let mut versions: Vec<_> = by_version.into_iter().collect();
    versions.sort();
    eprintln!("deliveries per mapping version: {versions:?}");
    assert!(
        versions.len() >= 4,
        "traffic spanned several versions: {versions:?}"
    );
    let trail = sqlx::query("SELECT COUNT(*) AS n FROM trail WHERE kind = 'mapping.activated'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        trail.get::<i64, _>("n"),
        1 + swaps,
        "import + every swap is a trail event"
    );
}
