//! IOC connector against its simulator: API key, immediate alerts, batched observations.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{assert_class, assert_no_secret, init, outbound};
use connectors::ioc::{IocClient, IocConfig};
use connectors::Secret;
use futures::future::join_all;
use lienthong_core::transport::{FailureClass, Transport};
use serde_json::json;
use sim::ioc::{IocSim, IocSimConfig};
use sim::Fault;

const KEY: &str = "ioc-api-key-5f2a9c";

/// Message `n`'s observation: its own measurement time, so no two are the same data.
fn observation(station: &str, n: usize) -> String {
    json!({"messageId": format!("m{n}"), "source": "HUB-STNMT-QNAM", "sentAt": "2022-09-15T10:31:05+07:00",
           "observations": [{"stationCode": station, "measuredAt": format!("2022-09-15T10:{:02}:00+07:00", n % 60),
                             "parameters": [{"code": "COD", "value": 42.5, "unit": "mg/L", "exceeded": false}]}]})
    .to_string()
}

async fn setup(size: usize, linger_ms: u64, key: &str) -> (IocSim, IocClient) {
    init();
    let sim = IocSim::start(IocSimConfig::new(Secret::new(KEY)))
        .await
        .unwrap();
    let mut c = IocConfig::new(sim.url());
    c.batch_size = size;
    c.linger_ms = linger_ms;
    c.queue_capacity = 16;
    c.timeout_ms = 2000;
    (sim, IocClient::with_key(c, Secret::new(key)).unwrap())
}

#[tokio::test]
async fn alerts_go_at_once() {
    let (sim, client) = setup(100, 10_000, KEY).await;
    let alert = json!({"alertId": "A1", "stationCode": "QNAM_CTYXYZ_NUOCTHAI01", "alertType": "VUOT_NGUONG"}).to_string();
    let started = Instant::now();
    let r = client
        .send(&outbound("ioc", "alert", alert, "a1"))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "alerts are not lingered"
    );
    assert_eq!(sim.alerts().len(), 1);
    let log = &sim.core().received()[0];
    assert_eq!(log.headers["x-api-key"], "***");
    assert_no_secret("receipt", &r.request, &format!("{r:?}"), &[KEY]);
}

#[tokio::test]
async fn batch_flushes_at_size() {
    let (sim, client) = setup(3, 10_000, KEY).await;
    let outs: Vec<_> = (0..3)
        .map(|i| {
            outbound(
                "ioc",
                "observations",
                observation(&format!("S_{i}_X"), i),
                &format!("k{i}"),
            )
        })
        .collect();
    let started = Instant::now();
    let results = join_all(outs.iter().map(|o| client.send(o))).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "size reached: no linger wait"
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(sim.batches().len(), 1);
    assert_eq!(sim.observations().len(), 3);
    // Every caller got the same batch's receipt.
    let first = results[0].as_ref().unwrap();
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap().request == first.request));
}

/// Issue 14, defect 3: a retried batch went out with a new random `messageId`
/// each time, and its `Idempotency-Key` changed with the order it was
/// re-assembled in, so the IOC could not drop it. Now both come from the
/// observations alone: another attempt, in another order, under other
/// delivery keys, is the same batch to the IOC.
#[tokio::test]
async fn a_retried_batch_keeps_its_ids() {
    let (sim, client) = setup(2, 10_000, KEY).await;
    let send_pair = |order: [usize; 2], attempt: &str| {
        order
            .iter()
            .map(|&i| {
                let mut o = outbound(
                    "ioc",
                    "observations",
                    observation(&format!("S_{i}_R"), i),
                    &format!("k{i}-{attempt}"),
                );
                o.attempt = if attempt == "first" { 1 } else { 2 };
                o
            })
            .collect::<Vec<_>>()
    };
    for (order, attempt) in [([0, 1], "first"), ([1, 0], "retry")] {
        let outs = send_pair(order, attempt);
        let results = join_all(outs.iter().map(|o| client.send(o))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    let received = sim.core().received();
    let ids: Vec<String> = received
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["messageId"].to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(
        ids[0], ids[1],
        "the same observations must keep their messageId"
    );
    assert_eq!(sim.batches().len(), 1, "applied once");
    let keys: Vec<_> = received
        .iter()
        .map(|r| r.idempotency_key.clone().unwrap_or_default())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the same Idempotency-Key: {keys:?}");
    assert!(
        received[1].duplicate,
        "the IOC recognises the retry as a duplicate"
    );
}

#[tokio::test]
async fn batch_flushes_after_linger() {
    let (sim, client) = setup(100, 300, KEY).await;
    let outs: Vec<_> = (0..2)
        .map(|i| {
            outbound(
                "ioc",
                "observations",
                observation("S_A_B", i),
                &format!("k{i}"),
            )
        })
        .collect();
    let started = Instant::now();
    let results = join_all(outs.iter().map(|o| client.send(o))).await;
    let waited = started.elapsed();
    assert!(results.iter().all(Result::is_ok));
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(sim.batches().len(), 1);
    assert_eq!(
        sim.batches()[0]["observations"].as_array().unwrap().len(),
        2
    );
    // A later message starts a new batch.
    client
        .send(&outbound(
            "ioc",
            "observations",
            observation("S_A_B", 9),
            "k9",
        ))
        .await
        .unwrap();
    assert_eq!(sim.batches().len(), 2);
}

#[tokio::test]
async fn a_failed_batch_fails_every_caller() {
    let (sim, client) = setup(2, 5_000, KEY).await;
    sim.core().inject_next(
        Fault::Status {
            status: 503,
            retry_after_secs: Some(4),
        },
        1,
    );
    let outs: Vec<_> = (0..2)
        .map(|i| {
            outbound(
                "ioc",
                "observations",
                observation("S_A_B", i),
                &format!("k{i}"),
            )
        })
        .collect();
    let results = join_all(outs.iter().map(|o| client.send(o))).await;
    for r in results {
        let f = r.unwrap_err();
        assert_class(&f, FailureClass::Transient, "http-503");
        assert_eq!(f.retry_after, Some(Duration::from_secs(4)));
    }
    let bad = client
        .send(&outbound("ioc", "observations", r#"{"items": []}"#, "bad"))
        .await
        .unwrap_err();
    assert_class(&bad, FailureClass::Permanent, "bad-body");
}

#[tokio::test]
async fn wrong_key_is_permanent_and_hidden() {
    let (_sim, client) = setup(1, 10, "not-the-key").await;
    let f = client
        .send(&outbound(
            "ioc",
            "observations",
            observation("S_A_B", 1),
            "k",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "http-401");
    assert_no_secret(
        "failure",
        &f.request,
        &format!("{f:?}"),
        &["not-the-key", KEY],
    );
}

/// A key that cannot travel in an HTTP header is refused when the connector is
/// built (before the hub starts), with an error that says why and never shows it.
#[tokio::test]
async fn a_non_ascii_key_is_refused_when_the_connector_is_built() {
    init();
    let dir = tempfile::tempdir().unwrap();
    for (name, key) in [
        ("diacritics", "khóa-bí-mật-IOC"),
        ("space", "ioc key"),
        ("bom", "\u{feff}ioc-key"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{key}\n")).unwrap();
        let mut c = IocConfig::new("http://127.0.0.1:9");
        c.api_key_file = Some(path);
        let e = match IocClient::new(c) {
            Ok(_) => panic!("{name}: a key with a non-visible-ASCII character was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("connectors.ioc.api_key") && e.contains("visible ASCII"),
            "{name}: {e}"
        );
        assert!(
            !e.contains(key.trim_start_matches('\u{feff}')),
            "{name}: the error shows the key: {e}"
        );
    }
    let ok = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ok.path(), "ioc-key-5f2a9c\n").unwrap();
    let mut c = IocConfig::new("http://127.0.0.1:9");
    c.api_key_file = Some(ok.path().to_path_buf());
    assert!(IocClient::new(c).is_ok(), "a visible-ASCII key is fine");
}

/// The simulator compares the header's bytes: a key that is not text (the real
/// IOC's keys are assumed ASCII, but a header value is bytes) matches exactly,
/// and one different byte does not.
#[tokio::test]
async fn the_simulator_compares_key_bytes() {
    init();
    let key = "clé-ioc";
    let sim = IocSim::start(IocSimConfig::new(Secret::new(key)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let body = observation("S_A_B", 1);
    let send = |value: &[u8]| {
        http.post(format!("{}/api/v1/observations", sim.url()))
            .header(
                "X-API-Key",
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    assert_eq!(send(key.as_bytes()).await.unwrap().status(), 200);
    assert_eq!(send("cle-ioc".as_bytes()).await.unwrap().status(), 401);
    assert_eq!(send("clé-iod".as_bytes()).await.unwrap().status(), 401);
    assert_eq!(sim.observations().len(), 1);
}
