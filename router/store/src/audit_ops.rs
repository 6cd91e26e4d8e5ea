//! Store operations for auditors: reading the chain and the recorded rows back
//! (verify, export), search and timelines, and the few audit writes (replays,
//! retention pruning, auditor actions).
//!
//! # Why writes go through the writer task
//!
//! Every audit write appends to the chain, and on SQLite a second writing
//! connection would race the group-commit writer: a deferred transaction that
//! read before another connection committed cannot upgrade to a write lock
//! (`SQLITE_BUSY_SNAPSHOT`), and would fail an intake batch. So audit writes are
//! [`WriteOp`]s run by the same writer, in its transactions, and their trail
//! events are chained with everything else in that batch.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::error::{db_err, get};
use super::records::{ColType, TableSpec};
pub use super::trail::StoredTrailRow;
use super::trail::TrailEvent;
use super::writer::Job;
use super::Store;
use lienthong_core::{Error, Result};

/// A write run by the store's writer task inside its transaction. It may push
/// trail events; they are chained when the batch commits. It may be run twice
/// (alone, after its batch failed), so it must not consume itself.
pub trait WriteOp: Send + Sync {
    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        events: &'c mut Vec<TrailEvent>,
    ) -> BoxFuture<'c, Result<Value>>;
}

/// One recorded row read back: its key, recorded columns (as JSON values, in the
/// spec's order) and payload bytes.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub key: String,
    pub cols: Vec<Value>,
    pub payloads: Vec<Option<Vec<u8>>>,
    pub pruned_at: Option<i64>,
    /// `deliveries.state`, for the state-versus-trail check.
    pub state: Option<String>,
}

fn col_value(r: &AnyRow, name: &str, t: ColType) -> Result<Value> {
    Ok(match t {
        ColType::Int => Value::from(get::<i64>(r, name)?),
        ColType::OptInt => get::<Option<i64>>(r, name)?.map_or(Value::Null, Value::from),
        ColType::Text => Value::from(get::<String>(r, name)?),
        ColType::OptText => get::<Option<String>>(r, name)?.map_or(Value::Null, Value::from),
        ColType::Blob => {
            return Err(Error::Store {
                message: format!("column {name} is a payload"),
                retryable: false,
                source: None,
            })
        }
    })
}

fn payload_value(r: &AnyRow, name: &str, t: ColType) -> Result<Option<Vec<u8>>> {
    Ok(match t {
        ColType::Blob => get::<Option<Vec<u8>>>(r, name)?,
        _ => get::<Option<String>>(r, name)?.map(String::into_bytes),
    })
}

fn select_list(spec: &TableSpec) -> String {
    let mut cols: Vec<String> = vec![format!("{} AS rec_key", spec.key_sql), "pruned_at".into()];
    cols.extend(spec.cols.iter().map(|(n, _)| n.to_string()));
    cols.extend(spec.payloads.iter().map(|(n, _)| n.to_string()));
    if spec.table == "deliveries" {
        cols.push("state".into());
    }
    cols.join(", ")
}

fn stored_record(spec: &TableSpec, r: &AnyRow) -> Result<StoredRecord> {
    Ok(StoredRecord {
        key: get(r, "rec_key")?,
        cols: spec
            .cols
            .iter()
            .map(|(n, t)| col_value(r, n, *t))
            .collect::<Result<_>>()?,
        payloads: spec
            .payloads
            .iter()
            .map(|(n, t)| payload_value(r, n, *t))
            .collect::<Result<_>>()?,
        pruned_at: get(r, "pruned_at")?,
        state: if spec.table == "deliveries" {
            get(r, "state")?
        } else {
            None
        },
    })
}

/// A page of messages for search, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    pub id: String,
    pub received_at: i64,
    pub source_system: String,
    pub message_type: String,
    pub correlation_id: Option<String>,
    pub state: String,
    pub deliveries: Vec<DeliverySummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliverySummary {
    pub id: String,
    pub destination: String,
    pub state: String,
    pub mapping_id: String,
    pub mapping_version: i64,
    pub replay_of: Option<String>,
}

/// Validated search filters (see `audit::search` for parsing and limits).
///
/// The audit API's search and the console's message search are this one
/// search: the console looks a term up as a dossier (or station) code *or* a
/// message id ([`MessageQuery::dossier_or_id`]), over all time, and lists a
/// dossier as a timeline ([`Order::OldestFirst`]).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub dossier: Option<String>,
    /// Messages of this dossier (`correlation_id`), or the message with this id.
    pub dossier_or_id: Option<String>,
    pub system: Option<String>,
    pub message_type: Option<String>,
    /// `accepted`/`rejected` (message) or `pending`/`in_flight`/`delivered`/`dead` (any delivery).
    pub state: Option<String>,
    pub from: i64,
    pub to: i64,
    pub mapping_id: Option<String>,
    pub mapping_version: Option<i64>,
    /// Keyset cursor: only messages strictly before `(received_at, id)` in
    /// the listing's order (older when newest first, newer when oldest first).
    pub before: Option<(i64, String)>,
    pub limit: i64,
    pub order: Order,
}

/// The order of a message search: by `(received_at, id)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the audit search's pages).
    #[default]
    NewestFirst,
    /// Oldest first (a dossier's timeline).
    OldestFirst,
}

impl MessageQuery {
    /// No filter and no time bounds; set `limit` (and any filter) on it.
    pub fn everything() -> Self {
        MessageQuery {
            from: i64::MIN,
            to: i64::MAX,
            ..MessageQuery::default()
        }
    }
}

/// A delivery row with its body, as the API and replay need it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryFull {
    pub id: String,
    pub seq: i64,
    pub message_id: String,
    pub destination: String,
    pub message_type: String,
    pub route_id: String,
    pub mapping_id: String,
    pub mapping_version: i64,
    pub content_type: String,
    pub correlation_id: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub error_class: Option<String>,
    pub replay_of: Option<String>,
    /// The partner-facing key when it is not `id` (see [`DeliveryFull::partner_key`]).
    #[serde(skip)]
    pub partner_key_col: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub pruned_at: Option<i64>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl DeliveryFull {
    /// The `Idempotency-Key` the partner was sent for this delivery: its id, or
    /// for an as-sent replay the key of the delivery it replays.
    pub fn partner_key(&self) -> &str {
        self.partner_key_col.as_deref().unwrap_or(&self.id)
    }
}

/// An attempt row.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptFull {
    pub delivery_id: String,
    pub n: i64,
    pub started_at: i64,
    pub latency_ms: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub outcome: String,
    pub request_excerpt: Option<String>,
    pub response_excerpt: Option<String>,
    pub pruned_at: Option<i64>,
}

/// A message row with its payloads.
#[derive(Debug, Clone, Serialize)]
pub struct MessageFull {
    pub id: String,
    pub received_at: i64,
    pub source_system: String,
    pub message_type: String,
    pub correlation_id: Option<String>,
    pub content_type: Option<String>,
    pub state: String,
    pub reasons: Option<String>,
    pub pruned_at: Option<i64>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub parsed: Option<String>,
}

pub(super) const DELIVERY_COLS: &str = "id, seq, message_id, destination, message_type, route_id, mapping_id, mapping_version, \
     content_type, correlation_id, state, attempts, last_error, error_class, replay_of, partner_key, created_at, updated_at, pruned_at, body";

pub(super) fn delivery_full(r: &AnyRow) -> Result<DeliveryFull> {
    Ok(DeliveryFull {
        id: get(r, "id")?,
        seq: get(r, "seq")?,
        message_id: get(r, "message_id")?,
        destination: get(r, "destination")?,
        message_type: get(r, "message_type")?,
        route_id: get(r, "route_id")?,
        mapping_id: get(r, "mapping_id")?,
        mapping_version: get(r, "mapping_version")?,
        content_type: get(r, "content_type")?,
        correlation_id: get(r, "correlation_id")?,
        state: get(r, "state")?,
        attempts: get(r, "attempts")?,
        last_error: get(r, "last_error")?,
        error_class: get(r, "error_class")?,
        replay_of: get(r, "replay_of")?,
        partner_key_col: get(r, "partner_key")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
        pruned_at: get(r, "pruned_at")?,
        body: get(r, "body")?,
    })
}

impl Store {
    /// Runs `op` in the writer task (see the module docs) and returns its answer after the commit.
    pub async fn audit_write(&self, op: Box<dyn WriteOp>) -> Result<Value> {
        self.submit(|tx| Job::Audit(op, tx)).await
    }

    /// Appends trail events on their own (auditor and admin actions).
    pub async fn record_events(&self, events: Vec<TrailEvent>) -> Result<()> {
        struct Append(Vec<TrailEvent>);
        impl WriteOp for Append {
            fn run<'c>(
                &'c self,
                _c: &'c mut AnyConnection,
                ev: &'c mut Vec<TrailEvent>,
            ) -> BoxFuture<'c, Result<Value>> {
                ev.extend(self.0.iter().cloned());
                Box::pin(async { Ok(Value::Null) })
            }
        }
        self.audit_write(Box::new(Append(events))).await.map(|_| ())
    }

    /// Every key of a recorded table (for "row not covered by the trail").
    pub async fn record_keys(&self, spec: &TableSpec) -> Result<Vec<String>> {
        let rows = sqlx::query(&format!(
            "SELECT {} AS rec_key FROM {}",
            spec.key_sql, spec.table
        ))
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err(&format!("listing {}", spec.table), e))?;
        rows.iter().map(|r| get(r, "rec_key")).collect()
    }

    /// The recorded rows with these keys (missing keys are simply absent from the answer).
    pub async fn records(&self, spec: &TableSpec, keys: &[String]) -> Result<Vec<StoredRecord>> {
        let attempts = spec.table == "attempts";
        let lookups: Vec<String> = if attempts {
            let mut v: Vec<String> = keys
                .iter()
                .map(|k| {
                    k.rsplit_once('#')
                        .map_or(k.as_str(), |(d, _)| d)
                        .to_string()
                })
                .collect();
            v.sort();
            v.dedup();
            v
        } else {
            keys.to_vec()
        };
        let wanted: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let lookup_col = if attempts { "delivery_id" } else { "id" };
        let mut out = Vec::new();
        for chunk in lookups.chunks(500) {
            let sql = format!(
                "SELECT {} FROM {} WHERE {lookup_col} IN ({})",
                select_list(spec),
                spec.table,
                super::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k.clone());
            }
            let rows = q
                .fetch_all(&self.read)
                .await
                .map_err(|e| db_err(&format!("reading {}", spec.table), e))?;
            for r in &rows {
                let rec = stored_record(spec, r)?;
                if wanted.contains(rec.key.as_str()) {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    /// One message with its payloads.
    pub async fn message_full(&self, id: &str) -> Result<Option<MessageFull>> {
        let Some(r) = sqlx::query(
            "SELECT id, received_at, source_system, message_type, correlation_id, content_type, state, reasons, \
             pruned_at, raw, parsed FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db_err("reading a message", e))?
        else {
            return Ok(None);
        };
        Ok(Some(MessageFull {
            id: get(&r, "id")?,
            received_at: get(&r, "received_at")?,
            source_system: get(&r, "source_system")?,
            message_type: get(&r, "message_type")?,
            correlation_id: get(&r, "correlation_id")?,
            content_type: get(&r, "content_type")?,
            state: get(&r, "state")?,
            reasons: get(&r, "reasons")?,
            pruned_at: get(&r, "pruned_at")?,
            raw: get(&r, "raw")?,
            parsed: get(&r, "parsed")?,
        }))
    }

    /// The deliveries of one message (replays included), in acceptance order.
    pub async fn deliveries_of(&self, message_id: &str) -> Result<Vec<DeliveryFull>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE message_id = $1 ORDER BY seq"
        ))
        .bind(message_id)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("reading a message's deliveries", e))?;
        rows.iter().map(delivery_full).collect()
    }

    /// One delivery.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryFull>> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db_err("reading a delivery", e))?;
        row.as_ref().map(delivery_full).transpose()
    }

    /// The attempts of these deliveries, by delivery then attempt number.
    pub async fn attempts_of(&self, delivery_ids: &[String]) -> Result<Vec<AttemptFull>> {
        let mut out = Vec::new();
        for chunk in delivery_ids.chunks(500) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT delivery_id, n, started_at, latency_ms, status, error, outcome, request_excerpt, response_excerpt, \
                 pruned_at FROM attempts WHERE delivery_id IN ({}) ORDER BY delivery_id, n",
                super::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k.clone());
            }
            for r in q
                .fetch_all(&self.read)
                .await
                .map_err(|e| db_err("reading attempts", e))?
            {
                out.push(AttemptFull {
                    delivery_id: get(&r, "delivery_id")?,
                    n: get(&r, "n")?,
                    started_at: get(&r, "started_at")?,
                    latency_ms: get(&r, "latency_ms")?,
                    status: get(&r, "status")?,
                    error: get(&r, "error")?,
                    outcome: get(&r, "outcome")?,
                    request_excerpt: get(&r, "request_excerpt")?,
                    response_excerpt: get(&r, "response_excerpt")?,
                    pruned_at: get(&r, "pruned_at")?,
                });
            }
        }
        Ok(out)
    }

    /// Dead deliveries matching `f` that no later row replays yet, oldest first (what a
    /// bulk replay would send: the console lists exactly this, so its count is the replay's).
    pub async fn dead_deliveries(&self, f: &DeadFilter) -> Result<Vec<DeliveryFull>> {
        let mut sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d WHERE d.state = 'dead' AND d.updated_at >= $1 AND d.updated_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.replay_of = d.id)"
        );
        let mut binds: Vec<Bind> = vec![Bind::I(f.from), Bind::I(f.to)];
        let next = |v: Bind, binds: &mut Vec<Bind>| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if let Some(d) = f.destination.as_deref().filter(|s| !s.is_empty()) {
            let p = next(Bind::S(d.to_string()), &mut binds);
            sql += &format!(" AND d.destination = {p}");
        }
        if let Some(t) = f.message_type.as_deref().filter(|s| !s.is_empty()) {
            let p = next(Bind::S(t.to_string()), &mut binds);
            sql += &format!(" AND d.message_type = {p}");
        }
        if let Some(c) = f.error_class.as_deref().filter(|s| !s.is_empty()) {
            let p = next(Bind::S(c.to_string()), &mut binds);
            sql += &format!(" AND d.error_class = {p}");
        }
        if let Some(e) = f.error_contains.as_deref().filter(|s| !s.is_empty()) {
            // Substring, case-insensitive (ASCII) on both backends; LIKE wildcards are literal.
            let pattern = format!(
                "%{}%",
                e.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let p = next(Bind::S(pattern), &mut binds);
            sql += &format!(" AND LOWER(COALESCE(d.last_error, '')) LIKE {p} ESCAPE '\\'");
        }
        if !f.ids.is_empty() {
            let ps: Vec<String> = f
                .ids
                .iter()
                .map(|id| next(Bind::S(id.clone()), &mut binds))
                .collect();
            sql += &format!(" AND d.id IN ({})", ps.join(", "));
        }
        let p = next(Bind::I(f.limit), &mut binds);
        sql += &format!(" ORDER BY d.seq LIMIT {p}");
        let rows = bound(sqlx::query(&sql), binds)
            .fetch_all(&self.read)
            .await
            .map_err(|e| db_err("finding dead deliveries", e))?;
        rows.iter().map(delivery_full).collect()
    }

    /// Messages matching `q`, newest first.
    pub async fn search_messages(&self, q: &MessageQuery) -> Result<Vec<MessageSummary>> {
        let mut sql = String::from(
            "SELECT m.id, m.received_at, m.source_system, m.message_type, m.correlation_id, m.state FROM messages m \
             WHERE m.received_at >= $1 AND m.received_at <= $2",
        );
        let mut binds: Vec<Bind> = vec![Bind::I(q.from), Bind::I(q.to)];
        let next = |v: Bind, binds: &mut Vec<Bind>| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if let Some(d) = &q.dossier {
            let p = next(Bind::S(d.clone()), &mut binds);
            sql += &format!(" AND m.correlation_id = {p}");
        }
        if let Some(d) = &q.dossier_or_id {
            let p = next(Bind::S(d.clone()), &mut binds);
            sql += &format!(" AND (m.correlation_id = {p} OR m.id = {p})");
        }
        if let Some(s) = &q.system {
            let p = next(Bind::S(s.clone()), &mut binds);
            sql += &format!(
                " AND (m.source_system = {p} OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.destination = {p}))"
            );
        }
        if let Some(t) = &q.message_type {
            let p = next(Bind::S(t.clone()), &mut binds);
            sql += &format!(
                " AND (m.message_type = {p} OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.message_type = {p}))"
            );
        }
        if let Some(s) = &q.state {
            let p = next(Bind::S(s.clone()), &mut binds);
            if s == "accepted" || s == "rejected" {
                sql += &format!(" AND m.state = {p}");
            } else {
                sql += &format!(" AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = {p})");
            }
        }
        if q.mapping_id.is_some() || q.mapping_version.is_some() {
            sql += " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id";
            if let Some(id) = &q.mapping_id {
                let p = next(Bind::S(id.clone()), &mut binds);
                sql += &format!(" AND d.mapping_id = {p}");
            }
            if let Some(v) = q.mapping_version {
                let p = next(Bind::I(v), &mut binds);
                sql += &format!(" AND d.mapping_version = {p}");
            }
            sql += ")";
        }
        let (past, dir) = match q.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some((at, id)) = &q.before {
            let a = next(Bind::I(*at), &mut binds);
            let i = next(Bind::S(id.clone()), &mut binds);
            sql += &format!(
                " AND (m.received_at {past} {a} OR (m.received_at = {a} AND m.id {past} {i}))"
            );
        }
        let l = next(Bind::I(q.limit), &mut binds);
        sql += &format!(" ORDER BY m.received_at {dir}, m.id {dir} LIMIT {l}");
        let rows = bound(sqlx::query(&sql), binds)
            .fetch_all(&self.read)
            .await
            .map_err(|e| db_err("searching messages", e))?;
        let mut out: Vec<MessageSummary> = rows
            .iter()
            .map(|r| {
                Ok(MessageSummary {
                    id: get(r, "id")?,
                    received_at: get(r, "received_at")?,
                    source_system: get(r, "source_system")?,
                    message_type: get(r, "message_type")?,
                    correlation_id: get(r, "correlation_id")?,
                    state: get(r, "state")?,
                    deliveries: Vec::new(),
                })
            })
            .collect::<Result<_>>()?;
        let ids: Vec<String> = out.iter().map(|m| m.id.clone()).collect();
        let mut by_msg: HashMap<String, Vec<DeliverySummary>> = HashMap::new();
        for chunk in ids.chunks(500) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT id, message_id, destination, state, mapping_id, mapping_version, replay_of FROM deliveries \
                 WHERE message_id IN ({}) ORDER BY seq",
                super::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.clone());
            }
            for r in q
                .fetch_all(&self.read)
                .await
                .map_err(|e| db_err("reading deliveries", e))?
            {
                by_msg
                    .entry(get(&r, "message_id")?)
                    .or_default()
                    .push(DeliverySummary {
                        id: get(&r, "id")?,
                        destination: get(&r, "destination")?,
                        state: get(&r, "state")?,
                        mapping_id: get(&r, "mapping_id")?,
                        mapping_version: get(&r, "mapping_version")?,
                        replay_of: get(&r, "replay_of")?,
                    });
            }
        }
        for m in &mut out {
            m.deliveries = by_msg.remove(&m.id).unwrap_or_default();
        }
        Ok(out)
    }
}

/// Which dead letters a listing or bulk replay covers (empty strings and `None` match all).
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    pub destination: Option<String>,
    pub message_type: Option<String>,
    /// `transient`, `permanent` or `exhausted`.
    pub error_class: Option<String>,
    /// Substring of the last error (case-insensitive for ASCII).
    pub error_contains: Option<String>,
    /// Only these deliveries (the console's checkboxes); empty: every match.
    pub ids: Vec<String>,
    /// `updated_at` range, epoch ms inclusive.
    pub from: i64,
    pub to: i64,
    pub limit: i64,
}

enum Bind {
    I(i64),
    S(String),
}

/// `query` with `binds` bound in order (the searches build their SQL and
/// their parameters side by side).
fn bound<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        query = match b {
            Bind::I(i) => query.bind(i),
            Bind::S(s) => query.bind(s),
        };
    }
    query
}
