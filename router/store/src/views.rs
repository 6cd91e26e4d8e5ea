//! Read models for the web console and the mapping gate: the few questions
//! they ask that no other part of the hub does. Each is one statement on the
//! read pool, answered as a typed value; they never write.
//!
//! The dashboard's numbers are indexed aggregates, computed on every page
//! view (nothing is cached, so what an operator sees is now). The message page
//! shows each delivery with the `version:` label its mapping's file declared,
//! besides the store's version number the delivery records (see
//! docs/ADMIN.md, "Which version is recorded").

use sqlx::any::AnyRow;

use super::audit_ops::{delivery_full, DeliveryFull, DELIVERY_COLS};
use super::error::{db_err, get};
use super::Store;
use lienthong_core::Result;

/// Deliveries of one destination in one state, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCount {
    pub destination: String,
    pub state: String,
    pub n: i64,
}

/// The chain head row with when it last moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    pub updated_at: i64,
}

impl Store {
    /// Messages received at or after `since` in `state` (`accepted` or `rejected`).
    pub async fn messages_since(&self, since: i64, state: &str) -> Result<i64> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM messages WHERE received_at >= $1 AND state = $2",
        )
        .bind(since)
        .bind(state)
        .fetch_one(&self.read)
        .await
        .map_err(|e| db_err("counting messages", e))?;
        get(&r, "n")
    }

    /// Per destination: how many deliveries are pending, in flight or dead,
    /// and how many were delivered at or after `delivered_since`.
    pub async fn delivery_counts(&self, delivered_since: i64) -> Result<Vec<DeliveryCount>> {
        let rows = sqlx::query(
            "SELECT destination, state, COUNT(*) AS n FROM deliveries WHERE state IN ('pending', 'in_flight', 'dead') \
             OR (state = 'delivered' AND updated_at >= $1) GROUP BY destination, state",
        )
        .bind(delivered_since)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("counting deliveries", e))?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryCount {
                    destination: get(r, "destination")?,
                    state: get(r, "state")?,
                    n: get(r, "n")?,
                })
            })
            .collect()
    }

    /// Per destination: attempts started at or after `since` that did not deliver.
    pub async fn failed_attempts_since(&self, since: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT d.destination, COUNT(*) AS n FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE a.started_at >= $1 AND a.outcome <> 'delivered' GROUP BY d.destination",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("counting failed attempts", e))?;
        rows.iter()
            .map(|r| Ok((get(r, "destination")?, get(r, "n")?)))
            .collect()
    }

    /// The chain head row, with when it last moved.
    pub async fn chain_head_row(&self) -> Result<ChainHead> {
        let r = sqlx::query("SELECT seq, hash, updated_at FROM chain_head WHERE id = 1")
            .fetch_one(&self.read)
            .await
            .map_err(|e| db_err("reading the chain head", e))?;
        Ok(ChainHead {
            seq: get(&r, "seq")?,
            hash: get(&r, "hash")?,
            updated_at: get(&r, "updated_at")?,
        })
    }

    /// The deliveries of one message (replays included) in acceptance order,
    /// each with the `version:` its mapping's file declared, when known.
    pub async fn deliveries_with_file_version(
        &self,
        message_id: &str,
    ) -> Result<Vec<(DeliveryFull, Option<i64>)>> {
        let cols = DELIVERY_COLS
            .split(',')
            .map(|c| format!("d.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols}, mv.file_version FROM deliveries d LEFT JOIN mapping_versions mv \
             ON mv.mapping_id = d.mapping_id AND mv.version = d.mapping_version WHERE d.message_id = $1 ORDER BY d.seq"
        ))
        .bind(message_id)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("reading a message's deliveries", e))?;
        rows.iter()
            .map(|r: &AnyRow| Ok((delivery_full(r)?, get(r, "file_version")?)))
            .collect()
    }

    /// `(seq, hash)` of the first trail row of `kind` about one delivery.
    pub async fn first_delivery_event(
        &self,
        delivery_id: &str,
        kind: &str,
    ) -> Result<Option<(i64, String)>> {
        let r = sqlx::query(
            "SELECT seq, hash FROM trail WHERE delivery_id = $1 AND kind = $2 ORDER BY seq LIMIT 1",
        )
        .bind(delivery_id)
        .bind(kind)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db_err("reading a delivery's trail", e))?;
        r.map(|r| Ok((get(&r, "seq")?, get(&r, "hash")?)))
            .transpose()
    }

    /// The parsed tree (JSON text) of a stored message, if it has one.
    pub async fn message_parsed(&self, id: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT parsed FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(|e| db_err("reading a message's parsed tree", e))?;
        Ok(r.map(|r| get::<Option<String>>(&r, "parsed"))
            .transpose()?
            .flatten())
    }

    /// `(id, parsed)` of the latest `limit` accepted messages of one source
    /// system and type that have a parsed tree, newest first: the traffic the
    /// mapping gate's dry run maps with a candidate.
    pub async fn recent_parsed(
        &self,
        source_system: &str,
        message_type: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, parsed FROM messages WHERE source_system = $1 AND message_type = $2 AND state = 'accepted' \
             AND parsed IS NOT NULL ORDER BY received_at DESC LIMIT $3",
        )
        .bind(source_system)
        .bind(message_type)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db_err("dry run: reading stored messages", e))?;
        rows.iter()
            .map(|r| Ok((get(r, "id")?, get(r, "parsed")?)))
            .collect()
    }
}
