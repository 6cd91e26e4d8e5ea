//! The SQL behind each store operation. Portable between SQLite and PostgreSQL.

use bytes::Bytes;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};

use super::error::{db_err, get};
use super::records;
use super::trail::TrailEvent;
use super::types::*;
use crate::Result;

/// Checks one acceptance and queues its rows in `pending`; the writer inserts
/// every pending acceptance of the batch at once ([`insert_accepted`]) before
/// anything else reads them. A repeated idempotency key is answered as a
/// duplicate of the stored message ([`known_keys`]), or of an earlier
/// acceptance in the same batch, which is added to `known` here.
pub(super) fn accept<'a>(
    m: &'a NewMessage,
    known: &mut KnownKeys,
    pending: &mut Vec<&'a NewMessage>,
    events: &mut Vec<TrailEvent>,
) -> AcceptOutcome {
    if let Some(key) = &m.idempotency_key {
        let k = (m.source_system.clone(), key.clone());
        if let Some((id, correlation_id)) = known.get(&k) {
            return AcceptOutcome::Duplicate {
                id: id.clone(),
                correlation_id: correlation_id.clone(),
            };
        }
        known.insert(k, (m.id.clone(), m.correlation_id.clone()));
    }
    pending.push(m);
    let start = events.len();
    events.extend(m.trail.iter().cloned());
    records::seal_accept(m, events, start);
    AcceptOutcome::Accepted {
        id: m.id.clone(),
        deliveries: m.deliveries.len(),
    }
}

/// `(source_system, idempotency_key)` → `(id, correlation_id)` of stored messages.
pub(super) type KnownKeys = std::collections::HashMap<(String, String), (String, String)>;

/// Keys per idempotency lookup statement: one `UNION ALL` branch each, under
/// SQLite's limit of 500 compound-select terms.
const KEYS_PER_LOOKUP: usize = 250;

/// Looks up which of the batch's idempotency keys are already stored, with one
/// statement per [`KEYS_PER_LOOKUP`] keys instead of one query per message.
///
/// Each key is its own `UNION ALL` branch with equalities on both columns of
/// the `(source_system, idempotency_key)` index, so every branch is a unique
/// index seek whatever the planner's statistics say. The obvious
/// `source_system = $1 AND idempotency_key IN (...)` is not: on a table filled
/// by a burst and not yet analyzed, PostgreSQL seeks only the source system and
/// filters the keys, reading every message of that source on every batch
/// (3.5 ms per batch at 10,000 messages, measured with `EXPLAIN ANALYZE`
/// mid-benchmark, and growing with the store; 0.8 ms for the same 61 keys as
/// branches).
pub(super) async fn known_keys(
    conn: &mut AnyConnection,
    msgs: &[&NewMessage],
) -> Result<KnownKeys> {
    let keys: Vec<(&str, &str)> = msgs
        .iter()
        .filter_map(|m| Some((m.source_system.as_str(), m.idempotency_key.as_deref()?)))
        .collect();
    let mut known = KnownKeys::new();
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        let sql = (0..chunk.len())
            .map(|i| {
                format!(
                    "SELECT id, correlation_id, source_system, idempotency_key FROM messages \
                     WHERE state = 'accepted' AND source_system = ${} AND idempotency_key = ${}",
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut q = sqlx::query(&sql);
        for (source, key) in chunk {
            q = q.bind(*source).bind(*key);
        }
        for row in q
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("looking up idempotency keys", e))?
        {
            known.insert(
                (get(&row, "source_system")?, get(&row, "idempotency_key")?),
                (
                    get(&row, "id")?,
                    get::<Option<String>>(&row, "correlation_id")?.unwrap_or_default(),
                ),
            );
        }
    }
    Ok(known)
}

/// Inserts the messages and deliveries of `accepted` with multi-row statements
/// (see [`super::values_sql`]), in acceptance order, so `seq` order is
/// acceptance order as before.
pub(super) async fn insert_accepted(
    conn: &mut AnyConnection,
    accepted: &[&NewMessage],
) -> Result<()> {
    for chunk in accepted.chunks(super::ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO messages (id, received_at, source_system, message_type, correlation_id, idempotency_key, \
             partner_message_id, content_type, raw, parsed, state, reasons) VALUES {}",
            super::values_sql(chunk.len(), 10, ", 'accepted', NULL")
        );
        let mut q = sqlx::query(&sql);
        for m in chunk {
            q = q
                .bind(&m.id)
                .bind(m.received_at)
                .bind(&m.source_system)
                .bind(&m.message_type)
                .bind(&m.correlation_id)
                .bind(m.idempotency_key.clone())
                .bind(m.partner_message_id.clone())
                .bind(&m.content_type)
                .bind(m.raw.to_vec())
                .bind(&m.parsed);
        }
        q.execute(&mut *conn)
            .await
            .map_err(|e| db_err("inserting accepted messages", e))?;
    }
    let deliveries: Vec<(&NewMessage, &NewDelivery)> = accepted
        .iter()
        .flat_map(|m| m.deliveries.iter().map(move |d| (*m, d)))
        .collect();
    for chunk in deliveries.chunks(super::ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO deliveries (id, message_id, destination, message_type, route_id, mapping_id, mapping_version, \
             body, content_type, next_attempt_at, correlation_id, created_at, updated_at, state, attempts, lease_until) VALUES {}",
            super::values_sql(chunk.len(), 13, ", 'pending', 0, NULL")
        );
        let mut q = sqlx::query(&sql);
        for (m, d) in chunk {
            q = q
                .bind(&d.id)
                .bind(&m.id)
                .bind(&d.destination)
                .bind(&d.message_type)
                .bind(&d.route_id)
                .bind(&d.mapping_id)
                .bind(d.mapping_version)
                .bind(d.body.to_vec())
                .bind(&d.content_type)
                .bind(m.received_at)
                .bind(&m.correlation_id)
                .bind(m.received_at)
                .bind(m.received_at);
        }
        q.execute(&mut *conn)
            .await
            .map_err(|e| db_err("inserting deliveries", e))?;
    }
    Ok(())
}

pub(super) async fn reject(
    conn: &mut AnyConnection,
    m: &RejectedMessage,
    events: &mut Vec<TrailEvent>,
) -> Result<()> {
    let reasons = serde_json::to_string(&m.reasons).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO messages (id, received_at, source_system, message_type, correlation_id, idempotency_key, \
         partner_message_id, content_type, raw, parsed, state, reasons) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7, $8, 'rejected', $9)",
    )
    .bind(&m.id)
    .bind(m.received_at)
    .bind(&m.source_system)
    .bind(&m.message_type)
    .bind(m.correlation_id.clone())
    .bind(&m.content_type)
    .bind(m.raw.to_vec())
    .bind(m.parsed.clone())
    .bind(reasons.clone())
    .execute(&mut *conn)
    .await
    .map_err(|e| db_err("inserting the rejected message", e))?;
    events.push(TrailEvent {
        at: m.received_at,
        message_id: Some(m.id.clone()),
        delivery_id: None,
        kind: "rejected",
        actor: "intake".into(),
        detail: json!({
            "system": m.source_system, "message_type": m.message_type, "status": m.status,
            "reasons": m.reasons, "bytes": m.raw.len(),
        }),
    });
    if let Some(ev) = events.last_mut() {
        records::attach(ev, records::rejected_message_record(m, &reasons));
    }
    Ok(())
}

/// Leases due, head-of-line deliveries. A delivery is head-of-line when no earlier
/// delivery (lower `seq`) for the same `(correlation_id, destination)` is still
/// pending or in flight: that is what keeps one dossier's messages in acceptance
/// order across retries while other dossiers keep flowing. An in-flight delivery
/// whose lease expired (its worker crashed) is due again.
///
/// The unary `+` on `next_attempt_at` keeps the planner from using the
/// `(destination, next_attempt_at)` index here: walking `deliveries_dest_seq` in `seq`
/// order and stopping at `LIMIT` is O(lease size), while sorting every due row was
/// O(backlog) per lease (see migration `..._lease_order_index.sql`).
pub(super) async fn lease(
    conn: &mut AnyConnection,
    r: &LeaseRequest,
) -> Result<Vec<LeasedDelivery>> {
    let sql = format!(
        "UPDATE deliveries SET state = 'in_flight', lease_until = $1, attempts = attempts + 1, updated_at = $2 \
         WHERE seq IN ( \
           SELECT d.seq FROM deliveries d \
           WHERE d.destination = $3 AND d.state IN ('pending', 'in_flight') AND +d.next_attempt_at <= $2 \
             AND (d.state = 'pending' OR d.lease_until < $2) \
             AND NOT EXISTS ( \
               SELECT 1 FROM deliveries e \
               WHERE e.correlation_id = d.correlation_id AND e.destination = d.destination \
                 AND e.seq < d.seq AND e.state IN ('pending', 'in_flight')) \
           ORDER BY d.seq LIMIT $4) \
         RETURNING {LEASED_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(r.lease_until)
        .bind(r.now)
        .bind(&r.destination)
        .bind(r.max as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err(&format!("leasing deliveries for {}", r.destination), e))?;
    let mut out = rows
        .iter()
        .map(|row| leased_from_row(row, r.lease_until))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|d| d.seq);
    Ok(out)
}

/// The columns [`leased_from_row`] reads, for a `RETURNING` or `SELECT` list.
pub(crate) const LEASED_COLUMNS: &str =
    "seq, id, message_id, correlation_id, destination, message_type, body, content_type, attempts, created_at";

/// A leased delivery from a row with the [`LEASED_COLUMNS`] (the embedded
/// lease, the RabbitMQ claim, and a claim recovered after a lost connection).
pub(crate) fn leased_from_row(row: &AnyRow, lease_until: i64) -> Result<LeasedDelivery> {
    Ok(LeasedDelivery {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        message_id: get(row, "message_id")?,
        correlation_id: get(row, "correlation_id")?,
        destination: get(row, "destination")?,
        message_type: get(row, "message_type")?,
        body: Bytes::from(get::<Vec<u8>>(row, "body")?),
        content_type: get(row, "content_type")?,
        attempt: get::<i64>(row, "attempts")? as u32,
        lease_until,
        created_at: get(row, "created_at")?,
    })
}

/// Records finished attempts and their outcomes with two multi-row statements
/// (attempts, then deliveries), in `settled` order, and queues their trail
/// events. The writer gathers the settlements of one group-commit batch here:
/// on PostgreSQL every statement is a round trip on the single writer
/// connection, so two per settlement would cap the delivery rate.
///
/// A delivery must appear at most once in `settled` (the writer flushes before
/// a repeat), since one `UPDATE ... FROM (VALUES ...)` updates a row once.
pub(super) async fn settle_many(
    conn: &mut AnyConnection,
    settled: &[(&Settlement, bool)],
    events: &mut Vec<TrailEvent>,
) -> Result<Vec<(String, NextInLane)>> {
    let mut next = Vec::new();
    // 6 values per delivery row, 9 per attempt row: chunks stay far below the
    // bound-parameter limits.
    for chunk in settled.chunks(super::ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO attempts (delivery_id, n, started_at, latency_ms, request_excerpt, status, response_excerpt, \
             error, outcome) VALUES {}",
            super::values_sql(chunk.len(), 9, "")
        );
        let mut q = sqlx::query(&sql);
        for (s, _) in chunk {
            q = q
                .bind(&s.delivery_id)
                .bind(s.attempt as i64)
                .bind(s.started_at)
                .bind(s.latency_ms)
                .bind(&s.request_excerpt)
                .bind(s.status.map(i64::from))
                .bind(&s.response_excerpt)
                .bind(s.error.clone())
                .bind(outcome_name(&s.outcome));
        }
        q.execute(&mut *conn)
            .await
            .map_err(|e| db_err("recording attempts", e))?;
        // `VALUES` columns are named column1, column2, ... on both backends.
        let want_next = chunk.iter().any(|(_, w)| *w);
        let returning = if want_next {
            next_in_lane_returning(chunk.len() * 6 + 1)
        } else {
            String::new()
        };
        let sql = format!(
            "UPDATE deliveries SET state = v.column2, next_attempt_at = v.column3, lease_until = NULL, \
             last_error = v.column4, error_class = v.column5, updated_at = v.column6 \
             FROM (VALUES {}) AS v WHERE deliveries.id = v.column1{returning}",
            super::values_sql(chunk.len(), 6, "")
        );
        let mut q = sqlx::query(&sql);
        for (s, _) in chunk {
            let now = s.started_at + s.latency_ms;
            let (state, next) = match s.outcome {
                SettleOutcome::Delivered => ("delivered", now),
                SettleOutcome::Retry { at } => ("pending", at),
                SettleOutcome::Dead => ("dead", now),
            };
            q = q
                .bind(&s.delivery_id)
                .bind(state)
                .bind(next)
                .bind(s.error.clone())
                .bind(s.error_class.clone())
                .bind(now);
        }
        if !want_next {
            q.execute(&mut *conn)
                .await
                .map_err(|e| db_err("updating deliveries", e))?;
            continue;
        }
        let rows = q
            .bind(super::now_ms())
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_err("updating deliveries", e))?;
        for row in &rows {
            let Some(next_row) = get::<Option<String>>(row, "next")? else {
                continue;
            };
            let parsed = next_row
                .split_once(':')
                .and_then(|(seq, id)| Some((seq.parse::<i64>().ok()?, id.to_string())));
            let Some((seq, id)) = parsed else {
                return Err(crate::Error::Store {
                    message: format!(
                        "reading the next delivery of a lane: unexpected `{next_row}`"
                    ),
                    retryable: false,
                    source: None,
                });
            };
            next.push((
                get::<String>(row, "settled_id")?,
                NextInLane {
                    id,
                    seq,
                    correlation_id: get(row, "lane_correlation_id")?,
                    destination: get(row, "lane_destination")?,
                },
            ));
        }
    }
    for (s, _) in settled {
        settle_events(s, events);
    }
    Ok(next)
}

/// The `RETURNING` clause that makes the settling `UPDATE` also name, for each
/// delivery it finished (delivered or dead), the next delivery of its lane when
/// that one is due (`$now`, the placeholder numbered `now`) and relayed: what
/// the broker queue wakes, as `<seq>:<id>`. One scalar subquery, a `LIMIT 1`
/// seek in `deliveries_order` order (as in `outbox`): each costs about 25 µs on
/// a busy PostgreSQL, so one rather than one per column.
fn next_in_lane_returning(now: usize) -> String {
    format!(
        " RETURNING deliveries.id AS settled_id, deliveries.correlation_id AS lane_correlation_id, \
         deliveries.destination AS lane_destination, \
         CASE WHEN deliveries.state IN ('delivered', 'dead') THEN ( \
           SELECT CASE WHEN e.state = 'pending' AND e.next_attempt_at <= ${now} AND e.relayed_at IS NOT NULL \
                  THEN e.seq || ':' || e.id END \
           FROM deliveries e WHERE e.correlation_id = deliveries.correlation_id \
             AND e.destination = deliveries.destination AND e.seq > deliveries.seq \
             AND e.state IN ('pending', 'in_flight') \
           ORDER BY e.correlation_id, e.destination, e.seq LIMIT 1) END AS next"
    )
}

fn outcome_name(o: &SettleOutcome) -> &'static str {
    match o {
        SettleOutcome::Delivered => "delivered",
        SettleOutcome::Retry { .. } => "retry",
        SettleOutcome::Dead => "dead",
    }
}

/// The trail events of one settlement: the attempt (with its digests), and
/// `delivered` or `dead` when the delivery is finished.
fn settle_events(s: &Settlement, events: &mut Vec<TrailEvent>) {
    let now = s.started_at + s.latency_ms;
    let outcome = outcome_name(&s.outcome);
    let base = |kind: &'static str, detail| TrailEvent {
        at: now,
        message_id: Some(s.message_id.clone()),
        delivery_id: Some(s.delivery_id.clone()),
        kind,
        actor: "delivery".into(),
        detail,
    };
    events.push(base(
        "attempt",
        json!({
            "destination": s.destination, "n": s.attempt, "started_at": s.started_at, "latency_ms": s.latency_ms,
            "request_sha256": records::sha256_hex(s.request_excerpt.as_bytes()), "status": s.status,
            "response_sha256": records::sha256_hex(s.response_excerpt.as_bytes()),
            "error": s.error, "error_class": s.error_class, "outcome": outcome,
            "retry_at": match s.outcome { SettleOutcome::Retry { at } => Some(at), _ => None },
        }),
    ));
    if let Some(ev) = events.last_mut() {
        records::attach(ev, records::attempt_record(s, outcome));
    }
    match s.outcome {
        SettleOutcome::Delivered => events.push(base(
            "delivered",
            json!({ "destination": s.destination, "attempts": s.attempt, "status": s.status, "partner_reference": s.partner_reference }),
        )),
        SettleOutcome::Dead => events.push(base(
            "dead",
            json!({ "destination": s.destination, "attempts": s.attempt, "reason": s.error, "error_class": s.error_class }),
        )),
        SettleOutcome::Retry { .. } => {}
    }
}

pub(super) async fn message_view(pool: &AnyPool, id: &str) -> Result<Option<MessageView>> {
    let Some(row) = sqlx::query(
        "SELECT id, received_at, source_system, message_type, correlation_id, state, reasons FROM messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_err("reading a message", e))?
    else {
        return Ok(None);
    };
    let reasons: Option<String> = get(&row, "reasons")?;
    let rows = sqlx::query(
        "SELECT id, seq, destination, message_type, mapping_id, mapping_version, state, attempts, next_attempt_at, \
         last_error, error_class FROM deliveries WHERE message_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .map_err(|e| db_err("reading deliveries", e))?;
    let deliveries = rows
        .iter()
        .map(|r| {
            Ok(DeliveryView {
                id: get(r, "id")?,
                seq: get(r, "seq")?,
                destination: get(r, "destination")?,
                message_type: get(r, "message_type")?,
                mapping_id: get(r, "mapping_id")?,
                mapping_version: get(r, "mapping_version")?,
                state: get(r, "state")?,
                attempts: get(r, "attempts")?,
                next_attempt_at: get(r, "next_attempt_at")?,
                last_error: get(r, "last_error")?,
                error_class: get(r, "error_class")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(MessageView {
        id: get(&row, "id")?,
        received_at: get(&row, "received_at")?,
        source_system: get(&row, "source_system")?,
        message_type: get(&row, "message_type")?,
        correlation_id: get(&row, "correlation_id")?,
        state: get(&row, "state")?,
        reasons: reasons.and_then(|r| serde_json::from_str(&r).ok()),
        deliveries,
    }))
}
