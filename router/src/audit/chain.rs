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
//! # Where the rows are written
//!
//! The store appends the rows, inside the transaction of the change they
//! record ([`crate::store::trail`], which also says why every append goes
//! through the single `chain_head` row). It hashes each row with its own
//! field-by-field encoding of the same object; `row_hash_is_the_verifiers_hash`
//! below checks that the two agree. `detail` is stored in the canonical form
//! ([`canonical_json`]), so it is hashed exactly as stored.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use crate::store::trail::{canonical_json, TrailEvent};

/// `prev_hash` of the very first trail row: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::trail::row_hash;

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
