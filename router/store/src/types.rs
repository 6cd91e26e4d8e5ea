//! The records the store reads and writes.

use bytes::Bytes;
use serde::Serialize;

use super::trail::TrailEvent;

/// A message that passed intake, with everything it fans out to.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub received_at: i64,
    pub source_system: String,
    pub message_type: String,
    pub correlation_id: String,
    /// `Idempotency-Key` header, else the partner message id, else `None`.
    pub idempotency_key: Option<String>,
    pub partner_message_id: Option<String>,
    pub content_type: String,
    pub raw: Bytes,
    /// The decoded (and enriched) tree, as JSON text.
    pub parsed: String,
    pub deliveries: Vec<NewDelivery>,
    /// Trail events in order (received, routed, mapped...).
    pub trail: Vec<TrailEvent>,
}

/// One mapped, encoded delivery of a new message.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub destination: String,
    pub message_type: String,
    pub route_id: String,
    pub mapping_id: String,
    pub mapping_version: i64,
    pub body: Bytes,
    pub content_type: String,
}

/// Result of [`super::Store::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Stored now.
    Accepted { id: String, deliveries: usize },
    /// The idempotency key was already accepted: the original message.
    Duplicate { id: String, correlation_id: String },
}

/// An inbound attempt that was refused, kept for the trail.
#[derive(Debug, Clone)]
pub struct RejectedMessage {
    pub id: String,
    pub received_at: i64,
    pub source_system: String,
    pub message_type: String,
    pub correlation_id: Option<String>,
    pub content_type: String,
    pub raw: Bytes,
    pub parsed: Option<String>,
    pub status: u16,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct LeaseRequest {
    pub destination: String,
    pub max: usize,
    pub now: i64,
    pub lease_until: i64,
}

/// A delivery leased to a worker.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    pub seq: i64,
    pub id: String,
    /// What the partner sees as this delivery's `Idempotency-Key`: its id, or
    /// for an as-sent replay the key of the delivery it replays, so a partner
    /// that applied the first can recognise the second.
    pub partner_key: String,
    pub message_id: String,
    pub correlation_id: String,
    pub destination: String,
    pub message_type: String,
    pub body: Bytes,
    pub content_type: String,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    pub lease_until: i64,
    /// When the message was accepted (epoch ms), for end-to-end latency.
    pub created_at: i64,
}

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    Delivered,
    /// Transient failure: try again at this time (epoch ms).
    Retry {
        at: i64,
    },
    /// Permanent failure or attempts exhausted; the reason is kept.
    Dead,
}

/// One finished attempt, recorded with its outcome.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub delivery_id: String,
    pub message_id: String,
    pub destination: String,
    pub attempt: u32,
    pub started_at: i64,
    pub latency_ms: i64,
    pub request_excerpt: String,
    pub status: Option<u16>,
    pub response_excerpt: String,
    /// Short reason on failure (`timeout`, `http-503`...), with detail.
    pub error: Option<String>,
    /// `transient`, `permanent` or `exhausted` on failure.
    pub error_class: Option<String>,
    pub partner_reference: Option<String>,
    pub outcome: SettleOutcome,
}

/// The delivery that became head of its lane `(correlation_id, destination)`
/// when an earlier one was settled as delivered or dead, if it is due now and
/// already relayed ([`crate::Store::settle_and_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextInLane {
    pub id: String,
    pub seq: i64,
    pub correlation_id: String,
    pub destination: String,
}

/// A message as the API shows it (no raw bytes).
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: String,
    pub received_at: i64,
    pub source_system: String,
    pub message_type: String,
    pub correlation_id: Option<String>,
    pub state: String,
    pub reasons: Option<serde_json::Value>,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub seq: i64,
    pub destination: String,
    pub message_type: String,
    pub mapping_id: String,
    pub mapping_version: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub error_class: Option<String>,
}

/// One stored trail row.
#[derive(Debug, Clone, Serialize)]
pub struct TrailRow {
    pub seq: i64,
    pub at: i64,
    pub message_id: Option<String>,
    pub delivery_id: Option<String>,
    pub kind: String,
    pub actor: String,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}
