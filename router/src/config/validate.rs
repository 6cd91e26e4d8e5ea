//! The pure validation phase: from the file as written ([`RawConfig`], with the
//! environment applied) to a [`Config`], reporting every problem at once.
//!
//! One function per section, called in a fixed order, which is the order the
//! diagnostics come out in (tests and operators compare them). A value that is
//! wrong is reported at its file:line:column (or at the environment variable
//! that set it) and replaced by its default, so that the sections after it are
//! still checked: one `lienthong check` shows everything to fix.
//!
//! Nothing here opens the store, a socket or the broker. The one question that
//! needs the routes as well as the config (which route targets cannot be
//! delivered yet) is [`Config::unconfigured_targets`], asked by `lienthong
//! check` once it has loaded the routes and by `Hub::start` before it opens
//! anything; both warn, neither refuses (their deliveries wait).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::model::*;
use super::values::Ctx;
use super::{AdminSettings, Config, Destination, PartnerAuth, QueueBackend, DEFAULT_LISTEN};
use crate::delivery::DestinationPolicy;
use crate::mapping::MappingSet;
use crate::routes::Routes;
use crate::Diagnostics;

pub(super) fn validate(
    raw: &RawConfig,
    file: &str,
    embedded: bool,
    diags: &mut Diagnostics,
) -> Config {
    let mut c = Ctx { file, raw, diags };
    let (listen, drain_deadline, http) = server(&mut c);
    let edge = edge(&mut c);
    let store = store(&mut c);
    let queue = queue(&mut c);
    let paths = paths(raw);
    let intake = intake(&mut c, embedded);
    let destination_defaults = c.policy(
        "destination_defaults",
        &raw.destination_defaults,
        &DestinationPolicy::default(),
    );
    let destinations = destinations(&mut c, &destination_defaults);
    let partners = partners(&mut c, intake.rate);
    let (log_level, log_json) = logging(&mut c);
    let tokens = tokens(&mut c);
    let retention_payloads = retention(&mut c);
    let admin = admin(&mut c);
    Config {
        file: None,
        listen,
        drain_deadline,
        http,
        edge,
        store_url: store.url,
        data_dir: store.data_dir,
        store_max_batch: store.max_batch,
        queue,
        mappings_dir: paths.mappings_dir,
        schemas_dir: paths.schemas_dir,
        routes_file: paths.routes_file,
        allow_unauthenticated: intake.allow_unauthenticated,
        max_clock_skew: intake.max_clock_skew,
        max_inflight_body_bytes: intake.max_inflight_body_bytes,
        intake_rate: intake.rate,
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

/// `server.listen` and `server.drain_deadline`.
fn server(c: &mut Ctx<'_>) -> (SocketAddr, Duration, super::HttpLimits) {
    let raw = c.raw;
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
    let d = super::HttpLimits::default();
    let http = super::HttpLimits {
        max_concurrent_requests: c.positive(
            "server.max_concurrent_requests",
            &raw.server.max_concurrent_requests,
            d.max_concurrent_requests as u32,
        ) as usize,
        header_read_timeout: c.duration(
            "server.header_read_timeout",
            &raw.server.header_read_timeout,
            d.header_read_timeout,
        ),
        body_read_timeout: c.duration(
            "server.body_read_timeout",
            &raw.server.body_read_timeout,
            d.body_read_timeout,
        ),
        request_timeout: c.duration(
            "server.request_timeout",
            &raw.server.request_timeout,
            d.request_timeout,
        ),
    };
    for (key, v, raw_v) in [
        (
            "server.header_read_timeout",
            http.header_read_timeout,
            &raw.server.header_read_timeout,
        ),
        (
            "server.body_read_timeout",
            http.body_read_timeout,
            &raw.server.body_read_timeout,
        ),
        (
            "server.request_timeout",
            http.request_timeout,
            &raw.server.request_timeout,
        ),
    ] {
        if v.is_zero() {
            c.err(
                key,
                raw_v.as_ref(),
                "must be more than 0s: a timeout of 0 would refuse every request".into(),
            );
        }
    }
    (listen, drain_deadline, http)
}

/// `server.behind_tls_proxy`, `server.trusted_proxies`, `server.console_session_ttl`.
fn edge(c: &mut Ctx<'_>) -> super::EdgeTrust {
    let d = super::EdgeTrust::default();
    let raw = &c.raw.server;
    let behind_tls_proxy = raw.behind_tls_proxy.as_ref().is_some_and(|b| b.value);
    let mut trusted_proxies = Vec::new();
    for (i, p) in raw.trusted_proxies.iter().enumerate() {
        let v = p.value.trim();
        let net = v
            .parse::<ipnet::IpNet>()
            .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match net {
            Ok(n) => trusted_proxies.push(n),
            Err(_) => c.err(
                &format!("server.trusted_proxies[{i}]"),
                Some(p),
                format!(
                    "`{v}` is not an IP address or network: write e.g. `10.0.0.5` or `10.0.0.0/8`"
                ),
            ),
        }
    }
    let console_session_ttl = c.duration_in(
        "server.console_session_ttl",
        &raw.console_session_ttl,
        d.console_session_ttl,
        (Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600)),
    );
    super::EdgeTrust {
        behind_tls_proxy,
        trusted_proxies,
        console_session_ttl,
    }
}

struct StoreSection {
    url: String,
    data_dir: PathBuf,
    max_batch: usize,
}

/// `store:` (and its shorthand `database_url`).
fn store(c: &mut Ctx<'_>) -> StoreSection {
    let raw = c.raw;
    let data_dir = PathBuf::from(
        raw.store
            .data_dir
            .as_ref()
            .map_or("data", |s| s.value.as_str()),
    );
    let url = store_url(c, &data_dir);
    let max_batch = c.positive("store.max_batch", &raw.store.max_batch, 512) as usize;
    StoreSection {
        url,
        data_dir,
        max_batch,
    }
}

/// The database URL: `store.url` or `database_url`, else SQLite under the data directory.
fn store_url(c: &mut Ctx<'_>, data_dir: &std::path::Path) -> String {
    let raw = c.raw;
    // `database_url` is the shorthand the scale-out docs use for `store.url`.
    let given = match (&raw.database_url, &raw.store.url) {
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
    match given {
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
    }
}

/// `queue:` (and its shorthand `amqp_url`).
fn queue(c: &mut Ctx<'_>) -> QueueBackend {
    let raw = c.raw;
    let (rabbit_section, backend) = amqp_shorthand(c);
    match backend {
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
            check_rabbit_section(c, &section, raw.queue.backend.as_ref());
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
    }
}

/// `amqp_url` is the shorthand for `queue.backend: rabbitmq` + `queue.rabbitmq.url`:
/// the `queue.rabbitmq` section and the backend with it applied.
fn amqp_shorthand<'a>(c: &mut Ctx<'a>) -> (Option<serde_json::Value>, Option<&'a str>) {
    let raw = c.raw;
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
    (rabbit_section, backend)
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

struct Paths {
    mappings_dir: PathBuf,
    schemas_dir: PathBuf,
    routes_file: PathBuf,
}

/// `paths:`; nothing to check before they are read.
fn paths(raw: &RawConfig) -> Paths {
    let path = |v: &Option<Spanned<String>>, d: &str| {
        PathBuf::from(v.as_ref().map_or(d, |s| s.value.as_str()))
    };
    let mappings_dir = path(&raw.paths.mappings, "mappings");
    let schemas_dir = path(&raw.paths.schemas, "schemas");
    let routes_file = raw.paths.routes.as_ref().map_or_else(
        || mappings_dir.join("routes.yaml"),
        |s| PathBuf::from(&s.value),
    );
    Paths {
        mappings_dir,
        schemas_dir,
        routes_file,
    }
}

struct IntakeSection {
    allow_unauthenticated: bool,
    max_clock_skew: Duration,
    max_inflight_body_bytes: usize,
    rate: (u32, u32),
}

/// `intake:`; unauthenticated intake defaults to on only for the embedded default.
fn intake(c: &mut Ctx<'_>, embedded: bool) -> IntakeSection {
    let raw = c.raw;
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
    let rate = c.rate("intake.rate_limit", &raw.intake.rate_limit, (200, 400));
    let mib = c.positive(
        "intake.max_inflight_body_mib",
        &raw.intake.max_inflight_body_mib,
        16,
    );
    // At least one body of the largest size must fit, or large messages could never be read.
    let min_mib = crate::limits::MAX_BODY_BYTES.div_ceil(1024 * 1024) as u32;
    if mib < min_mib {
        c.err(
            "intake.max_inflight_body_mib",
            raw.intake.max_inflight_body_mib.as_ref(),
            format!("must be at least {min_mib} (one body of the largest accepted size)"),
        );
    }
    IntakeSection {
        allow_unauthenticated,
        max_clock_skew,
        max_inflight_body_bytes: mib.max(min_mib) as usize * 1024 * 1024,
        rate,
    }
}

/// `destinations.<id>`: an http(s) URL (optional: a connector may deliver) and a
/// policy inheriting `destination_defaults`.
fn destinations(c: &mut Ctx<'_>, defaults: &DestinationPolicy) -> BTreeMap<String, Destination> {
    let raw = c.raw;
    let mut out = BTreeMap::new();
    for (id, d) in &raw.destinations {
        let key = format!("destinations.{id}");
        check_id(c, &key, id);
        let policy = c.policy(&key, d, defaults);
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
        out.insert(id.clone(), Destination { url, policy });
    }
    out
}

/// `partners.<id>`: how each partner proves who it is, and its own intake rate.
fn partners(c: &mut Ctx<'_>, intake_rate: (u32, u32)) -> BTreeMap<String, PartnerAuth> {
    let raw = c.raw;
    let mut out = BTreeMap::new();
    for (id, p) in &raw.partners {
        let key = format!("partners.{id}");
        check_id(c, &key, id);
        let mut auth = PartnerAuth {
            api_key_sha256: api_key_sha256(c, &key, p),
            hmac_secret: hmac_secret(c, &key, p),
            rate: None,
        };
        if p.api_key_sha256.is_none() && p.hmac_secret_env.is_none() && p.hmac_secret_file.is_none()
        {
            c.err::<()>(&key, None, "a partner needs api_key_sha256 or an HMAC secret (hmac_secret_env / hmac_secret_file)".into());
        }
        if p.rate_limit.is_some() {
            auth.rate = Some(c.rate(&format!("{key}.rate_limit"), &p.rate_limit, intake_rate));
        }
        out.insert(id.clone(), auth);
    }
    out
}

/// `partners.<id>.api_key_sha256`: the hex SHA-256 of the key, never the key.
fn api_key_sha256(c: &mut Ctx<'_>, key: &str, p: &RawPartner) -> Option<[u8; 32]> {
    let h = p.api_key_sha256.as_ref()?;
    match hex::decode(h.value.trim()) {
        Ok(b) if b.len() == 32 => Some(b.try_into().expect("32 bytes")),
        _ => {
            c.err(
                &format!("{key}.api_key_sha256"),
                Some(h),
                "must be the 64-character hex SHA-256 of the key (e.g. `printf %s \"$KEY\" | sha256sum`), never the key itself".into(),
            );
            None
        }
    }
}

/// `partners.<id>.hmac_secret_env` or `hmac_secret_file` (one of them): the secret,
/// read now so that a missing one is reported with the rest.
fn hmac_secret(c: &mut Ctx<'_>, key: &str, p: &RawPartner) -> Option<Vec<u8>> {
    match (&p.hmac_secret_env, &p.hmac_secret_file) {
        (Some(_), Some(f)) => c.err(
            &format!("{key}.hmac_secret_file"),
            Some(f),
            "set hmac_secret_env or hmac_secret_file, not both".into(),
        ),
        (Some(e), None) => match std::env::var(&e.value) {
            Ok(v) if !v.is_empty() => return Some(v.into_bytes()),
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
                return Some(v);
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
    None
}

/// `logging.level` (a level or an env-filter directive) and `logging.format`.
fn logging(c: &mut Ctx<'_>) -> (String, bool) {
    let raw = c.raw;
    let level = raw
        .logging
        .level
        .as_ref()
        .map_or("info", |s| s.value.as_str())
        .to_string();
    if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str())
        && !level.contains('=')
    {
        c.err(
            "logging.level",
            raw.logging.level.as_ref(),
            format!("`{level}`: use trace, debug, info, warn, error or an env-filter directive"),
        );
    }
    let json = match raw.logging.format.as_ref().map(|s| s.value.as_str()) {
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
    (level, json)
}

/// `tokens:`, checked by `router::auth::config`.
fn tokens(c: &mut Ctx<'_>) -> std::sync::Arc<crate::auth::TokenStore> {
    let raw = c.raw;
    std::sync::Arc::new(
        crate::auth::config::build(c.file, &raw.tokens).unwrap_or_else(|d| {
            c.diags.extend(d);
            Default::default()
        }),
    )
}

/// `retention.payloads`: an age, or absent (keep for ever).
fn retention(c: &mut Ctx<'_>) -> Option<Duration> {
    let raw = c.raw;
    match raw
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
    }
}

/// `admin:`: each setting within its range.
fn admin(c: &mut Ctx<'_>) -> AdminSettings {
    let d = AdminSettings::default();
    let raw = c.raw;
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

/// The systems the routes deliver to, sorted, each once.
pub fn route_targets(routes: &Routes, mappings: &MappingSet) -> Vec<String> {
    let mut targets: Vec<String> = routes
        .mapping_ids()
        .iter()
        .filter_map(|id| mappings.get(id).map(|m| m.target.system.clone()))
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

impl Config {
    /// The systems the routes deliver to (`targets`, see [`route_targets`])
    /// that have no way to be delivered to: `can_deliver(system)` says whether
    /// one has (a `destinations.<id>.url`, or a connector). Sorted.
    ///
    /// These do not stop the hub (issue 15, "zero-setup serve"): a hub started
    /// with no config, or before every partner is set up, accepts and keeps
    /// their deliveries, which wait in the queue (no worker takes them, so
    /// none is dead-lettered for it) until the destination is configured and
    /// the hub restarted. `lienthong check` and `Hub::start` ask the same
    /// question (check with the config's URLs and connectors, start with the
    /// transports it built) and both report the answer as warnings
    /// ([`waiting_for_configuration`]); `/readyz` names them.
    pub fn unconfigured_targets(
        &self,
        targets: &[String],
        can_deliver: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut out: Vec<String> = targets
            .iter()
            .filter(|t| !can_deliver(t))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The warning for a route target that is not configured (see
/// [`Config::unconfigured_targets`]): what happens, and what to do.
pub fn waiting_for_configuration(t: &str) -> String {
    format!(
        "destination `{t}` is not configured (no destinations.{t}.url and no connector): its deliveries are \
         accepted and wait for configuration; set destinations.{t}.url (or LIENTHONG_DESTINATIONS__{}__URL) \
         or its connector, then restart the hub",
        t.to_uppercase().replace('-', "_")
    )
}
