//! The delivery-queue contract (see `router/src/queue/mod.rs`), one behavioural
//! suite run against every backend:
//!
//! * `embedded`: the store's table is the queue (SQLite in a temporary directory);
//! * `rabbitmq`: the RabbitMQ backend on its own vhost, with the PostgreSQL store
//!   in its own schema (both dropped afterwards), i.e. the scale-out setup.
//!
//! Each test body is written once against `&Harness` and instantiated for both
//! backends by the `contract!` macro. Tests that send (retries, dead letters,
//! `Retry-After`) run the real delivery workers against a real HTTP sink on
//! loopback. Services: RabbitMQ on 127.0.0.1:5672 (guest/guest, `rabbitmqctl`
//! available) and PostgreSQL on 127.0.0.1:5432 (user `postgres`, database `test`).

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod support {
    pub mod pg;
    pub mod rabbit;
}

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use router::delivery::{Backoff, DestinationPolicy, Dispatcher, HttpTransport, TransportRegistry};
use router::queue::rabbitmq::{RabbitOptions, RabbitQueue, Topology};
use router::queue::{DeliveryQueue, EmbeddedQueue, LeasedDelivery, SettleOutcome, Settlement};
use router::store::{now_ms, AcceptOutcome, NewDelivery, NewMessage, Store, StoreOptions};
use support::pg::PgSchema;
use support::rabbit::{rabbitmqctl, Vhost};

// ---------------------------------------------------------------- harness

enum Kind {
    Embedded {
        _dir: tempfile::TempDir,
    },
    Rabbit {
        vhost: Vhost,
        _schema: PgSchema,
        opts: RabbitOptions,
    },
}

struct Harness {
    store: Store,
    queue: Arc<dyn DeliveryQueue>,
    rabbit: Option<Arc<RabbitQueue>>,
    kind: Kind,
}

const DEST: &str = "lis";

fn rabbit_opts(url: String) -> RabbitOptions {
    let mut o = RabbitOptions::new(url);
    o.destinations = vec![DEST.to_string()];
    o.prefetch = 16;
    o
}

impl Harness {
    async fn embedded() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite_dir(dir.path(), StoreOptions::default())
            .await
            .unwrap();
        let queue = EmbeddedQueue::start(store.clone()).await.unwrap();
        Harness {
            store,
            queue,
            rabbit: None,
            kind: Kind::Embedded { _dir: dir },
        }
    }

    async fn rabbitmq() -> Harness {
        Self::rabbitmq_with(|_| {}).await
    }

    async fn rabbitmq_with(tune: impl FnOnce(&mut RabbitOptions)) -> Harness {
        let schema = PgSchema::create("queue");
        let store = Store::open(&schema.url(), StoreOptions::default()).await.unwrap_or_else(|e| {
            panic!("{e}\nIs PostgreSQL running? Start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`")
        });
        let vhost = Vhost::create("queue");
        let mut opts = rabbit_opts(vhost.url());
        tune(&mut opts);
        let q = RabbitQueue::start(store.clone(), opts.clone())
            .await
            .unwrap_or_else(|e| {
                panic!("{e}\nIs RabbitMQ running? Start it with `rabbitmq-server -detached`")
            });
        Harness {
            store,
            queue: q.clone(),
            rabbit: Some(q),
            kind: Kind::Rabbit {
                vhost,
                _schema: schema,
                opts,
            },
        }
    }

    /// A connection of the test's own to the hub's vhost, for doing what an
    /// operator (or a broker fault) would do by hand.
    async fn broker(&self) -> (lapin::Connection, lapin::Channel) {
        let Kind::Rabbit { vhost, .. } = &self.kind else {
            panic!("only the RabbitMQ harness has a broker")
        };
        let conn = lapin::Connection::connect(&vhost.url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        (conn, ch)
    }

    /// Deletes a queue as an operator could; the broker cancels its consumers.
    async fn delete_queue_by_hand(&self, name: &str) {
        let (conn, ch) = self.broker().await;
        ch.queue_delete(name.into(), Default::default())
            .await
            .unwrap();
        let _ = conn.close(200, "bye".into()).await;
    }

    /// Simulates the death of the process that holds leases: the queue handle is
    /// dropped (for RabbitMQ, its connection closes and the broker requeues what
    /// it had not acked) and a new one is started on the same store.
    async fn restart_queue(&mut self) {
        match &self.kind {
            Kind::Embedded { .. } => {
                self.queue = EmbeddedQueue::start(self.store.clone()).await.unwrap()
            }
            Kind::Rabbit { opts, .. } => {
                if let Some(old) = self.rabbit.take() {
                    old.close().await;
                }
                let q = RabbitQueue::start(self.store.clone(), opts.clone())
                    .await
                    .unwrap();
                self.queue = q.clone();
                self.rabbit = Some(q);
            }
        }
    }

    /// Accepts a message for `correlation` with one delivery to [`DEST`].
    async fn accept(&self, correlation: &str, key: Option<&str>) -> (AcceptOutcome, String) {
        let id = uuid::Uuid::now_v7().to_string();
        let delivery_id = uuid::Uuid::now_v7().to_string();
        let msg = NewMessage {
            id: id.clone(),
            received_at: now_ms(),
            source_system: "province-portal".into(),
            message_type: "dossier.filed".into(),
            correlation_id: correlation.into(),
            idempotency_key: key.map(str::to_string),
            partner_message_id: None,
            content_type: "application/json".into(),
            raw: Bytes::from_static(b"{}"),
            parsed: "{}".into(),
            deliveries: vec![NewDelivery {
                id: delivery_id.clone(),
                destination: DEST.into(),
                message_type: "dossier.register".into(),
                route_id: "contract".into(),
                mapping_id: "contract/test".into(),
                mapping_version: 1,
                body: Bytes::from(format!(
                    "{{\"corr\":\"{correlation}\",\"d\":\"{delivery_id}\"}}"
                )),
                content_type: "application/json".into(),
            }],
            trail: vec![],
        };
        let out = self.store.accept(msg).await.unwrap();
        self.queue.committed(&[DEST.to_string()]).await.unwrap();
        (out, delivery_id)
    }

    async fn lease(&self, max: usize, wait: Duration) -> Vec<LeasedDelivery> {
        self.queue
            .lease(DEST, max, Duration::from_secs(30), wait)
            .await
            .unwrap()
    }

    async fn lease_short(
        &self,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Vec<LeasedDelivery> {
        self.queue.lease(DEST, max, lease, wait).await.unwrap()
    }

    async fn settle(&self, l: &LeasedDelivery, outcome: SettleOutcome) {
        let now = now_ms();
        self.queue
            .settle(Settlement {
                delivery_id: l.id.clone(),
                message_id: l.message_id.clone(),
                destination: l.destination.clone(),
                attempt: l.attempt,
                started_at: now,
                latency_ms: 1,
                request_excerpt: String::new(),
                status: Some(200),
                response_excerpt: String::new(),
                error: match outcome {
                    SettleOutcome::Delivered => None,
                    _ => Some("test: failed".into()),
                },
                error_class: None,
                partner_reference: None,
                outcome,
            })
            .await
            .unwrap();
    }

    async fn delivery_state(
        &self,
        delivery_id: &str,
        message_id: &str,
    ) -> (String, i64, Option<String>) {
        let m = self
            .store
            .message(message_id)
            .await
            .unwrap()
            .expect("message stored");
        let d = m
            .deliveries
            .iter()
            .find(|d| d.id == delivery_id)
            .expect("delivery stored");
        (d.state.clone(), d.attempts, d.error_class.clone())
    }
}

/// Leases and delivers until `n` deliveries were settled or `within` passed.
async fn drain(h: &Harness, n: usize, within: Duration) -> Vec<LeasedDelivery> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        for l in h.lease(8, Duration::from_millis(200)).await {
            h.settle(&l, SettleOutcome::Delivered).await;
            got.push(l);
        }
    }
    got
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::Harness::embedded().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rabbitmq() {
                super::$name(super::Harness::rabbitmq().await).await
            }
        }
    )*};
}

contract!(
    delivers_each_once_in_order_per_dossier,
    retry_waits_for_its_time,
    a_retrying_message_holds_back_its_dossier_only,
    abandoned_lease_is_leased_again,
    idempotent_intake,
    dead_after_max_attempts,
    permanent_failure_is_dead_at_once,
    retry_after_is_respected,
);

// ---------------------------------------------------------------- bodies

async fn delivers_each_once_in_order_per_dossier(h: Harness) {
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for round in 0..5 {
        for dossier in ["HS-A", "HS-B", "HS-C"] {
            let (_, d) = h.accept(dossier, Some(&format!("{dossier}-{round}"))).await;
            expected.entry(dossier.into()).or_default().push(d);
        }
    }
    let got = drain(&h, 15, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 15, "every accepted delivery is leased once");
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &got {
        seen.entry(l.correlation_id.clone())
            .or_default()
            .push(l.id.clone());
        assert_eq!(l.attempt, 1);
    }
    assert_eq!(seen, expected, "per-dossier order is acceptance order");
    assert!(
        h.lease(8, Duration::from_millis(700)).await.is_empty(),
        "nothing is leased twice"
    );
    let depth: i64 = h.queue.depth().await.unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(depth, 0);
}

async fn retry_waits_for_its_time(h: Harness) {
    h.accept("HS-R", None).await;
    let first = h.lease(1, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    let at = now_ms() + 1500;
    h.settle(&first[0], SettleOutcome::Retry { at }).await;
    let mut again = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while again.is_empty() && Instant::now() < deadline {
        again = h.lease(1, Duration::from_millis(200)).await;
    }
    let when = now_ms();
    assert_eq!(again.len(), 1, "the retry comes back");
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].attempt, 2);
    assert!(when >= at, "leased {} ms before its retry time", at - when);
    assert!(
        when - at < 1500,
        "leased {} ms after its retry time (tier rounding must stay small)",
        when - at
    );
    h.settle(&again[0], SettleOutcome::Delivered).await;
}

async fn a_retrying_message_holds_back_its_dossier_only(h: Harness) {
    let (_, a1) = h.accept("HS-1", None).await;
    let (_, a2) = h.accept("HS-1", None).await;
    let (_, b1) = h.accept("HS-2", None).await;
    // First round: A1 and B1 are head-of-line, A2 is not.
    let mut first = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while first.len() < 2 && Instant::now() < deadline {
        first.extend(h.lease(8, Duration::from_millis(300)).await);
    }
    let ids: Vec<&str> = first.iter().map(|l| l.id.as_str()).collect();
    assert!(
        ids.contains(&a1.as_str()) && ids.contains(&b1.as_str()) && !ids.contains(&a2.as_str()),
        "{ids:?}"
    );
    let retry_at = now_ms() + 1200;
    for l in &first {
        let outcome = if l.id == a1 {
            SettleOutcome::Retry { at: retry_at }
        } else {
            SettleOutcome::Delivered
        };
        h.settle(l, outcome).await;
    }
    // Until A1 is finished, A2 must not be leased.
    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while order.len() < 2 && Instant::now() < deadline {
        for l in h.lease(8, Duration::from_millis(200)).await {
            order.push((l.id.clone(), now_ms()));
            h.settle(&l, SettleOutcome::Delivered).await;
        }
    }
    let ids: Vec<&str> = order.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        vec![a1.as_str(), a2.as_str()],
        "the dossier keeps its order across the retry"
    );
    assert!(order[0].1 >= retry_at);
}

async fn abandoned_lease_is_leased_again(mut h: Harness) {
    let (_, d) = h.accept("HS-L", None).await;
    let l = h
        .lease_short(1, Duration::from_millis(800), Duration::from_secs(5))
        .await;
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, d);
    // The worker dies without settling.
    h.restart_queue().await;
    let mut again = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while again.is_empty() && Instant::now() < deadline {
        again = h
            .lease_short(1, Duration::from_secs(30), Duration::from_millis(300))
            .await;
    }
    assert_eq!(again.len(), 1, "the abandoned delivery comes back");
    assert_eq!(again[0].id, d);
    assert_eq!(again[0].attempt, 2);
    h.settle(&again[0], SettleOutcome::Delivered).await;
    assert!(
        h.lease(1, Duration::from_millis(1500)).await.is_empty(),
        "and only once"
    );
}

async fn idempotent_intake(h: Harness) {
    let (first, d) = h.accept("HS-I", Some("key-1")).await;
    let AcceptOutcome::Accepted { id, .. } = first else {
        panic!("{first:?}")
    };
    let (second, _) = h.accept("HS-I", Some("key-1")).await;
    assert_eq!(
        second,
        AcceptOutcome::Duplicate {
            id: id.clone(),
            correlation_id: "HS-I".into()
        }
    );
    let got = drain(&h, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, d);
    assert!(
        h.lease(8, Duration::from_millis(1000)).await.is_empty(),
        "the duplicate made no delivery"
    );
}

// ---------------------------------------------------------------- with workers and a real sink

/// What the sink answers to the n-th request (0-based) for one delivery.
type Script = Arc<dyn Fn(usize) -> (StatusCode, Option<&'static str>) + Send + Sync>;

#[derive(Clone)]
struct Sink {
    script: Script,
    hits: Arc<Mutex<Vec<(String, Instant)>>>,
}

async fn sink_handler(
    State(s): State<Sink>,
    headers: HeaderMap,
    _body: Bytes,
) -> impl IntoResponse {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let n = {
        let mut hits = s.hits.lock().unwrap();
        let n = hits.iter().filter(|(k, _)| *k == key).count();
        hits.push((key, Instant::now()));
        n
    };
    let (status, retry_after) = (s.script)(n);
    let mut h = HeaderMap::new();
    if let Some(ra) = retry_after {
        h.insert("retry-after", ra.parse().unwrap());
    }
    (status, h, "{}")
}

async fn start_sink(script: Script) -> (SocketAddr, Arc<Mutex<Vec<(String, Instant)>>>) {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/", axum::routing::post(sink_handler))
        .with_state(Sink {
            script,
            hits: hits.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

async fn run_workers(
    h: &Harness,
    script: Script,
    max_attempts: u32,
    until: impl Fn(&[(String, Instant)]) -> bool,
) -> Vec<(String, Instant)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (addr, hits) = start_sink(script).await;
    let policy = DestinationPolicy {
        timeout: Duration::from_secs(5),
        rate_per_second: 100,
        burst: 100,
        concurrency: 4,
        max_attempts,
        backoff: Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
        },
    };
    let mut transports = TransportRegistry::new();
    transports.register(
        DEST,
        Arc::new(HttpTransport::new(format!("http://{addr}/"), policy.timeout, 4).unwrap()),
    );
    let dispatcher = Dispatcher {
        queue: h.queue.clone(),
        transports,
        policies: BTreeMap::from([(DEST.to_string(), policy.clone())]),
        default_policy: policy,
    };
    let running = dispatcher.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if until(&hits.lock().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the last settle land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.shutdown(Duration::from_secs(5)).await;
    let hits = hits.lock().unwrap().clone();
    hits
}

async fn wait_state(
    h: &Harness,
    delivery_id: &str,
    message_id: &str,
    state: &str,
) -> (String, i64, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = h.delivery_state(delivery_id, message_id).await;
        if s.0 == state || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dead_after_max_attempts(h: Harness) {
    let (AcceptOutcome::Accepted { id, .. }, d) = h.accept("HS-D", None).await else {
        panic!()
    };
    let hits = run_workers(
        &h,
        Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, None)),
        3,
        |hits| hits.len() >= 3,
    )
    .await;
    assert_eq!(hits.len(), 3, "exactly max_attempts attempts");
    assert!(
        hits.iter().all(|(k, _)| *k == d),
        "the Idempotency-Key is the delivery id"
    );
    let (state, attempts, class) = wait_state(&h, &d, &id, "dead").await;
    assert_eq!(
        (state.as_str(), attempts, class.as_deref()),
        ("dead", 3, Some("exhausted"))
    );
    // Backoff 200ms then 400ms between the attempts.
    assert!(
        hits[1].1 - hits[0].1 >= Duration::from_millis(190),
        "{:?}",
        hits[1].1 - hits[0].1
    );
    assert!(
        hits[2].1 - hits[1].1 >= Duration::from_millis(390),
        "{:?}",
        hits[2].1 - hits[1].1
    );
}

async fn permanent_failure_is_dead_at_once(h: Harness) {
    let (AcceptOutcome::Accepted { id, .. }, d) = h.accept("HS-P", None).await else {
        panic!()
    };
    let (_, ok) = h.accept("HS-P", None).await;
    let hits = run_workers(
        &h,
        Arc::new(|_| (StatusCode::BAD_REQUEST, None)),
        5,
        |hits| hits.len() >= 2,
    )
    .await;
    let (state, attempts, class) = wait_state(&h, &d, &id, "dead").await;
    assert_eq!(
        (state.as_str(), attempts, class.as_deref()),
        ("dead", 1, Some("permanent"))
    );
    // A dead letter releases its dossier: the next message is attempted.
    assert_eq!(
        hits.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        vec![d.as_str(), ok.as_str()]
    );
}

async fn retry_after_is_respected(h: Harness) {
    let (AcceptOutcome::Accepted { id, .. }, d) = h.accept("HS-RA", None).await else {
        panic!()
    };
    let script: Script = Arc::new(|n| {
        if n == 0 {
            (StatusCode::SERVICE_UNAVAILABLE, Some("2"))
        } else {
            (StatusCode::OK, None)
        }
    });
    let hits = run_workers(&h, script, 5, |hits| hits.len() >= 2).await;
    assert_eq!(hits.len(), 2);
    let gap = hits[1].1 - hits[0].1;
    assert!(
        gap >= Duration::from_millis(1950),
        "Retry-After: 2 was not honoured: retried after {gap:?}"
    );
    assert!(
        gap < Duration::from_millis(3500),
        "retried too late: {gap:?}"
    );
    let (state, attempts, _) = wait_state(&h, &d, &id, "delivered").await;
    assert_eq!((state.as_str(), attempts), ("delivered", 2));
}

// ---------------------------------------------------------------- RabbitMQ only

#[test]
fn definitions_file_matches_the_generator() {
    // The destinations of the example deployment: every `to:` system in routes.yaml.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../mappings/routes.yaml"
    ))
    .unwrap();
    let routes: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let mut dests: Vec<String> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["to"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["system"].as_str().map(str::to_string))
        .collect();
    dests.sort();
    dests.dedup();
    let t = Topology::new(
        "lienthong",
        router::queue::rabbitmq::QueueType::Quorum,
        router::queue::rabbitmq::DEFAULT_TIERS,
        &dests,
    );
    // The vhost of the shipped deployments (compose, Kubernetes; tests/deploy_config.rs checks them).
    let expected = serde_json::to_string_pretty(&t.definitions("lienthong")).unwrap() + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rabbitmq/definitions.json"
    );
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var_os("LIENTHONG_WRITE_DEFINITIONS").is_some() {
        std::fs::write(path, &expected).unwrap();
        return;
    }
    assert!(
        actual == expected,
        "deploy/rabbitmq/definitions.json differs from the generator's output for destinations {dests:?}; \
         regenerate it with `LIENTHONG_WRITE_DEFINITIONS=1 cargo test -p lienthong-router --test queue_contract definitions`"
    );
}

fn header_text(m: &lapin::message::Delivery, key: &str) -> String {
    match m
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key))
    {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        }
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_malformed_message_is_dead_lettered_with_its_reason() {
    use futures::StreamExt;
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions};
    let h = Harness::rabbitmq().await;
    let (conn, ch) = h.broker().await;
    // Published by hand, straight onto the hub's queue.
    ch.basic_publish(
        "".into(),
        "lienthong.lis".into(),
        BasicPublishOptions::default(),
        b"not json",
        Default::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let (_, good) = h.accept("HS-M", None).await;
    // The consumer survives it and delivers the good message.
    let got = drain(&h, 1, Duration::from_secs(10)).await;
    assert_eq!(
        got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        vec![good.as_str()]
    );
    let mut dead = ch
        .basic_consume(
            "lienthong.lis.dead".into(),
            "t".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), dead.next())
        .await
        .expect("a dead letter")
        .unwrap()
        .unwrap();
    assert_eq!(&m.data[..], b"not json");
    let reason = header_text(&m, "x-lienthong-reason");
    assert!(
        reason.contains("malformed hub message"),
        "reason header: {reason}"
    );
    m.ack(BasicAckOptions::default()).await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

/// A broker that loses a message (here: its queue is purged) must not lose the
/// delivery: the relay re-publishes a due delivery nobody claimed for
/// `stale_after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_republishes_a_delivery_whose_message_the_broker_lost() {
    let h = Harness::rabbitmq_with(|o| o.stale_after = Duration::from_secs(1)).await;
    let (_, id) = h.accept("HS-LOST", None).await;
    // Nobody consumes yet: the consumer starts with the first lease.
    wait_relayed(&h, &id, Duration::from_secs(10)).await;
    let (conn, ch) = h.broker().await;
    let purged = ch
        .queue_purge("lienthong.lis".into(), Default::default())
        .await
        .unwrap();
    assert_eq!(purged, 1, "the relayed message was on the work queue");
    let _ = conn.close(200, "bye".into()).await;
    let t0 = std::time::Instant::now();
    let got = drain(&h, 1, Duration::from_secs(15)).await;
    assert_eq!(
        got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()],
        "re-published after stale_after"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "it came back through the stale check, not by itself ({:?})",
        t0.elapsed()
    );
}

/// Waits until the relay has published delivery `id` to the broker (and the
/// broker confirmed it).
async fn wait_relayed(h: &Harness, id: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let relayed: Option<i64> =
            sqlx::query_scalar("SELECT relayed_at FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(h.store.pool_for_tests())
                .await
                .unwrap();
        if relayed.is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "delivery {id} was not published within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A work queue deleted by hand cancels the hub's consumer on the broker. The
/// hub declares the queue again and re-subscribes (through the watchdog), so the
/// next delivery still arrives. Before, the consumer stayed cancelled and every
/// publish came back unroutable, forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_resubscribes_when_the_broker_cancels_its_consumer() {
    let h = Harness::rabbitmq().await;
    h.accept("HS-C1", None).await;
    assert_eq!(drain(&h, 1, Duration::from_secs(10)).await.len(), 1);
    h.delete_queue_by_hand("lienthong.lis").await;
    let (_, id) = h.accept("HS-C2", None).await;
    let got = drain(&h, 1, Duration::from_secs(20)).await;
    assert_eq!(
        got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()],
        "delivered after the work queue was deleted and declared again"
    );
}

/// A work queue deleted by hand while nobody consumes from it: the relay's
/// publishes come back unroutable, so it declares the destination's queues
/// again and the delivery still gets through. Before, the relay retried the
/// unroutable publish forever (it remembered the queues as declared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_declares_a_deleted_queue_again_before_publishing() {
    let h = Harness::rabbitmq().await;
    h.delete_queue_by_hand("lienthong.lis").await;
    let (_, id) = h.accept("HS-D1", None).await;
    wait_relayed(&h, &id, Duration::from_secs(15)).await;
    let got = drain(&h, 1, Duration::from_secs(10)).await;
    assert_eq!(
        got.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_dead_letter_keeps_its_reason_on_the_broker() {
    use futures::StreamExt;
    use lapin::options::BasicConsumeOptions;
    let h = Harness::rabbitmq().await;
    let (_, d) = h.accept("HS-X", None).await;
    let l = h.lease(1, Duration::from_secs(5)).await;
    h.settle(&l[0], SettleOutcome::Dead).await;
    let (conn, ch) = h.broker().await;
    let mut dead = ch
        .basic_consume(
            "lienthong.lis.dead".into(),
            "t".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), dead.next())
        .await
        .expect("a dead letter")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&m.data).contains(&d));
    let reason = header_text(&m, "x-lienthong-reason");
    assert!(reason.contains("test: failed"), "{reason}");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_recovers_after_the_broker_drops_every_connection() {
    let h = Harness::rabbitmq().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(h.accept(&format!("HS-C{i}"), None).await.1);
    }
    let got = drain(&h, 5, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 5);
    let Kind::Rabbit { vhost, .. } = &h.kind else {
        unreachable!()
    };
    // Only this test's connections: the vhost's.
    rabbitmqctl(&["close_all_connections", "-p", &vhost.name, "contract test"]).unwrap();
    for i in 0..5 {
        ids.push(h.accept(&format!("HS-C{i}"), None).await.1);
    }
    let got2 = drain(&h, 5, Duration::from_secs(30)).await;
    let mut all: Vec<String> = got.iter().chain(&got2).map(|l| l.id.clone()).collect();
    all.sort();
    ids.sort();
    assert_eq!(
        all, ids,
        "everything accepted around the outage is delivered once"
    );
}

#[tokio::test]
async fn rabbitmq_startup_errors_name_the_broker_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path(), StoreOptions::default())
        .await
        .unwrap();
    let bad = RabbitOptions::new("amqp://guest:wrong-secret@127.0.0.1:5672/%2f");
    let e = RabbitQueue::start(store.clone(), bad)
        .await
        .err()
        .expect("wrong credentials must fail")
        .to_string();
    assert!(
        e.contains("amqp://guest:***@127.0.0.1:5672/%2f") && !e.contains("wrong-secret"),
        "{e}"
    );
    let unreachable = RabbitOptions::new("amqp://guest:s3cret@127.0.0.1:1/%2f");
    let e = RabbitQueue::start(store, unreachable)
        .await
        .err()
        .expect("unreachable broker must fail")
        .to_string();
    assert!(
        e.contains("127.0.0.1:1") && !e.contains("s3cret") && e.contains("rabbitmq-server"),
        "{e}"
    );
}

#[tokio::test]
async fn rabbitmq_admits_until_the_outbox_limit() {
    let schema = PgSchema::create("admit");
    let store = Store::open(&schema.url(), StoreOptions::default())
        .await
        .unwrap();
    let vhost = Vhost::create("admit");
    let mut o = rabbit_opts(vhost.url());
    o.outbox_limit = 0;
    let q = RabbitQueue::start(store, o).await.unwrap();
    let e = q.admit().unwrap_err();
    assert!(
        e.is_retryable() && e.to_string().contains("queue.outbox_limit"),
        "{e}"
    );
    q.close().await;
}
