//! The contract between the delivery layer and whatever puts bytes on the wire.
//!
//! The delivery layer (`router::delivery`) owns retries, backoff, rate limits,
//! concurrency caps and ordering. A [`Transport`] owns exactly one thing: sending
//! one already-mapped message to one partner once, and saying precisely how that
//! went. It never sleeps or retries on its own (apart from protocol-level
//! re-authentication such as one silent re-token on 401, which is part of the
//! partner's protocol, not a retry policy).
//!
//! The generic HTTP transport lives in `router::delivery::http`; partner protocols
//! (LGSP OAuth2, DVCQG session, SOAP + WS-Security, the tax GIP envelope, the IOC
//! API key) live in the `connectors` crate and register themselves explicitly in
//! a [`TransportRegistry`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

/// One delivery attempt, as handed to a transport.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The delivery's id (stable across retries and replays of the same delivery).
    pub delivery_id: String,
    /// The inbound message this delivery came from.
    pub message_id: String,
    /// Dossier code or station code.
    pub correlation_id: String,
    /// Target system id, e.g. `lis`.
    pub destination: String,
    /// Target message type, e.g. `dossier.register`.
    pub message_type: String,
    /// The mapped body, exactly as it should go on the wire (before any envelope the
    /// connector adds, such as SOAP or the tax GIP envelope).
    pub body: Bytes,
    /// `application/json` or `application/xml`.
    pub content_type: String,
    /// Sent to the partner (header `Idempotency-Key`) so that a partner, or a
    /// simulator, can drop a duplicate caused by an at-least-once redelivery.
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// What the partner answered when it accepted the message.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    pub status: Option<u16>,
    /// The exact request bytes as sent (after envelopes), for the trail and as-sent replay.
    pub request: Bytes,
    /// First few KiB of the response body, for the trail.
    pub response_excerpt: String,
    /// Any partner-side reference (e.g. a tax MSG_ID), recorded in the trail.
    pub partner_reference: Option<String>,
}

/// Why an attempt failed, classified.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: FailureClass,
    /// Short machine-friendly reason: `timeout`, `connect`, `http-503`, `soap-fault:Server`, `dvcqg-error:99`...
    pub reason: String,
    /// Human-readable detail (never contains secrets).
    pub detail: String,
    pub status: Option<u16>,
    /// Honour the partner's Retry-After when present.
    pub retry_after: Option<Duration>,
    /// Request bytes as sent, when the request got that far.
    pub request: Bytes,
    pub response_excerpt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// Timeout, connection error, 5xx, 429, an expired session the partner reports
    /// as a transient code...: retry later with backoff.
    Transient,
    /// Other 4xx, a SOAP client fault, a business rejection: dead-letter now.
    Permanent,
}

impl Failure {
    pub fn is_transient(&self) -> bool {
        self.class == FailureClass::Transient
    }
}

/// Sends one message to one partner, once.
pub trait Transport: Send + Sync + 'static {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>>;
}

/// Explicit registry of transports by destination system id (Quickwit-style: no
/// magic discovery; the binary registers each connector by name).
#[derive(Clone, Default)]
pub struct TransportRegistry {
    by_destination: BTreeMap<String, Arc<dyn Transport>>,
}

impl TransportRegistry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn register(&mut self, destination: impl Into<String>, transport: Arc<dyn Transport>) {
        self.by_destination.insert(destination.into(), transport);
    }
    pub fn get(&self, destination: &str) -> Option<Arc<dyn Transport>> {
        self.by_destination.get(destination).cloned()
    }
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.by_destination.keys().map(String::as_str)
    }
}
