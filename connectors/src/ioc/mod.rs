//! Provincial Intelligent Operations Center (IOC, "Smart Quảng Nam").
//!
//! **Everything about the IOC's API is assumed**: no public specification exists.
//!
//! ## Protocol
//! JSON over HTTP(S) with an API key header (`api_key_header`, default `X-API-Key`).
//! * Observations (`batch_message_types`, default `["observations"]`) are batched:
//!   `POST {base_url}{observations_path}` (default `/api/v1/observations`) with
//!   `{messageId, source, sentAt, observations: [...]}`, the `observations` of every
//!   message in the batch concatenated. A batch is flushed when it has
//!   `batch_size` messages or `linger_ms` after its first message arrived; each
//!   caller awaits its batch's outcome (one receipt or failure for all). The batch's
//!   `Idempotency-Key` and its `messageId` come from its content alone (the
//!   sorted digests of its observations, [`codec::batch_ids`]), so a retried or
//!   re-assembled batch of the same observations is recognisable, whatever the
//!   attempt or the order.
//! * Every other message type (alerts) is sent at once to `paths[message_type]`, else
//!   `alerts_path` (default `/api/v1/alerts`).
//!
//! Why batch in the connector and not in the delivery layer: the delivery layer sends
//! one message per attempt; the IOC prefers few large requests from a hub that may
//! receive a file every five minutes from each of dozens of stations. The channel
//! in front of the batcher is bounded (`queue_capacity`): a slow IOC pushes back on
//! the delivery workers instead of growing memory.
//!
//! ## Classification
//! Generic HTTP ([`crate::wire::status_failure`]); a 2xx is accepted.
//!
//! ## Config keys (`connectors.ioc`)
//! `base_url`, `api_key_header`, `api_key_env` | `api_key_file`, `observations_path`,
//! `alerts_path`, `paths`, `batch_message_types`, `batch_size`, `linger_ms`,
//! `queue_capacity`, `source`, `timeout_ms`.

pub mod auth;
pub mod batch;
pub mod classify;
pub mod client;
pub mod codec;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lienthong_core::{Diagnostic, Diagnostics};
use serde::Deserialize;

pub use client::IocClient;

pub const SYSTEM: &str = "ioc";

/// `connectors.ioc` in the hub's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IocConfig {
    pub base_url: String,
    #[serde(default = "default_header")]
    pub api_key_header: String,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_observations_path")]
    pub observations_path: String,
    #[serde(default = "default_alerts_path")]
    pub alerts_path: String,
    #[serde(default)]
    pub paths: BTreeMap<String, String>,
    #[serde(default = "default_batch_types")]
    pub batch_message_types: Vec<String>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    #[serde(default = "default_capacity")]
    pub queue_capacity: usize,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_header() -> String {
    "X-API-Key".into()
}
fn default_observations_path() -> String {
    "/api/v1/observations".into()
}
fn default_alerts_path() -> String {
    "/api/v1/alerts".into()
}
fn default_batch_types() -> Vec<String> {
    vec!["observations".into()]
}
fn default_batch_size() -> usize {
    50
}
fn default_linger_ms() -> u64 {
    2_000
}
fn default_capacity() -> usize {
    1_000
}
fn default_source() -> String {
    "HUB-STNMT-QNAM".into()
}
fn default_timeout_ms() -> u64 {
    30_000
}

impl IocConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        IocConfig {
            base_url: base_url.into(),
            api_key_header: default_header(),
            api_key_env: None,
            api_key_file: None,
            observations_path: default_observations_path(),
            alerts_path: default_alerts_path(),
            paths: BTreeMap::new(),
            batch_message_types: default_batch_types(),
            batch_size: default_batch_size(),
            linger_ms: default_linger_ms(),
            queue_capacity: default_capacity(),
            source: default_source(),
            timeout_ms: default_timeout_ms(),
        }
    }

    pub fn validate(&self, file: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        let ctx = |k: &str| format!("connectors.{SYSTEM}.{k}");
        let mut push = |k: &str, m: String| {
            d.push(Diagnostic {
                file: file.into(),
                line: 0,
                column: 0,
                context: ctx(k),
                message: m,
            })
        };
        crate::province_portal::check_url(&mut push, "base_url", &self.base_url);
        if reqwest::header::HeaderName::from_bytes(self.api_key_header.as_bytes()).is_err() {
            push(
                "api_key_header",
                format!("`{}` is not a valid HTTP header name", self.api_key_header),
            );
        }
        for (k, p) in [
            ("observations_path", &self.observations_path),
            ("alerts_path", &self.alerts_path),
        ] {
            if !p.starts_with('/') {
                push(k, format!("`{p}` must start with `/`"));
            }
        }
        if self.batch_size == 0 {
            push("batch_size", "must be at least 1".into());
        }
        if self.queue_capacity == 0 {
            push("queue_capacity", "must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            push("timeout_ms", "must be greater than 0".into());
        }
        crate::secret::validate_source(
            &mut d,
            file,
            &ctx("api_key_env|api_key_file"),
            self.api_key_env.as_deref(),
            self.api_key_file.as_ref(),
        );
        d
    }
}
