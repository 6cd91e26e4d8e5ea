//! The load generator and the sink shared by the benchmarks
//! (`pipeline_bench`, `rabbitmq_bench`), so both measure exactly the same way.
//!
//! The sink records when each `(code, seq)` first arrives; the clients post
//! `dossier.event` messages spread over `dossiers` dossiers (so per-dossier
//! ordering is exercised) and record when each was sent and how long its `202`
//! took.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use router::config::{Config, Destination};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A local HTTP sink that records first arrivals.
pub struct Sink {
    pub url: String,
    arrivals: Arrivals,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Sink> {
        let arrivals: Arrivals = Arc::default();
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
        let url = format!("http://{}/sink", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Sink { url, arrivals })
    }
}

/// Concurrent deliveries to the sink: the hub's destination concurrency in
/// [`bench_config`], and the forwarders of the RabbitMQ bench's HTTP-only run.
pub const SINK_CONCURRENCY: u32 = 64;

/// The hub configuration both benchmarks run: the test fixtures' mappings, no
/// intake or partner rate limit, [`SINK_CONCURRENCY`] concurrent deliveries to
/// `sink`. The caller sets the store and queue it measures.
pub fn bench_config(data_dir: &std::path::Path, sink: &Sink) -> anyhow::Result<Config> {
    let mut config = Config::load_with_env(None, Vec::new()).map_err(|d| anyhow::anyhow!("{d}"))?;
    config.listen = "127.0.0.1:0".parse()?;
    config.data_dir = data_dir.to_path_buf();
    config.mappings_dir = "tests/fixtures/hub/mappings".into();
    config.schemas_dir = "tests/fixtures/hub/schemas".into();
    config.routes_file = "tests/fixtures/hub/mappings/routes.yaml".into();
    config.intake_rate = (1_000_000, 1_000_000);
    let mut policy = config.destination_defaults.clone();
    policy.rate_per_second = 1_000_000;
    policy.burst = 1_000_000;
    policy.concurrency = SINK_CONCURRENCY;
    config.destinations.insert(
        "sink".into(),
        Destination {
            url: Some(sink.url.clone()),
            policy,
        },
    );
    Ok(config)
}

/// What one load run measured.
pub struct Report {
    pub n: usize,
    /// First request to the last `202`.
    pub accepted_in: Duration,
    /// First request to the last arrival at the sink.
    pub total: Duration,
    /// Request → `202`, ms.
    pub acceptance_ms: Vec<f64>,
    /// Request → arrival at the sink, ms.
    pub delivery_ms: Vec<f64>,
}

impl Report {
    pub fn accepted_rate(&self) -> f64 {
        self.n as f64 / self.accepted_in.as_secs_f64()
    }
    /// Accepted *and* delivered per second.
    pub fn sustained_rate(&self) -> f64 {
        self.n as f64 / self.total.as_secs_f64()
    }
}

impl Report {
    /// Prints the rates and latency percentiles, each line starting with `label`.
    pub fn print(&mut self, label: &str) {
        let n = self.n;
        println!(
            "{label}: accepted {n} in {:.2}s = {:.0} msgs/s; accepted and delivered in {:.2}s = {:.0} msgs/s sustained",
            self.accepted_in.as_secs_f64(),
            self.accepted_rate(),
            self.total.as_secs_f64(),
            self.sustained_rate()
        );
        println!(
            "{label}: acceptance latency ms p50 {:.1} p99 {:.1}; delivery latency ms (request -> sink) p50 {:.1} p99 {:.1}",
            pct(&mut self.acceptance_ms, 0.5),
            pct(&mut self.acceptance_ms, 0.99),
            pct(&mut self.delivery_ms, 0.5),
            pct(&mut self.delivery_ms, 0.99)
        );
    }
}

/// The benchmarks' arguments `[messages] [concurrency] [dossiers]`, with
/// `messages` defaulting to `default_n`, 64 clients and 1000 dossiers.
pub fn args(default_n: usize) -> anyhow::Result<(usize, usize, usize)> {
    let args = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse().map_err(|_| {
                anyhow::anyhow!(
                    "`{a}` is not a number: the arguments are [messages] [concurrency] [dossiers]"
                )
            })
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    Ok((
        *args.first().unwrap_or(&default_n),
        *args.get(1).unwrap_or(&64),
        *args.get(2).unwrap_or(&1000),
    ))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Posts `n` messages to `url` from `conc` clients, then waits (up to `limit`,
/// printing progress every 5 s) until all have reached `sink`.
pub async fn run(
    url: &str,
    sink: &Sink,
    n: usize,
    conc: usize,
    dossiers: usize,
    limit: Duration,
) -> anyhow::Result<Report> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let accept_lat: Arc<Mutex<Vec<f64>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (sent, accept_lat, next, url) = (
            sent.clone(),
            accept_lat.clone(),
            next.clone(),
            url.to_string(),
        );
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
                let r = client.post(&url).header("content-type", "application/json").body(body.to_string()).send().await.expect("hub");
                assert_eq!(r.status().as_u16(), 202);
                accept_lat.lock().unwrap().push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let accepted_in = t0.elapsed();
    let mut last_report = Instant::now();
    while sink.arrivals.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            println!(
                "  ... {} of {n} delivered",
                sink.arrivals.lock().unwrap().len()
            );
        }
        if t0.elapsed() > limit {
            anyhow::bail!(
                "only {} of {n} delivered after {limit:?}",
                sink.arrivals.lock().unwrap().len()
            );
        }
    }
    let total = t0.elapsed();
    let delivery_ms = {
        let sent = sent.lock().unwrap();
        let arrivals = sink.arrivals.lock().unwrap();
        arrivals
            .iter()
            .map(|(k, at)| at.duration_since(sent[k]).as_secs_f64() * 1000.0)
            .collect()
    };
    let acceptance_ms = accept_lat.lock().unwrap().clone();
    Ok(Report {
        n,
        accepted_in,
        total,
        acceptance_ms,
        delivery_ms,
    })
}
