//! Environment overrides: `LIENTHONG_<SECTION>__<KEY>[__<KEY>...]`.
//!
//! Any key of the file can be set from the environment, which is how containers
//! and systemd units configure the hub without editing YAML. Segments are
//! separated by a double underscore and matched case-insensitively; in system ids
//! `_` matches `-` (`LIENTHONG_DESTINATIONS__PROVINCE_PORTAL__URL` sets
//! `destinations.province-portal.url`). Examples:
//!
//! ```text
//! LIENTHONG_SERVER__LISTEN=0.0.0.0:8080
//! LIENTHONG_STORE__URL=postgres://lienthong@db/lienthong
//! LIENTHONG_DESTINATIONS__LIS__TIMEOUT=20s
//! LIENTHONG_DESTINATIONS__LIS__RATE_LIMIT__PER_SECOND=10
//! LIENTHONG_PARTNERS__STATIONS__HMAC_SECRET_ENV=STATIONS_SECRET
//! LIENTHONG_TOKENS__OPS_ADMIN__ROLE=admin          # the token named ops-admin (added if the file has none)
//! LIENTHONG_TOKENS__OPS_ADMIN__SHA256=<64 hex digits>
//! LIENTHONG_RETENTION__PAYLOADS=365d
//! ```
//!
//! Environment values win over the file. Unknown variables under the prefix are
//! errors, like unknown keys in the file.

use std::collections::BTreeMap;

use serde_saphyr::{Location, Spanned};

use super::model::*;

pub const PREFIX: &str = "LIENTHONG_";

fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(v, Location::UNKNOWN, Location::UNKNOWN)
}

fn parse<T: std::str::FromStr>(var: &str, v: &str, what: &str) -> Result<Spanned<T>, String> {
    v.trim()
        .parse::<T>()
        .map(sp)
        .map_err(|_| format!("{var}={v:?} is not {what}"))
}

fn id_key<V: Default>(map: &mut BTreeMap<String, V>, seg: &str) -> String {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let wanted = norm(seg);
    if let Some(k) = map.keys().find(|k| norm(k) == wanted) {
        return k.clone();
    }
    let k = seg.to_lowercase().replace('_', "-");
    map.entry(k.clone()).or_default();
    k
}

fn rate(r: &mut Option<RawRate>, rest: &[String], var: &str, v: &str) -> Result<(), String> {
    let r = r.get_or_insert_with(Default::default);
    match rest {
        [k] if k == "per_second" => r.per_second = Some(parse(var, v, "a whole number")?),
        [k] if k == "burst" => r.burst = Some(parse(var, v, "a whole number")?),
        _ => {
            return Err(format!(
                "{var}: unknown key (rate_limit has per_second and burst)"
            ))
        }
    }
    Ok(())
}

fn destination(d: &mut RawDestination, rest: &[String], var: &str, v: &str) -> Result<(), String> {
    match rest {
        [k] if k == "url" => d.url = Some(sp(v.to_string())),
        [k] if k == "timeout" => d.timeout = Some(sp(v.to_string())),
        [k] if k == "concurrency" => d.concurrency = Some(parse(var, v, "a whole number")?),
        [k] if k == "max_attempts" => d.max_attempts = Some(parse(var, v, "a whole number")?),
        [k, tail @ ..] if k == "rate_limit" => rate(&mut d.rate_limit, tail, var, v)?,
        [k, tail] if k == "backoff" => {
            let b = d.backoff.get_or_insert_with(Default::default);
            match tail.as_str() {
                "initial" => b.initial = Some(sp(v.to_string())),
                "max" => b.max = Some(sp(v.to_string())),
                "multiplier" => b.multiplier = Some(parse(var, v, "a number")?),
                "jitter" => b.jitter = Some(parse(var, v, "a number")?),
                _ => return Err(format!("{var}: unknown backoff key (initial, max, multiplier, jitter)")),
            }
        }
        _ => {
            return Err(format!(
                "{var}: unknown destination key (url, timeout, rate_limit, concurrency, max_attempts, backoff)"
            ))
        }
    }
    Ok(())
}

/// `LIENTHONG_TOKENS__<NAME>__<KEY>`: sets `KEY` of the token named `NAME`
/// (matched as system ids are: `_` matches `-`), adding the token when the
/// file has none of that name. A token added this way needs at least `ROLE`
/// and `SHA256`; the validation says what is missing.
fn token(c: &mut RawConfig, name: &str, k: &str, var: &str, v: &str) -> Result<(), String> {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let i = match c.tokens.iter().position(|t| norm(&t.name) == norm(name)) {
        Some(i) => i,
        None => {
            c.tokens.push(crate::auth::config::TokenConfig {
                name: name.to_lowercase().replace('_', "-"),
                role: String::new(),
                sha256: String::new(),
                expires_at: None,
                revoked: false,
            });
            c.tokens.len() - 1
        }
    };
    let t = &mut c.tokens[i];
    match k {
        "role" => t.role = v.trim().to_string(),
        "sha256" => t.sha256 = v.trim().to_string(),
        "expires_at" => t.expires_at = Some(v.trim().to_string()),
        "revoked" => t.revoked = parse::<bool>(var, v, "true or false")?.value,
        _ => {
            return Err(format!(
                "{var}: unknown token key (role, sha256, expires_at, revoked)"
            ))
        }
    }
    Ok(())
}

fn one(c: &mut RawConfig, var: &str, v: &str) -> Result<(), String> {
    let path: Vec<String> = var[PREFIX.len()..]
        .split("__")
        .map(str::to_lowercase)
        .collect();
    let s = |v: &str| Some(sp(v.to_string()));
    match path.as_slice() {
        [a] if a == "database_url" => c.database_url = s(v),
        [a] if a == "amqp_url" => c.amqp_url = s(v),
        [a, b] if a == "server" && b == "listen" => c.server.listen = s(v),
        [a, b] if a == "server" && b == "drain_deadline" => c.server.drain_deadline = s(v),
        [a, b] if a == "server" && b == "header_read_timeout" => {
            c.server.header_read_timeout = s(v)
        }
        [a, b] if a == "server" && b == "body_read_timeout" => c.server.body_read_timeout = s(v),
        [a, b] if a == "server" && b == "request_timeout" => c.server.request_timeout = s(v),
        [a, b] if a == "server" && b == "max_concurrent_requests" => {
            c.server.max_concurrent_requests = Some(parse(var, v, "a whole number")?)
        }
        [a, b] if a == "server" && b == "behind_tls_proxy" => {
            c.server.behind_tls_proxy = Some(parse(var, v, "true or false")?)
        }
        [a, b] if a == "server" && b == "trusted_proxies" => {
            c.server.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| sp(p.to_string()))
                .collect()
        }
        [a, b] if a == "server" && b == "console_session_ttl" => {
            c.server.console_session_ttl = s(v)
        }
        [a, b] if a == "store" && b == "url" => c.store.url = s(v),
        [a, b] if a == "store" && b == "data_dir" => c.store.data_dir = s(v),
        [a, b] if a == "store" && b == "max_batch" => {
            c.store.max_batch = Some(parse(var, v, "a whole number")?)
        }
        [a, b] if a == "queue" && b == "backend" => c.queue.backend = s(v),
        [a, b, k] if a == "queue" && b == "rabbitmq" => {
            // The section is validated by the RabbitMQ backend (queue::rabbitmq::settings).
            let section = c
                .queue
                .rabbitmq
                .get_or_insert_with(|| serde_json::json!({}));
            let value = v
                .trim()
                .parse::<i64>()
                .map_or_else(|_| serde_json::Value::from(v), serde_json::Value::from);
            match section.as_object_mut() {
                Some(o) => drop(o.insert(k.clone(), value)),
                None => {
                    return Err(format!(
                        "{var}: queue.rabbitmq in the file is not a mapping"
                    ))
                }
            }
        }
        [a, b] if a == "paths" && b == "mappings" => c.paths.mappings = s(v),
        [a, b] if a == "paths" && b == "schemas" => c.paths.schemas = s(v),
        [a, b] if a == "paths" && b == "routes" => c.paths.routes = s(v),
        [a, b] if a == "admin" && b == "dry_run_sample" => {
            c.admin.dry_run_sample = Some(parse(var, v, "a whole number")?)
        }
        [a, b] if a == "admin" && b == "watch_debounce" => c.admin.watch_debounce = s(v),
        [a, b] if a == "admin" && b == "poll_interval" => c.admin.poll_interval = s(v),
        [a, b] if a == "logging" && b == "level" => c.logging.level = s(v),
        [a, b] if a == "logging" && b == "format" => c.logging.format = s(v),
        [a, b] if a == "intake" && b == "allow_unauthenticated" => {
            c.intake.allow_unauthenticated = Some(parse(var, v, "true or false")?)
        }
        [a, b] if a == "intake" && b == "max_clock_skew" => c.intake.max_clock_skew = s(v),
        [a, b] if a == "intake" && b == "max_inflight_body_mib" => {
            c.intake.max_inflight_body_mib = Some(parse(var, v, "a whole number")?)
        }
        [a, b, tail @ ..] if a == "intake" && b == "rate_limit" => {
            rate(&mut c.intake.rate_limit, tail, var, v)?
        }
        [a, rest @ ..] if a == "destination_defaults" => {
            destination(&mut c.destination_defaults, rest, var, v)?
        }
        [a, id, rest @ ..] if a == "destinations" => {
            let k = id_key(&mut c.destinations, id);
            destination(c.destinations.get_mut(&k).expect("inserted"), rest, var, v)?
        }
        [a, id, rest @ ..] if a == "partners" => {
            let k = id_key(&mut c.partners, id);
            let p = c.partners.get_mut(&k).expect("inserted");
            match rest {
                [k] if k == "api_key_sha256" => p.api_key_sha256 = s(v),
                [k] if k == "hmac_secret_env" => p.hmac_secret_env = s(v),
                [k] if k == "hmac_secret_file" => p.hmac_secret_file = s(v),
                [k, tail @ ..] if k == "rate_limit" => rate(&mut p.rate_limit, tail, var, v)?,
                _ => return Err(format!("{var}: unknown partner key (api_key_sha256, hmac_secret_env, hmac_secret_file, rate_limit)")),
            }
        }
        [a, name, k] if a == "tokens" => token(c, name, k, var, v)?,
        [a, b] if a == "retention" && b == "payloads" => {
            c.retention.payloads = Some(v.trim().to_string())
        }
        _ => {
            return Err(format!(
                "{var}: not a known setting (see deploy/lienthong.example.yaml for every key)"
            ))
        }
    }
    c.env_sources.insert(path.join("."), var.to_string());
    Ok(())
}

/// Applies every `LIENTHONG_*` variable in `vars`; returns one message per bad variable.
pub fn apply(c: &mut RawConfig, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    vars.sort();
    for (k, v) in vars {
        if let Err(e) = one(c, &k, &v) {
            errors.push(e);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_nested_keys_and_matches_ids() {
        let mut c: RawConfig =
            serde_saphyr::from_str("destinations:\n  province-portal:\n    url: http://a\n")
                .unwrap();
        let errs = apply(
            &mut c,
            [
                (
                    "LIENTHONG_DESTINATIONS__PROVINCE_PORTAL__TIMEOUT".to_string(),
                    "5s".to_string(),
                ),
                (
                    "LIENTHONG_DESTINATIONS__LIS__RATE_LIMIT__PER_SECOND".to_string(),
                    "7".to_string(),
                ),
                (
                    "LIENTHONG_SERVER__LISTEN".to_string(),
                    "0.0.0.0:9".to_string(),
                ),
                ("LIENTHONG_NOPE".to_string(), "x".to_string()),
                ("OTHER".to_string(), "x".to_string()),
            ],
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("LIENTHONG_NOPE"));
        assert_eq!(
            c.destinations["province-portal"]
                .timeout
                .as_ref()
                .unwrap()
                .value,
            "5s"
        );
        assert_eq!(
            c.destinations["lis"]
                .rate_limit
                .as_ref()
                .unwrap()
                .per_second
                .as_ref()
                .unwrap()
                .value,
            7
        );
        assert_eq!(c.server.listen.as_ref().unwrap().value, "0.0.0.0:9");
    }
}
