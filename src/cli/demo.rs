//! `lienthong demo`: the hub, simulated partners and realistic traffic in one process.
//!
//! It starts the hub on the embedded default (data in `./data/demo` unless
//! `--data-dir`), one simulated endpoint per destination system, then feeds every
//! file under `tests/fixtures/inbound/<system>/<message_type>/` over real HTTP
//! (rejections included: the fixtures contain deliberately bad files), prints
//! progress and where to look, and runs until Ctrl-C.
//!
//! The simulated endpoints are deliberately simple sinks (record, answer 200),
//! built by [`start_sinks`]; swapping in the partner simulators from
//! `connectors::sim` means replacing that one function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path as AxPath, State};
use axum::routing::post;
use router::server::Hub;

use super::serve::{init_logging, shutdown_signal};

/// The destination systems the demo simulates.
const SYSTEMS: &[&str] = &["lis", "national-portal", "province-portal", "tax", "ioc"];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo keeps its SQLite store (wiped at start).
    #[arg(long, default_value = "data/demo")]
    pub data_dir: PathBuf,
    /// Hub address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Inbound fixtures: `<dir>/<system>/<message_type>/**/<file>`.
    #[arg(long, default_value = "tests/fixtures/inbound")]
    pub fixtures: PathBuf,
    /// Feed, wait for delivery, print the summary and exit instead of running until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

/// Counts per destination system.
type Counts = Arc<BTreeMap<String, AtomicU64>>;

/// Starts the simulated partner endpoints; returns their base URL and counters.
async fn start_sinks() -> anyhow::Result<(String, Counts)> {
    let counts: Counts = Arc::new(
        SYSTEMS
            .iter()
            .map(|s| (s.to_string(), AtomicU64::new(0)))
            .collect(),
    );
    let app = axum::Router::new()
        .route(
            "/sim/{system}",
            post(
                |State(c): State<Counts>, AxPath(system): AxPath<String>| async move {
                    if let Some(n) = c.get(&system) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    axum::Json(serde_json::json!({"status": "ok"}))
                },
            ),
        )
        .with_state(counts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the simulated partners")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}"), counts))
}

/// Every fixture file as (system, message_type, path).
fn fixtures(dir: &Path) -> anyhow::Result<Vec<(String, String, PathBuf)>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(p)? {
            let path = e?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for sys in
        std::fs::read_dir(dir).with_context(|| format!("reading fixtures in {}", dir.display()))?
    {
        let sys = sys?.path();
        if !sys.is_dir() {
            continue;
        }
        for mt in std::fs::read_dir(&sys)? {
            let mt = mt?.path();
            if !mt.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            walk(&mt, &mut files)?;
            for f in files {
                let name = |p: &Path| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                out.push((name(&sys), name(&mt), f));
            }
        }
    }
    out.sort_by(|a, b| a.2.cmp(&b.2));
    Ok(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        _ => "text/plain; charset=utf-8",
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = super::serve::load_config(None)?;
    config.listen = args
        .listen
        .parse()
        .with_context(|| format!("--listen {}", args.listen))?;
    let _ = std::fs::remove_dir_all(&args.data_dir);
    config.data_dir = args.data_dir.clone();
    config.store_url = format!(
        "sqlite://{}?mode=rwc",
        args.data_dir.join("lienthong.db").display()
    );
    config.destination_defaults.backoff.initial = Duration::from_millis(200);
    config.destination_defaults.rate_per_second = 200;
    config.destination_defaults.burst = 200;
    init_logging(&router::config::Config {
        log_level: "warn".into(),
        ..config.clone()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (sink_url, counts) = start_sinks().await?;
        for s in SYSTEMS {
            config.destinations.insert(
                s.to_string(),
                router::config::Destination {
                    url: Some(format!("{sink_url}/sim/{s}")),
                    policy: config.destination_defaults.clone(),
                },
            );
        }
        let hub = Hub::start(&config, Default::default())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let base = format!("http://{}", hub.addr);
        println!("lienthong demo");
        println!("  hub          {base}");
        println!("  metrics      {base}/metrics");
        println!("  message API  {base}/api/messages/<id>  and  {base}/api/messages/<id>/trail");
        println!("  data dir     {}", args.data_dir.display());
        println!("  partners     simulated at {sink_url}/sim/<system>");
        let files = fixtures(&args.fixtures)?;
        println!(
            "feeding {} fixture files from {} ...",
            files.len(),
            args.fixtures.display()
        );
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        let (mut accepted, mut rejected, mut first_id) = (0u64, 0u64, None);
        for (i, (system, mt, path)) in files.iter().enumerate() {
            let body = std::fs::read(path)?;
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let resp = client
                .post(format!("{base}/inbound/{system}/{mt}"))
                .header("content-type", content_type(path))
                .header("x-file-name", file_name)
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            if status.as_u16() == 202 {
                accepted += 1;
                first_id.get_or_insert_with(|| v["id"].as_str().unwrap_or_default().to_string());
            } else {
                rejected += 1;
                println!("  rejected {} ({status}): {}", path.display(), v["reasons"]);
            }
            if (i + 1) % 100 == 0 {
                println!("  {} sent, {accepted} accepted, {rejected} rejected", i + 1);
            }
        }
        println!(
            "fed {} files in {:.1}s: {accepted} accepted, {rejected} rejected",
            files.len(),
            t0.elapsed().as_secs_f64()
        );
        if let Some(id) = first_id {
            println!("  try: curl {base}/api/messages/{id}/trail");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let depth: i64 = hub
                .store
                .queue_depth()
                .await
                .map(|d| d.iter().map(|(_, n)| n).sum())
                .unwrap_or(-1);
            let delivered: Vec<String> = counts
                .iter()
                .map(|(k, v)| format!("{k}={}", v.load(Ordering::Relaxed)))
                .collect();
            println!("  queued {depth}; delivered {}", delivered.join(" "));
            if depth == 0 || Instant::now() > deadline {
                break;
            }
        }
        if !args.once {
            println!("running; press Ctrl-C to stop");
            shutdown_signal().await;
        }
        hub.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
