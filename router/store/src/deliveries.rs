//! The `deliveries` and `attempts` tables: the transactional outbox (for the
//! embedded queue, the queue itself), leases, and settlements.
//!
//! A delivery is written in the same transaction that accepts its message, so
//! nothing accepted can be lost; a replay adds new rows pointing at the
//! delivery they replay (`replay_of`). The broker backend's statements on this
//! table (claim, relay) are in [`super::outbox`].

use bytes::Bytes;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::error::{db_err, get};
use super::records;
use super::trail::TrailEvent;
use super::types::*;
use super::{now_ms, Store};
use lienthong_core::Result;

/// One `deliveries` row to insert: a new message's delivery, or a replay of
/// an earlier delivery (`replay_of`).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryInsert<'a> {
    pub message_id: &'a str,
    pub correlation_id: &'a str,
    /// When it was accepted (or replayed): created, updated and first due then.
    pub at: i64,
    pub delivery: &'a NewDelivery,
    pub replay_of: Option<&'a str>,
    /// The key the partner sees when it is not the delivery's id (an as-sent
    /// replay keeps the key of what it replays); `None`: the delivery's id.
    pub partner_key: Option<&'a str>,
}

/// Inserts `rows` as pending deliveries, in order (so `seq` order is their
/// order), with multi-row statements (see [`super::values_sql`]). The one
/// statement that creates deliveries: acceptance and replay both use it.
pub async fn insert_deliveries(
    conn: &mut AnyConnection,
    rows: &[DeliveryInsert<'_>],
) -> Result<()> {
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO deliveries (id, message_id, destination, message_type, route_id, mapping_id, mapping_version, \
             body, content_type, next_attempt_at, correlation_id, created_at, updated_at, replay_of, partner_key, state, \
             attempts, lease_until) VALUES {}",
            super::values_sql(chunk.len(), 15, ", 'pending', 0, NULL")
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            let d = r.delivery;
            q = q
                .bind(&d.id)
                .bind(r.message_id)
                .bind(&d.destination)
                .bind(&d.message_type)
                .bind(&d.route_id)
                .bind(&d.mapping_id)
                .bind(d.mapping_version)
                .bind(d.body.to_vec())
                .bind(&d.content_type)
                .bind(r.at)
                .bind(r.correlation_id)
                .bind(r.at)
                .bind(r.at)
                .bind(r.replay_of)
                .bind(r.partner_key);
        }
        q.execute(&mut *conn)
            .await
            .map_err(|e| db_err("inserting deliveries", e))?;
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
pub(super) const LEASED_COLUMNS: &str =
    "seq, id, message_id, correlation_id, destination, message_type, body, content_type, attempts, created_at, partner_key";

/// A leased delivery from a row with the [`LEASED_COLUMNS`] (the embedded
/// lease, the RabbitMQ claim, and a claim recovered after a lost connection).
pub(super) fn leased_from_row(row: &AnyRow, lease_until: i64) -> Result<LeasedDelivery> {
    let id: String = get(row, "id")?;
    Ok(LeasedDelivery {
        seq: get(row, "seq")?,
        partner_key: get::<Option<String>>(row, "partner_key")?.unwrap_or_else(|| id.clone()),
        id,
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
                return Err(lienthong_core::Error::Store {
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

impl Store {
    /// Pending + in-flight deliveries per destination.
    pub async fn queue_depth(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT destination, COUNT(*) AS n FROM deliveries WHERE state IN ('pending', 'in_flight') GROUP BY destination",
        )
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("counting queued deliveries", e))?;
        rows.iter()
            .map(|r| Ok((get(r, "destination")?, get(r, "n")?)))
            .collect()
    }

    /// Destinations that have pending or in-flight deliveries (so workers start for them after a restart).
    pub async fn active_destinations(&self) -> Result<Vec<String>> {
        Ok(self
            .queue_depth()
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    /// When the earliest pending delivery for `destination` becomes due (epoch ms).
    pub async fn next_due(&self, destination: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN state = 'pending' THEN next_attempt_at ELSE lease_until END) AS due \
             FROM deliveries WHERE destination = $1 AND state IN ('pending', 'in_flight')",
        )
        .bind(destination)
        .fetch_one(&self.read)
        .await
        .map_err(|e| db_err("reading the next due delivery", e))?;
        get::<Option<i64>>(&row, "due")
    }

    /// Gives back leases that were taken but never sent (a shutdown whose
    /// drain deadline passed while they waited for the rate limiter): each
    /// `(delivery id, lease_until)` still held under that very lease goes back
    /// to pending, due now, with the attempt the lease counted taken back, so
    /// another replica sends it at once instead of after the lease. A lease
    /// that has meanwhile expired and been taken again is left alone.
    pub async fn release_leases(&self, leases: &[(String, i64)]) -> Result<u64> {
        let now = now_ms();
        let mut released = 0;
        for (id, lease_until) in leases {
            let r = sqlx::query(
                "UPDATE deliveries SET state = 'pending', lease_until = NULL, next_attempt_at = $1, updated_at = $1, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE id = $2 AND state = 'in_flight' AND lease_until = $3",
            )
            .bind(now)
            .bind(id)
            .bind(*lease_until)
            .execute(&self.read)
            .await
            .map_err(|e| db_err("releasing unsent leases", e))?;
            released += r.rows_affected();
        }
        Ok(released)
    }

    /// Puts every in-flight delivery back to pending, due now. Only for a store
    /// owned by one process (the embedded queue at start-up): whatever was in
    /// flight when the previous process died is retried at once instead of
    /// waiting for its lease to expire. Returns how many were released.
    pub async fn release_all_leases(&self) -> Result<u64> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE deliveries SET state = 'pending', lease_until = NULL, next_attempt_at = $1, updated_at = $1 \
             WHERE state = 'in_flight'",
        )
        .bind(now)
        .execute(&self.read)
        .await
        .map_err(|e| db_err("releasing in-flight leases", e))?;
        Ok(r.rows_affected())
    }
}
