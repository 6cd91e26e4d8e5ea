//! Appending to the hash-chained trail.
//!
//! # The rule
//!
//! Each trail row `n` stores `prev_hash` (the `hash` of row `n-1`, or
//! [`GENESIS_HASH`] for the first row) and
//!
//! ```text
//! hash = lowercase_hex( SHA-256( prev_hash_as_ascii_hex || canonical_json(event) ) )
//! ```
//!
//! where `event` is the JSON object
//! `{"actor","at","delivery_id","detail","kind","message_id","seq"}` of that row
//! (`detail` is the stored JSON, `message_id`/`delivery_id` may be `null`), and
//! [`canonical_json`] writes objects with keys sorted by their UTF-8 bytes, no
//! insignificant whitespace, strings escaped as `serde_json` does, and numbers
//! exactly as stored. A verifier reads rows in `seq` order and recomputes each hash
//! with [`event_hash`]; the first mismatch is where the trail was altered.
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

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::{Error, Result};

/// `prev_hash` of the very first trail row: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

/// Writes `value` in canonical form (sorted keys, no whitespace). See the module docs.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The JSON object that is hashed for one row.
pub fn event_object(
    seq: i64,
    at: i64,
    message_id: Option<&str>,
    delivery_id: Option<&str>,
    kind: &str,
    actor: &str,
    detail: &Value,
) -> Value {
    let mut m = Map::new();
    m.insert("actor".into(), Value::from(actor));
    m.insert("at".into(), Value::from(at));
    m.insert(
        "delivery_id".into(),
        delivery_id.map_or(Value::Null, Value::from),
    );
    m.insert("detail".into(), detail.clone());
    m.insert("kind".into(), Value::from(kind));
    m.insert(
        "message_id".into(),
        message_id.map_or(Value::Null, Value::from),
    );
    m.insert("seq".into(), Value::from(seq));
    Value::Object(m)
}

/// `hex(SHA-256(prev_hash || canonical_json(event)))`.
pub fn event_hash(prev_hash: &str, event: &Value) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical_json(event).as_bytes());
    hex::encode(h.finalize())
}

fn store_err(what: &str, e: sqlx::Error) -> Error {
    Error::Store {
        message: format!("trail append ({what}): {e}"),
        retryable: true,
    }
}

/// Appends `events` in order, inside the caller's transaction (`conn` must be in one).
pub async fn append(conn: &mut AnyConnection, events: &[TrailEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = events.last().map(|e| e.at).unwrap_or_default();
    // Lock the head first (see module docs), then read it in the same statement.
    let row = sqlx::query("UPDATE chain_head SET updated_at = $1 WHERE id = 1 RETURNING seq, hash")
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| store_err("lock chain head", e))?;
    let mut seq: i64 = row
        .try_get("seq")
        .map_err(|e| store_err("read head seq", e))?;
    let mut prev: String = row
        .try_get("hash")
        .map_err(|e| store_err("read head hash", e))?;
    // Hash every row first, then insert them with multi-row statements.
    let mut rows = Vec::with_capacity(events.len());
    for ev in events {
        seq += 1;
        let obj = event_object(
            seq,
            ev.at,
            ev.message_id.as_deref(),
            ev.delivery_id.as_deref(),
            ev.kind,
            &ev.actor,
            &ev.detail,
        );
        let hash = event_hash(&prev, &obj);
        rows.push((seq, ev, canonical_json(&ev.detail), prev, hash.clone()));
        prev = hash;
    }
    for chunk in rows.chunks(crate::store::ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO trail (seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash) VALUES {}",
            crate::store::values_sql(chunk.len(), 9, "")
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
            .map_err(|e| store_err("insert trail rows", e))?;
    }
    sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(prev)
        .execute(&mut *conn)
        .await
        .map_err(|e| store_err("move chain head", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_recursively_and_keeps_numbers() {
        let v: Value =
            serde_json::from_str(r#"{"b":1.50,"a":{"d":[{"z":1,"y":"Đ"}],"c":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[{"y":"Đ","z":1}]},"b":1.50}"#
        );
    }

    #[test]
    fn hash_depends_on_prev_and_event() {
        let e = event_object(1, 10, Some("m"), None, "received", "intake", &Value::Null);
        let h1 = event_hash(GENESIS_HASH, &e);
        assert_eq!(h1.len(), 64);
        assert_ne!(h1, event_hash(&h1, &e));
        let e2 = event_object(1, 11, Some("m"), None, "received", "intake", &Value::Null);
        assert_ne!(h1, event_hash(GENESIS_HASH, &e2));
    }
}
