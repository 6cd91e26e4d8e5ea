//! Retention's statements: emptying old payloads of `messages`, `deliveries`
//! and `attempts`, and marking each pruned row (`pruned_at`).
//!
//! What is pruned and why the chain stays verifiable afterwards is told in
//! `router::audit::retention`, which runs this as a write of the store's
//! writer and records the run in the trail. A message is only pruned when none
//! of its deliveries is still pending or in flight, and a delivery's body only
//! once it is delivered or dead, so a replay in progress never loses its bytes.

use sqlx::AnyConnection;

use super::error::db_err;
use lienthong_core::Result;

/// How many rows of each table one run pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub messages: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

/// Prunes the payloads of the rows dated strictly before `cutoff`, marking
/// them pruned at `at` (inside the caller's transaction).
pub async fn prune_payloads(conn: &mut AnyConnection, cutoff: i64, at: i64) -> Result<Pruned> {
    let empty: Vec<u8> = Vec::new();
    let messages = sqlx::query(
        "UPDATE messages SET raw = $1, parsed = NULL, pruned_at = $2 \
         WHERE received_at < $3 AND pruned_at IS NULL AND NOT EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.state IN ('pending', 'in_flight'))",
    )
    .bind(empty.clone())
    .bind(at)
    .bind(cutoff)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_err("pruning message payloads", e))?
    .rows_affected();
    let deliveries = sqlx::query(
        "UPDATE deliveries SET body = $1, pruned_at = $2 \
         WHERE created_at < $3 AND pruned_at IS NULL AND state IN ('delivered', 'dead')",
    )
    .bind(empty)
    .bind(at)
    .bind(cutoff)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_err("pruning delivery bodies", e))?
    .rows_affected();
    let attempts = sqlx::query(
        "UPDATE attempts SET request_excerpt = NULL, response_excerpt = NULL, pruned_at = $1 \
         WHERE started_at < $2 AND pruned_at IS NULL",
    )
    .bind(at)
    .bind(cutoff)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_err("pruning attempt excerpts", e))?
    .rows_affected();
    Ok(Pruned {
        messages,
        deliveries,
        attempts,
    })
}
