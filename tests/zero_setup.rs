//! `serve` with no setup (issue 15, "Zero-setup serve"): the hub starts when
//! destinations are not configured yet, says which, and keeps what it accepts
//! for them until they are.
//!
//! On the main of 2026-12-04 `lienthong serve` with no config exited with
//! "5 error(s) … routes deliver to `ioc` but it has no url and no connector",
//! and a destination without a URL in a config stopped the hub the same way.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hub_support::*;
use serde_json::json;

async fn readyz(base: &str) -> Option<(u16, String)> {
    let r = reqwest::get(format!("{base}/readyz")).await.ok()?;
    Some((r.status().as_u16(), r.text().await.unwrap_or_default()))
}

/// `lienthong serve` with no `--config`, in a directory laid out as a fresh
/// clone is (`mappings/`, `schemas/`), answers `/readyz`, degraded, naming the
/// partners that are not configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_config_starts_and_names_what_is_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("mappings"), &dir.path().join("mappings"));
    copy_dir(&repo().join("schemas"), &dir.path().join("schemas"));
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("LIENTHONG_CONFIG")
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(a) = readyz(&base).await {
            break a;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("serve with no config exited ({status}):\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "serve did not answer /readyz in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(
        answer.1.contains("waiting for configuration"),
        "{}",
        answer.1
    );
    for partner in ["lis", "tax", "ioc", "national-portal", "province-portal"] {
        assert!(
            answer.1.contains(partner),
            "{partner} not named: {}",
            answer.1
        );
    }
    assert!(
        dir.path().join("data").is_dir(),
        "the embedded store is under ./data"
    );
}

/// A destination with no URL: its deliveries are accepted and wait, pending,
/// not dead; once it has a URL and the hub is restarted they go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_an_unconfigured_destination_wait_and_flow_once_it_is() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let configured = std::fs::read_to_string(&config).unwrap();
    let url_line = format!("    url: \"{}\"\n", sink.url);
    assert!(configured.contains(&url_line));
    std::fs::write(&config, configured.replace(&url_line, "")).unwrap();

    let hub = HubProcess::spawn(&config, port, &[]).await;
    let (status, body) = readyz(&hub.base).await.unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, "ready (degraded): waiting for configuration: sink")
    );
    let http = reqwest::Client::new();
    let (s, v) = post_json(
        &http,
        &hub.base,
        "/inbound/portal/dossier.event",
        &json!({ "code": "WAIT-1", "seq": 1, "msg_id": "m-wait-1" }),
        &[],
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        delivery_states(&hub.base, &id).await,
        ["pending"],
        "kept, not dead-lettered"
    );
    // The console's dashboard says so too.
    let cookie = console_session(&hub.base).await;
    let page = http
        .get(format!("{}/console?lang=en", hub.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let waiting = page
        .split("id=\"waiting\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no waiting box on the dashboard:\n{page}"));
    assert!(
        waiting.contains("Waiting for configuration") && waiting.contains("<li>sink</li>"),
        "{waiting}"
    );
    drop(hub);

    // Configured, restarted: it goes out.
    std::fs::write(&config, &configured).unwrap();
    let hub = HubProcess::spawn(&config, port, &[]).await;
    assert_eq!(readyz(&hub.base).await.unwrap().1.trim(), "ready");
    until_states(&hub.base, &id, &["delivered"]).await;
    assert_eq!(sink.delivered().len(), 1, "sent once");
}
