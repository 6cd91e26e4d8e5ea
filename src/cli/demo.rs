//! `lienthong demo`: the hub, the five partner simulators and a realistic day of traffic in one process.
//!
//! It starts the simulators (`sim::partners`: LGSP, DVCQG, LIS, tax
//! GIP, IOC, each checking messages against the hub's schemas), the hub on the
//! embedded default (data in `./data/demo` unless `--data-dir`) with the real
//! connectors pointed at them, and the station wiring of `src/wiring` (QCVN
//! threshold enrichment, a drop folder under the data dir). Then it runs the
//! department's three flows with the fixtures of `tests/fixtures/inbound/`:
//!
//! 1. the land dossiers' lifecycle, message by message over HTTP, in the order the
//!    partners send them (filed, form to tax, notices, payment, certificate, returned);
//! 3. the province portal's status changes, over HTTP;
//! 2. the stations: the day's files are dropped into the FTP drop folder, lab results
//!    and the malformed file go over HTTP.
//!
//! It prints progress per flow and where to look, and runs until Ctrl-C (or, with
//! `--once`, until everything is delivered).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use router::server::Hub;
use sim::partners::Partners;

use super::serve::{init_logging, shutdown_signal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo keeps its SQLite store and drop folder (wiped at start).
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

/// The order partners send the land-dossier messages in (flow 1 and 3).
const DOSSIER_ORDER: [(&str, &str); 8] = [
    ("province-portal", "dossier.filed"),
    ("province-portal", "status.changed"),
    ("lis", "financial-obligation.transfer"),
    ("tax", "payment-notice"),
    ("national-portal", "payment.result"),
    ("lis", "certificate.issued"),
    ("lis", "result.returned"),
    ("stations", "lab-result"),
];

/// `connectors.stations` for the demo: the three fixture stations and one drop folder.
fn stations_section(limits: &Path, folder: &Path) -> serde_json::Value {
    serde_json::json!({
        "thresholds": {
            "limits_file": limits,
            "stations": {
                "QNAM_CTYXYZ_NUOCTHAI01": {"standard": {"qcvn": "40:2011", "column": "B"}},
                "QNAM_CTYABC_NUOCTHAI01": {"standard": {"qcvn": "40:2011", "column": "A"}},
                "QNAM_KK_TAMKY01": {"standard": {"qcvn": "05:2023", "period": "1h"}}
            }
        },
        "drop_folders": [{"facility": "demo", "path": folder, "settle_ms": 300, "poll_ms": 200}]
    })
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .count()
        })
        .unwrap_or(0)
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

/// The exact `lienthong audit verify` command for the demo's store in `data_dir`,
/// quoted for a POSIX shell when the path needs it.
fn verify_command(data_dir: &Path) -> String {
    let url = format!("sqlite://{}", data_dir.join("lienthong.db").display());
    let plain = url
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c));
    let arg = if plain {
        url
    } else {
        format!("'{}'", url.replace('\'', r"'\''"))
    };
    format!("lienthong audit verify --db {arg}")
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
    // The day of station files (864 observation messages and their alerts) goes to one
    // destination. Per-station order is kept by the delivery layer whatever these are;
    // they only let the three stations' deliveries run side by side and stop the
    // default 50/s limit from pacing a simulator on loopback. The connector's batching
    // (IOC_BATCH_SIZE / IOC_LINGER_MS) merges what is in flight into one request.
    let mut ioc = config.destination_defaults.clone();
    ioc.concurrency = 32;
    ioc.rate_per_second = 2_000;
    ioc.burst = 2_000;
    config.destinations.insert(
        connectors::ioc::SYSTEM.into(),
        router::config::Destination {
            url: None,
            policy: ioc,
        },
    );
    let drop_folder = args.data_dir.join("ftp/stations");
    let limits = config.mappings_dir.join("lookups/qcvn-thresholds.json");
    config.connectors.insert(
        crate::wiring::settings::STATIONS_KEY.into(),
        stations_section(&limits, &drop_folder),
    );
    // The demo's data can only be read with a token: one admin and one auditor
    // token, random for this run (they exist only in this process's memory, as
    // hashes), printed below, unless the environment sets some (LIENTHONG_TOKENS__*).
    let demo_tokens = config.tokens.is_empty().then(|| {
        let (auditor, admin) = (router::auth::random_token(), router::auth::random_token());
        config.tokens = std::sync::Arc::new(router::auth::TokenStore::new(vec![
            router::auth::TokenEntry::for_secret(
                "demo-auditor",
                router::auth::Role::Auditor,
                &auditor,
            ),
            router::auth::TokenEntry::for_secret("demo-admin", router::auth::Role::Admin, &admin),
        ]));
        (auditor, admin)
    });
    init_logging(&router::config::Config {
        log_level: "warn".into(),
        ..config.clone()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let partners = Partners::start().await.context("starting the partner simulators")?;
        let schemas = router::schema::SchemaRegistry::load(&config.schemas_dir).map_err(|d| anyhow::anyhow!("loading schemas:\n{d}"))?;
        // Every simulator checks the business part of what it receives against the hub's own schemas.
        let plugged = partners.use_schemas(&schemas);
        anyhow::ensure!(plugged > 0, "no schema under {} for the simulators", config.schemas_dir.display());
        let mut wiring = crate::wiring::build(&config)?;
        partners.register(&mut wiring.options.transports, 5_000).context("connecting to the simulators")?;
        let hub = Hub::start(&config, wiring.options).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let background = wiring.stations.start(&hub)?;
        let base = format!("http://{}", hub.addr);
        println!("lienthong demo");
        println!("  hub          {base}   (metrics {base}/metrics)");
        println!("  console      {base}/console   (sign in with a token below)");
        println!("  message API  {base}/api/v1/messages/<id>  with  Authorization: Bearer <auditor token>");
        match &demo_tokens {
            Some((auditor, admin)) => {
                println!("  sign-ins     admin    (name demo-admin)    token {admin}");
                println!("               auditor  (name demo-auditor)  token {auditor}");
                println!("               for this demo only: random for each run and gone when it stops; never configure them on a real hub");
            }
            // The demo reads no config file: tokens can only come from the environment.
            None => println!("  sign-ins     the tokens set by LIENTHONG_TOKENS__* in the environment"),
        }
        println!("  data dir     {}   drop folder {}", args.data_dir.display(), drop_folder.display());
        // `audit verify` with no --db looks for the default store (data/lienthong.db), not the demo's.
        println!("  audit        {}", verify_command(&args.data_dir));
        println!("  partners     LGSP {}  DVCQG {}  LIS {}  tax {}  IOC {}", partners.province_portal.url(), partners.national_portal.url(), partners.lis.url(), partners.tax.url(), partners.ioc.url());
        println!("               each has GET /_sim/log (what it received) and POST /_sim/faults (inject faults)");

        let files = fixtures(&args.fixtures)?;
        let client = reqwest::Client::new();
        let t0 = Instant::now();
        let mut first_id = None;
        // Flows 1 and 3 (and lab results): over HTTP, in the order partners send them.
        for (system, mt) in DOSSIER_ORDER {
            let (mut ok, mut refused) = (0, 0);
            for (_, _, path) in files.iter().filter(|(s, m, _)| s == system && m == mt) {
                let resp = client.post(format!("{base}/inbound/{system}/{mt}")).header("content-type", content_type(path)).body(std::fs::read(path)?).send().await?;
                let status = resp.status().as_u16();
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                if status == 202 {
                    ok += 1;
                    first_id.get_or_insert_with(|| v["id"].as_str().unwrap_or_default().to_string());
                } else {
                    refused += 1;
                    println!("    refused {} ({status}): {}", path.display(), v["reasons"]);
                }
            }
            println!("  flow {} {system}/{mt}: {ok} accepted, {refused} refused", if system == "stations" { 2 } else if mt == "status.changed" { 3 } else { 1 });
        }
        // Flow 2: the day's station files into the drop folder; malformed ones over HTTP.
        let (mut dropped, mut refused) = (0, 0);
        for (_, _, path) in files.iter().filter(|(s, m, _)| s == "stations" && m == "observation.file") {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.parent().and_then(|p| p.file_name()).is_some_and(|d| d == "bad") {
                let resp = client.post(format!("{base}/inbound/stations/observation.file")).header("content-type", "text/plain").header("x-file-name", &name).body(std::fs::read(path)?).send().await?;
                let status = resp.status().as_u16();
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                refused += 1;
                println!("    malformed {name}: {status} {}", v["reasons"]);
            } else {
                std::fs::copy(path, drop_folder.join(&name)).with_context(|| format!("copying {} into the drop folder", path.display()))?;
                dropped += 1;
            }
        }
        println!("  flow 2 stations/observation.file: {dropped} files dropped into {}, {refused} malformed posted", drop_folder.display());
        if let (Some(id), Some((auditor, _))) = (&first_id, &demo_tokens) {
            println!("  try: curl -H 'Authorization: Bearer {auditor}' {base}/api/v1/messages/{id}");
        }

        let deadline = Instant::now() + Duration::from_secs(180);
        // Ctrl-C while the traffic is still flowing stops cleanly too.
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let mut interrupted = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = &mut stop => {
                    interrupted = true;
                    break;
                }
            }
            let depth: i64 = hub.store.queue_depth().await.map(|d| d.iter().map(|(_, n)| n).sum()).unwrap_or(-1);
            let waiting = count_files(&drop_folder);
            let statuses: Vec<String> = partners.national_portal.dossiers().iter().map(|(k, v)| format!("{}={}", &k[k.len() - 4..], v["TrangThaiHoSo"].as_str().unwrap_or("?"))).collect();
            println!(
                "  [{:>5.1}s] queued {depth}; flow 1+3: DVCQG dossiers [{}] progress {} | LGSP {} | LIS {} | tax {}; flow 2: drop folder {waiting} waiting, {} processed, {} rejected | IOC observations {} alerts {}",
                t0.elapsed().as_secs_f64(),
                statuses.join(" "),
                partners.national_portal.progress().len(),
                partners.province_portal.core().accepted().len(),
                partners.lis.core().accepted().len(),
                partners.tax.documents().len(),
                count_files(&drop_folder.join("processed")),
                count_files(&drop_folder.join("rejected")),
                partners.ioc.observations().len(),
                partners.ioc.alerts().len(),
            );
            if (depth == 0 && waiting == 0) || Instant::now() > deadline {
                break;
            }
        }
        if !args.once && !interrupted {
            println!("running; press Ctrl-C to stop");
            stop.await;
        }
        println!("stopping: drop folder watcher, then the hub (undelivered messages stay queued in {})", args.data_dir.display());
        background.shutdown().await;
        hub.shutdown().await;
        partners.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
