//! The RabbitMQ delivery queue: several hub replicas share one broker and one
//! PostgreSQL store.
//!
//! # Design: the broker distributes work, the store decides
//!
//! The store's `deliveries` row stays the source of truth ([`super`] rule
//! "store is the source of truth"): RabbitMQ messages only carry a pointer to a
//! row ([`envelope`]). That one choice gives every rule of the queue contract
//! across replicas without any coordination between them:
//!
//! * **Outbox relay** ([`relay`]). Acceptance commits deliveries to the store as
//!   before; a relay task in every replica publishes unrelayed rows (publisher
//!   confirms, `mandatory`) and marks them relayed. On PostgreSQL the rows are
//!   locked with `FOR UPDATE SKIP LOCKED` while they are published, so replicas
//!   relay disjoint rows. While the broker is away intake keeps accepting into the
//!   store until [`RabbitOptions::outbox_limit`] rows wait unrelayed; then
//!   [`DeliveryQueue::admit`] refuses (503 with `Retry-After`) until the relay
//!   catches up by itself.
//! * **Claim = ordering gate** ([`Store::claim_many`]). A consumer that receives a
//!   message claims its row with one atomic `UPDATE ... RETURNING` that only
//!   succeeds when the row is due and head-of-line for its
//!   `(correlation_id, destination)`. Otherwise the message is *parked* on a delay
//!   tier until the row can be due (its retry time, its lease end, or its
//!   dossier's head retry time), or dropped when the row is already finished
//!   (a duplicate), or dead-lettered when no such row exists. So ordering per
//!   dossier holds across replicas, duplicates never reach a partner twice within
//!   a lease, and a message whose first consumer died is simply redelivered by the
//!   broker and claimed again once the lease expires.
//! * **Successor wake-up.** A message blocked behind an earlier delivery of its
//!   dossier is parked until that one could be settled (its lease end or retry
//!   time, at least a second). It does not poll: when a delivery is settled as
//!   delivered or dead, the queue publishes the next due delivery of the same
//!   dossier to the work queue at once (the settling statement names it:
//!   [`Store::settle_and_next`](crate::store::Store::settle_and_next)), and the parked
//!   copy is later dropped by the claim as finished. Without this, a long lane
//!   (a station's day of observations relayed in one burst) would bounce every
//!   waiting message through a delay queue every 100 ms and move one message
//!   per bounce.
//! * **Manual acks after the store.** A claimed message is acked only after
//!   [`DeliveryQueue::settle`] has written the attempt and outcome to the store
//!   (and, for a retry, after the delayed copy is confirmed on a delay tier; for a
//!   dead letter, after its record is confirmed on the destination's dead-letter
//!   queue). A crash anywhere in between leaves an unacked message that the broker
//!   redelivers, and the claim makes the redelivery harmless.
//! * **Bounded.** Each destination's consumer has a prefetch of
//!   [`RabbitOptions::prefetch`] and hands messages to its worker over a channel
//!   of that size, so a replica never holds more than that many per destination.
//! * **Rate limits and concurrency across replicas.** The workers' governor rate
//!   and concurrency are per process; with `replicas: N` configured
//!   ([`settings`]), each replica
//!   gets `1/N` of the destination's rate, burst and concurrency (rounded up), so
//!   the partner sees at most about the configured totals. Run the configured
//!   number of replicas; a replica that is down lowers the effective rate rather
//!   than raising it.
//! * **Poison messages** ([`envelope::Envelope::parse`]): a message that is not a
//!   hub envelope (someone published by hand) is republished to the
//!   destination's dead-letter queue with its reason in the
//!   `x-lienthong-reason` header, then acked: it never crash-loops. Quorum queues
//!   also carry a delivery limit as a last resort.
//! * **Lost messages.** If the broker ever loses a message (a purged queue), the
//!   relay re-publishes head-of-line rows that stayed due and unclaimed for
//!   [`RabbitOptions::stale_after`]; duplicates are dropped by the claim. If
//!   the destination's consumer received nothing in all that time, the watchdog
//!   also re-subscribes the consumers: they are the ones that went silent.
//! * **Deleted queues.** A consumer the broker cancels (its queue was deleted)
//!   asks the watchdog for a new subscription; the new connection declares the
//!   queues again first. A publish the broker returns because no queue is bound
//!   makes the relay declare that destination's queues again before retrying.
//!
//! Recovery: the connection uses lapin's automatic recovery ([`connect`]), which
//! re-opens channels, re-declares the topology and re-subscribes consumers after
//! a network failure; unacked messages are redelivered by the broker and the
//! acks of the old channel are dropped (lapin poisons them). As a safety net
//! (a full broker restart can leave the recovered connection without working
//! channels), a watchdog ([`watchdog`]) probes the connection every few seconds
//! and, after [`watchdog::FAILURES_BEFORE_REBUILD`] failed probes in a row or
//! once it works again after an outage, replaces it: new connection, topology
//! declared again, consumers re-subscribed onto the same bounded hand-over
//! channels, and the old connection closed even if lapin is still recovering
//! it ([`connect::retire`]: otherwise it would come back with the broker and
//! re-subscribe consumers nobody reads). Nothing is lost either way, since
//! the store holds every delivery and the claim makes redeliveries harmless.

pub mod connect;
pub mod envelope;
pub mod outbox;
mod relay;
pub mod settings;
pub mod topology;
mod watchdog;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use backon::{ConstantBuilder, Retryable};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::Acker;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use envelope::Envelope;
use outbox::Verdict;
pub use topology::{QueueType, Topology, DEFAULT_TIERS};

use super::{DeliveryQueue, LeasedDelivery, SettleOutcome, Settlement};
use crate::store::{now_ms, Store};
use crate::{Error, Result};

/// Settings of the RabbitMQ backend (config keys under `queue:`; see
/// `deploy/lienthong.example.yaml`).
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    /// `amqp://user:password@host:5672/vhost`.
    pub url: String,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    pub queue_type: QueueType,
    /// Unacked messages one replica holds per destination.
    pub prefetch: u16,
    /// Unrelayed outbox rows above which intake answers 503 (broker away).
    pub outbox_limit: i64,
    /// Destinations declared at start-up (others are declared when first used).
    pub destinations: Vec<String>,
    /// Delay tiers, ascending.
    pub tiers: Vec<Duration>,
    /// Rows one relay transaction publishes.
    pub relay_batch: i64,
    /// A due, head-of-line delivery unclaimed for this long is re-published.
    pub stale_after: Duration,
    /// Hub processes sharing this broker; each takes 1/N of every destination's
    /// rate, burst and concurrency ([`DestinationPolicy::replica_share`](crate::delivery::DestinationPolicy::replica_share)).
    pub replicas: u32,
}

impl RabbitOptions {
    pub fn new(url: impl Into<String>) -> Self {
        RabbitOptions {
            url: url.into(),
            prefix: "lienthong".into(),
            queue_type: QueueType::Quorum,
            prefetch: 256,
            outbox_limit: 100_000,
            destinations: Vec::new(),
            tiers: DEFAULT_TIERS.to_vec(),
            relay_batch: 256,
            stale_after: Duration::from_secs(300),
            replicas: 1,
        }
    }
}

/// One destination's consumer: the bounded hand-over to the worker. The pump
/// feeding `tx` is re-created on every new connection.
struct DestConsumer {
    rx: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    feed: Feed,
}

/// What a destination's pump feeds: the bounded hand-over channel, and when it
/// last handed anything over (epoch ms; the subscription time to begin with),
/// so the relay can tell silent consumers from busy ones.
#[derive(Clone)]
struct Feed {
    tx: mpsc::Sender<Delivery>,
    last_received: Arc<AtomicI64>,
}

/// One broker connection with its confirm-mode publishing channel. Replaced
/// as a whole by the watchdog; `stop` ends the pumps bound to it.
pub(crate) struct Link {
    conn: Connection,
    publisher: Channel,
    stop: CancellationToken,
}

impl Link {
    async fn open(
        opts: &RabbitOptions,
        topology: &Topology,
        parent: &CancellationToken,
    ) -> Result<Link> {
        let conn = connect::connect(&opts.url, "lienthong").await?;
        match Self::publisher(&conn, opts, topology).await {
            Ok(publisher) => Ok(Link {
                conn,
                publisher,
                stop: parent.child_token(),
            }),
            Err(e) => {
                // Most likely the broker went away again just after we
                // connected: a connection let go while lapin recovers it would
                // come back with the broker and stay open (see `retire`).
                let stop = parent.clone();
                tokio::spawn(async move { connect::retire(&conn, &stop).await });
                Err(e)
            }
        }
    }

    /// Opens the confirm-mode publishing channel and declares the topology.
    async fn publisher(
        conn: &Connection,
        opts: &RabbitOptions,
        topology: &Topology,
    ) -> Result<Channel> {
        let shown = crate::redact::url(&opts.url);
        let publisher = conn
            .create_channel()
            .await
            .map_err(|e| broker_setup(&shown, "opening a channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| broker_setup(&shown, "enabling publisher confirms", e))?;
        topology.declare(&publisher).await.map_err(|e| {
            broker_setup(
                &shown,
                "declaring the topology (if a queue exists with other arguments, e.g. another queue_type, \
                 delete it or use another `queue.prefix`)",
                e,
            )
        })?;
        Ok(publisher)
    }
}

/// How long a message consumed while the store is away waits before it is
/// offered again (see [`RabbitQueue::set_aside`]).
const STORE_AWAY_WAIT: Duration = Duration::from_secs(5);

/// A claimed delivery's broker handle, until it is settled.
struct Held {
    acker: Acker,
    envelope: Envelope,
}

/// The RabbitMQ [`DeliveryQueue`]. See the module docs.
pub struct RabbitQueue {
    store: Store,
    opts: RabbitOptions,
    topology: Topology,
    /// The current connection; see [`watchdog`].
    link: RwLock<Arc<Link>>,
    declared: tokio::sync::Mutex<HashSet<String>>,
    consumers: tokio::sync::Mutex<HashMap<String, Arc<DestConsumer>>>,
    held: Mutex<HashMap<String, Held>>,
    relay_wake: Notify,
    unrelayed: AtomicI64,
    /// Set when a consumer needs a fresh subscription: the broker cancelled it,
    /// or the relay found due deliveries that nobody claimed. The watchdog then
    /// re-subscribes every consumer on a new connection.
    resubscribe: Arc<AtomicBool>,
    stop: CancellationToken,
}

/// Retries (500 ms apart) of the wake-up of a dossier's next delivery.
const WAKE_RETRIES: usize = 3;

/// Longest wait for a publish or its confirm before it counts as failed.
pub(crate) const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

fn ss(s: &str) -> ShortString {
    ShortString::from(s)
}

impl RabbitQueue {
    /// Connects, declares the topology (idempotent) and starts the outbox relay.
    /// Fails with a message naming the broker (without its password) when it
    /// cannot be reached or refuses the credentials.
    pub async fn start(store: Store, opts: RabbitOptions) -> Result<Arc<Self>> {
        let topology = Topology::new(
            &opts.prefix,
            opts.queue_type,
            &opts.tiers,
            &opts.destinations,
        );
        let stop = CancellationToken::new();
        let link = Link::open(&opts, &topology, &stop).await?;
        let declared = opts.destinations.iter().cloned().collect();
        let q = Arc::new(RabbitQueue {
            store,
            topology,
            link: RwLock::new(Arc::new(link)),
            declared: tokio::sync::Mutex::new(declared),
            consumers: Default::default(),
            held: Default::default(),
            relay_wake: Notify::new(),
            unrelayed: AtomicI64::new(0),
            resubscribe: Default::default(),
            stop,
            opts,
        });
        q.unrelayed
            .store(q.store.unrelayed_count().await?, Ordering::Relaxed);
        tokio::spawn(relay::run(Arc::downgrade(&q), q.stop.clone()));
        tokio::spawn(watchdog::run(Arc::downgrade(&q), q.stop.clone()));
        Ok(q)
    }

    /// The topology this queue declares (for exporting definitions).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether the broker connection is up (for `/readyz`).
    pub fn broker_connected(&self) -> bool {
        self.link().conn.status().connected()
    }

    /// Unfinished deliveries not yet published, as last counted by the relay.
    pub fn unrelayed(&self) -> i64 {
        self.unrelayed.load(Ordering::Relaxed)
    }

    /// Stops the relay and the consumers and closes the connection. Unacked
    /// messages go back to their queues.
    pub async fn close(&self) {
        self.stop.cancel();
        let _ = self
            .link()
            .conn
            .close(200, "lienthong shutting down".into())
            .await;
    }

    fn link(&self) -> Arc<Link> {
        self.link.read().expect("link lock poisoned").clone()
    }

    async fn ensure_declared(&self, dest: &str) -> Result<()> {
        let mut declared = self.declared.lock().await;
        if !declared.contains(dest) {
            self.topology
                .declare_destination(&self.link().publisher, dest)
                .await
                .map_err(|e| {
                    connect::broker_err(&format!("declaring the queues of destination {dest}"), e)
                })?;
            declared.insert(dest.to_string());
        }
        Ok(())
    }

    async fn consumer(&self, dest: &str) -> Result<Arc<DestConsumer>> {
        let mut map = self.consumers.lock().await;
        if let Some(c) = map.get(dest) {
            return Ok(c.clone());
        }
        self.ensure_declared(dest).await?;
        let (tx, rx) = mpsc::channel(self.opts.prefetch.max(1) as usize);
        let feed = Feed {
            tx,
            last_received: Default::default(),
        };
        self.start_pump(&self.link(), dest, feed.clone()).await?;
        let c = Arc::new(DestConsumer {
            rx: tokio::sync::Mutex::new(rx),
            feed,
        });
        map.insert(dest.to_string(), c.clone());
        Ok(c)
    }

    /// Whether `dest`'s consumer has handed nothing over for `quiet` (false when
    /// nothing consumes from `dest` in this process).
    async fn consumer_quiet(&self, dest: &str, quiet: Duration) -> bool {
        self.consumers.lock().await.get(dest).is_some_and(|c| {
            now_ms() - c.feed.last_received.load(Ordering::Relaxed) >= quiet.as_millis() as i64
        })
    }

    /// Subscribes to `dest`'s queue on `link` and pumps into `feed`.
    async fn start_pump(&self, link: &Link, dest: &str, feed: Feed) -> Result<()> {
        let names = self.topology.names();
        let ch = link
            .conn
            .create_channel()
            .await
            .map_err(|e| connect::broker_err("opening a consumer channel", e))?;
        ch.basic_qos(self.opts.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| connect::broker_err("setting the consumer prefetch", e))?;
        let consumer = ch
            .basic_consume(
                ss(&names.work_queue(dest)),
                ss(&format!(
                    "lienthong-{}-{dest}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                )),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| {
                connect::broker_err(&format!("consuming from {}", names.work_queue(dest)), e)
            })?;
        feed.last_received.store(now_ms(), Ordering::Relaxed);
        tokio::spawn(pump(
            ch,
            consumer,
            feed,
            dest.to_string(),
            link.stop.clone(),
            self.resubscribe.clone(),
        ));
        Ok(())
    }

    /// Replaces the connection (see [`watchdog`]): opens a new one, declares the
    /// topology, re-subscribes every consumer, then retires the old one.
    async fn rebuild(&self) -> Result<()> {
        let link = Arc::new(Link::open(&self.opts, &self.topology, &self.stop).await?);
        let consumers: Vec<(String, Feed)> = self
            .consumers
            .lock()
            .await
            .iter()
            .map(|(d, c)| (d.clone(), c.feed.clone()))
            .collect();
        {
            let declared = self.declared.lock().await;
            for d in declared.iter() {
                self.topology
                    .declare_destination(&link.publisher, d)
                    .await
                    .map_err(|e| {
                        connect::broker_err(&format!("declaring the queues of destination {d}"), e)
                    })?;
            }
        }
        for (dest, feed) in consumers {
            self.start_pump(&link, &dest, feed).await?;
        }
        let old = std::mem::replace(&mut *self.link.write().expect("link lock poisoned"), link);
        old.stop.cancel();
        // Closed even if lapin is still recovering it (see `connect::retire`).
        let stop = self.stop.clone();
        tokio::spawn(async move { connect::retire(&old.conn, &stop).await });
        Ok(())
    }

    async fn lease_inner(
        &self,
        dest: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<LeasedDelivery>> {
        let c = self.consumer(dest).await?;
        let mut rx = c.rx.lock().await;
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        // Each round takes what the consumer has handed over (waiting only for
        // the first message of the call) and claims it with one statement.
        while out.len() < max.max(1) {
            let mut got = Vec::new();
            if out.is_empty() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(d)) => got.push(d),
                    Ok(None) | Err(_) => break,
                }
            }
            while got.len() < max.max(1) - out.len() {
                match rx.try_recv() {
                    Ok(d) => got.push(d),
                    Err(_) => break,
                }
            }
            if got.is_empty() {
                break;
            }
            match self.handle(dest, got, lease).await {
                Ok(claimed) => out.extend(claimed),
                // What earlier rounds of this call claimed is handed over (it
                // is leased and held: dropped here, it would sit out its lease
                // unsent); the next call meets the error again.
                Err(e) if !out.is_empty() => {
                    tracing::warn!(destination = %dest, error = %e, "claiming more deliveries failed");
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|l| l.seq);
        Ok(out)
    }

    /// Claims consumed messages' deliveries in one statement; parks, drops or
    /// dead-letters the messages that could not be claimed.
    async fn handle(
        &self,
        dest: &str,
        got: Vec<Delivery>,
        lease: Duration,
    ) -> Result<Vec<LeasedDelivery>> {
        let mut parsed: Vec<(Delivery, Envelope)> = Vec::with_capacity(got.len());
        for d in got {
            match Envelope::parse(&d.data, dest) {
                Ok(e) => parsed.push((d, e)),
                Err(reason) => {
                    tracing::error!(destination = %dest, %reason, "dead-lettering a message that is not a hub envelope");
                    self.dead_letter_raw(dest, &d, &reason).await;
                }
            }
        }
        let lease_until = now_ms() + lease.as_millis() as i64;
        let ids: Vec<&str> = parsed.iter().map(|(_, e)| e.delivery_id.as_str()).collect();
        let claimed = match self.store.claim_many(&ids, dest, lease_until).await {
            Ok(c) => c,
            Err(e) => match self.store.claimed_by(&ids, dest, lease_until).await {
                // The claim's commit went through before its connection was
                // lost: the rows are ours; carry on as if it had answered.
                Ok(c) if !c.is_empty() => {
                    tracing::info!(destination = %dest, claimed = c.len(), error = %e,
                        "a claim reported an error after its commit; keeping what it claimed");
                    c
                }
                _ => {
                    // The store is away: set the messages aside and let the worker back off.
                    for (d, env) in &parsed {
                        self.set_aside(d, env).await;
                    }
                    return Err(e);
                }
            },
        };
        let mut out = Vec::with_capacity(claimed.len());
        let mut claimed: HashMap<String, LeasedDelivery> =
            claimed.into_iter().map(|l| (l.id.clone(), l)).collect();
        let mut unclaimed = Vec::new();
        for (d, env) in parsed {
            // A second copy of the same delivery in this batch is not claimed again.
            match claimed.remove(&env.delivery_id) {
                Some(l) => {
                    self.held.lock().expect("held map poisoned").insert(
                        l.id.clone(),
                        Held {
                            acker: d.acker,
                            envelope: env,
                        },
                    );
                    out.push(l);
                }
                None => unclaimed.push((d, env)),
            }
        }
        // Concurrently: each may wait for a publisher confirm (parking), and a
        // burst of one dossier's messages parks all but the first.
        let results = futures::future::join_all(
            unclaimed
                .into_iter()
                .map(|(d, env)| self.not_claimed(dest, d, env)),
        )
        .await;
        for e in results.into_iter().filter_map(|r| r.err()) {
            // Hand over what was claimed; the next lease call meets the error again.
            tracing::warn!(destination = %dest, error = %e, "reading why a delivery could not be claimed failed");
        }
        Ok(out)
    }

    /// A consumed message whose delivery could not be claimed: drops it (finished),
    /// parks it (not yet due, leased elsewhere, or blocked behind its dossier),
    /// or dead-letters it (no such delivery).
    async fn not_claimed(&self, dest: &str, d: Delivery, env: Envelope) -> Result<()> {
        match outbox::verdict(&self.store, &env.delivery_id, dest).await {
            Ok(Verdict::Finished) => ack(&d.acker).await,
            Ok(Verdict::WaitUntil(at)) => {
                if self.park(&env, at).await {
                    ack(&d.acker).await;
                } else {
                    requeue(&d.acker).await;
                }
            }
            Ok(Verdict::Unknown) => {
                let reason = format!(
                    "delivery {} for {dest} is not in this hub's store: the message was published by hand or by \
                     another hub sharing this broker and prefix (give each hub its own `queue.prefix`)",
                    env.delivery_id
                );
                tracing::error!(destination = %dest, delivery_id = %env.delivery_id, "dead-lettering a message for an unknown delivery");
                self.dead_letter_raw(dest, &d, &reason).await;
            }
            Err(e) => {
                self.set_aside(&d, &env).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// A consumed message that cannot be decided on because the store is
    /// away: parked for [`STORE_AWAY_WAIT`] in a delay tier, then acked, so it
    /// comes back as a new message. A `nack` with requeue would do for one
    /// failure, but a quorum queue counts each one as a delivery attempt and
    /// dead-letters the message after [`topology::DELIVERY_LIMIT`] of them: a
    /// database outage of some seconds, with the workers retrying, would turn
    /// every waiting message into "poison" while its delivery stays pending in
    /// the store, to come back only through the relay's stale check. Requeued
    /// only when parking fails (the broker is away too).
    async fn set_aside(&self, d: &Delivery, env: &Envelope) {
        let wait = STORE_AWAY_WAIT.as_millis() as i64;
        if self.park(env, now_ms() + wait).await {
            ack(&d.acker).await;
        } else {
            requeue(&d.acker).await;
        }
    }

    /// Publishes `env` to the delay tier that brings it back no earlier than
    /// needed for `at` (the largest tier not longer than the wait). Returns
    /// whether the broker confirmed it.
    async fn park(&self, env: &Envelope, at: i64) -> bool {
        let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
        let tiers = &self.topology.tiers;
        let tier = tiers
            .iter()
            .rev()
            .find(|t| **t <= wait)
            .copied()
            .unwrap_or(tiers[0]);
        let names = self.topology.names();
        let mut headers = FieldTable::default();
        headers.insert(ss("x-lienthong-due"), AMQPValue::LongLongInt(at));
        let r = self
            .publish(
                &names.delay_exchange(),
                &names.delay_key(&env.destination, tier),
                &env.to_bytes(),
                &env.delivery_id,
                headers,
            )
            .await;
        if let Err(e) = &r {
            tracing::warn!(delivery_id = %env.delivery_id, error = %e, "parking a delivery failed; it will be redelivered");
        }
        r.is_ok()
    }

    /// Publishes one persistent message with confirm; `Ok` only when the broker
    /// acknowledged it and it was routed.
    async fn publish(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        message_id: &str,
        headers: FieldTable,
    ) -> Result<()> {
        let confirm = self
            .publish_start(exchange, key, body, message_id, headers, true)
            .await?;
        match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Ok(c) => check_confirm(c, exchange, key),
            Err(_) => Err(Error::Queue {
                message: format!(
                    "no confirm from the broker for {exchange}/{key} within {CONFIRM_TIMEOUT:?}"
                ),
                retryable: true,
            }),
        }
    }

    pub(crate) async fn publish_start(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        message_id: &str,
        headers: FieldTable,
        mandatory: bool,
    ) -> Result<lapin::PublisherConfirm> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ss("application/json"))
            .with_message_id(ss(message_id))
            .with_headers(headers);
        let link = self.link();
        let publish = link.publisher.basic_publish(
            ss(exchange),
            ss(key),
            BasicPublishOptions {
                mandatory,
                ..Default::default()
            },
            body,
            props,
        );
        match tokio::time::timeout(CONFIRM_TIMEOUT, publish).await {
            Ok(r) => r.map_err(|e| connect::broker_err(&format!("publishing to exchange {exchange} with key {key}"), e)),
            Err(_) => Err(Error::Queue {
                message: format!("publishing to exchange {exchange} with key {key}: no answer within {CONFIRM_TIMEOUT:?}"),
                retryable: true,
            }),
        }
    }

    /// Republishes a consumed message to its destination's dead-letter queue
    /// with the reason, then acks it. If that fails the message is rejected
    /// without requeue, which dead-letters it through the queue's own
    /// dead-letter exchange (without our reason, but never in a loop).
    async fn dead_letter_raw(&self, dest: &str, d: &Delivery, reason: &str) {
        let names = self.topology.names();
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(
            ss("x-lienthong-reason"),
            AMQPValue::LongString(LongString::from(reason)),
        );
        headers.insert(
            ss("x-lienthong-queue"),
            AMQPValue::LongString(LongString::from(names.work_queue(dest).as_str())),
        );
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        match self
            .publish(&names.dead_exchange(), dest, &d.data, &id, headers)
            .await
        {
            Ok(()) => ack(&d.acker).await,
            Err(e) => {
                tracing::error!(error = %e, "could not republish a poison message with its reason; rejecting it");
                let _ = d
                    .acker
                    .reject(lapin::options::BasicRejectOptions { requeue: false })
                    .await;
            }
        }
    }

    async fn settle_inner(&self, s: Settlement) -> Result<()> {
        // The settling statement also names the dossier's next delivery, if it
        // is due and relayed (delivered or dead only; a retry keeps its place).
        let next = self.store.settle_and_next(s.clone()).await?;
        let held = self
            .held
            .lock()
            .expect("held map poisoned")
            .remove(&s.delivery_id);
        let Some(Held { acker, envelope }) = held else {
            // Settled by a handle from before a broker reconnect: the broker
            // redelivers the message, and the claim drops or parks it. Its
            // successor is woken all the same; otherwise it would wait out its
            // parking (up to this delivery's lease, about half a minute).
            if let Some(next) = next {
                self.wake(next).await;
            }
            return Ok(());
        };
        let done = match &s.outcome {
            SettleOutcome::Delivered => true,
            SettleOutcome::Retry { at } => self.park(&envelope, *at).await,
            SettleOutcome::Dead => {
                let names = self.topology.names();
                let mut headers = FieldTable::default();
                let reason = s.error.clone().unwrap_or_else(|| "dead".into());
                headers.insert(
                    ss("x-lienthong-reason"),
                    AMQPValue::LongString(LongString::from(reason.as_str())),
                );
                headers.insert(
                    ss("x-lienthong-error-class"),
                    AMQPValue::LongString(LongString::from(
                        s.error_class.clone().unwrap_or_default().as_str(),
                    )),
                );
                match self
                    .publish(
                        &names.dead_exchange(),
                        &envelope.destination,
                        &envelope.to_bytes(),
                        &envelope.delivery_id,
                        headers,
                    )
                    .await
                {
                    Ok(()) => true,
                    Err(e) => {
                        // The store already says dead; the record on the broker is a convenience.
                        tracing::warn!(delivery_id = %s.delivery_id, error = %e, "could not copy a dead letter to the broker");
                        true
                    }
                }
            }
        };
        if done {
            ack(&acker).await;
            if let Some(next) = next {
                self.wake(next).await;
            }
        } else {
            requeue(&acker).await;
        }
        Ok(())
    }
}

impl RabbitQueue {
    /// Publishes `next`, the next delivery of a dossier whose previous one was
    /// just finished, to the work queue, so it does not wait out its parking
    /// ([`Store::settle_and_next`] found it). Best effort: if this fails, the
    /// parked copy comes back by itself, and a duplicate copy is dropped by the
    /// claim.
    async fn wake(&self, next: crate::store::NextInLane) {
        let env = Envelope {
            v: envelope::VERSION,
            delivery_id: next.id,
            seq: next.seq,
            destination: next.destination,
            correlation_id: next.correlation_id,
        };
        let names = self.topology.names();
        // A few quick tries: right after a reconnect the first publish can meet
        // a channel that is still recovering, and the parked copy would only
        // come back at the end of its wait.
        let (exchange, body) = (names.deliveries_exchange(), env.to_bytes());
        let wake = || {
            self.publish(
                &exchange,
                &env.destination,
                &body,
                &env.delivery_id,
                FieldTable::default(),
            )
        };
        if let Err(e) = wake
            .retry(
                ConstantBuilder::default()
                    .with_delay(Duration::from_millis(500))
                    .with_max_times(WAKE_RETRIES),
            )
            .await
        {
            tracing::debug!(delivery_id = %env.delivery_id, error = %e, "waking the next delivery of a dossier failed; its parked copy will bring it back");
        }
    }
}

/// Gives a message back to its queue (the broker redelivers it).
async fn requeue(acker: &Acker) {
    let _ = acker
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await;
}

async fn ack(acker: &Acker) {
    if let Err(e) = acker.ack(BasicAckOptions::default()).await {
        // The channel went away; the broker redelivers and the claim sorts it out.
        tracing::debug!(error = %e, "ack failed");
    }
}

pub(crate) fn check_confirm(
    c: lapin::Result<Confirmation>,
    exchange: &str,
    key: &str,
) -> Result<()> {
    match c {
        Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
        Ok(Confirmation::Ack(Some(_))) => Err(Error::Queue {
            message: format!(
                "exchange {exchange} has no queue bound for key {key}: the message was returned"
            ),
            retryable: true,
        }),
        Ok(Confirmation::Nack(_)) => Err(Error::Queue {
            message: format!(
                "the broker refused a message for {exchange}/{key} (nack): the queue may be full"
            ),
            retryable: true,
        }),
        Err(e) => Err(connect::broker_err(
            &format!("waiting for the confirm of {exchange}/{key}"),
            e,
        )),
    }
}

fn broker_setup(shown: &str, what: &str, e: lapin::Error) -> Error {
    Error::Queue {
        message: format!("RabbitMQ at {shown}: {what} failed: {e}"),
        retryable: false,
    }
}

/// Moves consumed messages to the worker's bounded channel; waits out broker
/// outages (lapin re-subscribes the consumer on the recovered channel).
async fn pump(
    ch: Channel,
    mut consumer: lapin::Consumer,
    feed: Feed,
    dest: String,
    stop: CancellationToken,
    resubscribe: Arc<AtomicBool>,
) {
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            n = consumer.next() => n,
        };
        match next {
            Some(Ok(d)) => {
                feed.last_received.store(now_ms(), Ordering::Relaxed);
                if feed.tx.send(d).await.is_err() {
                    return;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(destination = %dest, error = %e, "consumer interrupted; waiting for the broker connection to recover");
                if let Err(e) = ch.wait_for_recovery(e).await {
                    tracing::error!(destination = %dest, error = %e, "the consumer could not recover");
                    tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                }
            }
            None => {
                // The queue was deleted, or the broker moved it: this consumer
                // gets nothing more. The watchdog re-declares the queues and
                // re-subscribes on a new connection, which ends this pump.
                tracing::warn!(destination = %dest, "consumer cancelled by the broker; re-subscribing");
                resubscribe.store(true, Ordering::Relaxed);
                stop.cancelled().await;
                return;
            }
        }
    }
}

impl Drop for RabbitQueue {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl DeliveryQueue for RabbitQueue {
    fn committed<'a>(&'a self, destinations: &'a [String]) -> BoxFuture<'a, Result<()>> {
        // A running estimate until the relay's next count.
        self.unrelayed
            .fetch_add(destinations.len().max(1) as i64, Ordering::Relaxed);
        self.relay_wake.notify_one();
        futures::future::ready(Ok(())).boxed()
    }

    fn lease<'a>(
        &'a self,
        destination: &'a str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeasedDelivery>>> {
        self.lease_inner(destination, max, lease, wait).boxed()
    }

    fn settle(&self, settlement: Settlement) -> BoxFuture<'_, Result<()>> {
        self.settle_inner(settlement).boxed()
    }

    fn release(&self, leases: Vec<(String, i64)>) -> BoxFuture<'_, Result<u64>> {
        async move {
            let released = self.store.release_leases(&leases).await?;
            // Their messages go back to the broker now, for another consumer,
            // rather than when this process's channel closes.
            for (id, _) in &leases {
                let held = self.held.lock().expect("held map poisoned").remove(id);
                if let Some(h) = held {
                    requeue(&h.acker).await;
                }
            }
            Ok(released)
        }
        .boxed()
    }

    fn depth(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>>> {
        self.store.queue_depth().boxed()
    }

    fn active_destinations(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        self.store.active_destinations().boxed()
    }

    fn admit(&self) -> Result<()> {
        let n = self.unrelayed();
        if n >= self.opts.outbox_limit {
            return Err(Error::Unavailable(format!(
                "{n} accepted deliveries are waiting to be published to RabbitMQ at {} (limit {}, `queue.outbox_limit`): \
                 the broker is unreachable or slow; retry later",
                crate::redact::url(&self.opts.url),
                self.opts.outbox_limit
            )));
        }
        Ok(())
    }
}
