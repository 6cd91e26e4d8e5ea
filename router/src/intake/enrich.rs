//! The enrichment hook: code that runs on the parsed, validated tree before routing.
//!
//! Some flows need logic that does not belong in a declarative mapping: the
//! stations connector evaluates measurements against the QCVN limits, flags
//! exceedances in the tree and raises alert messages. An [`Enricher`] is
//! registered for a `(system, message_type)` and may change the tree and return
//! extra inbound messages (same system), which are accepted and routed like any
//! other message of their type, linked to their parent in the trail.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// An extra message produced by enrichment.
#[derive(Debug, Clone)]
pub struct ExtraMessage {
    /// Message type (of the same system), e.g. `alert`.
    pub message_type: String,
    pub tree: Value,
    /// Stable key, unique per parent (makes a resend of the parent idempotent).
    pub key: String,
}

/// The enriched tree and any extra messages.
#[derive(Debug, Clone)]
pub struct Enriched {
    pub tree: Value,
    pub extra: Vec<ExtraMessage>,
}

/// Runs on a validated inbound tree before routing.
pub trait Enricher: Send + Sync + 'static {
    fn enrich(&self, system: &str, message_type: &str, tree: Value) -> crate::Result<Enriched>;
}

/// Enrichers by `(system, message_type)`, registered explicitly by the binary.
#[derive(Clone, Default)]
pub struct Enrichers {
    by_type: HashMap<(String, String), Arc<dyn Enricher>>,
}

impl Enrichers {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn register(
        &mut self,
        system: impl Into<String>,
        message_type: impl Into<String>,
        e: Arc<dyn Enricher>,
    ) {
        self.by_type.insert((system.into(), message_type.into()), e);
    }
    pub fn get(&self, system: &str, message_type: &str) -> Option<&Arc<dyn Enricher>> {
        self.by_type
            .get(&(system.to_string(), message_type.to_string()))
    }
}
