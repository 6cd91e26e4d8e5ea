//! The `queue.rabbitmq` config section, and each replica's share of a
//! destination's limits.
//!
//! The config module keeps this section opaque (it is only meaningful with
//! `queue.backend: rabbitmq`), so it is validated here, with messages that name
//! the key; the config's pure check phase runs the same validation (without
//! requiring the URL, which may reach only the running hub's environment).
//! Every key can also come from the environment, e.g.
//! `LIENTHONG_QUEUE__RABBITMQ__URL` for the broker URL (keep the password out
//! of the file).
//!
//! ```yaml
//! queue:
//!   backend: rabbitmq
//!   rabbitmq:
//!     url: amqp://lienthong:secret@rabbitmq:5672/%2f
//!     queue_type: quorum        # classic: single-node development broker
//!     prefix: lienthong         # exchange/queue name prefix
//!     prefetch: 256             # unacked messages per destination per replica (default 256;
//!                               # keep it at least twice the largest destination concurrency)
//!     outbox_limit: 100000      # unrelayed deliveries before intake answers 503
//!     replicas: 2               # hub processes sharing the broker: each takes 1/N of rates
//!     stale_after: 5m           # a due delivery nobody claimed for this long is published again
//!                               # (and a consumer that received nothing all that time is
//!                               # re-subscribed); at least 5s, default 5m
//! ```

use serde::Deserialize;

use super::topology::QueueType;
use super::RabbitOptions;
use crate::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    url: Option<String>,
    queue_type: Option<QueueType>,
    prefix: Option<String>,
    prefetch: Option<u16>,
    outbox_limit: Option<i64>,
    replicas: Option<u32>,
    stale_after: Option<String>,
}

/// The shortest `stale_after`: below it, a consumer that is merely between
/// deliveries could be taken for a silent one and re-subscribed.
pub const MIN_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

fn invalid(message: String) -> Error {
    Error::Queue {
        message,
        retryable: false,
    }
}

impl RabbitOptions {
    /// Reads the `queue.rabbitmq` section; `destinations` are declared at start-up.
    /// Every problem of the section is reported at once (one per line).
    pub fn from_config(
        section: &serde_json::Value,
        destinations: Vec<String>,
    ) -> Result<RabbitOptions> {
        Self::read(section, destinations, true).map_err(|problems| invalid(problems.join("\n")))
    }

    /// The section's problems, each naming its key, except a missing URL: for
    /// the config's pure check, since a deployment may give the URL only to the
    /// running hub (a Secret in its environment). `from_config` refuses these
    /// and a missing URL.
    pub fn problems(section: &serde_json::Value) -> Vec<String> {
        Self::read(section, Vec::new(), false)
            .err()
            .unwrap_or_default()
    }

    fn read(
        section: &serde_json::Value,
        destinations: Vec<String>,
        require_url: bool,
    ) -> std::result::Result<RabbitOptions, Vec<String>> {
        let missing_url =
            "queue.rabbitmq.url is missing: set it (or LIENTHONG_QUEUE__RABBITMQ__URL) \
                           to amqp://user:password@host:5672/vhost";
        let s: Section = match section {
            serde_json::Value::Null if require_url => {
                return Err(vec![format!("queue.backend is rabbitmq but {missing_url}")])
            }
            serde_json::Value::Null => Section::default(),
            _ => serde_json::from_value(section.clone()).map_err(|e| {
                vec![format!(
                    "queue.rabbitmq: {e} (keys: url, queue_type quorum|classic, prefix, \
                     prefetch, outbox_limit, replicas, stale_after)"
                )]
            })?,
        };
        let mut problems = Vec::new();
        let url = s.url.unwrap_or_default();
        if url.is_empty() {
            if require_url {
                problems.push(missing_url.to_string());
            }
        } else if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            problems.push(format!(
                "queue.rabbitmq.url `{}` must start with amqp:// or amqps://",
                crate::redact::url(&url)
            ));
        }
        let mut o = RabbitOptions::new(url);
        o.destinations = destinations;
        if let Some(t) = s.queue_type {
            o.queue_type = t;
        }
        if let Some(p) = s.prefix {
            if p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                problems.push(format!(
                    "queue.rabbitmq.prefix `{p}` must be letters, digits, `-`, `_` or `.`"
                ));
            }
            o.prefix = p;
        }
        match s.prefetch {
            Some(0) => problems.push("queue.rabbitmq.prefetch must be at least 1".into()),
            Some(p) => o.prefetch = p,
            None => {}
        }
        match s.outbox_limit {
            Some(l) if l < 1 => {
                problems.push("queue.rabbitmq.outbox_limit must be at least 1".into())
            }
            Some(l) => o.outbox_limit = l,
            None => {}
        }
        match s.replicas {
            Some(0) => problems.push("queue.rabbitmq.replicas must be at least 1".into()),
            Some(r) => o.replicas = r,
            None => {}
        }
        if let Some(text) = s.stale_after {
            match lienthong_core::duration::parse_duration(&text) {
                Err(e) => problems.push(format!("queue.rabbitmq.stale_after: {e}")),
                Ok(d) if d < MIN_STALE_AFTER => problems.push(format!(
                    "queue.rabbitmq.stale_after `{text}` is too short: use at least {}s",
                    MIN_STALE_AFTER.as_secs()
                )),
                Ok(d) => o.stale_after = d,
            }
        }
        if problems.is_empty() {
            Ok(o)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_section_and_names_bad_keys() {
        let o = RabbitOptions::from_config(
            &json!({"url": "amqp://u:p@h/v", "queue_type": "classic", "prefetch": 8, "replicas": 3}),
            vec!["lis".into()],
        )
        .unwrap();
        assert_eq!(
            (o.queue_type, o.prefetch, o.replicas),
            (QueueType::Classic, 8, 3)
        );
        let e = RabbitOptions::from_config(&json!({"url": "amqp://h", "queue_typo": "x"}), vec![])
            .unwrap_err();
        assert!(e.to_string().contains("queue_typo"), "{e}");
        let e =
            RabbitOptions::from_config(&json!({"url": "http://u:secret@h"}), vec![]).unwrap_err();
        assert!(
            e.to_string().contains("amqp://") && !e.to_string().contains("secret"),
            "{e}"
        );
        assert!(RabbitOptions::from_config(&serde_json::Value::Null, vec![]).is_err());
    }

    #[test]
    fn stale_after_is_a_duration_of_at_least_five_seconds() {
        let read = |v: &str| {
            RabbitOptions::from_config(&json!({"url": "amqp://h", "stale_after": v}), vec![])
        };
        assert_eq!(
            read("90s").unwrap().stale_after,
            std::time::Duration::from_secs(90)
        );
        assert_eq!(
            RabbitOptions::from_config(&json!({"url": "amqp://h"}), vec![])
                .unwrap()
                .stale_after,
            std::time::Duration::from_secs(300),
            "default"
        );
        let e = read("2s").unwrap_err().to_string();
        assert!(
            e.contains("stale_after") && e.contains("at least 5s"),
            "{e}"
        );
        let e = read("soon").unwrap_err().to_string();
        assert!(
            e.contains("stale_after") && e.contains("not a duration"),
            "{e}"
        );
    }
}
