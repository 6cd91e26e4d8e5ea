//! `lienthong healthcheck`: exit 0 when the hub's `/readyz` answers 2xx.
//!
//! For container healthchecks (deploy/Dockerfile, deploy/compose.yaml), which
//! run a command inside the image: the slim image has no curl, and `/bin/sh`
//! is dash, which has no `/dev/tcp`. The address is `--url`, else the config's
//! `server.listen` (`--config`, or `LIENTHONG_CONFIG`), else
//! `LIENTHONG_SERVER__LISTEN` (which the image sets), else
//! `http://127.0.0.1:8080`; a wildcard address is asked on loopback. A
//! `/readyz` that answers 200 passes even when its body reports something
//! degraded: the hub is up and taking work. Anything else (no answer within
//! `--timeout`, a refused connection, a 503 with its reason) exits 1 with the
//! reason on stderr.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

/// Where a hub listens when nothing says otherwise (the embedded default).
const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// `server.listen` from the environment, as `serve` reads it.
const LISTEN_VAR: &str = "LIENTHONG_SERVER__LISTEN";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hub's base URL, e.g. http://127.0.0.1:8080 [default: --config's server.listen,
    /// else $LIENTHONG_SERVER__LISTEN, else http://127.0.0.1:8080].
    #[arg(long, env = "LIENTHONG_HEALTHCHECK_URL")]
    pub url: Option<String>,
    /// The hub's config file: its `server.listen` is asked (0.0.0.0 and :: on loopback).
    #[arg(long, short = 'c', env = "LIENTHONG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Give up after this long: 500ms, 2s... (keep it under the orchestrator's timeout).
    #[arg(long, default_value = "2s")]
    pub timeout: String,
}

/// The address to ask for `listen`: a wildcard bind is reachable on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

fn base_url(args: &Args) -> anyhow::Result<String> {
    if let Some(u) = &args.url {
        return Ok(u.trim_end_matches('/').to_string());
    }
    if let Some(path) = &args.config {
        let config = super::serve::load_config(Some(path))?;
        return Ok(format!("http://{}", reachable(config.listen)));
    }
    // As `serve` without a config would listen: the image sets this variable.
    if let Ok(listen) = std::env::var(LISTEN_VAR) {
        let addr: SocketAddr = listen
            .trim()
            .parse()
            .with_context(|| format!("{LISTEN_VAR}={listen:?} is not an address (host:port)"))?;
        return Ok(format!("http://{}", reachable(addr)));
    }
    Ok(DEFAULT_URL.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = router::duration::parse_duration(&args.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout {}: {e}", args.timeout))?;
    let url = format!("{}/readyz", base_url(&args)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(ask(&url, timeout));
    match outcome {
        Ok(body) => {
            println!("ready: {url}: {}", body.trim());
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("unhealthy: {url}: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `GET url` within `timeout`: the body when it answers 2xx, else why not.
async fn ask(url: &str, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let resp = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {timeout:?}")
        } else if e.is_connect() {
            "nothing answers there (connection refused or unreachable): is the hub running, and on this address?".to_string()
        } else {
            format!("the request failed: {e}")
        }
    })?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HTTP {status}: {}", body.trim()))
    }
}
