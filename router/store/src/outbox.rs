//! The outbox: the statements the broker backend (`router::queue::rabbitmq`)
//! runs against the `deliveries` table. Publishing, consuming and parking stay
//! in the queue; the rows are read and written here.
//!
//! These statements run on the store's read pool (not through the group-commit
//! writer) because each is a single atomic statement, or (relay on PostgreSQL)
//! a short transaction that must stay open while its rows are published.
//! Settling still goes through [`crate::Store::settle`], so attempts and
//! the trail are written exactly as with the embedded queue.
//!
//! # The claim is the ordering gate
//!
//! [`Store::claim_many`] is one `UPDATE ... RETURNING` that succeeds only for a row that is
//! due (pending and `next_attempt_at <= now`, or in flight with an expired
//! lease) and head-of-line: no earlier (`seq`) delivery for the same
//! `(correlation_id, destination)` is pending or in flight. Row locks make it
//! atomic across replicas, so two hubs can never send the same delivery at once
//! within a lease, nor a dossier's second message before its first is finished.

use sqlx::AnyPool;

use super::deliveries::{leased_from_row, LEASED_COLUMNS};
use super::error::{db_err, get};
use super::{now_ms, placeholders, Backend, LeasedDelivery, Store};
use lienthong_core::Result;

/// `deliveries` is head-of-line in its lane: no earlier delivery of the same
/// `(correlation_id, destination)` is pending or in flight.
///
/// It asks for the lane's head with a `LIMIT 1` subquery ordered by the whole
/// `deliveries_order` index key rather than `NOT EXISTS`, and the lane lookups
/// below ([`Store::lane_position`], and the settling statement's next-in-lane
/// lookup in `store::deliveries`) order by that key too. With `NOT EXISTS`, a fresh store
/// filled by a burst (no autovacuum analyze yet) got an anti join that scanned
/// the destination's whole backlog for every claimed row (1.1 s per claim of 64
/// at 5,000 pending, measured). The ordering alone does not settle the plan,
/// though: without statistics PostgreSQL still walked `deliveries_dest_seq`
/// (every open delivery of the destination) and filtered the dossier, since
/// with the lane's columns fixed both indexes give `seq` order. What makes it
/// use `deliveries_order` is the table's statistics, which the store keeps
/// current while the table grows in bursts (`store::stats`).
const HEAD_OF_LINE: &str = "(SELECT e.seq FROM deliveries e \
     WHERE e.correlation_id = deliveries.correlation_id AND e.destination = deliveries.destination \
       AND e.seq < deliveries.seq AND e.state IN ('pending', 'in_flight') \
     ORDER BY e.correlation_id, e.destination, e.seq LIMIT 1) IS NULL";

/// Begins a transaction on `pool` whose commit does not wait for its WAL flush
/// (PostgreSQL only). For writes that may be lost in a crash without harm: a
/// claim (a lost one is claimable again, and re-sent under the same
/// `Idempotency-Key`, as after a lease expiry) and a relay mark (lost rows are
/// published again and the claim drops the duplicates). The next durable
/// commit flushes them anyway.
async fn begin_unflushed(
    pool: &AnyPool,
    what: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    let mut tx = pool.begin().await.map_err(|e| db_err(what, e))?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(what, e))?;
    Ok(tx)
}

/// An outbox row to publish.
#[derive(Debug, Clone)]
pub struct Unrelayed {
    pub seq: i64,
    pub id: String,
    pub destination: String,
    pub correlation_id: String,
}

/// Where one delivery stands in its lane, for deciding what to do with a
/// broker message whose delivery a claim did not return
/// ([`Store::lane_position`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanePosition {
    pub state: String,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    /// The earliest unfinished delivery before it in its lane, if any:
    /// `(state, next_attempt_at, lease_until)`. Read only when the delivery
    /// itself is due (`due_at` passed to [`Store::lane_position`]).
    pub head: Option<(String, i64, Option<i64>)>,
}

impl Store {
    /// Claims, for a lease until `lease_until`, those of `delivery_ids` that are due
    /// and head-of-line, in one statement (one commit for a whole prefetch batch,
    /// instead of one per message). Two ids of one dossier in the same call: only
    /// the earlier can be claimed, since the statement sees the later one's
    /// predecessor still pending.
    ///
    /// On PostgreSQL the claim does not wait for its WAL flush ([`begin_unflushed`]):
    /// 4-5 ms per commit on a small server's disk, and the consumer claims one batch
    /// after another.
    pub async fn claim_many(
        &self,
        delivery_ids: &[&str],
        destination: &str,
        lease_until: i64,
    ) -> Result<Vec<LeasedDelivery>> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let sql = format!(
            "UPDATE deliveries SET state = 'in_flight', lease_until = $1, attempts = attempts + 1, updated_at = $2 \
             WHERE id IN ({}) AND destination = $3 AND next_attempt_at <= $2 \
               AND (state = 'pending' OR (state = 'in_flight' AND lease_until < $2)) AND {HEAD_OF_LINE} \
             RETURNING {LEASED_COLUMNS}",
            placeholders(4, delivery_ids.len())
        );
        let mut q = sqlx::query(&sql)
            .bind(lease_until)
            .bind(now)
            .bind(destination);
        for id in delivery_ids {
            q = q.bind(*id);
        }
        let what = || {
            format!(
                "claiming {} deliveries for {destination}",
                delivery_ids.len()
            )
        };
        let pool = &self.read;
        let rows = if self.backend == Backend::Postgres {
            let mut tx = begin_unflushed(pool, &what()).await?;
            let rows = q
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| db_err(&what(), e))?;
            tx.commit().await.map_err(|e| db_err(&what(), e))?;
            rows
        } else {
            q.fetch_all(pool).await.map_err(|e| db_err(&what(), e))?
        };
        rows.iter()
            .map(|row| leased_from_row(row, lease_until))
            .collect()
    }

    /// After [`Store::claim_many`] failed on a lost connection: the rows that claim
    /// took anyway. A `COMMIT` the server carried out just before the connection
    /// went (a restart, `pg_terminate_backend`) reports an error to the client
    /// while the rows are in flight under its lease; without this the consumer
    /// would requeue their messages, which would then be parked as "leased
    /// elsewhere" until the lease ran out (about half a minute, holding up each
    /// dossier behind them). A row in flight with exactly this `lease_until` was
    /// claimed by this call: another claim could only take it once that lease had
    /// expired. Returns them as leased, as the claim would have.
    pub async fn claimed_by(
        &self,
        delivery_ids: &[&str],
        destination: &str,
        lease_until: i64,
    ) -> Result<Vec<LeasedDelivery>> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {LEASED_COLUMNS} \
             FROM deliveries WHERE id IN ({}) AND destination = $1 AND state = 'in_flight' AND lease_until = $2",
            placeholders(3, delivery_ids.len())
        );
        let mut q = sqlx::query(&sql).bind(destination).bind(lease_until);
        for id in delivery_ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.read).await.map_err(|e| {
            db_err(
                &format!("checking which deliveries for {destination} a failed claim took"),
                e,
            )
        })?;
        rows.iter()
            .map(|row| leased_from_row(row, lease_until))
            .collect()
    }

    /// The state of `delivery_id` (for `destination`), and when it is due
    /// at `now` (pending and `next_attempt_at <= now`, or in flight with its lease
    /// expired), the earliest unfinished delivery ahead of it in its lane.
    /// `None`: no such delivery.
    pub async fn lane_position(
        &self,
        delivery_id: &str,
        destination: &str,
        now: i64,
    ) -> Result<Option<LanePosition>> {
        let Some(row) = sqlx::query(
            "SELECT state, next_attempt_at, lease_until, correlation_id, seq FROM deliveries WHERE id = $1 AND destination = $2",
        )
        .bind(delivery_id)
        .bind(destination)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db_err(&format!("reading delivery {delivery_id}"), e))?
        else {
            return Ok(None);
        };
        let mut pos = LanePosition {
            state: get(&row, "state")?,
            next_attempt_at: get(&row, "next_attempt_at")?,
            lease_until: get(&row, "lease_until")?,
            head: None,
        };
        let due = match pos.state.as_str() {
            "pending" => pos.next_attempt_at <= now,
            "in_flight" => pos.lease_until.unwrap_or(0) < now,
            _ => false,
        };
        if !due {
            return Ok(Some(pos));
        }
        let head = sqlx::query(
            "SELECT state, next_attempt_at, lease_until FROM deliveries \
             WHERE correlation_id = $1 AND destination = $2 AND seq < $3 AND state IN ('pending', 'in_flight') \
             ORDER BY correlation_id, destination, seq LIMIT 1",
        )
        .bind(get::<String>(&row, "correlation_id")?)
        .bind(destination)
        .bind(get::<i64>(&row, "seq")?)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db_err(&format!("reading the predecessors of delivery {delivery_id}"), e))?;
        pos.head = head
            .map(|h| {
                Ok::<_, lienthong_core::Error>((
                    get(&h, "state")?,
                    get(&h, "next_attempt_at")?,
                    get(&h, "lease_until")?,
                ))
            })
            .transpose()?;
        Ok(Some(pos))
    }

    /// Runs `publish` on up to `limit` unrelayed rows (oldest first) and marks those
    /// it returns as relayed. On PostgreSQL the rows stay locked (`FOR UPDATE SKIP
    /// LOCKED`) until they are marked, so replicas relay disjoint rows; SQLite has a
    /// single process by construction.
    pub async fn relay_batch<F, Fut>(&self, limit: i64, publish: F) -> Result<(usize, usize)>
    where
        F: FnOnce(Vec<Unrelayed>) -> Fut,
        Fut: std::future::Future<Output = Vec<i64>>,
    {
        let pool = &self.read;
        if self.backend == Backend::Postgres {
            // Unflushed: the row locks below are held until this commit, and a
            // consumer claiming one of the just-published rows waits for them.
            let mut tx = begin_unflushed(pool, "beginning the outbox relay transaction").await?;
            let rows = select_unrelayed(&mut *tx, limit, " FOR UPDATE SKIP LOCKED").await?;
            let selected = rows.len();
            if selected == 0 {
                let _ = tx.rollback().await;
                return Ok((0, 0));
            }
            let published = publish(rows).await;
            mark_relayed(&mut *tx, &published).await?;
            tx.commit()
                .await
                .map_err(|e| db_err("committing the outbox relay transaction", e))?;
            Ok((selected, published.len()))
        } else {
            // SQLite: one process owns the file, and a read transaction upgraded to a
            // write would fight the store's writer; two statements are enough.
            let rows = select_unrelayed(pool, limit, "").await?;
            let selected = rows.len();
            if selected == 0 {
                return Ok((0, 0));
            }
            let published = publish(rows).await;
            mark_relayed(pool, &published).await?;
            Ok((selected, published.len()))
        }
    }

    /// Unfinished deliveries not yet published to the broker.
    pub async fn unrelayed_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE relayed_at IS NULL AND state IN ('pending', 'in_flight')")
            .fetch_one(&self.read)
            .await
            .map_err(|e| db_err("counting unrelayed deliveries", e))?;
        get(&row, "n")
    }

    /// Marks for re-publishing the head-of-line deliveries that have been due for
    /// longer than `stale_ms` without anyone claiming them: their broker message was
    /// lost (a purged queue, a broker that lost its disk), or their consumer went
    /// silent. Duplicates this may create are harmless: the claim lets only one
    /// through. Returns the destinations concerned, once each.
    pub async fn requeue_stale(&self, stale_ms: i64) -> Result<Vec<String>> {
        let cutoff = now_ms() - stale_ms;
        let rows = sqlx::query(&format!(
            "UPDATE deliveries SET relayed_at = NULL \
             WHERE relayed_at IS NOT NULL AND relayed_at < $1 AND updated_at < $1 \
               AND ((state = 'pending' AND next_attempt_at < $1) OR (state = 'in_flight' AND lease_until < $1)) \
               AND {HEAD_OF_LINE} \
             RETURNING destination"
        ))
        .bind(cutoff)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("re-queueing stale deliveries", e))?;
        let mut destinations = rows
            .iter()
            .map(|r| get::<String>(r, "destination"))
            .collect::<Result<Vec<_>>>()?;
        destinations.sort();
        destinations.dedup();
        Ok(destinations)
    }
}

async fn select_unrelayed<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    ex: E,
    limit: i64,
    lock: &str,
) -> Result<Vec<Unrelayed>> {
    let sql = format!(
        "SELECT seq, id, destination, correlation_id FROM deliveries \
         WHERE relayed_at IS NULL AND state IN ('pending', 'in_flight') ORDER BY seq LIMIT $1{lock}"
    );
    let rows = sqlx::query(&sql)
        .bind(limit)
        .fetch_all(ex)
        .await
        .map_err(|e| db_err("reading unrelayed deliveries", e))?;
    rows.iter()
        .map(|r| {
            Ok(Unrelayed {
                seq: get(r, "seq")?,
                id: get(r, "id")?,
                destination: get(r, "destination")?,
                correlation_id: get(r, "correlation_id")?,
            })
        })
        .collect()
}

async fn mark_relayed<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    ex: E,
    seqs: &[i64],
) -> Result<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    // Integers only, so building the list is safe.
    let list = seqs
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    sqlx::query(&format!(
        "UPDATE deliveries SET relayed_at = $1 WHERE seq IN ({list})"
    ))
    .bind(now_ms())
    .execute(ex)
    .await
    .map_err(|e| db_err("marking deliveries relayed", e))?;
    Ok(())
}
