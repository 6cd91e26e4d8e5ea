//! `lienthong audit verify|export|prune`: the auditor's commands.
//!
//! Like the other audit commands (`messages`, `dossier`, `replay`), these open
//! the store directly: the config's `store.url` (`--config`), or `--db URL`.
//! They open an existing store only, and fail when there is none
//! (`Store::open_existing`) rather than create an empty one to report on. They
//! are safe beside a running hub: PostgreSQL serialises chain appends on the
//! chain head row, SQLite in WAL mode lets readers run beside the hub's writer and
//! the few writes these commands make wait for the write lock (busy timeout).
//! Every command is recorded in the trail with the actor `cli:<user>`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use router::audit::bundle::{self, Bundle};
use router::audit::export::{export, ExportOptions};
use router::audit::search::parse_range;
use router::audit::verify::{verify_store, Report, VerifyOptions};
use router::audit::{retention, TrailEvent};
use router::config::Config;
use router::store::{now_ms, Store, StoreOptions};
use serde_json::json;

/// Where the store is.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The hub's config file (its `store.url` is used).
    #[arg(long, short = 'c', env = "LIENTHONG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL (`sqlite://path?mode=rw` or `postgres://...`); overrides the config.
    #[arg(long, env = "LIENTHONG_DB")]
    pub db: Option<String>,
    /// Recorded as the actor in the trail (default: `cli:$USER`).
    #[arg(long)]
    pub actor: Option<String>,
}

impl StoreArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref())
            .map_err(|d| anyhow::anyhow!("the config is invalid:\n{d}"))
    }

    /// Opens the hub's existing store; never creates one (an empty store made
    /// here would verify as "chain intact"). A missing store is an error that
    /// says how to name the right one.
    pub async fn open(&self) -> anyhow::Result<Store> {
        let url = match &self.db {
            Some(u) => u.clone(),
            None => self.config()?.store_url,
        };
        match Store::open_existing(&url, StoreOptions::default()).await {
            Ok(s) => Ok(s),
            Err(router::Error::NotFound(what)) => Err(anyhow::anyhow!(
                "{what}: pass --config FILE (the hub's config; its store.url is used) \
                 or --db URL (e.g. --db sqlite://data/demo/lienthong.db for the demo's store)"
            )),
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("opening the store {}", router::redact::url(&url)))),
        }
    }

    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .unwrap_or_else(|| format!("cli:{}", os_user()))
    }
}

/// Who runs the command, for the trail: `$USER`, else `$LOGNAME`, else the
/// account of the process's user id in `/etc/passwd` (a cron job, a systemd
/// unit or `sudo -i` may set neither variable), else `uid:<n>`. Never
/// "unknown": an auditor must be able to tell who did it.
pub fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_string();
            }
        }
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    let uid_text = uid.to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid_text).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid:{uid}"))
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Check the chain and every record it covers (or an exported bundle); exit 1 when broken.
    Verify(VerifyArgs),
    /// Write a self-contained bundle (a .tar, or a directory) for a time range or one dossier.
    Export(ExportArgs),
    /// Empty payloads older than an age, keeping their digests (retention).
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only trail rows from this time (RFC 3339, YYYY-MM-DD in Vietnam time, or epoch ms).
    #[arg(long)]
    pub from: Option<String>,
    /// Only trail rows up to this time (same forms as --from).
    #[arg(long)]
    pub to: Option<String>,
    /// Verify an exported bundle (a .tar or a directory) offline instead of the store.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Start of the range (RFC 3339, YYYY-MM-DD in Vietnam time, or epoch ms).
    #[arg(long)]
    pub from: String,
    /// End of the range (same forms as --from).
    #[arg(long)]
    pub to: String,
    /// Only this dossier (or station) code, linked to the chain by the spine.
    #[arg(long)]
    pub dossier: Option<String>,
    /// Output: `*.tar` for an archive, anything else for a directory.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Age: `365d`, `26w`, `48h`... (default: the config's `retention.payloads`, else 365d).
    #[arg(long)]
    pub older_than: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match args.command {
            Sub::Verify(a) => verify(a).await,
            Sub::Export(a) => export_cmd(a).await,
            Sub::Prune(a) => prune(a).await,
        }
    })
}

fn print_report(r: &Report, what: &str, json_out: bool) -> ExitCode {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": r.ok(), "report": r})).expect("JSON")
        );
    } else if r.ok() {
        println!(
            "OK: {what}: {} trail rows (seq {}..{}), {} records checked ({} pruned), chain intact; last hash {}",
            r.trail_rows,
            r.first_seq.unwrap_or(0),
            r.last_seq.unwrap_or(0),
            r.records_checked,
            r.records_pruned,
            r.last_hash.as_deref().unwrap_or("-"),
        );
    } else {
        let first = &r.problems[0];
        eprintln!("BROKEN: {what}: first broken link: {first}");
        for p in r.problems.iter().skip(1).take(20) {
            eprintln!("  also: {p}");
        }
        if r.problems.len() > 21 || r.truncated {
            eprintln!(
                "  ... {} problems in all{}",
                r.problems.len(),
                if r.truncated { " (list truncated)" } else { "" }
            );
        }
    }
    if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &a.bundle {
        let b = Bundle::read(path)?;
        let r = bundle::verify(&b);
        return Ok(print_report(
            &r,
            &format!("bundle {}", path.display()),
            a.json,
        ));
    }
    let store = a.store.open().await?;
    let range = if a.from.is_some() || a.to.is_some() {
        Some(
            parse_range(a.from.as_deref(), a.to.as_deref(), now_ms(), 1, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
    } else {
        None
    };
    let show = !a.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = move |done: u64, total: u64| {
        if show {
            eprint!(
                "\rverifying: {done}/{total} trail rows ({:.0}%)",
                100.0 * done as f64 / total.max(1) as f64
            );
            let _ = std::io::stderr().flush();
        }
    };
    let report = verify_store(
        &store,
        &VerifyOptions {
            range,
            progress: Some(&progress),
        },
    )
    .await?;
    if show {
        eprintln!();
    }
    store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: None,
            delivery_id: None,
            kind: "audit.verify",
            actor: a.store.actor(),
            detail: json!({"range": range, "ok": report.ok(), "rows": report.trail_rows, "problems": report.problems.len()}),
        }])
        .await?;
    Ok(print_report(&report, "store", a.json))
}

async fn export_cmd(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let (from, to) = parse_range(Some(&a.from), Some(&a.to), now_ms(), 1, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = a.store.open().await?;
    let (b, summary) = export(
        &store,
        &ExportOptions {
            from,
            to,
            dossier: a.dossier.clone(),
            actor: a.store.actor(),
        },
    )
    .await?;
    b.write(&a.out)?;
    println!(
        "wrote {}: {} trail rows (spine seq {}..{}), {} records; first prev_hash {}, last hash {}; manifest sha256 {}",
        a.out.display(),
        summary.trail_rows,
        summary.first_seq,
        summary.last_seq,
        summary.records,
        summary.first_prev_hash,
        summary.last_hash,
        summary.manifest_sha256
    );
    Ok(ExitCode::SUCCESS)
}

async fn prune(a: PruneArgs) -> anyhow::Result<ExitCode> {
    let configured = match (&a.older_than, &a.store.config) {
        (None, Some(_)) => a
            .store
            .config()?
            .retention_payloads
            .map(|d| format!("{}s", d.as_secs())),
        _ => None,
    };
    let text = a
        .older_than
        .clone()
        .or(configured)
        .unwrap_or_else(|| format!("{}d", retention::DEFAULT_RETENTION_DAYS));
    let age = retention::parse_age(&text).map_err(|e| anyhow::anyhow!("--older-than: {e}"))?;
    let store = a.store.open().await?;
    let out = retention::prune(&store, age, &a.store.actor()).await?;
    println!(
        "pruned payloads older than {text} (before {}): {} messages, {} deliveries, {} attempts; digests kept in the trail",
        router::audit::search::show_time(out.older_than),
        out.messages,
        out.deliveries,
        out.attempts
    );
    Ok(ExitCode::SUCCESS)
}
