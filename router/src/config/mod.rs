//! Typed, validated configuration.
//!
//! Two phases, so that `lienthong check` can report problems without touching
//! anything: [`Config::load`] parses the YAML (unknown keys are errors), applies
//! environment overrides ([`env`]) and runs a pure validation that collects
//! *every* problem with its file:line before failing (one function per section,
//! in `config/validate.rs`); the I/O (opening the database, binding
//! the socket, reading schemas and mappings) happens later, in
//! [`crate::server::Hub::start`].
//!
//! With no file at all the hub runs on the *embedded default*: SQLite store and
//! durable queue under `./data/`, the repository's `mappings/`, `schemas/` and
//! `mappings/routes.yaml`, HTTP on `127.0.0.1:8080`. `deploy/lienthong.example.yaml`
//! documents every key.

/// Durations in config files (`30s`, `5m`, `1h`); in the core, so the queue
/// settings can read them without depending on the config module.
pub use lienthong_core::duration;
pub mod env;
pub mod model;
mod validate;
mod values;

pub use validate::{route_targets, waiting_for_configuration};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::delivery::DestinationPolicy;
use crate::{Diagnostic, Diagnostics};
use model::*;
use validate::validate;

/// Default listen address of the embedded default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Which durable queue carries deliveries.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueBackend {
    /// The store's `deliveries` table (SQLite default).
    Embedded,
    /// RabbitMQ; its settings, validated by the RabbitMQ backend.
    RabbitMq(serde_json::Value),
}

/// A partner endpoint the hub delivers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// For the generic HTTP transport; connectors may not need one.
    pub url: Option<String>,
    pub policy: DestinationPolicy,
}

/// How a partner proves who it is at intake.
#[derive(Clone, Default)]
pub struct PartnerAuth {
    /// SHA-256 of the API key.
    pub api_key_sha256: Option<[u8; 32]>,
    /// The HMAC-SHA256 signing secret (read from an env var or file; never logged).
    pub hmac_secret: Option<Vec<u8>>,
    /// Intake rate limit of this partner (per second, burst).
    pub rate: Option<(u32, u32)>,
}

impl std::fmt::Debug for PartnerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerAuth")
            .field("api_key", &self.api_key_sha256.map(|_| "<sha256>"))
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("rate", &self.rate)
            .finish()
    }
}

/// `admin:`: tuning of mapping administration (see `docs/ADMIN.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// `admin.dry_run_sample`: stored messages the gate's dry run maps (1..=10000).
    pub dry_run_sample: usize,
    /// `admin.watch_debounce`: quiet time before a file edit under `mappings/` is gated (50ms..=60s).
    pub watch_debounce: Duration,
    /// `admin.poll_interval`: how often replicas check the mapping generation (100ms..=5m).
    pub poll_interval: Duration,
}

impl AdminSettings {
    pub const DRY_RUN_SAMPLE: std::ops::RangeInclusive<u32> = 1..=10_000;
    pub const WATCH_DEBOUNCE: (Duration, Duration) =
        (Duration::from_millis(50), Duration::from_secs(60));
    pub const POLL_INTERVAL: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_secs(300));
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            dry_run_sample: 200,
            watch_debounce: Duration::from_millis(500),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The HTTP listener's limits and timeouts (`server.*`); see SECURITY.md.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// `server.max_concurrent_requests`: requests in flight at once; more are
    /// shed with 503 and `Retry-After`.
    pub max_concurrent_requests: usize,
    /// `server.header_read_timeout`: to send the headers of a request, and to
    /// start the next request on a kept-alive connection (hyper's header timer
    /// also runs while a connection is idle); the connection is then closed.
    pub header_read_timeout: Duration,
    /// `server.body_read_timeout`: the longest pause between two pieces of a
    /// request body (a body that stops arriving is answered 408).
    pub body_read_timeout: Duration,
    /// `server.request_timeout`: from the headers to the answer (408).
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_concurrent_requests: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Who the HTTP edge believes (`server.behind_tls_proxy`, `server.trusted_proxies`)
/// and how long a console sign-in lasts (`server.console_session_ttl`); see SECURITY.md.
#[derive(Debug, Clone)]
pub struct EdgeTrust {
    /// Console cookies carry `Secure` (a TLS proxy is in front of the hub).
    pub behind_tls_proxy: bool,
    /// Peers whose `X-Forwarded-Host` and `X-Forwarded-Proto` are used; from
    /// anyone else those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub console_session_ttl: Duration,
}

impl Default for EdgeTrust {
    fn default() -> Self {
        EdgeTrust {
            behind_tls_proxy: false,
            trusted_proxies: Vec::new(),
            console_session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

impl EdgeTrust {
    /// Is `peer` one of the trusted proxies?
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&peer))
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, `None` for the embedded default.
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub drain_deadline: Duration,
    /// `server.*` limits and timeouts of the HTTP listener.
    pub http: HttpLimits,
    /// `server.*` proxies, TLS and console sessions.
    pub edge: EdgeTrust,
    /// Database URL (`sqlite://...` or `postgres://...`).
    pub store_url: String,
    pub data_dir: PathBuf,
    pub store_max_batch: usize,
    pub queue: QueueBackend,
    pub mappings_dir: PathBuf,
    pub schemas_dir: PathBuf,
    pub routes_file: PathBuf,
    pub allow_unauthenticated: bool,
    pub max_clock_skew: Duration,
    /// `intake.max_inflight_body_mib` in bytes: the declared sizes of the inbound
    /// bodies being read and processed at once (default 16 MiB, two bodies of the largest size).
    pub max_inflight_body_bytes: usize,
    /// Intake rate per partner unless the partner sets its own (per second, burst).
    pub intake_rate: (u32, u32),
    pub destination_defaults: DestinationPolicy,
    pub destinations: BTreeMap<String, Destination>,
    pub partners: BTreeMap<String, PartnerAuth>,
    /// Opaque per-partner connector settings (the `connectors` crate validates them).
    pub connectors: BTreeMap<String, serde_json::Value>,
    pub log_level: String,
    pub log_json: bool,
    /// API tokens (`tokens:`), validated.
    pub tokens: std::sync::Arc<crate::auth::TokenStore>,
    /// `retention.payloads`: age after which `audit prune` empties payloads (None: keep for ever).
    pub retention_payloads: Option<Duration>,
    /// `admin:`: gate dry-run sample, file-watch debounce, replica poll interval.
    pub admin: AdminSettings,
}

impl Config {
    /// Where this config came from, as diagnostics name it: its file, or
    /// `(embedded default)`.
    pub fn source_name(&self) -> String {
        self.file
            .as_ref()
            .map_or("(embedded default)".to_string(), |p| {
                p.display().to_string()
            })
    }

    /// Loads `path` (or the embedded default when `None`), applies the
    /// environment and validates everything, reporting every problem at once.
    pub fn load(path: Option<&Path>) -> Result<Config, Diagnostics> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, Diagnostics> {
        let file_name = path.map_or_else(
            || "(embedded default)".to_string(),
            |p| p.display().to_string(),
        );
        let mut raw = match path {
            None => RawConfig::default(),
            Some(p) => parse_file(p)?,
        };
        let mut diags = Diagnostics::default();
        for e in env::apply(&mut raw, vars) {
            diags.push(Diagnostic {
                file: "environment".into(),
                line: 0,
                column: 0,
                context: String::new(),
                message: e,
            });
        }
        let embedded = path.is_none();
        let cfg = validate(&raw, &file_name, embedded, &mut diags);
        diags.into_result()?;
        Ok(Config {
            file: path.map(Path::to_path_buf),
            ..cfg
        })
    }
}

fn parse_file(p: &Path) -> Result<RawConfig, Diagnostics> {
    let one = |line: usize, column: usize, message: String| {
        Diagnostics(vec![Diagnostic {
            file: p.display().to_string(),
            line,
            column,
            context: String::new(),
            message,
        }])
    };
    let meta =
        std::fs::metadata(p).map_err(|e| one(0, 0, format!("cannot read the config file: {e}")))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(one(
            0,
            0,
            format!(
                "config file is {} bytes; the limit is {MAX_CONFIG_BYTES}",
                meta.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(p)
        .map_err(|e| one(0, 0, format!("cannot read the config file: {e}")))?;
    serde_saphyr::from_str::<RawConfig>(&text).map_err(|e| {
        let (line, col) = e
            .location()
            .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
        one(
            line,
            col,
            format!(
                "{}; see deploy/lienthong.example.yaml for every key",
                e.without_snippet()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, Diagnostics> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(yaml.as_bytes()).unwrap();
        Config::load_with_env(
            Some(f.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn embedded_default() {
        let c = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.store_url.starts_with("sqlite://data/lienthong.db"));
        assert_eq!(c.routes_file, PathBuf::from("mappings/routes.yaml"));
        assert!(c.allow_unauthenticated);
    }

    #[test]
    fn reports_every_error_with_lines() {
        let yaml = "server:\n  listen: nowhere\n  drain_deadline: 3 weeks\ndestinations:\n  lis:\n    url: ftp://x\n    concurrency: 0\n    backoff: { jitter: 3.0 }\npartners:\n  stations:\n    api_key_sha256: secret\n";
        let d = load(yaml, &[]).unwrap_err();
        let text = d.to_string();
        assert_eq!(d.len(), 6, "{text}");
        assert!(
            text.contains(":2:") && text.contains("server.listen"),
            "{text}"
        );
        assert!(
            text.contains(":6:") && text.contains("destinations.lis.url"),
            "{text}"
        );
        assert!(
            text.contains(":7:") && text.contains("concurrency"),
            "{text}"
        );
        assert!(text.contains("jitter"), "{text}");
        assert!(
            text.contains(":11:") && text.contains("api_key_sha256"),
            "{text}"
        );
    }

    #[test]
    fn the_rabbitmq_section_is_checked_without_connecting() {
        let errors = |section: &str| {
            load(
                &format!("queue:\n  backend: rabbitmq\n  rabbitmq:\n{section}"),
                &[],
            )
            .unwrap_err()
            .to_string()
        };
        let text = errors("    url: amqp://mq\n    stale_after: 1s\n");
        assert!(
            text.contains(":2:") && text.contains("stale_after") && text.contains("at least 5s"),
            "{text}"
        );
        // Every problem of the section, not only the first.
        let text = errors("    prefetch: 0\n    replicas: 0\n");
        assert!(
            text.contains("prefetch must be at least 1")
                && text.contains("replicas must be at least 1"),
            "{text}"
        );
        let text = errors("    prefetsh: 16\n");
        assert!(text.contains("prefetsh"), "{text}");
        // The URL may come only from the running hub's environment.
        let c = load(
            "queue:\n  backend: rabbitmq\n  rabbitmq:\n    prefetch: 16\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.queue,
            QueueBackend::RabbitMq(serde_json::json!({"prefetch": 16}))
        );
    }

    #[test]
    fn database_url_and_amqp_url_are_the_scale_out_shorthand() {
        let c = load(
            "database_url: postgres://postgres@127.0.0.1/test\namqp_url: amqp://guest:guest@127.0.0.1:5672/%2f\nqueue:\n  rabbitmq:\n    prefetch: 16\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.store_url, "postgres://postgres@127.0.0.1/test");
        assert_eq!(
            c.queue,
            QueueBackend::RabbitMq(serde_json::json!({
                "url": "amqp://guest:guest@127.0.0.1:5672/%2f",
                "prefetch": 16
            }))
        );
        // From the environment too.
        let c = load(
            "",
            &[
                ("LIENTHONG_DATABASE_URL", "postgres://u@db/x"),
                ("LIENTHONG_AMQP_URL", "amqp://u:p@mq/v"),
            ],
        )
        .unwrap();
        assert_eq!(c.store_url, "postgres://u@db/x");
        assert!(matches!(c.queue, QueueBackend::RabbitMq(_)));
        // Saying the same thing twice, or contradicting it, is an error with its line.
        let d = load(
            "database_url: postgres://a@db/x\nstore:\n  url: postgres://b@db/x\namqp_url: amqp://mq\nqueue:\n  backend: embedded\n",
            &[],
        )
        .unwrap_err();
        let text = d.to_string();
        assert!(text.contains(":1:") && text.contains("store.url"), "{text}");
        assert!(text.contains(":4:") && text.contains("embedded"), "{text}");
    }

    #[test]
    fn unknown_key_is_an_error_with_position() {
        let d = load("server:\n  lisen: 1.2.3.4:5\n", &[]).unwrap_err();
        assert_eq!(d.0[0].line, 2, "{d}");
    }

    #[test]
    fn env_overrides_win_and_are_blamed() {
        let c = load(
            "server:\n  listen: 127.0.0.1:1\n",
            &[("LIENTHONG_SERVER__LISTEN", "127.0.0.1:2")],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 2);
        let d = load("", &[("LIENTHONG_DESTINATIONS__LIS__TIMEOUT", "soon")]).unwrap_err();
        assert!(
            d.to_string()
                .contains("LIENTHONG_DESTINATIONS__LIS__TIMEOUT"),
            "{d}"
        );
    }

    #[test]
    fn admin_settings_default_parse_and_range_errors_with_lines() {
        let c = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(c.admin, AdminSettings::default());
        let c = load(
            "admin:\n  dry_run_sample: 50\n  watch_debounce: 2s\n  poll_interval: 250ms\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.admin,
            AdminSettings {
                dry_run_sample: 50,
                watch_debounce: Duration::from_secs(2),
                poll_interval: Duration::from_millis(250),
            }
        );
        // Every problem at once, each at its line.
        let d = load(
            "server:\n  listen: 127.0.0.1:1\nadmin:\n  dry_run_sample: 0\n  watch_debounce: 10ms\n  poll_interval: 1h\n",
            &[],
        )
        .unwrap_err();
        let text = d.to_string();
        assert_eq!(d.len(), 3, "{text}");
        for (line, key) in [
            (4, "admin.dry_run_sample"),
            (5, "admin.watch_debounce"),
            (6, "admin.poll_interval"),
        ] {
            let hit =
                d.0.iter()
                    .find(|x| x.context == key)
                    .unwrap_or_else(|| panic!("{key}: {text}"));
            assert_eq!(hit.line, line, "{text}");
            assert!(hit.message.contains("out of range"), "{text}");
        }
        // Unknown keys in the section are errors (deny_unknown_fields) with their line.
        let d = load("admin:\n  dry_run_samples: 10\n", &[]).unwrap_err();
        assert_eq!(d.0[0].line, 2, "{d}");
        // The environment can set them, and is blamed when wrong.
        let c = load("", &[("LIENTHONG_ADMIN__DRY_RUN_SAMPLE", "20")]).unwrap();
        assert_eq!(c.admin.dry_run_sample, 20);
        let d = load("", &[("LIENTHONG_ADMIN__POLL_INTERVAL", "1ms")]).unwrap_err();
        assert!(
            d.to_string().contains("LIENTHONG_ADMIN__POLL_INTERVAL"),
            "{d}"
        );
    }

    #[test]
    fn route_targets_without_a_transport_are_reported() {
        let c = load(
            "destinations:\n  lis:\n    url: http://127.0.0.1:9/x\n",
            &[],
        )
        .unwrap();
        let targets = vec![
            "national-portal".to_string(),
            "lis".to_string(),
            "national-portal".to_string(),
        ];
        let waiting = c.unconfigured_targets(&targets, |t| {
            c.destinations.get(t).is_some_and(|d| d.url.is_some())
        });
        assert_eq!(waiting, ["national-portal"]);
        let w = waiting_for_configuration(&waiting[0]);
        assert!(
            w.contains("LIENTHONG_DESTINATIONS__NATIONAL_PORTAL__URL") && w.contains("wait"),
            "{w}"
        );
        assert!(c.unconfigured_targets(&targets, |_| true).is_empty());
    }

    #[test]
    fn destination_policy_inherits_defaults() {
        let c = load(
            "destination_defaults:\n  timeout: 3s\n  max_attempts: 4\ndestinations:\n  lis:\n    url: http://127.0.0.1:9/x\n    rate_limit: { per_second: 5, burst: 10 }\n",
            &[],
        )
        .unwrap();
        let p = &c.destinations["lis"].policy;
        assert_eq!(p.timeout, Duration::from_secs(3));
        assert_eq!(p.max_attempts, 4);
        assert_eq!((p.rate_per_second, p.burst), (5, 10));
    }
}
