//! `lienthong dossier timeline CODE`: every hop of one dossier, in chain order.

use std::process::ExitCode;

use anyhow::Context;
use router::audit::search::show_time;
use router::audit::TrailEvent;
use router::store::now_ms;
use serde_json::{json, Value};

use super::audit::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Every hop of one dossier across all systems, in order, with status.
    Timeline(TimelineArgs),
}

#[derive(Debug, clap::Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The dossier (or station) code.
    pub code: String,
    /// Print the hops as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match args.command {
            Sub::Timeline(a) => timeline(a).await,
        }
    })
}

async fn timeline(a: TimelineArgs) -> anyhow::Result<ExitCode> {
    let store = a.store.open().await?;
    let rows = store.dossier_trail(&a.code).await?;
    if rows.is_empty() {
        eprintln!("error: no messages for dossier `{}` (check the code; search with `lienthong messages search --dossier`)", a.code);
        return Ok(ExitCode::from(1));
    }
    store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: None,
            delivery_id: None,
            kind: "audit.timeline",
            actor: a.store.actor(),
            detail: json!({"dossier": a.code, "hops": rows.len()}),
        }])
        .await?;
    let mut out = Vec::new();
    for (r, source, dest) in &rows {
        let mut detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
        if let Some(o) = detail.as_object_mut() {
            o.remove("records");
        }
        let system = if r.delivery_id.is_some() {
            dest.clone().unwrap_or_default()
        } else {
            source.clone()
        };
        let status = match r.kind.as_str() {
            "attempt" => format!(
                "{}{}",
                detail["outcome"].as_str().unwrap_or("attempt"),
                detail["status"]
                    .as_i64()
                    .map(|s| format!(" (HTTP {s})"))
                    .unwrap_or_default()
            ),
            "mapped" => "queued".to_string(),
            k => k.to_string(),
        };
        if a.json {
            out.push(json!({"seq": r.seq, "at": show_time(r.at), "kind": r.kind, "status": status, "system": system,
                "message_id": r.message_id, "delivery_id": r.delivery_id, "actor": r.actor, "detail": detail}));
        } else {
            println!(
                "{:>6}  {}  {:<18} {:<16} {:<24} {}",
                r.seq,
                show_time(r.at),
                r.kind,
                system,
                status,
                r.delivery_id
                    .as_deref()
                    .or(r.message_id.as_deref())
                    .unwrap_or("-")
            );
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"dossier": a.code, "hops": out}))?
        );
    }
    Ok(ExitCode::SUCCESS)
}
