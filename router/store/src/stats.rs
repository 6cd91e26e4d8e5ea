//! Planner statistics for `deliveries`, on PostgreSQL.
//!
//! # Why the hub analyzes a table itself
//!
//! PostgreSQL chooses between indexes from the statistics that `ANALYZE`
//! gathers, normally run by autovacuum once a table has changed by 10 %, and
//! at most once per `autovacuum_naptime` (a minute by default). A `deliveries`
//! table filled by a burst has no statistics at all until then, and without
//! them two of the hub's hottest statements get plans that read the whole
//! backlog instead of a few index entries (`pg_stat_statements` over a
//! 10,000-message run of `rabbitmq_bench`, and `EXPLAIN ANALYZE` on a table
//! filled the same way; BENCHMARKS.md, session 6):
//!
//! * a lane lookup (is an earlier delivery of this dossier still open? which is
//!   the next one?) walked `deliveries_dest_seq`, every open delivery of the
//!   destination, filtering the dossier: 335 rows read to find one, 2.2 ms,
//!   against 0.06 ms through `deliveries_order` once the table was analyzed;
//! * the settling statement, which runs such a lookup for every settled row,
//!   read 84 buffers per row instead of 27: 1.57 s of a run instead of 0.66 s.
//!
//! Both plans are right as soon as the table has statistics. So a task per
//! store checks every [`CHECK_EVERY`] whether `deliveries` has at least
//! [`MIN_ROWS`] rows and was never analyzed, or has doubled in size since it
//! last was (`pg_class.reltuples`), and analyzes it then. A burst into an empty
//! store is analyzed at about 1,000, 2,000, 4,000... rows, a handful of times
//! (an `ANALYZE` samples at most 30,000 rows: tens of milliseconds); after
//! that, autovacuum's finer threshold keeps the statistics current.
//!
//! Several replicas may each analyze the table in the same window; the second
//! waits for the first (both take the same lock) and the cost is that of one
//! more sample.
//!
//! At start the task also warns when autovacuum is off: then nothing removes
//! the dead row versions that every claim and settlement leaves in the
//! deliveries indexes, and claims slow down as the store grows.

use std::time::Duration;

use sqlx::{AnyPool, Row};
use tokio::sync::mpsc::WeakSender;

use super::writer::Job;

/// How often the table's size is compared with its last analyzed size.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Below this many rows any plan is cheap: no `ANALYZE` yet.
const MIN_ROWS: i64 = 1_000;

/// Whether a table of `live` rows, last analyzed at `analyzed` rows (negative:
/// never), should be analyzed now.
fn due(live: i64, analyzed: i64) -> bool {
    live >= MIN_ROWS && (analyzed < 0 || live >= analyzed.saturating_mul(2))
}

/// Runs until the store is dropped (`store` can no longer be upgraded).
pub(super) async fn run(pool: AnyPool, store: WeakSender<Job>, shown: String) {
    warn_if_autovacuum_off(&pool, &shown).await;
    let mut warned = false;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if store.upgrade().is_none() {
            return;
        }
        match analyze_if_due(&pool).await {
            Ok(Some(rows)) => {
                tracing::debug!(rows, "analyzed deliveries (planner statistics)");
                metrics::counter!("lienthong_store_analyze_total").increment(1);
            }
            Ok(None) => {}
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "could not refresh the planner statistics of `deliveries` \
                    (the hub's database user must own the table); queries may slow down until autovacuum analyzes it");
            }
            Err(_) => {}
        }
    }
}

/// Analyzes `deliveries` when [`due`]; returns its live rows if it did.
async fn analyze_if_due(pool: &AnyPool) -> Result<Option<i64>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT s.n_live_tup AS live, c.reltuples::BIGINT AS analyzed FROM pg_stat_user_tables s \
         JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() AND s.relname = 'deliveries'",
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let (live, analyzed): (i64, i64) = (row.try_get("live")?, row.try_get("analyzed")?);
    if !due(live, analyzed) {
        return Ok(None);
    }
    sqlx::query("ANALYZE deliveries").execute(pool).await?;
    Ok(Some(live))
}

async fn warn_if_autovacuum_off(pool: &AnyPool, shown: &str) {
    let Ok(row) = sqlx::query("SELECT current_setting('autovacuum') AS on")
        .fetch_one(pool)
        .await
    else {
        return;
    };
    if row.try_get::<String, _>("on").is_ok_and(|v| v == "off") {
        tracing::warn!(database = %shown, "PostgreSQL autovacuum is off: dead row versions pile up in the \
            deliveries indexes and claims slow down as the store grows; set `autovacuum = on`, or VACUUM \
            the store's tables regularly");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzes_a_large_table_never_analyzed_or_doubled_since() {
        assert!(!due(999, -1), "small tables are left alone");
        assert!(due(1_000, -1), "never analyzed");
        assert!(!due(1_999, 1_000), "grown by less than double");
        assert!(due(2_000, 1_000), "doubled");
        assert!(!due(50_000, 40_000));
        assert!(due(5_000, 0), "analyzed while empty");
    }
}
