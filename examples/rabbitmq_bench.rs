//! RabbitMQ benchmark: the hub's sustained delivery rate on the scale-out
//! backends against a raw lapin loop, on the same broker in one run.
//!
//! ```text
//! cargo run --release --example rabbitmq_bench -- [messages] [concurrency] [dossiers]
//! ```
//!
//! Defaults: 10000 messages, 64 concurrent clients, 1000 dossiers.
//!
//! 1. **Hub.** `lienthong`'s pipeline with `queue.backend: rabbitmq` (quorum
//!    queues) and a PostgreSQL store: HTTP intake on loopback → map → store and
//!    outbox → relay (publisher confirms) → consume → claim → HTTP delivery to a
//!    local sink → settle → ack. The rate is messages accepted *and* delivered per
//!    second, from the first request to the last arrival at the sink.
//! 2. **Raw lapin.** On the same broker, a quorum queue of its own: one task
//!    publishes messages of the hub envelope's size with publisher confirms
//!    (windows of 256 in flight, as the hub's relay does), while a consumer with
//!    the hub's prefetch (64) acks each message. The rate is messages published
//!    *and* consumed per second.
//! 3. **Raw lapin, the hub's load shape** (context only): as 2, but with as
//!    many publishers as the hub had clients, each waiting for its confirm
//!    before publishing the next message, as each client waits for its `202`.
//! 4. **The HTTP hops alone** (context only): the same load generator and sink
//!    with nothing but HTTP between them: a handler that answers `202` and hands
//!    the body over a bounded channel to 64 forwarders (the hub's delivery
//!    concurrency here) that post it to the sink. No mapping, store or broker:
//!    the ceiling of any hub that takes and delivers messages over HTTP with
//!    these libraries on this machine.
//!
//! After each run a line gives the CPU each part of the machine spent per
//! message: RabbitMQ, PostgreSQL and this process (`support/cpu.rs`). With
//! everything on one machine, a rate can never exceed the cores divided by
//! that sum.
//!
//! The target (issue #4) is hub ≥ half of raw. Results go in BENCHMARKS.md,
//! section "RabbitMQ". Needs RabbitMQ on 127.0.0.1:5672 (guest/guest) and
//! PostgreSQL on 127.0.0.1:5432 (trust, database `test`); the run creates its
//! own vhost and schema and removes them at the end.

// A benchmark: a panic is how it reports a broken run (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use router::config::QueueBackend;
use router::server::Hub;

/// The hub binary's allocator (see `src/main.rs`), so the bench measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/load.rs"]
mod load;
#[path = "../router/tests/support/pg.rs"]
mod pg;
#[path = "../router/tests/support/rabbit.rs"]
mod rabbit;

/// The bench's own vhost and PostgreSQL schema (the test suites' helpers), removed on drop.
struct Scratch {
    vhost: rabbit::Vhost,
    schema: pg::PgSchema,
}

impl Scratch {
    /// Panics with how to start RabbitMQ or PostgreSQL if either is down.
    fn create() -> Scratch {
        Scratch {
            vhost: rabbit::Vhost::create("bench"),
            schema: pg::PgSchema::create("bench"),
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (n, conc, dossiers) = load::args(10_000)?;
    let scratch = Scratch::create();

    let hub_rate = hub_run(&scratch, n, conc, dossiers).await?;
    let raw_rate = raw_run(&scratch, n, None).await?;
    // For context only (the target is against the windowed loop above): the
    // broker with the hub's load shape, `conc` publishers each waiting for its
    // confirm before the next message, as each client waits for its 202.
    let raw_matched = raw_run(&scratch, n, Some(conc)).await?;
    let http_only = http_only_run(n, conc, dossiers).await?;
    println!(
        "RESULT hub {hub_rate:.0} msgs/s, raw lapin {raw_rate:.0} msgs/s, ratio {:.2} (target >= 0.50); \
         raw lapin with {conc} publishers each awaiting its confirm {raw_matched:.0} msgs/s (ratio {:.2}, context only); \
         the HTTP hops alone {http_only:.0} msgs/s ({:.2} of raw lapin, context only)",
        hub_rate / raw_rate,
        hub_rate / raw_matched,
        http_only / raw_rate
    );
    Ok(())
}

/// The hub on RabbitMQ + PostgreSQL; returns accepted-and-delivered msgs/s.
async fn hub_run(scratch: &Scratch, n: usize, conc: usize, dossiers: usize) -> anyhow::Result<f64> {
    let sink = load::Sink::start().await?;

    let dir = tempfile::tempdir()?;
    let mut config = load::bench_config(dir.path(), &sink)?;
    config.store_url = scratch.schema.url();
    config.queue = QueueBackend::RabbitMq(serde_json::json!({
        "url": scratch.vhost.url(),
        "queue_type": "quorum",
        "prefix": "bench",
    }));
    let hub = Hub::start(&config, Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("http://{}/inbound/portal/dossier.event", hub.addr);
    println!("hub: {n} messages, {conc} clients, {dossiers} dossiers, RabbitMQ quorum queues + PostgreSQL store");

    let before = cpu::snapshot();
    let mut r = load::run(&base, &sink, n, conc, dossiers, Duration::from_secs(900)).await?;
    let after = cpu::snapshot();
    r.print("hub");
    cpu::print("hub", &before, &after, n);
    let rate = r.sustained_rate();
    hub.shutdown().await;
    Ok(rate)
}

/// Context only: the load generator and the sink with nothing but HTTP between
/// them (a `202` handler feeding [`load::SINK_CONCURRENCY`] forwarders through
/// a bounded channel);
/// returns accepted-and-delivered msgs/s.
async fn http_only_run(n: usize, conc: usize, dossiers: usize) -> anyhow::Result<f64> {
    use axum::http::StatusCode;
    let sink = load::Sink::start().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1024);
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..load::SINK_CONCURRENCY {
        let (rx, url) = (rx.clone(), sink.url.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let Some(body) = rx.lock().await.recv().await else {
                    return;
                };
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                if let Err(e) = sent {
                    eprintln!("http only: the sink refused a message: {e}");
                }
            }
        });
    }
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                match tx.send(body).await {
                    Ok(()) => StatusCode::ACCEPTED,
                    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/in", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "http only: {n} messages, {conc} clients, a 202 handler and {} forwarders to the sink",
        load::SINK_CONCURRENCY
    );
    let before = cpu::snapshot();
    let mut r = load::run(&url, &sink, n, conc, dossiers, Duration::from_secs(300)).await?;
    let after = cpu::snapshot();
    r.print("http only");
    cpu::print("http only", &before, &after, n);
    server.abort();
    Ok(r.sustained_rate())
}

/// Raw lapin: publish with confirms and consume with acks, concurrently; returns
/// msgs/s. `publishers: None` publishes in windows of 256 confirms in flight;
/// `Some(k)` runs k publishers that each wait for a message's confirm before
/// publishing the next.
async fn raw_run(scratch: &Scratch, n: usize, publishers: Option<usize>) -> anyhow::Result<f64> {
    let conn = Connection::connect(&scratch.vhost.url(), ConnectionProperties::default()).await?;
    let queue = match publishers {
        None => "raw-bench".to_string(),
        Some(k) => format!("raw-bench-{k}"),
    };
    let queue = queue.as_str();
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let publisher = conn.create_channel().await?;
    publisher
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let consumer_ch = conn.create_channel().await?;
    consumer_ch
        .basic_qos(64, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_ch
        .basic_consume(
            queue.into(),
            "raw-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // The hub's envelope for a delivery, so the message size is the same.
    let body = serde_json::to_vec(&serde_json::json!({
        "v": 1,
        "delivery_id": uuid::Uuid::new_v4().to_string(),
        "seq": 123456,
        "destination": "sink",
        "correlation_id": "000.00.32.H47-221128-0001",
    }))?;
    let shape = match publishers {
        None => "confirms in windows of 256".to_string(),
        Some(k) => format!("{k} publishers each awaiting its confirm"),
    };
    println!(
        "raw lapin: {n} messages of {} bytes, {shape}, prefetch 64, quorum queue",
        body.len()
    );
    let before = cpu::snapshot();
    let t0 = Instant::now();
    let consume = tokio::spawn(async move {
        let mut got = 0usize;
        while got < n {
            let Some(d) = consumer.next().await else {
                break;
            };
            let d = d.expect("consume");
            d.acker.ack(BasicAckOptions::default()).await.expect("ack");
            got += 1;
        }
        got
    });
    match publishers {
        None => publish_windows(&publisher, queue, &body, n).await?,
        Some(k) => {
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let tasks: Vec<_> = (0..k)
                .map(|_| {
                    let (ch, next, body, queue) = (
                        publisher.clone(),
                        next.clone(),
                        body.clone(),
                        queue.to_string(),
                    );
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                return anyhow::Ok(());
                            }
                            let c = publish_one(&ch, &queue, &body, i).await?.await?;
                            if !c.is_ack() {
                                bail!("the broker did not confirm a raw publish: {c:?}");
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await??;
            }
        }
    }
    let got = consume.await?;
    let total = t0.elapsed();
    let after = cpu::snapshot();
    if got < n {
        bail!("raw consumer ended after {got} of {n}");
    }
    let rate = n as f64 / total.as_secs_f64();
    println!(
        "raw lapin: published with confirm and consumed with ack {n} in {:.2}s = {rate:.0} msgs/s",
        total.as_secs_f64()
    );
    let label = match publishers {
        None => "raw lapin".to_string(),
        Some(k) => format!("raw lapin, {k} publishers"),
    };
    cpu::print(&label, &before, &after, n);
    let _ = conn.close(200, "done".into()).await;
    Ok(rate)
}

async fn publish_one(
    ch: &lapin::Channel,
    queue: &str,
    body: &[u8],
    i: usize,
) -> anyhow::Result<lapin::PublisherConfirm> {
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(format!("m{i}").into());
    Ok(ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        )
        .await?)
}

/// Publishes `n` messages with up to 256 confirms in flight (the relay's batch).
async fn publish_windows(
    ch: &lapin::Channel,
    queue: &str,
    body: &[u8],
    n: usize,
) -> anyhow::Result<()> {
    let mut sent = 0usize;
    while sent < n {
        let window = 256.min(n - sent);
        let mut confirms = Vec::with_capacity(window);
        for i in 0..window {
            confirms.push(publish_one(ch, queue, body, sent + i).await?);
        }
        for c in confirms {
            let c = c.await?;
            if !c.is_ack() {
                bail!("the broker did not confirm a raw publish: {c:?}");
            }
        }
        sent += window;
    }
    Ok(())
}
