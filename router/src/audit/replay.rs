//! Replaying deliveries: as sent, or mapped again; with a dry run that diffs.
//!
//! # Design
//!
//! A replay never touches the original delivery. It inserts **new** `deliveries`
//! rows (`replay_of` = the original's id), in state `pending`, and tells the
//! queue; from there the normal delivery layer owns it: its retries, backoff,
//! rate limits, concurrency and per-`(dossier, destination)` ordering. The
//! original stays `dead` (or `delivered`), so the trail shows both: the failure,
//! and the replay with who asked, why and in which mode.
//!
//! * `as-sent` re-sends the exact bytes stored with the original delivery.
//! * `remap` maps the stored *parsed* inbound message again with the active
//!   mapping, validates the output against the target schema and encodes it
//!   exactly as intake does. `mapping_version` may name another version: with the
//!   versioned mapping store ([`VersionedMappings`]) any stored version is compiled
//!   from its YAML; otherwise only the loaded version can be chosen. A version that
//!   cannot be found is refused with 404.
//! * `dry_run` computes everything and returns, per target, the bytes that would be
//!   sent and a unified diff against the bytes sent before, and writes no
//!   delivery. (The request itself is still recorded in the trail as
//!   `replay.previewed`: auditors' actions are always on the record.)
//!
//! The diff is computed on a line-per-element layout (JSON pretty-printed, XML with
//! one tag per line) because mapped bodies are single-line; `identical` and the two
//! SHA-256 digests compare the exact bytes.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::digest::{delivery_record, sha256_hex};
use super::TrailEvent;
use crate::mapping::{CompiledMapping, MappingSet};
use crate::queue::DeliveryQueue;
use crate::schema::SchemaRegistry;
use crate::store::audit_ops::{DeliveryFull, MessageFull, WriteOp};
use crate::store::deliveries::{insert_deliveries, DeliveryInsert};
use crate::store::{now_ms, NewDelivery, Store};

/// How to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    AsSent,
    Remap,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::AsSent => "as-sent",
            Mode::Remap => "remap",
        }
    }
}

/// The body of `POST /api/v1/messages/{id}/replay`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Destinations (`lis`) or delivery ids; empty = every original delivery of the message.
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    /// `remap` only: the mapping version to use (default: the loaded one).
    #[serde(default)]
    pub mapping_version: Option<i64>,
    #[serde(default)]
    pub dry_run: bool,
    /// Why: required, recorded in the trail.
    #[serde(default)]
    pub reason: Option<String>,
    /// `as-sent` only: send with a new `Idempotency-Key` (the new delivery's
    /// id) instead of the key the partner was sent before. By default an
    /// as-sent replay is the same request again, so a partner that already
    /// applied it can drop it; a `remap` replay sends new content, so it
    /// always has a new key. Recorded in the trail.
    #[serde(default)]
    pub new_ids: bool,
}

/// Why a replay was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The chosen mapping version does not exist (or is not loaded).
    #[error("{0}")]
    UnknownVersion(String),
    /// The payload needed was removed by retention.
    #[error("{0}")]
    Pruned(String),
    /// Mapping, validating or encoding the message again failed.
    #[error("{0}")]
    Mapping(String),
    #[error(transparent)]
    Router(#[from] crate::Error),
}

impl ReplayError {
    /// The HTTP status that tells the caller what to do.
    pub fn status(&self) -> u16 {
        match self {
            ReplayError::NotFound(_) | ReplayError::UnknownVersion(_) => 404,
            ReplayError::BadRequest(_) => 400,
            ReplayError::Pruned(_) => 410,
            ReplayError::Mapping(_) => 422,
            ReplayError::Router(e) if e.is_retryable() => 503,
            ReplayError::Router(crate::Error::NotFound(_)) => 404,
            ReplayError::Router(_) => 500,
        }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, ReplayError::Router(e) if e.is_retryable())
    }
}

/// Where replays find the current mappings (the loaded set; it may be swapped by a reload).
pub trait MappingLookup: Send + Sync {
    /// The active (loaded) mapping.
    fn mapping(&self, id: &str) -> Option<Arc<CompiledMapping>>;

    /// A chosen version. The default serves only the active one; the versioned
    /// mapping store ([`VersionedMappings`]) compiles any stored version.
    fn version<'a>(
        &'a self,
        id: &'a str,
        version: i64,
    ) -> BoxFuture<'a, Result<Option<Arc<CompiledMapping>>, ReplayError>> {
        let m = self.mapping(id).filter(|m| i64::from(m.version) == version);
        Box::pin(async move { Ok(m) })
    }
}

/// The versioned mapping store (`crate::admin`): the active set is read at each
/// call (so a replay after an activation uses the new version), and any stored
/// version can be chosen: it is compiled from its stored YAML on demand.
pub struct VersionedMappings {
    pub admin: Arc<crate::admin::MappingAdmin>,
    /// Where lookup files referenced by a stored version are resolved.
    pub mappings_dir: std::path::PathBuf,
}

impl MappingLookup for VersionedMappings {
    fn mapping(&self, id: &str) -> Option<Arc<CompiledMapping>> {
        self.admin.active().load().mappings.get(id)
    }

    fn version<'a>(
        &'a self,
        id: &'a str,
        version: i64,
    ) -> BoxFuture<'a, Result<Option<Arc<CompiledMapping>>, ReplayError>> {
        Box::pin(async move {
            if let Some(m) = self.mapping(id).filter(|m| i64::from(m.version) == version) {
                return Ok(Some(m));
            }
            let Some(stored) = self.admin.versions().get(id, version).await? else {
                return Ok(None);
            };
            let mut m = MappingSet::compile_str(
                &format!("{id}.yaml"),
                &stored.content,
                &self.mappings_dir,
                self.admin.schemas(),
            )
            .map_err(|d| {
                ReplayError::Mapping(format!(
                    "stored version {version} of `{id}` no longer compiles:\n{d}"
                ))
            })?;
            // What deliveries record is the store's version number, not the file's `version:` key.
            m.version = u32::try_from(version).unwrap_or(u32::MAX);
            Ok(Some(Arc::new(m)))
        })
    }
}

impl MappingLookup for MappingSet {
    fn mapping(&self, id: &str) -> Option<Arc<CompiledMapping>> {
        self.get(id)
    }
}

impl<F: Fn(&str) -> Option<Arc<CompiledMapping>> + Send + Sync> MappingLookup for F {
    fn mapping(&self, id: &str) -> Option<Arc<CompiledMapping>> {
        self(id)
    }
}

/// What replays need.
#[derive(Clone)]
pub struct ReplayContext {
    pub store: Store,
    pub mappings: Arc<dyn MappingLookup>,
    pub schemas: Arc<SchemaRegistry>,
    /// Told about new deliveries (`None`: nothing to wake, e.g. the CLI against a stopped hub;
    /// the hub's workers pick pending rows up when they start).
    pub queue: Option<Arc<dyn DeliveryQueue>>,
}

/// One target of a replay, planned.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub original_delivery: String,
    pub destination: String,
    pub mapping_id: String,
    pub mapping_version: i64,
    pub content_type: String,
    pub previous_sha256: Option<String>,
    pub sha256: String,
    pub identical: bool,
    /// Unified diff, `previous` → `new` (empty when identical).
    pub diff: String,
    /// The body that would be (or was) sent, as text (lossy for non-UTF-8).
    pub body: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    #[serde(skip)]
    pub route_id: String,
    #[serde(skip)]
    pub message_type: String,
    #[serde(skip)]
    pub correlation_id: String,
    /// The `Idempotency-Key` the partner will see: the one it was sent before
    /// (an as-sent replay), or `null` for a new one (the new delivery's id).
    pub partner_key: Option<String>,
    /// The original, or a replay of it, was delivered: the partner has it.
    pub already_delivered: bool,
    /// How many replays of the original exist already.
    pub previous_replays: usize,
}

/// What happened to an original delivery since: delivered (by itself or by a
/// replay of it) and how many replays it has. The console, the CLI and the
/// API warn with this before a replay that the partner may not need.
pub fn replay_history(all: &[DeliveryFull], original: &DeliveryFull) -> (bool, usize) {
    let replays: Vec<&DeliveryFull> = all
        .iter()
        .filter(|d| d.replay_of.as_deref() == Some(original.id.as_str()))
        .collect();
    let delivered = original.state == "delivered" || replays.iter().any(|d| d.state == "delivered");
    (delivered, replays.len())
}

/// The answer to a replay request.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayOutcome {
    pub message_id: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub targets: Vec<Planned>,
    /// New delivery ids (empty for a dry run), in `targets` order.
    pub new_deliveries: Vec<String>,
}

/// Lays a body out one element per line for diffing (see the module docs).
pub fn diff_layout(bytes: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        if let Ok(s) = serde_json::to_string_pretty(&v) {
            return s + "\n";
        }
    }
    let text = String::from_utf8_lossy(bytes);
    if text.trim_start().starts_with('<') {
        let mut out = text.replace("><", ">\n<");
        out.push('\n');
        return out;
    }
    text.into_owned()
}

/// Unified diff of two bodies (empty when the bytes are equal).
pub fn body_diff(old: &[u8], new: &[u8], old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let (a, b) = (diff_layout(old), diff_layout(new));
    let d = similar::TextDiff::from_lines(&a, &b);
    let text = d
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    if text.is_empty() {
        // Same layout, different bytes (e.g. whitespace in JSON): say so plainly.
        format!("--- {old_name}\n+++ {new_name}\n@@ bytes differ only in formatting @@\n")
    } else {
        text
    }
}

fn reason_of(req: &ReplayRequest) -> Result<String, ReplayError> {
    match req.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 2000 => Ok(r.to_string()),
        Some(r) if r.len() > 2000 => Err(ReplayError::BadRequest(
            "`reason` is longer than 2000 characters".into(),
        )),
        _ => Err(ReplayError::BadRequest(
            "`reason` is required: say why this replay is needed (it is recorded in the trail)"
                .into(),
        )),
    }
}

/// Re-maps the message's parsed tree for `original`'s mapping, as intake would.
async fn remap(
    ctx: &ReplayContext,
    msg: &MessageFull,
    original: &DeliveryFull,
    version: Option<i64>,
) -> Result<(Vec<u8>, i64, String), ReplayError> {
    let id = &original.mapping_id;
    let m = match version {
        None => ctx.mappings.mapping(id).ok_or_else(|| {
            ReplayError::UnknownVersion(format!(
                "mapping `{id}` is not loaded any more: it cannot be applied again; replay as-sent instead"
            ))
        })?,
        Some(v) => ctx.mappings.version(id, v).await?.ok_or_else(|| {
            let active = ctx.mappings.mapping(id).map_or("none".to_string(), |m| m.version.to_string());
            ReplayError::UnknownVersion(format!("mapping `{id}` has no version {v} (the active version is {active})"))
        })?,
    };
    let parsed = msg
        .parsed
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ReplayError::Pruned(format!(
                "message {}'s parsed form was pruned by retention: it cannot be mapped again",
                msg.id
            ))
        })?;
    let tree: Value = serde_json::from_str(parsed).map_err(|e| {
        ReplayError::Mapping(format!(
            "the stored parsed form of message {} is not JSON: {e}",
            msg.id
        ))
    })?;
    let mapped = m
        .apply(&tree)
        .map_err(|e| ReplayError::Mapping(e.to_string()))?;
    let schema = ctx.schemas.get(&m.target.schema).ok_or_else(|| {
        ReplayError::Mapping(format!(
            "target schema `{}` of mapping `{}` is not loaded",
            m.target.schema, m.id
        ))
    })?;
    schema.validate(&mapped).map_err(|e| {
        ReplayError::Mapping(format!("mapping {} produced invalid output: {e}", m.id))
    })?;
    let body = schema.encode(&mapped).map_err(|e| {
        ReplayError::Mapping(format!("encoding the output of {} failed: {e}", m.id))
    })?;
    Ok((body, i64::from(m.version), m.id.clone()))
}

fn selected<'a>(
    all: &'a [DeliveryFull],
    targets: &[String],
) -> Result<Vec<&'a DeliveryFull>, ReplayError> {
    let originals: Vec<&DeliveryFull> = all.iter().filter(|d| d.replay_of.is_none()).collect();
    if targets.is_empty() {
        return Ok(originals);
    }
    let mut out = Vec::new();
    for t in targets {
        let hit: Vec<&DeliveryFull> = originals
            .iter()
            .copied()
            .filter(|d| &d.id == t || &d.destination == t)
            .collect();
        if hit.is_empty() {
            let known: Vec<&str> = originals.iter().map(|d| d.destination.as_str()).collect();
            return Err(ReplayError::BadRequest(format!(
                "target `{t}` is neither a destination nor a delivery of this message (its destinations: {})",
                known.join(", ")
            )));
        }
        for h in hit {
            if !out.iter().any(|d: &&DeliveryFull| d.id == h.id) {
                out.push(h);
            }
        }
    }
    Ok(out)
}

/// Plans the replay of `message_id` (nothing is written).
pub async fn plan(
    ctx: &ReplayContext,
    message_id: &str,
    req: &ReplayRequest,
) -> Result<(MessageFull, Vec<Planned>), ReplayError> {
    if req.mode == Mode::AsSent && req.mapping_version.is_some() {
        return Err(ReplayError::BadRequest(
            "`mapping_version` only applies to `mode: remap`".into(),
        ));
    }
    if req.mode == Mode::Remap && req.new_ids {
        return Err(ReplayError::BadRequest(
            "`new_ids` only applies to `mode: as-sent` (a remap replay always has a new Idempotency-Key)".into(),
        ));
    }
    let msg =
        ctx.store.message_full(message_id).await?.ok_or_else(|| {
            ReplayError::NotFound(format!("message `{message_id}` does not exist"))
        })?;
    let all = ctx.store.deliveries_of(message_id).await?;
    if all.is_empty() {
        return Err(ReplayError::BadRequest(format!(
            "message `{message_id}` has no deliveries (state {}): there is nothing to replay",
            msg.state
        )));
    }
    let mut out = Vec::new();
    for d in selected(&all, &req.targets)? {
        let previous = (d.pruned_at.is_none() || !d.body.is_empty()).then_some(&d.body);
        let (already_delivered, previous_replays) = replay_history(&all, d);
        let (bytes, version, mapping_id) = match req.mode {
            Mode::AsSent => {
                let Some(b) = previous else {
                    return Err(ReplayError::Pruned(format!(
                        "delivery {}'s body was pruned by retention: replay it with `mode: remap`",
                        d.id
                    )));
                };
                (b.clone(), d.mapping_version, d.mapping_id.clone())
            }
            Mode::Remap => remap(ctx, &msg, d, req.mapping_version).await?,
        };
        let diff = match previous {
            Some(p) => body_diff(
                p,
                &bytes,
                &format!("sent before (delivery {})", d.id),
                "would send now",
            ),
            None => String::new(),
        };
        out.push(Planned {
            original_delivery: d.id.clone(),
            destination: d.destination.clone(),
            mapping_id,
            mapping_version: version,
            content_type: d.content_type.clone(),
            previous_sha256: previous.map(|p| sha256_hex(p)),
            sha256: sha256_hex(&bytes),
            identical: previous.is_some_and(|p| p == &bytes),
            diff,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            route_id: d.route_id.clone(),
            message_type: d.message_type.clone(),
            correlation_id: d.correlation_id.clone(),
            partner_key: (req.mode == Mode::AsSent && !req.new_ids)
                .then(|| d.partner_key().to_string()),
            already_delivered,
            previous_replays,
        });
    }
    Ok((msg, out))
}

/// Inserts the replay deliveries and their trail events (one transaction).
struct InsertReplays {
    message_id: String,
    actor: String,
    reason: String,
    mode: Mode,
    at: i64,
    items: Vec<(NewDelivery, String, String)>, // (delivery, replay_of, correlation_id)
    /// Each item's partner-facing key when it is kept from what it replays.
    partner_keys: Vec<Option<String>>,
    request_detail: Value,
}

impl WriteOp for InsertReplays {
    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        events: &'c mut Vec<TrailEvent>,
    ) -> BoxFuture<'c, crate::Result<Value>> {
        Box::pin(async move {
            let mut detail = self.request_detail.clone();
            detail["new_deliveries"] = json!(self
                .items
                .iter()
                .map(|(d, o, _)| json!({"id": d.id, "replay_of": o}))
                .collect::<Vec<_>>());
            events.push(TrailEvent {
                at: self.at,
                message_id: Some(self.message_id.clone()),
                delivery_id: None,
                kind: "replay.requested",
                actor: self.actor.clone(),
                detail,
            });
            let rows: Vec<DeliveryInsert> = self
                .items
                .iter()
                .zip(&self.partner_keys)
                .map(|((d, original, corr), key)| DeliveryInsert {
                    message_id: &self.message_id,
                    correlation_id: corr,
                    at: self.at,
                    delivery: d,
                    replay_of: Some(original),
                    partner_key: key.as_deref(),
                })
                .collect();
            insert_deliveries(conn, &rows).await?;
            for ((d, original, corr), key) in self.items.iter().zip(&self.partner_keys) {
                let mut ev = TrailEvent {
                    at: self.at,
                    message_id: Some(self.message_id.clone()),
                    delivery_id: Some(d.id.clone()),
                    kind: "replayed",
                    actor: self.actor.clone(),
                    detail: json!({
                        "replay_of": original, "destination": d.destination, "mode": self.mode.as_str(),
                        "reason": self.reason, "mapping_id": d.mapping_id, "mapping_version": d.mapping_version,
                        "body_sha256": sha256_hex(&d.body),
                        // What the partner sees as Idempotency-Key, and whether it is new.
                        "idempotency_key": key.as_deref().unwrap_or(&d.id),
                        "new_idempotency_key": key.is_none(),
                    }),
                };
                super::digest::attach(
                    &mut ev,
                    delivery_record(&self.message_id, corr, self.at, d, Some(original)),
                );
                events.push(ev);
            }
            Ok(Value::Null)
        })
    }
}

/// Writes planned replays as new deliveries and wakes the queue. Returns the new ids.
pub async fn execute(
    ctx: &ReplayContext,
    message_id: &str,
    planned: &[Planned],
    actor: &str,
    reason: &str,
    mode: Mode,
    request_detail: Value,
) -> Result<Vec<String>, ReplayError> {
    let at = now_ms();
    let items: Vec<(NewDelivery, String, String)> = planned
        .iter()
        .map(|p| {
            (
                NewDelivery {
                    id: uuid::Uuid::now_v7().to_string(),
                    destination: p.destination.clone(),
                    message_type: p.message_type.clone(),
                    route_id: p.route_id.clone(),
                    mapping_id: p.mapping_id.clone(),
                    mapping_version: p.mapping_version,
                    body: Bytes::from(p.bytes.clone()),
                    content_type: p.content_type.clone(),
                },
                p.original_delivery.clone(),
                p.correlation_id.clone(),
            )
        })
        .collect();
    let partner_keys: Vec<Option<String>> = planned.iter().map(|p| p.partner_key.clone()).collect();
    let ids: Vec<String> = items.iter().map(|(d, _, _)| d.id.clone()).collect();
    let mut dests: Vec<String> = items
        .iter()
        .map(|(d, _, _)| d.destination.clone())
        .collect();
    dests.sort();
    dests.dedup();
    ctx.store
        .audit_write(Box::new(InsertReplays {
            message_id: message_id.to_string(),
            actor: actor.to_string(),
            reason: reason.to_string(),
            mode,
            at,
            items,
            partner_keys,
            request_detail,
        }))
        .await?;
    if let Some(q) = &ctx.queue {
        if let Err(e) = q.committed(&dests).await {
            // The rows are committed; workers find them on their next poll or start.
            tracing::warn!(error = %e, "replay committed but the queue could not be woken");
        }
    }
    Ok(ids)
}

/// Plans, then (unless a dry run) executes a replay of one message, recording the request.
pub async fn replay_message(
    ctx: &ReplayContext,
    message_id: &str,
    req: &ReplayRequest,
    actor: &str,
) -> Result<ReplayOutcome, ReplayError> {
    let reason = reason_of(req)?;
    let (_msg, planned) = plan(ctx, message_id, req).await?;
    let detail = json!({
        "reason": reason, "mode": req.mode.as_str(), "dry_run": req.dry_run, "new_ids": req.new_ids, "targets": req.targets,
        "mapping_version": req.mapping_version,
        "planned": planned.iter().map(|p| json!({"original": p.original_delivery, "destination": p.destination, "sha256": p.sha256, "identical": p.identical})).collect::<Vec<_>>(),
    });
    let new_deliveries = if req.dry_run {
        ctx.store
            .record_events(vec![TrailEvent {
                at: now_ms(),
                message_id: Some(message_id.to_string()),
                delivery_id: None,
                kind: "replay.previewed",
                actor: actor.to_string(),
                detail,
            }])
            .await?;
        Vec::new()
    } else {
        execute(ctx, message_id, &planned, actor, &reason, req.mode, detail).await?
    };
    Ok(ReplayOutcome {
        message_id: message_id.to_string(),
        mode: req.mode,
        dry_run: req.dry_run,
        targets: planned,
        new_deliveries,
    })
}

/// Filter of a bulk dead-letter replay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterRequest {
    #[serde(default)]
    pub destination: Option<String>,
    /// When the delivery died (RFC 3339, date or epoch ms); default: the last 7 days.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// `transient`, `permanent` or `exhausted`.
    #[serde(default)]
    pub error_class: Option<String>,
    /// The delivered message type (e.g. `dossier.register`).
    #[serde(default)]
    pub message_type: Option<String>,
    /// Substring of the last error (case-insensitive for ASCII letters).
    #[serde(default)]
    pub error_contains: Option<String>,
    /// Only these dead deliveries (ids), still subject to the other filters; empty: all matching.
    #[serde(default)]
    pub deliveries: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// At most this many (default and maximum 1000).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Send with new `Idempotency-Key`s instead of the keys the partner was
    /// sent before (see [`ReplayRequest::new_ids`]).
    #[serde(default)]
    pub new_ids: bool,
}

/// Result of a bulk replay: how many matched, and (unless dry run) the new deliveries.
#[derive(Debug, Clone, Serialize)]
pub struct BulkOutcome {
    pub dry_run: bool,
    pub matched: usize,
    pub deliveries: Vec<Value>,
}

/// Replays dead letters matching the filter, as sent. A dry run only counts and lists them.
pub async fn replay_dead_letters(
    ctx: &ReplayContext,
    req: &DeadLetterRequest,
    actor: &str,
) -> Result<BulkOutcome, ReplayError> {
    let reason = reason_of(&ReplayRequest {
        reason: req.reason.clone(),
        ..Default::default()
    })?;
    if let Some(c) = &req.error_class {
        if !["transient", "permanent", "exhausted"].contains(&c.as_str()) {
            return Err(ReplayError::BadRequest(format!(
                "error_class `{c}` is not one of transient, permanent, exhausted"
            )));
        }
    }
    let limit = req.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(ReplayError::BadRequest(format!(
            "limit {limit} must be from 1 to 1000"
        )));
    }
    let (from, to) = super::search::parse_range(
        req.from.as_deref(),
        req.to.as_deref(),
        now_ms(),
        7,
        Some(super::search::MAX_SEARCH_RANGE_DAYS),
    )
    .map_err(ReplayError::BadRequest)?;
    if req.deliveries.len() > 1000 {
        return Err(ReplayError::BadRequest(format!(
            "{} deliveries selected: at most 1000 per request",
            req.deliveries.len()
        )));
    }
    let dead = ctx
        .store
        .dead_deliveries(&crate::store::audit_ops::DeadFilter {
            destination: req.destination.clone(),
            message_type: req.message_type.clone(),
            error_class: req.error_class.clone(),
            error_contains: req.error_contains.clone(),
            ids: req.deliveries.clone(),
            from,
            to,
            limit,
        })
        .await?;
    let listing: Vec<Value> = dead
        .iter()
        .map(|d| json!({"delivery": d.id, "message_id": d.message_id, "destination": d.destination, "error_class": d.error_class, "last_error": d.last_error}))
        .collect();
    let detail = json!({
        "reason": reason, "dry_run": req.dry_run, "new_ids": req.new_ids, "destination": req.destination, "from": from, "to": to,
        "error_class": req.error_class, "message_type": req.message_type, "error_contains": req.error_contains,
        "selected": req.deliveries.len(), "matched": dead.len(),
    });
    if req.dry_run {
        ctx.store
            .record_events(vec![TrailEvent {
                at: now_ms(),
                message_id: None,
                delivery_id: None,
                kind: "replay.bulk_previewed",
                actor: actor.into(),
                detail,
            }])
            .await?;
        return Ok(BulkOutcome {
            dry_run: true,
            matched: dead.len(),
            deliveries: listing,
        });
    }
    let mut out = Vec::new();
    for d in &dead {
        if d.pruned_at.is_some() && d.body.is_empty() {
            out.push(json!({"delivery": d.id, "skipped": "body pruned by retention"}));
            continue;
        }
        let p = Planned {
            original_delivery: d.id.clone(),
            destination: d.destination.clone(),
            mapping_id: d.mapping_id.clone(),
            mapping_version: d.mapping_version,
            content_type: d.content_type.clone(),
            previous_sha256: Some(sha256_hex(&d.body)),
            sha256: sha256_hex(&d.body),
            identical: true,
            diff: String::new(),
            body: String::new(),
            bytes: d.body.clone(),
            route_id: d.route_id.clone(),
            message_type: d.message_type.clone(),
            correlation_id: d.correlation_id.clone(),
            partner_key: (!req.new_ids).then(|| d.partner_key().to_string()),
            // Listed only when dead and not replayed yet.
            already_delivered: false,
            previous_replays: 0,
        };
        let mut det = detail.clone();
        det["bulk"] = Value::Bool(true);
        let ids = execute(
            ctx,
            &d.message_id,
            std::slice::from_ref(&p),
            actor,
            &reason,
            Mode::AsSent,
            det,
        )
        .await?;
        out.push(json!({"delivery": d.id, "replayed_as": ids.first()}));
    }
    Ok(BulkOutcome {
        dry_run: false,
        matched: dead.len(),
        deliveries: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_field_only() {
        let d = body_diff(br#"{"a":1,"b":"x"}"#, br#"{"a":1,"b":"y"}"#, "old", "new");
        assert!(
            d.contains("-  \"b\": \"x\"")
                && d.contains("+  \"b\": \"y\"")
                && d.contains("   \"a\": 1"),
            "{d}"
        );
        assert_eq!(
            body_diff(b"<a><b>1</b></a>", b"<a><b>1</b></a>", "o", "n"),
            ""
        );
        let x = body_diff(b"<a><b>1</b></a>", b"<a><b>2</b></a>", "o", "n");
        assert!(x.contains("-<b>1</b>") && x.contains("+<b>2</b>"), "{x}");
    }

    #[test]
    fn reason_is_required() {
        assert!(matches!(
            reason_of(&ReplayRequest::default()),
            Err(ReplayError::BadRequest(_))
        ));
        assert!(matches!(
            reason_of(&ReplayRequest {
                reason: Some("  ".into()),
                ..Default::default()
            }),
            Err(ReplayError::BadRequest(_))
        ));
        assert_eq!(
            reason_of(&ReplayRequest {
                reason: Some(" LIS was down ".into()),
                ..Default::default()
            })
            .unwrap(),
            "LIS was down"
        );
    }
}
