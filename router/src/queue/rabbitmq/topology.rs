//! The broker topology: one generator, used both to declare it and to export it.
//!
//! The same [`Topology`] value is declared at start-up ([`Topology::declare`],
//! idempotent: declaring an existing queue with the same arguments is a no-op)
//! and written out as a RabbitMQ definitions file ([`Topology::definitions`]) that
//! `deploy/rabbitmq/definitions.json` must equal (a test checks it). An operator
//! who pre-loads the definitions gets exactly what the hub would have declared,
//! so the two can never drift apart.
//!
//! # Shape, per destination `d` (prefix `p`, default `lienthong`)
//!
//! ```text
//!  relay ──▶ [p.deliveries] ──d──▶ (p.d)  ◀── consumers (manual ack, bounded prefetch)
//!                 ▲                  │ reject / delivery-limit (poison)
//!                 │ TTL expiry       ▼
//!  park/retry ──▶ [p.delay] ──d.<tier>──▶ (p.d.delay.<tier>)   [p.dead] ──d──▶ (p.d.dead)
//! ```
//!
//! Retries and parked deliveries wait in *delay tiers*: queues with a fixed
//! `x-message-ttl` that dead-letter back to the delivery exchange. Every message
//! in one tier has the same TTL, so expiry at the head of the queue is exact and
//! no delayed-message plugin is needed. A delay is served by the largest tier that
//! does not exceed it; the consumer re-parks the rest when the message comes back
//! early, so a delivery is never tried before it is due.
//!
//! Quorum queues are the default (replicated, at-least-once dead-lettering from
//! the delay tiers, a delivery limit against poison messages); `classic` is for a
//! single-node development broker.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use serde_json::{json, Map, Value};

/// Which RabbitMQ queue type the hub declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated Raft queues: the production default.
    #[default]
    Quorum,
    /// Single-node queues, for a development broker.
    Classic,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// The delay tiers every destination gets. Ascending.
pub const DEFAULT_TIERS: &[Duration] = &[
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(3600),
];

/// Redeliveries of one message (quorum queues) before the broker dead-letters it
/// as poison. The hub acks every message it can read (one it cannot decide on
/// while the store is away is parked and acked, not requeued: see
/// `RabbitQueue::set_aside`), so this only triggers for a message that makes
/// the consumer crash repeatedly.
pub const DELIVERY_LIMIT: i64 = 20;

/// A tier's name in queue names and routing keys: `100ms`, `5s`, `2m`, `1h`.
pub fn tier_name(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub name: String,
    /// Arguments in declaration order (also the order in the definitions file).
    pub arguments: Vec<(&'static str, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BindingSpec {
    pub exchange: String,
    pub queue: String,
    pub routing_key: String,
}

/// Everything the hub declares on the broker. See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub prefix: String,
    pub queue_type: QueueType,
    pub tiers: Vec<Duration>,
    pub exchanges: Vec<ExchangeSpec>,
    pub queues: Vec<QueueSpec>,
    pub bindings: Vec<BindingSpec>,
}

/// Names of one destination's queues.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn deliveries_exchange(&self) -> String {
        format!("{}.deliveries", self.prefix)
    }
    pub fn delay_exchange(&self) -> String {
        format!("{}.delay", self.prefix)
    }
    pub fn dead_exchange(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    pub fn work_queue(&self, dest: &str) -> String {
        format!("{}.{dest}", self.prefix)
    }
    pub fn delay_queue(&self, dest: &str, tier: Duration) -> String {
        format!("{}.{dest}.delay.{}", self.prefix, tier_name(tier))
    }
    pub fn delay_key(&self, dest: &str, tier: Duration) -> String {
        format!("{dest}.{}", tier_name(tier))
    }
    pub fn dead_queue(&self, dest: &str) -> String {
        format!("{}.{dest}.dead", self.prefix)
    }
}

impl Topology {
    /// The topology for these destinations (sorted and deduplicated).
    pub fn new(
        prefix: &str,
        queue_type: QueueType,
        tiers: &[Duration],
        destinations: &[String],
    ) -> Topology {
        let mut dests = destinations.to_vec();
        dests.sort();
        dests.dedup();
        let names = Names {
            prefix: prefix.to_string(),
        };
        let exchanges = vec![
            ExchangeSpec {
                name: names.deliveries_exchange(),
            },
            ExchangeSpec {
                name: names.delay_exchange(),
            },
            ExchangeSpec {
                name: names.dead_exchange(),
            },
        ];
        let mut t = Topology {
            prefix: prefix.to_string(),
            queue_type,
            tiers: tiers.to_vec(),
            exchanges,
            queues: Vec::new(),
            bindings: Vec::new(),
        };
        for d in &dests {
            t.add_destination(d);
        }
        t
    }

    pub fn names(&self) -> Names {
        Names {
            prefix: self.prefix.clone(),
        }
    }

    /// Queues and bindings of one destination, in declaration order.
    pub fn destination(&self, dest: &str) -> (Vec<QueueSpec>, Vec<BindingSpec>) {
        let n = self.names();
        let qt = Value::from(self.queue_type.as_str());
        let quorum = self.queue_type == QueueType::Quorum;
        let mut queues = Vec::new();
        let mut bindings = Vec::new();
        let mut work = vec![
            ("x-queue-type", qt.clone()),
            ("x-dead-letter-exchange", Value::from(n.dead_exchange())),
            ("x-dead-letter-routing-key", Value::from(dest)),
        ];
        if quorum {
            work.push(("x-delivery-limit", Value::from(DELIVERY_LIMIT)));
        }
        queues.push(QueueSpec {
            name: n.work_queue(dest),
            arguments: work,
        });
        bindings.push(BindingSpec {
            exchange: n.deliveries_exchange(),
            queue: n.work_queue(dest),
            routing_key: dest.into(),
        });
        for &tier in &self.tiers {
            let mut args = vec![
                ("x-queue-type", qt.clone()),
                ("x-message-ttl", Value::from(tier.as_millis() as i64)),
                (
                    "x-dead-letter-exchange",
                    Value::from(n.deliveries_exchange()),
                ),
                ("x-dead-letter-routing-key", Value::from(dest)),
            ];
            if quorum {
                // Without these a quorum queue dead-letters at most once (a message
                // could be lost if the broker fails during expiry).
                args.push(("x-dead-letter-strategy", Value::from("at-least-once")));
                args.push(("x-overflow", Value::from("reject-publish")));
            }
            queues.push(QueueSpec {
                name: n.delay_queue(dest, tier),
                arguments: args,
            });
            bindings.push(BindingSpec {
                exchange: n.delay_exchange(),
                queue: n.delay_queue(dest, tier),
                routing_key: n.delay_key(dest, tier),
            });
        }
        queues.push(QueueSpec {
            name: n.dead_queue(dest),
            arguments: vec![("x-queue-type", qt)],
        });
        bindings.push(BindingSpec {
            exchange: n.dead_exchange(),
            queue: n.dead_queue(dest),
            routing_key: dest.into(),
        });
        (queues, bindings)
    }

    fn add_destination(&mut self, dest: &str) {
        let (q, b) = self.destination(dest);
        self.queues.extend(q);
        self.bindings.extend(b);
    }

    /// The RabbitMQ definitions document (importable with `rabbitmqctl
    /// import_definitions` or the `load_definitions` setting) for `vhost`.
    pub fn definitions(&self, vhost: &str) -> Value {
        let exchanges: Vec<Value> = self
            .exchanges
            .iter()
            .map(|e| {
                json!({"name": e.name, "vhost": vhost, "type": "direct", "durable": true,
                       "auto_delete": false, "internal": false, "arguments": {}})
            })
            .collect();
        let queues: Vec<Value> = self
            .queues
            .iter()
            .map(|q| {
                let args: Map<String, Value> = q.arguments.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                json!({"name": q.name, "vhost": vhost, "durable": true, "auto_delete": false, "arguments": args})
            })
            .collect();
        let bindings: Vec<Value> = self
            .bindings
            .iter()
            .map(|b| {
                json!({"source": b.exchange, "vhost": vhost, "destination": b.queue, "destination_type": "queue",
                       "routing_key": b.routing_key, "arguments": {}})
            })
            .collect();
        json!({
            "vhosts": [{"name": vhost}],
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
        })
    }

    /// Declares the exchanges, then every destination's queues and bindings.
    pub async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        for e in &self.exchanges {
            declare_exchange(ch, &e.name).await?;
        }
        declare_parts(ch, &self.queues, &self.bindings).await
    }

    /// Declares one (possibly new) destination's queues and bindings.
    pub async fn declare_destination(&self, ch: &Channel, dest: &str) -> lapin::Result<()> {
        let (q, b) = self.destination(dest);
        declare_parts(ch, &q, &b).await
    }
}

async fn declare_exchange(ch: &Channel, name: &str) -> lapin::Result<()> {
    let opts = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Direct,
        opts,
        FieldTable::default(),
    )
    .await
}

async fn declare_parts(
    ch: &Channel,
    queues: &[QueueSpec],
    bindings: &[BindingSpec],
) -> lapin::Result<()> {
    for q in queues {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(q.name.as_str().into(), opts, field_table(&q.arguments))
            .await?;
    }
    for b in bindings {
        ch.queue_bind(
            b.queue.as_str().into(),
            b.exchange.as_str().into(),
            b.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

fn field_table(args: &[(&'static str, Value)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        let value = match v {
            Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
            Value::Number(n) => {
                AMQPValue::LongLongInt(n.as_i64().expect("topology numbers are integers"))
            }
            other => AMQPValue::LongString(LongString::from(other.to_string().as_str())),
        };
        t.insert(ShortString::from(*k), value);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_names_read_well() {
        let names: Vec<String> = DEFAULT_TIERS.iter().map(|d| tier_name(*d)).collect();
        assert_eq!(names, ["100ms", "1s", "5s", "30s", "2m", "10m", "1h"]);
    }

    #[test]
    fn every_delay_queue_dead_letters_back_to_its_destination() {
        let t = Topology::new(
            "p",
            QueueType::Quorum,
            DEFAULT_TIERS,
            &["lis".into(), "tax".into()],
        );
        assert_eq!(t.queues.len(), 2 * (DEFAULT_TIERS.len() + 2));
        for q in t.queues.iter().filter(|q| q.name.contains(".delay.")) {
            let dest = q.name.split('.').nth(1).unwrap();
            assert!(
                q.arguments
                    .contains(&("x-dead-letter-routing-key", Value::from(dest))),
                "{q:?}"
            );
            assert!(
                q.arguments
                    .contains(&("x-dead-letter-exchange", Value::from("p.deliveries"))),
                "{q:?}"
            );
            assert!(
                q.arguments.iter().any(|(k, _)| *k == "x-message-ttl"),
                "{q:?}"
            );
        }
        let classic = Topology::new("p", QueueType::Classic, DEFAULT_TIERS, &["lis".into()]);
        assert!(classic
            .queues
            .iter()
            .all(|q| q.arguments[0] == ("x-queue-type", Value::from("classic"))));
        assert!(classic
            .queues
            .iter()
            .all(|q| !q.arguments.iter().any(|(k, _)| *k == "x-delivery-limit")));
    }
}
