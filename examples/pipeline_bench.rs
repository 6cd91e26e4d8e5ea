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

// A benchmark: a panic is how it reports a broken run (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use router::server::Hub;

/// The hub binary's allocator (see `src/main.rs`), so the bench measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/load.rs"]
mod load;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (n, conc, dossiers) = load::args(20_000)?;

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

    load::run(&base, &sink, n, conc, dossiers, Duration::from_secs(600))
        .await?
        .print("pipeline");
    hub.shutdown().await;
    Ok(())
}
