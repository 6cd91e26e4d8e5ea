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
//!   the broker is back, instead of coming back with its old consumers;
//! * PostgreSQL goes away under two replicas' load (issue 21): a restart
//!   (`pg_ctlcluster … restart`), a 20 s stop, and `pg_terminate_backend` of
//!   the hubs' connections. After each, intake accepts again within 5 s of the
//!   database being back, `/readyz` said not-ready while it was away and ready
//!   after, every accepted message is delivered in order per dossier, and
//!   duplicates stay under 1 % of what was in flight at the fault. Each prints
//!   its recovery time and duplicate count.
//!
//! Each test has its own RabbitMQ vhost and PostgreSQL schema, removed on drop;
//! the broker is always restarted by a guard, even when the test fails, and
//! PostgreSQL by [`pg::PgOutage`], which also holds the PostgreSQL test lock
//! exclusively, so no other test (in any test binary) uses the server meanwhile.
//! Services: RabbitMQ on 127.0.0.1:5672 (`rabbitmq-server -detached`) and
//! PostgreSQL on 127.0.0.1:5432
//! (`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`).

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// For a test that takes PostgreSQL away: its schema is made under the
    /// outage's exclusive lock.
    fn during(outage: &pg::PgOutage) -> Services {
        Services {
            vhost: rabbit::Vhost::create("pgfault"),
            schema: outage.schema("pgfault"),
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
    replica_with(svc, sink, replicas, &[]).await
}

/// A replica whose config has each `(from, to)` of `edits` replaced.
async fn replica_with(
    svc: &Services,
    sink: &Sink,
    replicas: u32,
    edits: &[(&str, &str)],
) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!("{OPEN_INTAKE}{}", svc.queue_section(replicas));
    let config: PathBuf = write_config(dir.path(), port, &sink.url, &extra);
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    for (from, to) in edits {
        assert!(yaml.contains(from), "the test config has no {from:?}");
        yaml = yaml.replacen(from, to, 1);
    }
    std::fs::write(&config, yaml).unwrap();
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
    try_post(client, base, code, seq)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`post`], but a request that got no answer (the hub is busy past the
/// client's timeout) is an `Err`, not a panic.
async fn try_post(
    client: &reqwest::Client,
    base: &str,
    code: &str,
    seq: u32,
) -> Result<u16, String> {
    let key = format!("{code}-{seq}");
    let r = client
        .post(format!("{base}/inbound/portal/dossier.event"))
        .header("content-type", "application/json")
        .header("Idempotency-Key", &key)
        .body(json!({"code": code, "seq": seq}).to_string())
        .send()
        .await
        .map_err(|e| format!("{code}#{seq}: no answer ({e})"))?;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!(
        status == 202 || status == 503,
        "unexpected {status}: {body}"
    );
    Ok(status)
}

/// Every accepted (code, seq) was delivered at least once; per dossier the first
/// successful deliveries came in acceptance order; every duplicate reused its
/// key. Returns the number of duplicates.
fn check(sink: &Sink, accepted: &BTreeMap<String, Vec<u32>>) -> usize {
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
    dups
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

/// A replica stopped with SIGTERM while it holds leases it has not sent yet
/// (they wait for the partner's rate limit) gives them back before it exits:
/// the other replica sends them at once, not after their lease (about 50 s
/// with this policy: 2 × timeout + concurrency / rate + 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_back_leases_it_has_not_sent() {
    let _shared = BROKER.read().await;
    let svc = Services::create();
    let sink = Sink::start(None).await;
    // 4/s for the destination, 2/s per replica; up to 32 leased at once.
    let slow = [(
        "rate_limit: { per_second: 5000, burst: 5000 }\n    concurrency: 32",
        "rate_limit: { per_second: 4, burst: 1 }\n    concurrency: 32",
    )];
    let mut a = replica_with(&svc, &sink, 2, &slow).await;
    let b = replica_with(&svc, &sink, 2, &slow).await;
    let client = reqwest::Client::new();
    let mut accepted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for d in 0..40 {
        let code = format!("T{d}");
        let base = if d % 2 == 0 { &a.hub.base } else { &b.hub.base };
        assert_eq!(post(&client, base, &code, 1).await, 202);
        accepted.entry(code).or_default().push(1);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = distinct_delivered(&sink);
    a.hub.sigterm();
    let t = Instant::now();
    let status = tokio::task::block_in_place(|| a.hub.child.wait()).unwrap();
    let stopped = t.elapsed();
    // B alone, at 2/s, needs about (40 - before) / 2 s; A's unsent leases,
    // if kept, would hold their dossiers for ~50 s.
    let n = total(&accepted);
    wait_until(
        &format!("{n} deliveries after a replica's SIGTERM (leases it had not sent given back)"),
        Duration::from_secs(35),
        || distinct_delivered(&sink) >= n,
    )
    .await;
    let _ = writeln!(
        std::io::stderr(),
        "SIGTERM: {before} of {n} delivered before; the replica exited ({status}) in {stopped:?}; \
         the rest were delivered {:?} after the SIGTERM",
        t.elapsed()
    );
    check(&sink, &accepted);
    drop(b);
}

/// At the outbox limit (the broker is away and accepted deliveries pile up)
/// intake answers 503 with `Retry-After`, and `/readyz` says not ready with
/// the same reason, so a load balancer stops sending work that would be
/// refused; both come back when the broker does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_outbox_limit() {
    let _exclusive = BROKER.write().await;
    let svc = Services::create();
    let sink = Sink::start(None).await;
    let r = replica_with(
        &svc,
        &sink,
        1,
        &[("outbox_limit: 100000", "outbox_limit: 5")],
    )
    .await;
    let client = reqwest::Client::new();
    let ready = |client: &reqwest::Client| {
        let url = format!("{}/readyz", r.hub.base);
        let client = client.clone();
        async move {
            let resp = client.get(url).send().await.expect("/readyz answers");
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(ready(&client).await.0, 200);
    let _guard = BrokerGuard;
    rabbitmqctl(&["stop_app"]);
    let mut accepted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut refused = None;
    for seq in 1..=50u32 {
        let r503 = client
            .post(format!("{}/inbound/portal/dossier.event", r.hub.base))
            .header("content-type", "application/json")
            .header("Idempotency-Key", format!("OL-{seq}"))
            .body(json!({"code": "OL", "seq": seq}).to_string())
            .send()
            .await
            .unwrap();
        match r503.status().as_u16() {
            202 => accepted.entry("OL".into()).or_default().push(seq),
            503 => {
                let retry = r503
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                refused = Some((seq, retry, r503.text().await.unwrap_or_default()));
                break;
            }
            s => panic!("unexpected {s}"),
        }
    }
    let (seq, retry, body) = refused.expect("intake never refused at an outbox limit of 5");
    assert!(retry.is_some(), "503 without Retry-After: {body}");
    assert!(body.contains("outbox_limit"), "{body}");
    let (status, why) = ready(&client).await;
    assert_eq!(
        status, 503,
        "/readyz said {status} while intake refuses: {why}"
    );
    assert!(
        why.contains("outbox_limit"),
        "/readyz gave no reason: {why}"
    );
    rabbitmqctl(&["start_app"]);
    let t = Instant::now();
    loop {
        let (status, why) = ready(&client).await;
        if status == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "/readyz still {status} 60 s after the broker came back: {why}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = writeln!(
        std::io::stderr(),
        "outbox limit: refused #{seq} with Retry-After {retry:?}; ready again {:?} after the broker was back",
        t.elapsed()
    );
    assert_eq!(post(&client, &r.hub.base, "OL", seq).await, 202);
    accepted.entry("OL".into()).or_default().push(seq);
    let n = total(&accepted);
    wait_until(
        &format!("{n} deliveries after the outbox limit"),
        Duration::from_secs(60),
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
    // The broker confirmed the close; lapin marks the connection closed a
    // moment later, on its I/O thread (under load the test saw `Closing`).
    wait_until(
        "the retired connection to be marked closed",
        Duration::from_secs(5),
        || conn.status().closed() || conn.status().errored(),
    )
    .await;
    // Past lapin's longest reconnect backoff (3 s): nothing of it is subscribed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        consumers_on(&svc.vhost.name),
        Vec::<String>::new(),
        "the replaced connection's consumer is back on the broker"
    );
}

/// How PostgreSQL is taken away from the running replicas.
#[derive(Debug, Clone, Copy)]
enum PgFault {
    /// `pg_ctlcluster … restart`.
    Restart,
    /// `pg_ctlcluster … stop`, this long away, then `start`.
    Stop(Duration),
    /// `pg_terminate_backend` of every connection the hubs hold.
    Terminate,
}

/// One `/readyz` answer: when (since the start of the load), which replica,
/// which status (0 for no answer).
type ReadyLog = Arc<Mutex<Vec<(Duration, usize, u16)>>>;

/// Two replicas under paced load from 8 clients, each posting its two
/// dossiers' messages in sequence and retrying a refused one until it is
/// accepted; PostgreSQL goes away mid-load and comes back; the load runs on
/// for 6 s. Then every accepted message must reach the partner.
async fn pg_fault_under_load(fault: PgFault) {
    let _broker = BROKER.read().await;
    let outage = tokio::task::block_in_place(pg::PgOutage::begin);
    let svc = Services::during(&outage);
    let sink = Sink::start(None).await;
    let a = replica(&svc, &sink, 2).await;
    let b = replica(&svc, &sink, 2).await;
    let bases = Arc::new([a.hub.base.clone(), b.hub.base.clone()]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();

    let ready: ReadyLog = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, base) in bases.iter().enumerate() {
        let (ready, stop, client, base) =
            (ready.clone(), stop.clone(), client.clone(), base.clone());
        tasks.spawn(async move {
            while !stop.is_cancelled() {
                let status = match client
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                ready.lock().unwrap().push((t0.elapsed(), i, status));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    // When the server really refused connections: `pg_ctlcluster restart` takes
    // about 2.5 s here, of which PostgreSQL is down for some 150 ms.
    let down: Arc<Mutex<Vec<Duration>>> = Arc::default();
    {
        let (down, stop) = (down.clone(), stop.clone());
        tasks.spawn(async move {
            use sqlx::Connection;
            while !stop.is_cancelled() {
                let at = t0.elapsed();
                let probe = tokio::time::timeout(
                    Duration::from_secs(1),
                    sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test"),
                )
                .await;
                match probe {
                    Ok(Ok(c)) => drop(c.close().await),
                    _ => down.lock().unwrap().push(at),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let accepted: Arc<Mutex<BTreeMap<String, Vec<u32>>>> = Arc::default();
    let accepted_at: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused_at: Arc<Mutex<Vec<Duration>>> = Arc::default();
    for c in 0..8usize {
        let (accepted, accepted_at, refused) =
            (accepted.clone(), accepted_at.clone(), refused.clone());
        let (stop, client, bases) = (stop.clone(), client.clone(), bases.clone());
        let refused_at = refused_at.clone();
        tasks.spawn(async move {
            for seq in 1u32.. {
                for d in 0..2usize {
                    let code = format!("PG{c}-{d}");
                    loop {
                        if stop.is_cancelled() {
                            return;
                        }
                        // Alternate the replicas, so a dossier enters through both.
                        let base = &bases[(seq as usize + d) % 2];
                        match try_post(&client, base, &code, seq).await {
                            Ok(202) => {
                                accepted.lock().unwrap().entry(code).or_default().push(seq);
                                accepted_at.lock().unwrap().push(t0.elapsed());
                                break;
                            }
                            _ => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                refused_at.lock().unwrap().push(t0.elapsed());
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
                // Paced: about 8 × 2 / 0.05 s = 320 messages a second in all.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let fault_at = t0.elapsed();
    let accepted_before = total(&accepted.lock().unwrap());
    let in_flight = accepted_before.saturating_sub(distinct_delivered(&sink));
    tokio::task::block_in_place(|| match fault {
        PgFault::Restart => outage.ctl("restart"),
        PgFault::Stop(away) => {
            outage.ctl("stop");
            std::thread::sleep(away);
            outage.ctl("start");
        }
        PgFault::Terminate => {
            let ended = svc
                .schema
                .terminate_backends()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                ended >= 4,
                "expected both replicas' connections, ended {ended}"
            );
        }
    });
    tokio::task::block_in_place(|| outage.wait_ready(Duration::from_secs(30)));
    let back_at = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}

    let accepted = accepted.lock().unwrap().clone();
    let n = total(&accepted);
    let first_after = accepted_at
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= back_at)
        .min();
    let recovery = first_after.map(|t| t - back_at).unwrap_or_else(|| {
        panic!("{fault:?}: no message was accepted in the 6 s after PostgreSQL was back")
    });
    let ready = ready.lock().unwrap().clone();
    let not_ready: Vec<(Duration, usize, u16)> = ready
        .iter()
        .copied()
        .filter(|(_, _, s)| *s != 200)
        .collect();
    let down = down.lock().unwrap().clone();
    let last_ready = |i: usize| ready.iter().rev().find(|(_, r, _)| *r == i).map(|x| x.2);

    let deadline = Instant::now() + Duration::from_secs(120);
    while distinct_delivered(&sink) < n {
        if Instant::now() > deadline {
            let got: BTreeSet<String> = sink
                .delivered()
                .iter()
                .map(|h| {
                    format!(
                        "{}#{}",
                        h.body["code"].as_str().unwrap_or("?"),
                        h.body["seq"]
                    )
                })
                .collect();
            let missing: Vec<String> = accepted
                .iter()
                .flat_map(|(code, seqs)| seqs.iter().map(move |q| format!("{code}#{q}")))
                .filter(|k| !got.contains(k))
                .collect();
            panic!(
                "{fault:?}: {} of {n} accepted messages not delivered within 120 s; the first: {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dups = check(&sink, &accepted);
    let drained = sink
        .delivered()
        .iter()
        .map(|h| h.at)
        .max()
        .map(|at| at - t0)
        .unwrap_or_default();
    let down_for = match (down.first(), down.last()) {
        (Some(a), Some(b)) => *b - *a + Duration::from_millis(20),
        _ => Duration::ZERO,
    };
    // Written past the test harness's capture, so `.ci/run` shows the figures.
    let _ = writeln!(
        std::io::stderr(),
        "{fault:?}: {n} accepted ({accepted_before} before the fault, {} refused attempts retried); \
         {in_flight} in flight at the fault; the fault took {:?}, PostgreSQL refused connections for about {down_for:?}; \
         first 202 {recovery:?} after it was back; /readyz not ready in {} of {} polls ({:?} .. {:?}); {dups} duplicates; \
         the last delivery reached the partner {:?} after PostgreSQL was back",
        refused.load(std::sync::atomic::Ordering::Relaxed),
        back_at - fault_at,
        not_ready.len(),
        ready.len(),
        not_ready.first().map(|x| x.0),
        not_ready.last().map(|x| x.0),
        drained.saturating_sub(back_at),
    );
    assert!(
        recovery <= Duration::from_secs(5),
        "{fault:?}: intake accepted again only {recovery:?} after PostgreSQL was back"
    );
    for i in 0..2 {
        assert_eq!(
            last_ready(i),
            Some(200),
            "{fault:?}: replica {i} not ready at the end"
        );
    }
    let said_not_ready = |i: usize, from: Duration, to: Duration| {
        not_ready
            .iter()
            .any(|(t, r, _)| *r == i && *t >= from && *t <= to + Duration::from_secs(1))
    };
    match (fault, down.first(), down.last()) {
        (PgFault::Stop(_), Some(&from), Some(&to)) => {
            // Away for longer than a write waits for a connection (2 s): each
            // replica must have said so (polled every 20 ms).
            for i in 0..2 {
                assert!(
                    said_not_ready(i, from, to),
                    "{fault:?}: replica {i}'s /readyz never said not-ready while PostgreSQL refused connections ({from:?} .. {to:?})"
                );
            }
        }
        (PgFault::Restart, Some(&from), Some(&to)) => {
            // Here a restart refuses connections for a few hundred ms, which a
            // write rides out (it waits up to 2 s for a connection): intake need
            // not refuse anything, and then /readyz is right to stay ready. But
            // if intake refused for a while, readiness must have said so too
            // (a refusal or two, a commit cut off by the restart, is not an
            // outage; refusals spread over half a second or more are).
            let during: Vec<Duration> = refused_at
                .lock()
                .unwrap()
                .iter()
                .copied()
                .filter(|t| *t >= from && *t <= to + Duration::from_secs(1))
                .collect();
            let refused_for = match (during.first(), during.last()) {
                (Some(a), Some(b)) => *b - *a,
                _ => Duration::ZERO,
            };
            if refused_for >= Duration::from_millis(500) {
                assert!(
                    said_not_ready(0, from, to) || said_not_ready(1, from, to),
                    "{fault:?}: intake refused work for {refused_for:?} while PostgreSQL was down, but /readyz stayed ready"
                );
            }
        }
        (PgFault::Terminate, ..) => {}
        _ => panic!("{fault:?}: the probe never saw PostgreSQL refuse a connection"),
    }
    assert!(
        dups as f64 <= in_flight as f64 * 0.01,
        "{fault:?}: {dups} duplicates, more than 1 % of the {in_flight} deliveries in flight at the fault"
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_load_recovers_by_itself() {
    pg_fault_under_load(PgFault::Restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_20_s_mid_load_recovers_by_itself() {
    pg_fault_under_load(PgFault::Stop(Duration::from_secs(20))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backends_terminated_mid_load_recover_by_themselves() {
    pg_fault_under_load(PgFault::Terminate).await;
}
