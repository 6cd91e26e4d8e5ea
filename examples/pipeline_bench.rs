//! Pipeline load benchmark: HTTP intake on loopback → map → durable SQLite store
//! (WAL, synchronous=FULL) → delivery to a local HTTP sink, on the embedded default.
//!
//! ```text
//! cargo run --release --example pipeline_bench -- [messages] [concurrency] [dossiers]
//! ```
//!
//! Defaults: 20000 messages, 64 concurrent clients, spread over 1000 dossiers (so
//! per-dossier ordering is exercised). Reports sustained accepted-and-delivered
//! msgs/s and p50/p99 of acceptance (request → 202) and of delivery (request →
//! arrival at the sink). Results go in BENCHMARKS.md, section "Pipeline".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use router::config::{Config, Destination};
use router::server::Hub;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let n = *args.first().unwrap_or(&20_000);
    let conc = *args.get(1).unwrap_or(&64);
    let dossiers = *args.get(2).unwrap_or(&1000);

    // The sink: records when each (code, seq) arrived.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let a = arrivals.clone();
    let app = axum::Router::new().route(
        "/sink",
        post(move |body: String| {
            let a = a.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                a.lock()
                    .unwrap()
                    .entry(format!("{}#{}", v["code"].as_str().unwrap_or(""), v["seq"]))
                    .or_insert_with(Instant::now);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink = format!("http://{}/sink", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let mut config = Config::load_with_env(None, Vec::new()).map_err(|d| anyhow::anyhow!("{d}"))?;
    config.listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_path_buf();
    config.store_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("lienthong.db").display()
    );
    config.mappings_dir = "tests/fixtures/hub/mappings".into();
    config.schemas_dir = "tests/fixtures/hub/schemas".into();
    config.routes_file = "tests/fixtures/hub/mappings/routes.yaml".into();
    config.intake_rate = (1_000_000, 1_000_000);
    let mut policy = config.destination_defaults.clone();
    policy.rate_per_second = 1_000_000;
    policy.burst = 1_000_000;
    policy.concurrency = 64;
    config.destinations.insert(
        "sink".into(),
        Destination {
            url: Some(sink),
            policy,
        },
    );
    let hub = Hub::start(&config, Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("http://{}/inbound/portal/dossier.event", hub.addr);
    println!("pipeline bench: {n} messages, {conc} clients, {dossiers} dossiers, SQLite WAL synchronous=FULL");

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let accept_lat: Arc<Mutex<Vec<f64>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (sent, accept_lat, next, base) =
            (sent.clone(), accept_lat.clone(), next.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let code = format!("000.00.32.H47-221128-{:04}", i % dossiers);
                let seq = i / dossiers;
                let body = serde_json::json!({"code": code, "seq": seq, "msg_id": format!("m{i}"), "note": "Hồ sơ chuyển nhượng quyền sử dụng đất"});
                let start = Instant::now();
                sent.lock().unwrap().insert(format!("{code}#{seq}"), start);
                let r = client.post(&base).header("content-type", "application/json").body(body.to_string()).send().await.expect("hub");
                assert_eq!(r.status().as_u16(), 202);
                accept_lat.lock().unwrap().push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let accepted_in = t0.elapsed();
    while arrivals.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if t0.elapsed() > Duration::from_secs(600) {
            anyhow::bail!(
                "only {} of {n} delivered after 10 minutes",
                arrivals.lock().unwrap().len()
            );
        }
    }
    let total = t0.elapsed();
    let mut deliv: Vec<f64> = {
        let sent = sent.lock().unwrap();
        let arrivals = arrivals.lock().unwrap();
        arrivals
            .iter()
            .map(|(k, at)| at.duration_since(sent[k]).as_secs_f64() * 1000.0)
            .collect()
    };
    let mut acc = accept_lat.lock().unwrap().clone();
    println!(
        "accepted {n} in {:.2}s = {:.0} msgs/s",
        accepted_in.as_secs_f64(),
        n as f64 / accepted_in.as_secs_f64()
    );
    println!(
        "accepted and delivered {n} in {:.2}s = {:.0} msgs/s sustained",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    println!(
        "acceptance latency ms: p50 {:.1}  p99 {:.1}",
        pct(&mut acc, 0.5),
        pct(&mut acc, 0.99)
    );
    println!(
        "delivery latency ms (request -> sink): p50 {:.1}  p99 {:.1}",
        pct(&mut deliv, 0.5),
        pct(&mut deliv, 0.99)
    );
    hub.shutdown().await;
    Ok(())
}
