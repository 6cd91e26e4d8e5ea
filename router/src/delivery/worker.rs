//! The delivery workers: one loop per destination.
//!
//! Each loop leases only as many deliveries as it has free concurrency permits,
//! so a lease is never held by a delivery that is merely waiting for a slot. Each
//! leased delivery then waits for the destination's rate limiter (governor: a
//! partner over its rate is *delayed*, never dropped), is sent once through the
//! destination's [`Transport`], and is settled: delivered, retry at
//! `now + max(backoff, Retry-After)`, or dead (permanent failure, or transient
//! failures until `max_attempts`). The reason is kept with the dead letter.
//! A delivery gives its concurrency permit back as soon as the partner has
//! answered and holds a recording permit (as many) while its outcome is
//! committed, so the partner sees at most `concurrency` requests at once while
//! store commits overlap with the next requests.
//!
//! Shutdown (linkerd style): when the token is cancelled, loops stop leasing,
//! in-flight attempts get until the drain deadline to finish and settle, and
//! leased deliveries that were never sent (still waiting for the rate limiter,
//! or cut off by the deadline before their request) are given back to the
//! queue ([`DeliveryQueue::release`]), so another replica sends them at once
//! instead of after their lease. A lease call under way is not cancelled: what
//! it claims is either sent or given back.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::http::excerpt;
use super::policy::DestinationPolicy;
use super::transport::{Failure, FailureClass, Outbound, TransportRegistry};
use crate::queue::{DeliveryQueue, LeasedDelivery, SettleOutcome, Settlement};
use crate::store::{now_ms, Outage};

/// Longest a worker waits in one `lease` call before checking for shutdown.
const LEASE_WAIT: Duration = Duration::from_millis(500);

/// Everything the workers need.
#[derive(Clone)]
pub struct Dispatcher {
    pub queue: Arc<dyn DeliveryQueue>,
    pub transports: TransportRegistry,
    /// Policy per destination; destinations not listed use `default_policy`.
    pub policies: BTreeMap<String, DestinationPolicy>,
    pub default_policy: DestinationPolicy,
}

/// Leased deliveries not yet handed to their transport: id → `lease_until`.
type Unsent = Arc<std::sync::Mutex<HashMap<String, i64>>>;

/// How long shutdown waits for the store to take back unsent leases.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Running workers; see [`Dispatcher::start`].
pub struct Running {
    handles: JoinSet<()>,
    stop: CancellationToken,
    queue: Arc<dyn DeliveryQueue>,
    unsent: Unsent,
}

impl Running {
    /// Stops leasing, waits up to `deadline` for in-flight attempts to settle,
    /// then gives back the leases that were never sent.
    pub async fn shutdown(mut self, deadline: Duration) {
        self.stop.cancel();
        let drain = async { while self.handles.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, drain).await.is_err() {
            tracing::warn!(
                ?deadline,
                "drain deadline passed; deliveries still being sent stay leased until their lease ends"
            );
            self.handles.abort_all();
            while self.handles.join_next().await.is_some() {}
        }
        let unsent: Vec<(String, i64)> = self
            .unsent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        if unsent.is_empty() {
            return;
        }
        let n = unsent.len();
        match tokio::time::timeout(RELEASE_TIMEOUT, self.queue.release(unsent)).await {
            Ok(Ok(released)) => tracing::info!(
                released,
                leased = n,
                "gave back deliveries that were leased but not sent; another replica (or the next start) sends them"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, leased = n,
                "could not give back unsent leases; they are sent again when their lease ends"),
            Err(_) => tracing::warn!(leased = n,
                "giving back unsent leases timed out; they are sent again when their lease ends"),
        }
    }
}

impl Dispatcher {
    /// Starts one worker per destination known to the policies, the transports, or
    /// the queue's unfinished deliveries.
    pub async fn start(self) -> crate::Result<Running> {
        let mut destinations: Vec<String> = self.policies.keys().cloned().collect();
        destinations.extend(self.transports.destinations().map(str::to_string));
        destinations.extend(self.queue.active_destinations().await?);
        destinations.sort();
        destinations.dedup();
        // No transport, no worker: a worker would dead-letter every delivery
        // ("no-transport"). Their deliveries wait in the queue, pending, until
        // the destination is configured and the hub restarted (issue 15).
        destinations.retain(|d| {
            let has = self.transports.get(d).is_some();
            if !has {
                tracing::info!(destination = %d, "no transport: its deliveries wait for configuration");
            }
            has
        });
        let stop = CancellationToken::new();
        let mut handles = JoinSet::new();
        let unsent = Unsent::default();
        let queue = self.queue.clone();
        let this = Arc::new(self);
        for dest in destinations {
            let policy = this
                .policies
                .get(&dest)
                .cloned()
                .unwrap_or_else(|| this.default_policy.clone());
            handles.spawn(worker(
                this.clone(),
                dest,
                policy,
                stop.clone(),
                unsent.clone(),
            ));
        }
        Ok(Running {
            handles,
            stop,
            queue,
            unsent,
        })
    }
}

fn limiter(p: &DestinationPolicy) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(p.rate_per_second.max(1)).expect("max(1)");
    let burst = NonZeroU32::new(p.burst.max(1)).expect("max(1)");
    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

async fn worker(
    d: Arc<Dispatcher>,
    dest: String,
    policy: DestinationPolicy,
    stop: CancellationToken,
    unsent: Unsent,
) {
    let slots = Arc::new(Semaphore::new(policy.concurrency.max(1) as usize));
    // Attempts being recorded in the store, bounded like the partner slots: an
    // attempt frees its partner slot as soon as the partner has answered, so
    // the store's commit latency does not eat into the partner's concurrency,
    // and it takes a recording slot first, so leased work stays bounded (at
    // most twice the concurrency per destination and process).
    let recording = Arc::new(Semaphore::new(policy.concurrency.max(1) as usize));
    let limiter = Arc::new(limiter(&policy));
    let mut inflight = JoinSet::new();
    let mut error_backoff = Duration::from_millis(100);
    let outage = Arc::new(Outage::new(format!("delivery to {dest}")));
    tracing::info!(destination = %dest, ?policy, "delivery worker started");
    loop {
        // Wait for a free slot before leasing anything.
        let first = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let free = slots.available_permits() + 1;
        if stop.is_cancelled() {
            break;
        }
        // Not raced against `stop`: a lease call dropped half-way could have
        // claimed deliveries that nobody would then send or give back. It
        // returns within `LEASE_WAIT`.
        let leased = d.queue.lease(&dest, free, policy.lease(), LEASE_WAIT).await;
        let batch = match leased {
            Ok(b) => {
                error_backoff = Duration::from_millis(100);
                // An empty lease may not have touched the store (a RabbitMQ
                // consumer with nothing to claim).
                if !b.is_empty() {
                    outage.recovered();
                }
                b
            }
            Err(e) => {
                if e.is_retryable() {
                    outage.failed("leasing deliveries", &e);
                } else {
                    tracing::error!(destination = %dest, error = %e, "leasing deliveries failed; retrying");
                }
                drop(first);
                tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(error_backoff) => {} }
                error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut first = Some(first);
        for leased in batch {
            let permit = match first.take() {
                Some(p) => p,
                None => slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed"),
            };
            let (d, policy, limiter) = (d.clone(), policy.clone(), limiter.clone());
            let (recording, outage) = (recording.clone(), outage.clone());
            let (stop, unsent) = (stop.clone(), unsent.clone());
            unsent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(leased.id.clone(), leased.lease_until);
            inflight.spawn(async move {
                // A partner over its rate is delayed; a shutdown meanwhile
                // leaves the delivery unsent, for `Running::shutdown` to give back.
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = limiter.until_ready() => {}
                }
                unsent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&leased.id);
                let settlement = attempt(&d, &policy, leased).await;
                let record_slot = recording
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed");
                drop(permit);
                record(&d, settlement, &outage).await;
                drop(record_slot);
            });
        }
        // Reap finished attempts so the set does not grow.
        while inflight.try_join_next().is_some() {}
    }
    // Drain: let the attempts already started finish and settle.
    while inflight.join_next().await.is_some() {}
    tracing::info!(destination = %dest, "delivery worker stopped");
}

/// Sends one leased delivery (the rate limiter has let it through) and decides its outcome.
async fn attempt(d: &Dispatcher, policy: &DestinationPolicy, l: LeasedDelivery) -> Settlement {
    let out = Outbound {
        delivery_id: l.id.clone(),
        message_id: l.message_id.clone(),
        correlation_id: l.correlation_id.clone(),
        destination: l.destination.clone(),
        message_type: l.message_type.clone(),
        body: l.body.clone(),
        content_type: l.content_type.clone(),
        // The delivery's id, or for an as-sent replay the key of what it replays.
        idempotency_key: l.partner_key.clone(),
        attempt: l.attempt,
    };
    let started_at = now_ms();
    let t0 = Instant::now();
    let result = match d.transports.get(&l.destination) {
        None => Err(Failure {
            class: FailureClass::Permanent,
            reason: "no-transport".into(),
            detail: format!(
                "no transport is configured for destination `{}`: add it under `destinations:` in the config, then replay",
                l.destination
            ),
            status: None,
            retry_after: None,
            request: Default::default(),
            response_excerpt: String::new(),
        }),
        Some(t) => match tokio::time::timeout(policy.timeout + Duration::from_secs(5), t.send(&out)).await {
            Ok(r) => r,
            Err(_) => Err(Failure {
                class: FailureClass::Transient,
                reason: "timeout".into(),
                detail: format!("the transport did not answer within {:?}", policy.timeout),
                status: None,
                retry_after: None,
                request: out.body.clone(),
                response_excerpt: String::new(),
            }),
        },
    };
    let latency = t0.elapsed();
    let dest = l.destination.clone();
    metrics::histogram!("lienthong_attempt_latency_seconds", "destination" => dest.clone())
        .record(latency.as_secs_f64());
    let mut s = Settlement {
        delivery_id: l.id.clone(),
        message_id: l.message_id.clone(),
        destination: dest.clone(),
        attempt: l.attempt,
        started_at,
        latency_ms: latency.as_millis() as i64,
        request_excerpt: String::new(),
        status: None,
        response_excerpt: String::new(),
        error: None,
        error_class: None,
        partner_reference: None,
        outcome: SettleOutcome::Delivered,
    };
    match result {
        Ok(receipt) => {
            s.request_excerpt = excerpt(if receipt.request.is_empty() {
                &out.body
            } else {
                &receipt.request
            });
            s.status = receipt.status;
            s.response_excerpt = receipt.response_excerpt;
            s.partner_reference = receipt.partner_reference;
            metrics::counter!("lienthong_delivered_total", "destination" => dest.clone())
                .increment(1);
            let e2e = (now_ms() - l.created_at).max(0) as f64 / 1000.0;
            metrics::histogram!("lienthong_delivery_latency_seconds", "destination" => dest.clone()).record(e2e);
            tracing::info!(message_id = %l.message_id, delivery_id = %l.id, correlation_id = %l.correlation_id,
                destination = %dest, attempt = l.attempt, status = ?s.status, "delivered");
        }
        Err(f) => {
            s.request_excerpt = excerpt(if f.request.is_empty() {
                &out.body
            } else {
                &f.request
            });
            s.status = f.status;
            s.response_excerpt = f.response_excerpt.clone();
            s.error = Some(format!("{}: {}", f.reason, f.detail));
            if f.is_transient() && l.attempt < policy.max_attempts {
                let delay = policy
                    .backoff
                    .delay(l.attempt)
                    .max(f.retry_after.unwrap_or_default());
                s.error_class = Some("transient".into());
                s.outcome = SettleOutcome::Retry {
                    at: now_ms() + delay.as_millis() as i64,
                };
                metrics::counter!("lienthong_retried_total", "destination" => dest.clone())
                    .increment(1);
                tracing::warn!(message_id = %l.message_id, delivery_id = %l.id, correlation_id = %l.correlation_id,
                    destination = %dest, attempt = l.attempt, reason = %f.reason, ?delay, "attempt failed; will retry");
            } else {
                s.error_class = Some(
                    if f.is_transient() {
                        "exhausted"
                    } else {
                        "permanent"
                    }
                    .into(),
                );
                if f.is_transient() {
                    // Worth retrying, but no retry is left: say so, and what to do.
                    s.error = Some(format!(
                        "{}: {}; gave up after {} attempt(s) (destinations.{dest}.max_attempts = {}): \
                         replay it once {dest} accepts again",
                        f.reason, f.detail, l.attempt, policy.max_attempts
                    ));
                }
                s.outcome = SettleOutcome::Dead;
                metrics::counter!("lienthong_dead_total", "destination" => dest.clone())
                    .increment(1);
                tracing::error!(message_id = %l.message_id, delivery_id = %l.id, correlation_id = %l.correlation_id,
                    destination = %dest, attempt = l.attempt, reason = %f.reason, detail = %f.detail, "dead letter");
            }
        }
    }
    s
}

/// Longest pause between two tries of recording an attempt while the store is away.
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(1);

/// Records an attempt and its outcome (the queue acks or re-schedules it).
///
/// The attempt happened, so its record must not be given up while the store
/// is merely away (a database restart, a failover): the lease would expire
/// and the partner would get the delivery again. A retryable failure is tried
/// again, 50 ms later at first and then at most every second, until the store
/// takes it; only the drain deadline of a shutdown ends the wait (the lease
/// then covers it). Meanwhile this delivery keeps its recording slot, so a
/// worker whose store is away stops leasing instead of spinning.
async fn record(d: &Dispatcher, s: Settlement, outage: &Outage) {
    let settle = || d.queue.settle(s.clone());
    let settled = settle
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_factor(2.0)
                .with_max_delay(SETTLE_RETRY_MAX)
                .without_max_times(),
        )
        .when(|e| e.is_retryable())
        .notify(|e, _| outage.failed("settling a delivery", e))
        .await;
    match settled {
        Ok(()) => outage.recovered(),
        Err(e) => tracing::error!(delivery_id = %s.delivery_id, error = %e,
            "could not settle (not retryable); the lease will expire and the delivery will be sent again"),
    }
}

/// Builds one [`super::HttpTransport`] per destination that has a URL and no
/// transport registered yet (connector transports registered earlier win).
pub fn register_http_transports(
    registry: &mut TransportRegistry,
    urls: &HashMap<String, (String, DestinationPolicy)>,
) -> Result<(), reqwest::Error> {
    for (dest, (url, policy)) in urls {
        if registry.get(dest).is_none() {
            let t = super::HttpTransport::new(
                url.clone(),
                policy.timeout,
                policy.concurrency as usize,
            )?;
            registry.register(dest.clone(), Arc::new(t));
        }
    }
    Ok(())
}
