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
    chain_hash(prev_hash, canonical_json(event).as_bytes())
}

/// `hex(SHA-256(prev_hash || canonical))`: the rule both paths apply.
fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical);
    hex::encode(h.finalize())
}

/// [`event_hash`] of [`event_object`]`(seq, ..)` whose `detail` is already in
/// canonical form (`detail_canonical`, the text the trail row stores): the
/// object's keys are fixed, so its canonical form is written field by field in
/// their sorted order without building the object or canonicalizing `detail`
/// a second time. The field list is the one [`event_object`] builds, in sorted
/// key order; `row_hash_is_the_verifiers_hash` fails if the two ever differ.
#[allow(clippy::too_many_arguments)]
fn row_hash(
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

fn store_err(what: &str, e: sqlx::Error) -> Error {
    Error::Store {
        message: format!("trail append ({what}): {e}"),
        retryable: true,
        source: None,
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

    /// The append path's [`row_hash`] must give exactly the hash a verifier
    /// recomputes from the stored row ([`event_hash`] of [`event_object`]),
    /// for any detail: escapes, non-ASCII, numbers kept as written, nesting,
    /// and absent ids.
    #[test]
    fn row_hash_is_the_verifiers_hash() {
        let details = [
            "null",
            "{}",
            r#"{"b":1.50,"a":{"d":[{"z":1,"y":"Đ"}],"c":null},"e":-0.0,"f":1e400}"#,
            r#"{"quote":"a\"b\\c\n\t\u0001\u2028","vi":"Hồ sơ đất đai","emoji":"🏞"}"#,
            r#"{"records":[{"table":"messages","key":"018f","sha256":{"raw":"ab"}}],"n":12345678901234567890}"#,
            r#"["x",true,false,null,[],{}]"#,
            r#""just a string""#,
        ];
        let mut buf = Vec::new();
        for (i, d) in details.iter().enumerate() {
            let detail: Value = serde_json::from_str(d).unwrap();
            for (message_id, delivery_id) in [
                (Some("018f5e2a-m"), Some("018f5e2a-d")),
                (None, None),
                (Some("m\"1"), None),
            ] {
                let (seq, at) = (i as i64 * 1_000_003, -(i as i64) + 1_732_780_800_000);
                let expected = event_hash(
                    GENESIS_HASH,
                    &event_object(
                        seq,
                        at,
                        message_id,
                        delivery_id,
                        "attempt",
                        "admin:Nguyễn",
                        &detail,
                    ),
                );
                let got = row_hash(
                    GENESIS_HASH,
                    seq,
                    at,
                    message_id,
                    delivery_id,
                    "attempt",
                    "admin:Nguyễn",
                    &canonical_json(&detail),
                    &mut buf,
                );
                assert_eq!(
                    got, expected,
                    "detail {d}, ids {message_id:?} {delivery_id:?}"
                );
            }
        }
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
