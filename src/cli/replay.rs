//! `lienthong replay message|dead-letters`: replay from the command line.
//!
//! Same rules as `POST /api/v1/messages/{id}/replay` (see `router::audit::replay`):
//! a reason is required, `--dry-run` prints the diff and changes nothing. The new
//! deliveries are written to the store; a running hub's workers pick them up on
//! their next poll (within a second), a stopped hub when it starts. `remap` needs
//! the mappings and schemas, so it needs `--config`; it maps with the versions
//! the store has active (what the hub runs, a rollback included), not with the
//! files on disk, exactly as the API and the console do.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use router::admin::MappingAdmin;
use router::audit::replay::{
    replay_dead_letters, replay_message, DeadLetterRequest, MappingLookup, Mode, ReplayContext,
    ReplayRequest, VersionedMappings,
};
use router::mapping::MappingSet;
use router::schema::SchemaRegistry;

use super::audit::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Replay one message's deliveries (all, or --target destinations / delivery ids).
    Message(MessageArgs),
    /// Replay dead letters matching a filter, as sent (try --dry-run first for the count).
    DeadLetters(DeadArgs),
}

#[derive(Debug, clap::Args)]
pub struct MessageArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The message id whose deliveries are replayed.
    pub id: String,
    /// Why (required; recorded in the trail).
    #[arg(long)]
    pub reason: Option<String>,
    /// as-sent (the exact bytes sent before) or remap (map the inbound message again).
    #[arg(long, default_value = "as-sent")]
    pub mode: String,
    /// remap: the mapping version (must be the loaded one).
    #[arg(long)]
    pub mapping_version: Option<i64>,
    /// A destination or delivery id; repeat for several (default: all).
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Show what would be sent and the diff; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// as-sent: send with a new Idempotency-Key. By default the partner sees the
    /// key it was sent before, so it can drop a request it already applied.
    #[arg(long)]
    pub new_ids: bool,
}

#[derive(Debug, clap::Args)]
pub struct DeadArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only dead letters to this destination system.
    #[arg(long)]
    pub destination: Option<String>,
    /// Dead since this time (RFC 3339, YYYY-MM-DD in Vietnam time, or epoch ms).
    #[arg(long)]
    pub from: Option<String>,
    /// Dead before this time (same forms as --from).
    #[arg(long)]
    pub to: Option<String>,
    /// transient | permanent | exhausted
    #[arg(long)]
    pub error_class: Option<String>,
    /// Why (required, even with --dry-run; recorded in the trail).
    #[arg(long)]
    pub reason: Option<String>,
    /// Most dead letters to replay in this run (1 to 1000, default 1000).
    #[arg(long)]
    pub limit: Option<i64>,
    /// Count what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send with new Idempotency-Keys (default: the keys the partner was sent before).
    #[arg(long)]
    pub new_ids: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match args.command {
            Sub::Message(a) => message(a).await,
            Sub::DeadLetters(a) => dead(a).await,
        }
    })
}

async fn context(s: &StoreArgs) -> anyhow::Result<ReplayContext> {
    let store = s.open().await?;
    // A remap maps with what the hub runs: the store's active versions (so a
    // rollback made through the API or the console holds here too), and any
    // stored version with --mapping-version. Only a store that no hub has
    // started on yet falls back to the files.
    let (mappings, schemas): (Arc<dyn MappingLookup>, Arc<SchemaRegistry>) = if s.config.is_some() {
        let c = s.config()?;
        let schemas = Arc::new(
            SchemaRegistry::load(&c.schemas_dir)
                .map_err(|d| anyhow::anyhow!("loading schemas:\n{d}"))?,
        );
        match MappingAdmin::from_store(&store, schemas.clone(), &c.mappings_dir, &c.routes_file)
            .await
            .context("reading the active mapping versions from the store")?
        {
            Some(admin) => {
                eprintln!(
                    "mapping with the versions active in the store (generation {})",
                    admin.active().load().generation
                );
                let lookup = VersionedMappings {
                    admin,
                    mappings_dir: c.mappings_dir.clone(),
                };
                (Arc::new(lookup), schemas)
            }
            None => {
                eprintln!(
                    "the store has no mapping versions yet (no hub has started on it): mapping with the files in {}",
                    c.mappings_dir.display()
                );
                let files = MappingSet::load(&c.mappings_dir, schemas.as_ref())
                    .map_err(|d| anyhow::anyhow!("loading mappings:\n{d}"))?;
                (Arc::new(files), schemas)
            }
        }
    } else {
        (
            Arc::new(MappingSet::from_mappings(Vec::new())),
            Arc::new(SchemaRegistry::from_schemas(Vec::new())),
        )
    };
    Ok(ReplayContext {
        store,
        mappings,
        schemas,
        queue: None,
    })
}

async fn message(a: MessageArgs) -> anyhow::Result<ExitCode> {
    let mode = match a.mode.as_str() {
        "as-sent" => Mode::AsSent,
        "remap" => Mode::Remap,
        other => anyhow::bail!("--mode `{other}` is not `as-sent` or `remap`"),
    };
    let ctx = context(&a.store).await?;
    let req = ReplayRequest {
        targets: a.targets.clone(),
        mode,
        mapping_version: a.mapping_version,
        dry_run: a.dry_run,
        reason: a.reason.clone(),
        new_ids: a.new_ids,
    };
    match replay_message(&ctx, &a.id, &req, &a.store.actor()).await {
        Ok(out) => {
            for (i, t) in out.targets.iter().enumerate() {
                println!(
                    "{} → {} ({} v{}): {}",
                    t.original_delivery,
                    t.destination,
                    t.mapping_id,
                    t.mapping_version,
                    if t.identical {
                        "identical bytes".to_string()
                    } else {
                        "changed".to_string()
                    }
                );
                if t.already_delivered || t.previous_replays > 0 {
                    eprintln!(
                        "  warning: {} {}{}",
                        t.destination,
                        if t.already_delivered {
                            "already received this (delivered)"
                        } else {
                            "has not received it yet"
                        },
                        if t.previous_replays > 0 {
                            format!("; {} replay(s) of it exist already", t.previous_replays)
                        } else {
                            String::new()
                        }
                    );
                }
                if !t.diff.is_empty() {
                    print!("{}", t.diff);
                }
                if let Some(id) = out.new_deliveries.get(i) {
                    println!("  queued as delivery {id}");
                }
            }
            if out.dry_run {
                println!("dry run: nothing was queued");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error ({}): {e}", e.status());
            Ok(ExitCode::from(1))
        }
    }
}

async fn dead(a: DeadArgs) -> anyhow::Result<ExitCode> {
    let ctx = context(&a.store).await?;
    let req = DeadLetterRequest {
        destination: a.destination.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        error_class: a.error_class.clone(),
        dry_run: a.dry_run,
        reason: a.reason.clone(),
        limit: a.limit,
        new_ids: a.new_ids,
        ..Default::default()
    };
    match replay_dead_letters(&ctx, &req, &a.store.actor()).await {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out)?);
            println!(
                "{} dead letter(s) matched{}",
                out.matched,
                if out.dry_run {
                    " (dry run: nothing queued)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error ({}): {e}", e.status());
            Ok(ExitCode::from(1))
        }
    }
}
