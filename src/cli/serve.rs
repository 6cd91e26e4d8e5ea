//! `lienthong serve [--config FILE]`: run the hub until SIGTERM or Ctrl-C.
//!
//! Without `--config` the hub runs on the embedded default (SQLite store and
//! queue under `./data/`, the repository's `mappings/` and `schemas/`, HTTP on
//! 127.0.0.1:8080). The config is loaded and validated completely before anything
//! is opened; every problem is printed at once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use router::config::Config;
use router::server::Hub;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// YAML config file (see deploy/lienthong.example.yaml); omit for the embedded default.
    #[arg(long, short = 'c', env = "LIENTHONG_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Sets up logging from the config (`RUST_LOG` wins when set).
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(super::logging::EscapingStderr);
    let _ = if config.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Loads the config, printing every diagnostic.
pub fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Config::load(path).map_err(|d| anyhow::anyhow!("the configuration is invalid:\n{d}"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    init_logging(&config);
    if config.file.is_none() {
        tracing::warn!(
            "no --config: embedded default (SQLite under ./data, unauthenticated intake on {})",
            config.listen
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    rt.block_on(async {
        // Partner connectors, station enrichment, drop folders: src/wiring.
        let wiring = crate::wiring::build(&config)?;
        let hub = Hub::start(&config, wiring.options)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let background = wiring.stations.start(&hub)?;
        println!("lienthong listening on http://{}", hub.addr);
        shutdown_signal().await;
        background.shutdown().await;
        hub.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
