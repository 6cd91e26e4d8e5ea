//! kill -9 under load: every message the hub answered 202 is delivered after a restart.
//!
//! The hub runs as the built binary against a real HTTP sink. Eight clients post
//! dossier events as fast as they can; the hub is SIGKILLed mid-load, restarted on
//! the same data directory, and the test waits until every accepted dossier code
//! has arrived at the sink (at least once; duplicates are allowed and counted).

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hub_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_message_survives_kill_9() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let mut hub = HubProcess::spawn(&config, port, &[]).await;

    let accepted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..8 {
        let (accepted, base) = (accepted.clone(), hub.base.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0.. {
                let code = format!("C{c}-{n}");
                let body = json!({ "code": code, "seq": n, "msg_id": format!("m-{code}") });
                let r = client
                    .post(format!("{base}/inbound/portal/dossier.event"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        accepted.lock().unwrap().insert(code);
                    }
                    Ok(r) => panic!("unexpected status {} before the crash", r.status()),
                    Err(_) => return n, // the hub is gone
                }
            }
            unreachable!()
        }));
    }
    // Let load build up (and deliveries be in flight), then kill -9.
    wait_until("300 accepted messages", Duration::from_secs(30), || {
        accepted.lock().unwrap().len() >= 300
    })
    .await;
    hub.kill9();
    for c in clients {
        c.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let before = sink.delivered().len();
    eprintln!(
        "accepted {} before SIGKILL; {} delivered by then",
        accepted.len(),
        before
    );

    let _hub = HubProcess::spawn(&config, port, &[]).await;
    let missing = || {
        let got: HashSet<String> = sink
            .delivered()
            .iter()
            .map(|h| h.body["code"].as_str().unwrap_or("").to_string())
            .collect();
        accepted.difference(&got).count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while missing() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} accepted messages never arrived after the restart",
            missing()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits = sink.delivered();
    let keys: HashSet<&str> = hits.iter().map(|h| h.idempotency_key.as_str()).collect();
    eprintln!(
        "all {} accepted messages delivered; {} requests, {} duplicates",
        accepted.len(),
        hits.len(),
        hits.len() - keys.len()
    );
    // Every delivery carries its correlation id.
    assert!(hits
        .iter()
        .all(|h| h.correlation_id == h.body["code"].as_str().unwrap()));
}
