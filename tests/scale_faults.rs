//! Scale-out fault tests: the built `lienthong` binary on RabbitMQ + PostgreSQL,
//! delivering to a real HTTP sink on loopback.
//!
//! * the broker stops mid-load for 9 s (`rabbitmqctl stop_app`, then `start_app`):
//!   intake keeps accepting into the outbox, and everything accepted is
//!   delivered once the broker is back;
//! * one of two replicas is killed with SIGKILL mid-load: the other delivers
//!   everything, including what the dead one had claimed (after its lease);
//! * two replicas share one broker and one database: every message is
//!   delivered, in order per dossier, and every duplicate carries the same
//!   `Idempotency-Key` so the partner can drop it;
//! * a connection replaced while lapin is still recovering it is closed once
//!   the broker is back, instead of coming back with its old consumers.
//!
//! Each test has its own RabbitMQ vhost and PostgreSQL schema, removed on drop;
//! the broker is always restarted by a guard, even when the test fails.
//! Services: RabbitMQ on 127.0.0.1:5672 (`rabbitmq-server -detached`) and
//! PostgreSQL on 127.0.0.1:5432 (`pg_ctlcluster --skip-systemctl-redirect 15 main start`).

mod hub_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hub_support::*;
use serde_json::json;

/// The PostgreSQL test schema and the RabbitMQ vhost shared with the contract suites.
#[path = "../router/tests/support/pg.rs"]
mod pg;
#[path = "../router/tests/support/rabbit.rs"]
mod rabbit;

/// Runs `rabbitmqctl`, failing the test with how to start the broker.
fn rabbitmqctl(args: &[&str]) {
    rabbit::rabbitmqctl(args).unwrap_or_else(|e| panic!("{e}"));
}

/// A vhost and a schema of this test's own, removed on drop.
struct Services {
    vhost: rabbit::Vhost,
    schema: pg::PgSchema,
}

impl Services {
    fn create() -> Services {
        Services {
            vhost: rabbit::Vhost::create("scale"),
            schema: pg::PgSchema::create("scale"),
        }
    }
    fn database_url(&self) -> String {
        self.schema.url()
    }
    fn queue_section(&self, replicas: u32) -> String {
        format!(
            "queue:\n  backend: rabbitmq\n  rabbitmq:\n    url: {}\n    queue_type: quorum\n    replicas: {replicas}\n    outbox_limit: 100000\n",
            self.vhost.url()
        )
    }
}

/// The broker-restart test stops the whole broker, which would break the other
/// tests of this file running at the same time (`rabbitmqctl add_vhost` needs the
/// app, and their hubs would see an outage they do not expect). It takes this lock
/// for writing; the others take it for reading, so they still run in parallel with
/// each other.
static BROKER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Restarts the broker application when dropped, so a failing test never leaves it stopped.
struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = rabbit::rabbitmqctl(&["start_app"]);
    }
}

struct Replica {
    hub: HubProcess,
    _dir: tempfile::TempDir,
}

async fn replica(svc: &Services, sink: &Sink, replicas: u32) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!("{OPEN_INTAKE}{}", svc.queue_section(replicas));
    let config: PathBuf = write_config(dir.path(), port, &sink.url, &extra);
    let log = std::env::var("SCALE_LOG").unwrap_or_else(|_| "warn".into());
    let hub = HubProcess::spawn(
        &config,
        port,
        &[
            ("LIENTHONG_STORE__URL", &svc.database_url()),
            ("RUST_LOG", &log),
        ],
    )
    .await;
    Replica { hub, _dir: dir }
}

/// Posts message `seq` of dossier `code`; returns the HTTP status.
async fn post(client: &reqwest::Client, base: &str, code: &str, seq: u32) -> u16 {
    let key = format!("{code}-{seq}");
    let (status, body) = post_json(
        client,
        base,
        "/inbound/portal/dossier.event",
        &json!({"code": code, "seq": seq}),
        &[("Idempotency-Key", &key)],
    )
    .await;
    assert!(
        status == 202 || status == 503,
        "unexpected {status}: {body}"
    );
    status
}

/// Every accepted (code, seq) was delivered at least once; per dossier the first
/// successful deliveries came in acceptance order; every duplicate reused its key.
fn check(sink: &Sink, accepted: &BTreeMap<String, Vec<u32>>) {
    let hits = sink.delivered();
    let mut first: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut seen_keys: BTreeSet<String> = BTreeSet::new();
    let mut key_of: BTreeMap<(String, u32), String> = BTreeMap::new();
    for h in &hits {
        let code = h.body["code"].as_str().unwrap().to_string();
        let seq = h.body["seq"].as_u64().unwrap() as u32;
        assert!(
            !h.idempotency_key.is_empty(),
            "a delivery without Idempotency-Key"
        );
        let k = key_of
            .entry((code.clone(), seq))
            .or_insert_with(|| h.idempotency_key.clone());
        assert_eq!(
            *k, h.idempotency_key,
            "a duplicate of {code}#{seq} came with another Idempotency-Key"
        );
        if seen_keys.insert(h.idempotency_key.clone()) {
            first.entry(code).or_default().push(seq);
        }
    }
    for (code, seqs) in accepted {
        let mut want = seqs.clone();
        want.sort();
        assert_eq!(
            first.get(code),
            Some(&want),
            "dossier {code}: delivered (first time, in order) vs accepted"
        );
    }
    let dups = hits.len() - seen_keys.len();
    eprintln!(
        "{} delivered, {} duplicates (same Idempotency-Key, dropped by the partner)",
        seen_keys.len(),
        dups
    );
}

fn total(accepted: &BTreeMap<String, Vec<u32>>) -> usize {
    accepted.values().map(Vec::len).sum()
}

fn distinct_delivered(sink: &Sink) -> usize {
    sink.delivered()
        .iter()
        .map(|h| h.idempotency_key.clone())
        .collect::<BTreeSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_load_loses_nothing() {
    let _exclusive = BROKER.write().await;
    let svc = Services::create();
    let sink = Sink::start(None).await;
    let r = replica(&svc, &sink, 1).await;
    let client = reqwest::Client::new();
    let _guard = BrokerGuard;
    let mut accepted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for seq in 1..=20u32 {
        for d in 0..10 {
            let code = format!("D{d}");
            if seq == 8 && d == 0 {
                rabbitmqctl(&["stop_app"]);
                // Away for longer than the watchdog waits before replacing the
                // connection (4 failed probes, 2 s apart), so a replacement made
                // while lapin is still recovering the old connection is exercised
                // too (see `a_connection_replaced_while_recovering_does_not_come_back`).
                tokio::time::sleep(std::time::Duration::from_secs(9)).await;
            }
            if seq == 14 && d == 0 {
                rabbitmqctl(&["start_app"]);
            }
            // While the broker is away intake keeps accepting into the outbox.
            assert_eq!(
                post(&client, &r.hub.base, &code, seq).await,
                202,
                "intake refused {code}#{seq}"
            );
            accepted.entry(code).or_default().push(seq);
        }
    }
    let n = total(&accepted);
    // Usually done within seconds. A message the broker redelivers after the
    // reconnect while its first copy is still being delivered is parked until
    // that copy's lease ends (about 35 s), and can hold its dossier's next
    // message that long, so allow a few leases.
    wait_until(
        &format!("{n} deliveries after the broker restart"),
        Duration::from_secs(120),
        || distinct_delivered(&sink) >= n,
    )
    .await;
    check(&sink, &accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_mid_load_loses_nothing() {
    let _shared = BROKER.read().await;
    let svc = Services::create();
    let sink = Sink::start(None).await;
    let mut a = replica(&svc, &sink, 2).await;
    let b = replica(&svc, &sink, 2).await;
    let client = reqwest::Client::new();
    let mut accepted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for seq in 1..=15u32 {
        for d in 0..8 {
            let code = format!("K{d}");
            if seq == 6 && d == 0 {
                a.hub.kill9();
            }
            let base = if seq < 6 && d % 2 == 0 {
                &a.hub.base
            } else {
                &b.hub.base
            };
            assert_eq!(post(&client, base, &code, seq).await, 202);
            accepted.entry(code).or_default().push(seq);
        }
    }
    let n = total(&accepted);
    // What the killed replica had claimed comes back when its lease expires (~35 s).
    wait_until(
        &format!("{n} deliveries after a replica was killed"),
        Duration::from_secs(55),
        || distinct_delivered(&sink) >= n,
    )
    .await;
    check(&sink, &accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_broker_and_one_database() {
    let _shared = BROKER.read().await;
    let svc = Services::create();
    let sink = Sink::start(None).await;
    let a = replica(&svc, &sink, 2).await;
    let b = replica(&svc, &sink, 2).await;
    let client = Arc::new(reqwest::Client::new());
    let mut accepted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for seq in 1..=20u32 {
        for d in 0..10 {
            let code = format!("S{d}");
            // Alternate the replicas, so one dossier's messages enter through both.
            let base = if (seq + d) % 2 == 0 {
                &a.hub.base
            } else {
                &b.hub.base
            };
            assert_eq!(post(&client, base, &code, seq).await, 202);
            accepted.entry(code).or_default().push(seq);
        }
    }
    // A resend of an accepted message through the other replica is a duplicate, not a new delivery.
    let (status, body) = post_json(
        &client,
        &b.hub.base,
        "/inbound/portal/dossier.event",
        &json!({"code": "S0", "seq": 1}),
        &[("Idempotency-Key", "S0-1")],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicate"], true, "{body}");
    let n = total(&accepted);
    wait_until(
        &format!("{n} deliveries through two replicas"),
        Duration::from_secs(40),
        || distinct_delivered(&sink) >= n,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    check(&sink, &accepted);
    assert_eq!(
        distinct_delivered(&sink),
        n,
        "a delivery the hub never accepted reached the partner"
    );
}

/// The consumers of `vhost` the broker knows of, by queue name.
fn consumers_on(vhost: &str) -> Vec<String> {
    rabbit::rabbitmqctl_output(&[
        "list_consumers",
        "-p",
        vhost,
        "-q",
        "--no-table-headers",
        "queue_name",
    ])
    .unwrap_or_else(|e| panic!("{e}"))
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty())
    .map(String::from)
    .collect()
}

/// A connection the watchdog replaces while lapin is still recovering it must
/// really end. lapin's `close` works only while a connection is connected, and
/// dropping the handle does not close one that still has channels; one let go
/// while reconnecting came back with the broker and re-subscribed its old
/// consumer, which nobody read any more: it sat on up to a prefetch of
/// messages, and dossiers crawled at one message per parking period (what
/// `broker_restart_mid_load_loses_nothing` met under load when the rebuild
/// landed just as the broker restarted). `connect::retire` is what the
/// watchdog's rebuild uses to let go of the old connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_replaced_while_recovering_does_not_come_back() {
    use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use router::queue::rabbitmq::connect;

    let _exclusive = BROKER.write().await;
    let svc = Services::create();
    let conn = connect::connect(&svc.vhost.url(), "retire-test")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ch = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("retire-test".into(), durable, FieldTable::default())
        .await
        .unwrap();
    ch.basic_qos(16, BasicQosOptions::default()).await.unwrap();
    let consumer = ch
        .basic_consume(
            "retire-test".into(),
            "retire-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(consumers_on(&svc.vhost.name), ["retire-test"]);

    let _guard = BrokerGuard;
    rabbitmqctl(&["stop_app"]);
    wait_until(
        "the connection to start recovering",
        Duration::from_secs(30),
        || conn.status().reconnecting(),
    )
    .await;
    // Replaced while recovering: the hub lets go of everything bound to it.
    drop(consumer);
    drop(ch);
    let stop = tokio_util::sync::CancellationToken::new();
    let retiring = tokio::spawn(async move {
        connect::retire(&conn, &stop).await;
        conn
    });
    rabbitmqctl(&["start_app"]);
    let conn = tokio::time::timeout(Duration::from_secs(60), retiring)
        .await
        .expect("the replaced connection was not closed within 60 s of the broker's return")
        .unwrap();
    assert!(
        conn.status().closed() || conn.status().errored(),
        "retire returned with the connection {:?}",
        conn.status()
    );
    // Past lapin's longest reconnect backoff (3 s): nothing of it is subscribed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        consumers_on(&svc.vhost.name),
        Vec::<String>::new(),
        "the replaced connection's consumer is back on the broker"
    );
}
