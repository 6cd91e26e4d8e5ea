//! Typed, validated configuration.
//!
//! Two phases, so that `lienthong check` can report problems without touching
//! anything: [`Config::load`] parses the YAML (unknown keys are errors), applies
//! environment overrides ([`env`]) and runs a pure validation that collects
//! *every* problem with its file:line before failing; the I/O (opening the
//! database, binding the socket, reading schemas and mappings) happens later, in
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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::delivery::DestinationPolicy;
use crate::{Diagnostic, Diagnostics};
use duration::parse_duration;
use model::*;

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

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, `None` for the embedded default.
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub drain_deadline: Duration,
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

/// The `queue.rabbitmq` keys, checked here in the pure phase with the same
/// rules the queue applies when it starts (`RabbitOptions::problems`), so
/// `lienthong check` reports a bad prefetch or an unknown key (every problem,
/// one diagnostic each) before any connection is tried. A missing URL is left
/// to the start: deployments often give it only through the environment of the
/// running hub (a Secret), not to `check`. The section keeps no line numbers of
/// its own, so the diagnostic points at `queue.backend` when it is in the file.
fn check_rabbit_section(
    c: &mut Ctx<'_>,
    section: &serde_json::Value,
    backend: Option<&Spanned<String>>,
) {
    for problem in crate::queue::rabbitmq::RabbitOptions::problems(section) {
        c.err("queue.rabbitmq", backend, problem);
    }
}

/// Collects diagnostics with the position of a value (file line, or the env var that set it).
struct Ctx<'a> {
    file: &'a str,
    raw: &'a RawConfig,
    diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    fn err<T>(&mut self, key: &str, at: Option<&Spanned<T>>, message: String) {
        let (file, line, column) = match (self.raw.env_sources.get(key), at) {
            (Some(var), _) => (format!("environment {var}"), 0, 0),
            (None, Some(s)) => (
                self.file.to_string(),
                s.referenced.line() as usize,
                s.referenced.column() as usize,
            ),
            (None, None) => (self.file.to_string(), 0, 0),
        };
        self.diags.push(Diagnostic {
            file,
            line,
            column,
            context: key.to_string(),
            message,
        });
    }

    fn duration(&mut self, key: &str, v: &Option<Spanned<String>>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(&s.value) {
                Ok(d) => d,
                Err(e) => {
                    self.err(key, Some(s), e);
                    default
                }
            },
        }
    }

    fn positive(&mut self, key: &str, v: &Option<Spanned<u32>>, default: u32) -> u32 {
        match v {
            Some(s) if s.value == 0 => {
                self.err(key, Some(s), "must be at least 1".into());
                default
            }
            Some(s) => s.value,
            None => default,
        }
    }

    /// A duration that must lie within `range` (inclusive); out of range reports and uses `default`.
    fn duration_in(
        &mut self,
        key: &str,
        v: &Option<Spanned<String>>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let d = self.duration(key, v, default);
        if d < min || d > max {
            self.err(
                key,
                v.as_ref(),
                format!("{d:?} is out of range: use {min:?} to {max:?}"),
            );
            return default;
        }
        d
    }

    fn rate(&mut self, key: &str, r: &Option<RawRate>, default: (u32, u32)) -> (u32, u32) {
        match r {
            None => default,
            Some(r) => {
                let per = self.positive(&format!("{key}.per_second"), &r.per_second, default.0);
                let burst = self.positive(
                    &format!("{key}.burst"),
                    &r.burst,
                    per.max(default.1.min(per)),
                );
                (per, burst)
            }
        }
    }

    fn policy(
        &mut self,
        key: &str,
        d: &RawDestination,
        base: &DestinationPolicy,
    ) -> DestinationPolicy {
        let timeout = self.duration(&format!("{key}.timeout"), &d.timeout, base.timeout);
        if timeout.is_zero() {
            self.err(
                &format!("{key}.timeout"),
                d.timeout.as_ref(),
                "must be more than zero".into(),
            );
        }
        let (rate_per_second, burst) = self.rate(
            &format!("{key}.rate_limit"),
            &d.rate_limit,
            (base.rate_per_second, base.burst),
        );
        let concurrency = self.positive(
            &format!("{key}.concurrency"),
            &d.concurrency,
            base.concurrency,
        );
        let max_attempts = self.positive(
            &format!("{key}.max_attempts"),
            &d.max_attempts,
            base.max_attempts,
        );
        let mut backoff = base.backoff.clone();
        if let Some(b) = &d.backoff {
            backoff.initial = self.duration(
                &format!("{key}.backoff.initial"),
                &b.initial,
                backoff.initial,
            );
            backoff.max = self.duration(&format!("{key}.backoff.max"), &b.max, backoff.max);
            if let Some(m) = &b.multiplier {
                if !(1.0..=10.0).contains(&m.value) {
                    self.err(
                        &format!("{key}.backoff.multiplier"),
                        Some(m),
                        format!("{} is out of range: use 1.0 to 10.0", m.value),
                    );
                } else {
                    backoff.multiplier = m.value;
                }
            }
            if let Some(j) = &b.jitter {
                if !(0.0..=1.0).contains(&j.value) {
                    self.err(
                        &format!("{key}.backoff.jitter"),
                        Some(j),
                        format!("{} is out of range: use 0.0 to 1.0", j.value),
                    );
                } else {
                    backoff.jitter = j.value;
                }
            }
            if backoff.initial > backoff.max {
                self.err(
                    &format!("{key}.backoff.initial"),
                    b.initial.as_ref(),
                    format!(
                        "initial delay {:?} is longer than max {:?}",
                        backoff.initial, backoff.max
                    ),
                );
            }
        }
        DestinationPolicy {
            timeout,
            rate_per_second,
            burst,
            concurrency,
            max_attempts,
            backoff,
        }
    }
}

fn validate(raw: &RawConfig, file: &str, embedded: bool, diags: &mut Diagnostics) -> Config {
    let mut c = Ctx { file, raw, diags };
    let listen_text = raw
        .server
        .listen
        .as_ref()
        .map_or(DEFAULT_LISTEN, |s| s.value.as_str());
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        c.err(
            "server.listen",
            raw.server.listen.as_ref(),
            format!("`{listen_text}` is not an address: write host:port, e.g. 127.0.0.1:8080"),
        );
        DEFAULT_LISTEN.parse().expect("valid default")
    });
    let drain_deadline = c.duration(
        "server.drain_deadline",
        &raw.server.drain_deadline,
        Duration::from_secs(20),
    );
    let data_dir = PathBuf::from(
        raw.store
            .data_dir
            .as_ref()
            .map_or("data", |s| s.value.as_str()),
    );
    // `database_url` is the shorthand the scale-out docs use for `store.url`.
    let store_url_raw = match (&raw.database_url, &raw.store.url) {
        (Some(d), Some(_)) => {
            c.err(
                "database_url",
                Some(d),
                "both `database_url` and `store.url` are set: keep one (they mean the same)".into(),
            );
            &raw.store.url
        }
        (Some(_), None) => &raw.database_url,
        (None, u) => u,
    };
    let store_url = match store_url_raw {
        Some(u)
            if u.value.starts_with("sqlite:")
                || u.value.starts_with("postgres:")
                || u.value.starts_with("postgresql:") =>
        {
            u.value.clone()
        }
        Some(u) => {
            c.err("store.url", Some(u), format!("`{}` is not supported: use sqlite://<file>?mode=rwc or postgres://user@host/db", u.value));
            String::new()
        }
        None => format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("lienthong.db").display()
        ),
    };
    let store_max_batch = c.positive("store.max_batch", &raw.store.max_batch, 512) as usize;
    // `amqp_url` is the shorthand for `queue.backend: rabbitmq` + `queue.rabbitmq.url`.
    let mut rabbit_section = raw.queue.rabbitmq.clone();
    let mut backend = raw.queue.backend.as_ref().map(|s| s.value.as_str());
    if let Some(u) = &raw.amqp_url {
        let section = rabbit_section.get_or_insert_with(|| serde_json::json!({}));
        match section.as_object_mut() {
            Some(o) if o.contains_key("url") => c.err(
                "amqp_url",
                Some(u),
                "both `amqp_url` and `queue.rabbitmq.url` are set: keep one (they mean the same)"
                    .into(),
            ),
            Some(o) => drop(o.insert("url".into(), u.value.clone().into())),
            None => {}
        }
        match backend {
            Some("embedded") => c.err(
                "amqp_url",
                Some(u),
                "`amqp_url` is set but `queue.backend` is `embedded`: remove one of them".into(),
            ),
            _ => backend = Some("rabbitmq"),
        }
    }
    let queue = match backend {
        None | Some("embedded") => {
            if raw.queue.rabbitmq.is_some() {
                c.err::<()>(
                    "queue.rabbitmq",
                    None,
                    "rabbitmq settings are given but queue.backend is not `rabbitmq`".into(),
                );
            }
            QueueBackend::Embedded
        }
        Some("rabbitmq") => {
            let section = rabbit_section.unwrap_or(serde_json::Value::Null);
            check_rabbit_section(&mut c, &section, raw.queue.backend.as_ref());
            QueueBackend::RabbitMq(section)
        }
        Some(other) => {
            c.err(
                "queue.backend",
                raw.queue.backend.as_ref(),
                format!("unknown queue backend `{other}`: use embedded or rabbitmq"),
            );
            QueueBackend::Embedded
        }
    };
    let path = |v: &Option<Spanned<String>>, d: &str| {
        PathBuf::from(v.as_ref().map_or(d, |s| s.value.as_str()))
    };
    let mappings_dir = path(&raw.paths.mappings, "mappings");
    let schemas_dir = path(&raw.paths.schemas, "schemas");
    let routes_file = raw.paths.routes.as_ref().map_or_else(
        || mappings_dir.join("routes.yaml"),
        |s| PathBuf::from(&s.value),
    );
    let allow_unauthenticated = raw
        .intake
        .allow_unauthenticated
        .as_ref()
        .map_or(embedded, |s| s.value);
    let max_clock_skew = c.duration(
        "intake.max_clock_skew",
        &raw.intake.max_clock_skew,
        Duration::from_secs(300),
    );
    let intake_rate = c.rate("intake.rate_limit", &raw.intake.rate_limit, (200, 400));
    let destination_defaults = c.policy(
        "destination_defaults",
        &raw.destination_defaults,
        &DestinationPolicy::default(),
    );
    let mut destinations = BTreeMap::new();
    for (id, d) in &raw.destinations {
        let key = format!("destinations.{id}");
        check_id(&mut c, &key, id);
        let policy = c.policy(&key, d, &destination_defaults);
        let url = d.url.as_ref().map(|u| {
            if !(u.value.starts_with("http://") || u.value.starts_with("https://")) {
                c.err(
                    &format!("{key}.url"),
                    Some(u),
                    format!("`{}` is not an http(s) URL", u.value),
                );
            }
            u.value.clone()
        });
        destinations.insert(id.clone(), Destination { url, policy });
    }
    let mut partners = BTreeMap::new();
    for (id, p) in &raw.partners {
        let key = format!("partners.{id}");
        check_id(&mut c, &key, id);
        let mut auth = PartnerAuth::default();
        if let Some(h) = &p.api_key_sha256 {
            match hex::decode(h.value.trim()) {
                Ok(b) if b.len() == 32 => auth.api_key_sha256 = Some(b.try_into().expect("32 bytes")),
                _ => c.err(
                    &format!("{key}.api_key_sha256"),
                    Some(h),
                    "must be the 64-character hex SHA-256 of the key (e.g. `printf %s \"$KEY\" | sha256sum`), never the key itself".into(),
                ),
            }
        }
        match (&p.hmac_secret_env, &p.hmac_secret_file) {
            (Some(_), Some(f)) => c.err(
                &format!("{key}.hmac_secret_file"),
                Some(f),
                "set hmac_secret_env or hmac_secret_file, not both".into(),
            ),
            (Some(e), None) => match std::env::var(&e.value) {
                Ok(v) if !v.is_empty() => auth.hmac_secret = Some(v.into_bytes()),
                _ => c.err(
                    &format!("{key}.hmac_secret_env"),
                    Some(e),
                    format!("environment variable {} is not set or empty", e.value),
                ),
            },
            (None, Some(f)) => match std::fs::read(&f.value) {
                Ok(mut v) if !v.is_empty() => {
                    while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        v.pop();
                    }
                    auth.hmac_secret = Some(v)
                }
                Ok(_) => c.err(
                    &format!("{key}.hmac_secret_file"),
                    Some(f),
                    format!("{} is empty", f.value),
                ),
                Err(e) => c.err(
                    &format!("{key}.hmac_secret_file"),
                    Some(f),
                    format!("cannot read {}: {e}", f.value),
                ),
            },
            (None, None) => {}
        }
        if auth.api_key_sha256.is_none()
            && auth.hmac_secret.is_none()
            && p.hmac_secret_env.is_none()
            && p.hmac_secret_file.is_none()
            && p.api_key_sha256.is_none()
        {
            c.err::<()>(&key, None, "a partner needs api_key_sha256 or an HMAC secret (hmac_secret_env / hmac_secret_file)".into());
        }
        if p.rate_limit.is_some() {
            auth.rate = Some(c.rate(&format!("{key}.rate_limit"), &p.rate_limit, intake_rate));
        }
        partners.insert(id.clone(), auth);
    }
    let log_level = raw
        .logging
        .level
        .as_ref()
        .map_or("info", |s| s.value.as_str())
        .to_string();
    if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str())
        && !log_level.contains('=')
    {
        c.err(
            "logging.level",
            raw.logging.level.as_ref(),
            format!(
                "`{log_level}`: use trace, debug, info, warn, error or an env-filter directive"
            ),
        );
    }
    let log_json = match raw.logging.format.as_ref().map(|s| s.value.as_str()) {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            c.err(
                "logging.format",
                raw.logging.format.as_ref(),
                format!("`{other}`: use text or json"),
            );
            false
        }
    };
    let tokens = std::sync::Arc::new(
        crate::auth::config::build(file, &raw.tokens).unwrap_or_else(|d| {
            c.diags.extend(d);
            Default::default()
        }),
    );
    let retention_payloads = match raw
        .retention
        .payloads
        .as_deref()
        .map(crate::audit::retention::parse_age)
    {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            c.err::<()>("retention.payloads", None, e);
            None
        }
    };
    let admin = {
        let d = AdminSettings::default();
        let r = &raw.admin;
        let dry_run_sample = match &r.dry_run_sample {
            Some(n) if !AdminSettings::DRY_RUN_SAMPLE.contains(&n.value) => {
                c.err(
                    "admin.dry_run_sample",
                    Some(n),
                    format!(
                        "{} is out of range: use {} to {} (messages mapped by the gate's dry run)",
                        n.value,
                        AdminSettings::DRY_RUN_SAMPLE.start(),
                        AdminSettings::DRY_RUN_SAMPLE.end()
                    ),
                );
                d.dry_run_sample
            }
            Some(n) => n.value as usize,
            None => d.dry_run_sample,
        };
        AdminSettings {
            dry_run_sample,
            watch_debounce: c.duration_in(
                "admin.watch_debounce",
                &r.watch_debounce,
                d.watch_debounce,
                AdminSettings::WATCH_DEBOUNCE,
            ),
            poll_interval: c.duration_in(
                "admin.poll_interval",
                &r.poll_interval,
                d.poll_interval,
                AdminSettings::POLL_INTERVAL,
            ),
        }
    };
    Config {
        file: None,
        listen,
        drain_deadline,
        store_url,
        data_dir,
        store_max_batch,
        queue,
        mappings_dir,
        schemas_dir,
        routes_file,
        allow_unauthenticated,
        max_clock_skew,
        intake_rate,
        destination_defaults,
        destinations,
        partners,
        connectors: raw.connectors.clone(),
        log_level,
        log_json,
        tokens,
        retention_payloads,
        admin,
    }
}

fn check_id(c: &mut Ctx<'_>, key: &str, id: &str) {
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        c.err::<()>(
            key,
            None,
            format!("system id `{id}` must be lowercase letters, digits and `-`"),
        );
    }
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
