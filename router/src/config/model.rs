//! The configuration file as written (YAML), before validation.
//!
//! Every struct denies unknown keys, so a typo is an error instead of a silently
//! ignored setting. Values that need checking beyond their type are wrapped in
//! [`Spanned`] so that validation can point at their line. Values set from the
//! environment carry [`Location::UNKNOWN`] and an entry in [`RawConfig::env_sources`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Shorthand for `store.url` (the scale-out path: a PostgreSQL URL).
    pub database_url: Option<S<String>>,
    /// Shorthand for `queue.backend: rabbitmq` with `queue.rabbitmq.url`.
    pub amqp_url: Option<S<String>>,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub queue: RawQueue,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub intake: RawIntake,
    #[serde(default)]
    pub destination_defaults: RawDestination,
    #[serde(default)]
    pub destinations: BTreeMap<String, RawDestination>,
    #[serde(default)]
    pub partners: BTreeMap<String, RawPartner>,
    /// Per-partner connector settings, validated by the `connectors` crate.
    #[serde(default)]
    pub connectors: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub logging: RawLogging,
    /// API bearer tokens (hashed); see `router::auth::config`.
    #[serde(default)]
    pub tokens: Vec<crate::auth::config::TokenConfig>,
    /// Payload retention; see `router::audit::retention`.
    #[serde(default)]
    pub retention: crate::audit::retention::RetentionConfig,
    /// Mapping administration: the gate's dry run, the file watcher, replica polling.
    #[serde(default)]
    pub admin: RawAdmin,
    /// Key path -> environment variable, for values overridden from the environment.
    #[serde(skip)]
    pub env_sources: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<S<String>>,
    pub drain_deadline: Option<S<String>>,
    /// Requests handled at once; more are answered 503 with `Retry-After`.
    pub max_concurrent_requests: Option<S<u32>>,
    /// Time a client has to send a request's headers, and that a kept-alive
    /// connection may sit idle before its next request.
    pub header_read_timeout: Option<S<String>>,
    /// Longest wait between two pieces of a request body.
    pub body_read_timeout: Option<S<String>>,
    /// Longest time from a request's headers to its answer.
    pub request_timeout: Option<S<String>>,
    /// A TLS-terminating proxy is in front: console cookies get `Secure`.
    pub behind_tls_proxy: Option<S<bool>>,
    /// Addresses (`10.0.0.5`) or networks (`10.0.0.0/8`) of the proxies whose
    /// `X-Forwarded-Host` / `X-Forwarded-Proto` are believed. Empty: none are.
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
    /// How long a console sign-in lasts (default 8h).
    pub console_session_ttl: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<S<String>>,
    pub data_dir: Option<S<String>>,
    pub max_batch: Option<S<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub backend: Option<S<String>>,
    /// Settings of the RabbitMQ backend (used when `backend: rabbitmq`).
    pub rabbitmq: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub mappings: Option<S<String>>,
    pub schemas: Option<S<String>>,
    pub routes: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntake {
    pub allow_unauthenticated: Option<S<bool>>,
    pub max_clock_skew: Option<S<String>>,
    /// Memory for inbound bodies being read and processed at once, in MiB.
    pub max_inflight_body_mib: Option<S<u32>>,
    pub rate_limit: Option<RawRate>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub per_second: Option<S<u32>>,
    pub burst: Option<S<u32>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    pub initial: Option<S<String>>,
    pub max: Option<S<String>>,
    pub multiplier: Option<S<f64>>,
    pub jitter: Option<S<f64>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub url: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub rate_limit: Option<RawRate>,
    pub concurrency: Option<S<u32>>,
    pub max_attempts: Option<S<u32>>,
    pub backoff: Option<RawBackoff>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartner {
    /// SHA-256 (hex) of the partner's API key (`Authorization: Bearer <key>`).
    pub api_key_sha256: Option<S<String>>,
    /// Environment variable holding the HMAC-SHA256 signing secret.
    pub hmac_secret_env: Option<S<String>>,
    /// File holding the HMAC-SHA256 signing secret (trailing newline ignored).
    pub hmac_secret_file: Option<S<String>>,
    pub rate_limit: Option<RawRate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    pub level: Option<S<String>>,
    pub format: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// How many recent stored messages the gate's dry run maps (default 200).
    pub dry_run_sample: Option<S<u32>>,
    /// Quiet time after the last file event under `mappings/` before the watcher acts (default 500ms).
    pub watch_debounce: Option<S<String>>,
    /// How often a replica checks whether another replica changed a mapping (default 1s).
    pub poll_interval: Option<S<String>>,
}
