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

use std::time::Duration;

use router::server::Hub;

#[path = "support/load.rs"]
mod load;
use load::pct;

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

    let sink = load::Sink::start().await?;

    let dir = tempfile::tempdir()?;
    let mut config = load::bench_config(dir.path(), &sink)?;
    config.store_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("lienthong.db").display()
    );
    let hub = Hub::start(&config, Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("http://{}/inbound/portal/dossier.event", hub.addr);
    println!("pipeline bench: {n} messages, {conc} clients, {dossiers} dossiers, SQLite WAL synchronous=FULL");

    let mut r = load::run(&base, &sink, n, conc, dossiers, Duration::from_secs(600)).await?;
    println!(
        "accepted {n} in {:.2}s = {:.0} msgs/s",
        r.accepted_in.as_secs_f64(),
        r.accepted_rate()
    );
    println!(
        "accepted and delivered {n} in {:.2}s = {:.0} msgs/s sustained",
        r.total.as_secs_f64(),
        r.sustained_rate()
    );
    println!(
        "acceptance latency ms: p50 {:.1}  p99 {:.1}",
        pct(&mut r.acceptance_ms, 0.5),
        pct(&mut r.acceptance_ms, 0.99)
    );
    println!(
        "delivery latency ms (request -> sink): p50 {:.1}  p99 {:.1}",
        pct(&mut r.delivery_ms, 0.5),
        pct(&mut r.delivery_ms, 0.99)
    );
    hub.shutdown().await;
    Ok(())
}
