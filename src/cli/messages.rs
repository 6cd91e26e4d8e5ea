//! `lienthong messages search|show`: find messages and look at one, from the store.
//!
//! Same filters and limits as `GET /api/v1/messages` (see `router::audit::search`);
//! the store is opened directly (see `audit.rs` for why that is safe).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use router::audit::search::{cursor_after, message_query, show_time};
use router::audit::TrailEvent;
use router::store::now_ms;
use serde_json::json;

use super::audit::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Search messages (newest first); filters as in GET /api/v1/messages.
    Search(Box<SearchArgs>),
    /// One message: raw inbound, parsed form, outputs with mapping id+version, attempts.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Dossier (or station) code.
    #[arg(long)]
    pub dossier: Option<String>,
    /// Source or destination system.
    #[arg(long)]
    pub system: Option<String>,
    /// Message type, e.g. dossier.filed.
    #[arg(long)]
    pub message_type: Option<String>,
    /// accepted | rejected | pending | in_flight | delivered | dead
    #[arg(long)]
    pub state: Option<String>,
    /// Received at or after (RFC 3339, YYYY-MM-DD in Vietnam time, or epoch ms).
    #[arg(long)]
    pub from: Option<String>,
    /// Received before (same forms as --from).
    #[arg(long)]
    pub to: Option<String>,
    /// Mapping id (with --mapping-version, or alone).
    #[arg(long)]
    pub mapping: Option<String>,
    /// Mapping version (a number; with --mapping).
    #[arg(long)]
    pub mapping_version: Option<String>,
    /// Most messages per page (as GET /api/v1/messages allows).
    #[arg(long)]
    pub limit: Option<String>,
    /// `next_cursor` printed by the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The message id (from `messages search` or a 202 answer).
    pub id: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match args.command {
            Sub::Search(a) => search(*a).await,
            Sub::Show(a) => show(a).await,
        }
    })
}

async fn search(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let mut params = BTreeMap::new();
    for (k, v) in [
        ("dossier", &a.dossier),
        ("system", &a.system),
        ("message_type", &a.message_type),
        ("state", &a.state),
        ("from", &a.from),
        ("to", &a.to),
        ("mapping", &a.mapping),
        ("mapping_version", &a.mapping_version),
        ("limit", &a.limit),
        ("cursor", &a.cursor),
    ] {
        if let Some(v) = v {
            params.insert(k.to_string(), v.clone());
        }
    }
    let q = match message_query(&params, now_ms()) {
        Ok(q) => q,
        Err(reasons) => {
            for r in reasons {
                eprintln!("error: {r}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let store = a.store.open().await?;
    let found = store.search_messages(&q).await?;
    let next = (found.len() as i64 == q.limit)
        .then(|| found.last().map(|m| cursor_after(m.received_at, &m.id)))
        .flatten();
    store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: None,
            delivery_id: None,
            kind: "audit.search",
            actor: a.store.actor(),
            detail: json!({"filters": params, "results": found.len()}),
        }])
        .await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"messages": found, "next_cursor": next}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for m in &found {
        let outs: Vec<String> = m
            .deliveries
            .iter()
            .map(|d| {
                format!(
                    "{}:{}(v{}){}",
                    d.destination,
                    d.state,
                    d.mapping_version,
                    if d.replay_of.is_some() { "*replay" } else { "" }
                )
            })
            .collect();
        println!(
            "{}  {}  {}/{}  {}  {}  {}",
            show_time(m.received_at),
            m.id,
            m.source_system,
            m.message_type,
            m.correlation_id.as_deref().unwrap_or("-"),
            m.state,
            outs.join(" ")
        );
    }
    println!(
        "{} message(s){}",
        found.len(),
        next.map(|c| format!("; next page: --cursor {c}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

async fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = a.store.open().await?;
    let Some(m) = store.message_full(&a.id).await? else {
        eprintln!(
            "error: message `{}` does not exist (search with `lienthong messages search`)",
            a.id
        );
        return Ok(ExitCode::from(1));
    };
    let deliveries = store.deliveries_of(&a.id).await?;
    let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    let attempts = store.attempts_of(&ids).await?;
    // Times as the Department reads them (Vietnam time), beside the epoch ms
    // the store keeps.
    let outputs: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).expect("JSON");
            v["created_at_local"] = json!(show_time(d.created_at));
            v["updated_at_local"] = json!(show_time(d.updated_at));
            v["body"] = json!(String::from_utf8_lossy(&d.body));
            v["attempts"] = json!(attempts
                .iter()
                .filter(|x| x.delivery_id == d.id)
                .collect::<Vec<_>>());
            v
        })
        .collect();
    store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: Some(a.id.clone()),
            delivery_id: None,
            kind: "audit.read",
            actor: a.store.actor(),
            detail: json!({}),
        }])
        .await?;
    let parsed: serde_json::Value = m
        .parsed
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    // Everything that happened to it, in chain order.
    let trail: Vec<serde_json::Value> = store
        .trail_for_message(&a.id)
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "seq": t.seq, "at": show_time(t.at), "kind": t.kind, "actor": t.actor,
                "delivery_id": t.delivery_id, "detail": t.detail,
            })
        })
        .collect();
    let mut message = serde_json::to_value(&m)?;
    message["received_at_local"] = json!(show_time(m.received_at));
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "message": message, "raw": String::from_utf8_lossy(&m.raw), "parsed": parsed,
            "outputs": outputs, "trail": trail,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}
