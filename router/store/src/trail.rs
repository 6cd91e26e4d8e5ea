//! The `trail` and `chain_head` tables: appending to the hash-chained trail,
//! and reading it back.
//!
//! The rule a row's hash follows, and the verifier that recomputes it, are in
//! `router::audit::chain` and `router::audit::verify`; the append here hashes
//! each row as it writes it ([`row_hash`], checked against the rule by a test
//! in `audit::chain`), and writes `detail` in its canonical form
//! ([`canonical_json`]), the form it is hashed in.
//!
//! # Why a chain-head row
//!
//! Two writers that each read "the last row" and append after it would fork the
//! chain. So an append first *writes* the single `chain_head` row
//! (`UPDATE chain_head ... RETURNING seq, hash`): on PostgreSQL that takes the
//! row lock until the transaction ends, on SQLite it takes the database write
//! lock. Any concurrent appender blocks on that row, then sees the new head. The
//! same statement works on both backends, and the lock is held only for the tail
//! end of the writing transaction.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::error::{db_err, get};
use super::{Store, TrailRow};
use lienthong_core::Result;

/// One trail event before it has a place in the chain.
#[derive(Debug, Clone)]
pub struct TrailEvent {
    /// Epoch milliseconds.
    pub at: i64,
    pub message_id: Option<String>,
    pub delivery_id: Option<String>,
    /// `received`, `rejected`, `routed`, `mapped`, `attempt`, `delivered`, `dead`, ...
    pub kind: &'static str,
    /// Who did it: `intake`, `delivery`, `admin:<name>`...
    pub actor: String,
    /// Kind-specific detail; never the full payload (that is in `messages.raw`).
    pub detail: Value,
}

/// Writes `value` in canonical form (sorted keys, no whitespace): the form
/// `detail` is stored in and hashed in (see `router::audit::chain` for the rule).
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Appends the canonical form of `value` to `out`. Keys and scalars go through
/// `serde_json::to_writer`, the same serializer as `Value`'s `Display`, so the
/// bytes are those a verifier computes; writing into one buffer instead of a
/// `String` per key and scalar matters because every trail row is hashed this
/// way (it was the largest single item of the writer's CPU in a profile).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(k.as_str(), out);
                out.push(b':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => write_scalar(other, out),
    }
}

/// A string, number, boolean or null, as `serde_json` writes it.
fn write_scalar<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, v).expect("writing JSON into a Vec cannot fail");
}

/// `hex(SHA-256(prev_hash || canonical))`: the chain's rule (`router::audit::chain`).
fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical);
    hex::encode(h.finalize())
}

/// `router::audit::event_hash` of `router::audit::chain::event_object(seq, ..)` whose `detail` is already in
/// canonical form (`detail_canonical`, the text the trail row stores): the
/// object's keys are fixed, so its canonical form is written field by field in
/// their sorted order without building the object or canonicalizing `detail`
/// a second time. The field list is the one `event_object` builds, in sorted
/// key order; `row_hash_is_the_verifiers_hash` fails if the two ever differ.
#[allow(clippy::too_many_arguments)]
pub fn row_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    message_id: Option<&str>,
    delivery_id: Option<&str>,
    kind: &str,
    actor: &str,
    detail_canonical: &str,
    buf: &mut Vec<u8>,
) -> String {
    buf.clear();
    buf.extend_from_slice(b"{\"actor\":");
    write_scalar(actor, buf);
    buf.extend_from_slice(b",\"at\":");
    write_scalar(&Value::from(at), buf);
    buf.extend_from_slice(b",\"delivery_id\":");
    write_scalar(&delivery_id, buf);
    buf.extend_from_slice(b",\"detail\":");
    buf.extend_from_slice(detail_canonical.as_bytes());
    buf.extend_from_slice(b",\"kind\":");
    write_scalar(kind, buf);
    buf.extend_from_slice(b",\"message_id\":");
    write_scalar(&message_id, buf);
    buf.extend_from_slice(b",\"seq\":");
    write_scalar(&Value::from(seq), buf);
    buf.push(b'}');
    chain_hash(prev_hash, buf)
}

/// Appends `events` in order, inside the caller's transaction (`conn` must be in one).
pub(crate) async fn append(conn: &mut AnyConnection, events: &[TrailEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = events.last().map(|e| e.at).unwrap_or_default();
    // Lock the head first (see module docs), then read it in the same statement.
    let row = sqlx::query("UPDATE chain_head SET updated_at = $1 WHERE id = 1 RETURNING seq, hash")
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_err("trail append (lock chain head)", e))?;
    let mut seq: i64 = get(&row, "seq")?;
    let mut prev: String = get(&row, "hash")?;
    // Hash every row first, then insert them with multi-row statements.
    let mut rows = Vec::with_capacity(events.len());
    let mut buf = Vec::new();
    for ev in events {
        seq += 1;
        let detail = canonical_json(&ev.detail);
        let hash = row_hash(
            &prev,
            seq,
            ev.at,
            ev.message_id.as_deref(),
            ev.delivery_id.as_deref(),
            ev.kind,
            &ev.actor,
            &detail,
            &mut buf,
        );
        rows.push((seq, ev, detail, prev, hash.clone()));
        prev = hash;
    }
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO trail (seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash) VALUES {}",
            super::values_sql(chunk.len(), 9, "")
        );
        let mut q = sqlx::query(&sql);
        for (seq, ev, detail, prev_hash, hash) in chunk {
            q = q
                .bind(*seq)
                .bind(ev.at)
                .bind(ev.message_id.clone())
                .bind(ev.delivery_id.clone())
                .bind(ev.kind)
                .bind(ev.actor.clone())
                .bind(detail.clone())
                .bind(prev_hash.clone())
                .bind(hash.clone());
        }
        q.execute(&mut *conn)
            .await
            .map_err(|e| db_err("trail append (insert trail rows)", e))?;
    }
    sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(prev)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_err("trail append (move chain head)", e))?;
    Ok(())
}

/// A trail row exactly as stored (`detail` is the stored text, not re-parsed), for verification.
#[derive(Debug, Clone, Serialize)]
pub struct StoredTrailRow {
    pub seq: i64,
    pub at: i64,
    pub message_id: Option<String>,
    pub delivery_id: Option<String>,
    pub kind: String,
    pub actor: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

const TRAIL_COLS: &str = "seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash";

fn trail_row(r: &AnyRow) -> Result<StoredTrailRow> {
    Ok(StoredTrailRow {
        seq: get(r, "seq")?,
        at: get(r, "at")?,
        message_id: get(r, "message_id")?,
        delivery_id: get(r, "delivery_id")?,
        kind: get(r, "kind")?,
        actor: get(r, "actor")?,
        detail: get(r, "detail")?,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

impl Store {
    /// `(seq, hash)` of the chain head row.
    pub async fn chain_head(&self) -> Result<(i64, String)> {
        let r = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_one(&self.read)
            .await
            .map_err(|e| db_err("reading the chain head", e))?;
        Ok((get(&r, "seq")?, get(&r, "hash")?))
    }

    /// Up to `limit` trail rows with `seq >= from_seq` (and `<= to_seq`), in order.
    pub async fn trail_page(
        &self,
        from_seq: i64,
        to_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredTrailRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRAIL_COLS} FROM trail WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3"
        ))
        .bind(from_seq)
        .bind(to_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("reading the trail", e))?;
        rows.iter().map(trail_row).collect()
    }

    /// The trail rows with these sequence numbers, in order.
    pub async fn trail_rows(&self, seqs: &[i64]) -> Result<Vec<StoredTrailRow>> {
        let mut out = Vec::new();
        for chunk in seqs.chunks(500) {
            let sql = format!(
                "SELECT {TRAIL_COLS} FROM trail WHERE seq IN ({}) ORDER BY seq",
                super::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q.bind(*s);
            }
            let rows = q
                .fetch_all(&self.read)
                .await
                .map_err(|e| db_err("reading trail rows", e))?;
            for r in &rows {
                out.push(trail_row(r)?);
            }
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    /// `(prev_hash, hash)` of every row in `[lo, hi]`: the "spine" a dossier bundle links through.
    pub async fn trail_spine(&self, lo: i64, hi: i64) -> Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash FROM trail WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("reading the trail spine", e))?;
        rows.iter()
            .map(|r| Ok((get(r, "seq")?, get(r, "prev_hash")?, get(r, "hash")?)))
            .collect()
    }

    /// Smallest and largest `seq` of rows with `at` in `[from, to]`, if any.
    pub async fn seq_bounds(&self, from: i64, to: i64) -> Result<Option<(i64, i64)>> {
        let r = sqlx::query(
            "SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM trail WHERE at >= $1 AND at <= $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.read)
        .await
        .map_err(|e| db_err("finding the trail range", e))?;
        let lo: Option<i64> = get(&r, "lo")?;
        let hi: Option<i64> = get(&r, "hi")?;
        Ok(lo.zip(hi))
    }

    /// Seqs of the trail rows about one dossier or station: rows of its messages and their deliveries.
    pub async fn dossier_seqs(&self, code: &str, from: i64, to: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT t.seq FROM trail t WHERE t.at >= $2 AND t.at <= $3 AND t.message_id IN \
             (SELECT id FROM messages WHERE correlation_id = $1) ORDER BY t.seq",
        )
        .bind(code)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("finding a dossier's trail rows", e))?;
        rows.iter().map(|r| get(r, "seq")).collect()
    }

    /// Seqs of the rows of one kind at or after `from_seq` (e.g. `retention.pruned`).
    pub async fn trail_seqs_of_kind(&self, kind: &str, from_seq: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT seq FROM trail WHERE kind = $1 AND seq >= $2 ORDER BY seq")
            .bind(kind)
            .bind(from_seq)
            .fetch_all(&self.read)
            .await
            .map_err(|e| db_err("finding trail rows by kind", e))?;
        rows.iter().map(|r| get(r, "seq")).collect()
    }

    /// Every trail row about a dossier (its messages and their deliveries), in chain order,
    /// with the message's source system for each row.
    pub async fn dossier_trail(
        &self,
        code: &str,
    ) -> Result<Vec<(StoredTrailRow, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT t.seq, t.at, t.message_id, t.delivery_id, t.kind, t.actor, t.detail, t.prev_hash, t.hash, \
             m.source_system, d.destination FROM trail t JOIN messages m ON m.id = t.message_id \
             LEFT JOIN deliveries d ON d.id = t.delivery_id WHERE m.correlation_id = $1 ORDER BY t.seq",
        )
        .bind(code)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("reading a dossier's trail", e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    trail_row(r)?,
                    get(r, "source_system")?,
                    get(r, "destination")?,
                ))
            })
            .collect()
    }

    /// The trail rows of one message (including its deliveries' rows), in chain order.
    pub async fn trail_for_message(&self, id: &str) -> Result<Vec<TrailRow>> {
        trail_for_message(&self.read, id).await
    }

    /// The first `limit` trail rows of one message, in chain order, as stored.
    pub async fn trail_for_message_first(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<Vec<StoredTrailRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRAIL_COLS} FROM trail WHERE message_id = $1 ORDER BY seq LIMIT $2"
        ))
        .bind(id)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("reading a message's trail", e))?;
        rows.iter().map(trail_row).collect()
    }
}

async fn trail_for_message(pool: &sqlx::AnyPool, id: &str) -> Result<Vec<TrailRow>> {
    let rows = sqlx::query(
        "SELECT seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash FROM trail \
         WHERE message_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_err("reading the trail", e))?;
    rows.iter()
        .map(|r| {
            let detail: String = get(r, "detail")?;
            Ok(TrailRow {
                seq: get(r, "seq")?,
                at: get(r, "at")?,
                message_id: get(r, "message_id")?,
                delivery_id: get(r, "delivery_id")?,
                kind: get(r, "kind")?,
                actor: get(r, "actor")?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                prev_hash: get(r, "prev_hash")?,
                hash: get(r, "hash")?,
            })
        })
        .collect()
}
