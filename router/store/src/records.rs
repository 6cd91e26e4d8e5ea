//! Record digests: how the chain covers the rows of the other tables.
//!
//! They live with the tables they describe: the store seals each row it
//! inserts, in the transaction that inserts it, and `router::audit::verify`
//! reads the same definitions back (as `router::audit::digest`).
//!
//! # Why
//!
//! The hash chain (`router::audit::chain`) only protects the `trail` rows. A message's
//! raw bytes, a delivery's body or an attempt's excerpts live in their own tables,
//! so an edit there would go unnoticed unless some chained event pins them down.
//! Each time the store inserts one of those rows it therefore adds a *record* to the
//! detail of the trail event written in the same transaction:
//!
//! ```json
//! "records": [{
//!   "table": "deliveries", "key": "0193...",
//!   "cols":   {"destination": "lis", "mapping_version": 3, ...},   // the row's immutable columns, verbatim
//!   "sha256": {"body": "9f2c..."}                                  // SHA-256 of each payload column
//! }]
//! ```
//!
//! Small columns are copied verbatim (so verify can name the exact field that
//! changed); payload columns are kept as digests only (so the trail never holds a
//! payload, and retention can empty a payload column while its digest stays in the
//! chain). Columns that legitimately change after insert (a delivery's `state`,
//! `attempts`, leases, `pruned_at`...) are not recorded; verify checks a delivery's
//! final state against its `delivered`/`dead` events instead.
//!
//! The column lists below ([`MESSAGES`], [`DELIVERIES`], [`ATTEMPTS`]) are the single
//! definition used both when sealing (at insert) and when verifying (reading back).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::trail::TrailEvent;
use super::{NewDelivery, NewMessage, RejectedMessage, Settlement};

/// How a recorded column is typed in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `BIGINT NOT NULL`.
    Int,
    /// `BIGINT`, nullable.
    OptInt,
    /// `TEXT NOT NULL`.
    Text,
    /// `TEXT`, nullable.
    OptText,
    /// `BLOB`/`BYTEA NOT NULL` (payload).
    Blob,
}

/// The recorded columns of one table.
#[derive(Debug)]
pub struct TableSpec {
    pub table: &'static str,
    /// How to select the record key (an SQL expression over the row).
    pub key_sql: &'static str,
    /// Immutable small columns, copied into the record.
    pub cols: &'static [(&'static str, ColType)],
    /// Payload columns, recorded as SHA-256 digests.
    pub payloads: &'static [(&'static str, ColType)],
    /// The column that dates the record (retention compares it with the prune cut-off).
    pub time_col: &'static str,
}

pub const MESSAGES: TableSpec = TableSpec {
    table: "messages",
    key_sql: "id",
    cols: &[
        ("received_at", ColType::Int),
        ("source_system", ColType::Text),
        ("message_type", ColType::Text),
        ("correlation_id", ColType::OptText),
        ("idempotency_key", ColType::OptText),
        ("partner_message_id", ColType::OptText),
        ("content_type", ColType::OptText),
        ("state", ColType::Text),
        ("reasons", ColType::OptText),
    ],
    payloads: &[("raw", ColType::Blob), ("parsed", ColType::OptText)],
    time_col: "received_at",
};

pub const DELIVERIES: TableSpec = TableSpec {
    table: "deliveries",
    key_sql: "id",
    cols: &[
        ("message_id", ColType::Text),
        ("destination", ColType::Text),
        ("message_type", ColType::Text),
        ("route_id", ColType::Text),
        ("mapping_id", ColType::Text),
        ("mapping_version", ColType::Int),
        ("content_type", ColType::Text),
        ("correlation_id", ColType::Text),
        ("created_at", ColType::Int),
        ("replay_of", ColType::OptText),
    ],
    payloads: &[("body", ColType::Blob)],
    time_col: "created_at",
};

/// Attempts are keyed `<delivery_id>#<n>` (their integer id is assigned by the database).
pub const ATTEMPTS: TableSpec = TableSpec {
    table: "attempts",
    key_sql: "delivery_id || '#' || CAST(n AS TEXT)",
    cols: &[
        ("delivery_id", ColType::Text),
        ("n", ColType::Int),
        ("started_at", ColType::Int),
        ("latency_ms", ColType::Int),
        ("status", ColType::OptInt),
        ("error", ColType::OptText),
        ("outcome", ColType::Text),
    ],
    payloads: &[
        ("request_excerpt", ColType::OptText),
        ("response_excerpt", ColType::OptText),
    ],
    time_col: "started_at",
};

pub const TABLES: [&TableSpec; 3] = [&MESSAGES, &DELIVERIES, &ATTEMPTS];

/// `hex(SHA-256(bytes))`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The digest of an optional payload: `null` for SQL NULL.
pub fn payload_digest(bytes: Option<&[u8]>) -> Value {
    bytes.map_or(Value::Null, |b| Value::from(sha256_hex(b)))
}

/// Builds the record object; `cols` and `payloads` must follow `spec`'s order.
pub fn record(
    spec: &TableSpec,
    key: &str,
    cols: Vec<Value>,
    payloads: Vec<Option<&[u8]>>,
) -> Value {
    debug_assert_eq!(cols.len(), spec.cols.len());
    debug_assert_eq!(payloads.len(), spec.payloads.len());
    let c: Map<String, Value> = spec
        .cols
        .iter()
        .zip(cols)
        .map(|((n, _), v)| (n.to_string(), v))
        .collect();
    let p: Map<String, Value> = spec
        .payloads
        .iter()
        .zip(payloads)
        .map(|((n, _), b)| (n.to_string(), payload_digest(b)))
        .collect();
    json!({ "table": spec.table, "key": key, "cols": c, "sha256": p })
}

fn opt(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, Value::from)
}

/// The record of an accepted message row.
pub fn accepted_message_record(m: &NewMessage) -> Value {
    record(
        &MESSAGES,
        &m.id,
        vec![
            m.received_at.into(),
            m.source_system.as_str().into(),
            m.message_type.as_str().into(),
            m.correlation_id.as_str().into(),
            opt(&m.idempotency_key),
            opt(&m.partner_message_id),
            m.content_type.as_str().into(),
            "accepted".into(),
            Value::Null,
        ],
        vec![Some(&m.raw), Some(m.parsed.as_bytes())],
    )
}

/// The record of a delivery row (`replay_of` set for replays).
pub fn delivery_record(
    message_id: &str,
    correlation_id: &str,
    created_at: i64,
    d: &NewDelivery,
    replay_of: Option<&str>,
) -> Value {
    record(
        &DELIVERIES,
        &d.id,
        vec![
            message_id.into(),
            d.destination.as_str().into(),
            d.message_type.as_str().into(),
            d.route_id.as_str().into(),
            d.mapping_id.as_str().into(),
            d.mapping_version.into(),
            d.content_type.as_str().into(),
            correlation_id.into(),
            created_at.into(),
            replay_of.map_or(Value::Null, Value::from),
        ],
        vec![Some(&d.body)],
    )
}

/// The record of a rejected message row; `reasons` is the JSON text stored.
pub fn rejected_message_record(m: &RejectedMessage, reasons: &str) -> Value {
    record(
        &MESSAGES,
        &m.id,
        vec![
            m.received_at.into(),
            m.source_system.as_str().into(),
            m.message_type.as_str().into(),
            opt(&m.correlation_id),
            Value::Null,
            Value::Null,
            m.content_type.as_str().into(),
            "rejected".into(),
            reasons.into(),
        ],
        vec![Some(&m.raw), m.parsed.as_deref().map(str::as_bytes)],
    )
}

/// The record of an attempt row.
pub fn attempt_record(s: &Settlement, outcome: &str) -> Value {
    record(
        &ATTEMPTS,
        &format!("{}#{}", s.delivery_id, s.attempt),
        vec![
            s.delivery_id.as_str().into(),
            i64::from(s.attempt).into(),
            s.started_at.into(),
            s.latency_ms.into(),
            s.status.map_or(Value::Null, |c| Value::from(i64::from(c))),
            opt(&s.error),
            outcome.into(),
        ],
        vec![
            Some(s.request_excerpt.as_bytes()),
            Some(s.response_excerpt.as_bytes()),
        ],
    )
}

/// Adds `record` to `event.detail.records` (making `detail` an object if needed).
pub fn attach(event: &mut TrailEvent, record: Value) {
    if !event.detail.is_object() {
        let old = std::mem::take(&mut event.detail);
        event.detail = if old.is_null() {
            json!({})
        } else {
            json!({ "value": old })
        };
    }
    let obj = event.detail.as_object_mut().expect("made an object above");
    match obj.get_mut("records") {
        Some(Value::Array(list)) => list.push(record),
        _ => {
            obj.insert("records".into(), Value::Array(vec![record]));
        }
    }
}

/// Seals an accepted message: the message record goes on its `received` event,
/// each delivery record on that delivery's `mapped` event. Whatever finds no such
/// event (intake wrote none) goes on a `stored` event appended after them.
/// `start` is where this message's events begin in `events`.
pub fn seal_accept(m: &NewMessage, events: &mut Vec<TrailEvent>, start: usize) {
    let mut leftovers = Vec::new();
    let mine = |e: &TrailEvent| e.message_id.as_deref() == Some(m.id.as_str());
    let msg = accepted_message_record(m);
    match events[start..]
        .iter()
        .position(|e| mine(e) && e.kind == "received")
    {
        Some(i) => attach(&mut events[start + i], msg),
        None => leftovers.push(msg),
    }
    for d in &m.deliveries {
        let rec = delivery_record(&m.id, &m.correlation_id, m.received_at, d, None);
        match events[start..]
            .iter()
            .position(|e| e.kind == "mapped" && e.delivery_id.as_deref() == Some(d.id.as_str()))
        {
            Some(i) => attach(&mut events[start + i], rec),
            None => leftovers.push(rec),
        }
    }
    if !leftovers.is_empty() {
        let mut ev = TrailEvent {
            at: m.received_at,
            message_id: Some(m.id.clone()),
            delivery_id: None,
            kind: "stored",
            actor: "store".into(),
            detail: json!({}),
        };
        for r in leftovers {
            attach(&mut ev, r);
        }
        events.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(with_events: bool) -> NewMessage {
        let trail = if with_events {
            vec![
                TrailEvent {
                    at: 1,
                    message_id: Some("m1".into()),
                    delivery_id: None,
                    kind: "received",
                    actor: "intake".into(),
                    detail: json!({"bytes": 3}),
                },
                TrailEvent {
                    at: 1,
                    message_id: Some("m1".into()),
                    delivery_id: Some("d1".into()),
                    kind: "mapped",
                    actor: "intake".into(),
                    detail: json!({}),
                },
            ]
        } else {
            vec![]
        };
        NewMessage {
            id: "m1".into(),
            received_at: 1,
            source_system: "province-portal".into(),
            message_type: "dossier.filed".into(),
            correlation_id: "H1".into(),
            idempotency_key: None,
            partner_message_id: None,
            content_type: "application/json".into(),
            raw: Bytes::from_static(b"{}\n"),
            parsed: "{}".into(),
            deliveries: vec![NewDelivery {
                id: "d1".into(),
                destination: "lis".into(),
                message_type: "dossier.register".into(),
                route_id: "r".into(),
                mapping_id: "m".into(),
                mapping_version: 1,
                body: Bytes::from_static(b"<x/>"),
                content_type: "application/xml".into(),
            }],
            trail,
        }
    }

    #[test]
    fn records_go_on_received_and_mapped_events() {
        let m = msg(true);
        let mut events = m.trail.clone();
        seal_accept(&m, &mut events, 0);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].detail["records"][0]["table"], "messages");
        assert_eq!(
            events[0].detail["records"][0]["sha256"]["raw"],
            sha256_hex(b"{}\n")
        );
        assert_eq!(events[0].detail["bytes"], 3);
        assert_eq!(events[1].detail["records"][0]["key"], "d1");
        assert_eq!(
            events[1].detail["records"][0]["sha256"]["body"],
            sha256_hex(b"<x/>")
        );
    }

    #[test]
    fn records_without_events_get_a_stored_event() {
        let m = msg(false);
        let mut events = Vec::new();
        seal_accept(&m, &mut events, 0);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "stored");
        assert_eq!(events[0].detail["records"].as_array().unwrap().len(), 2);
    }
}
