//! The outbox relay: publishes committed deliveries to the broker.
//!
//! Woken by every commit ([`DeliveryQueue::committed`](super::DeliveryQueue::committed))
//! and at least twice a second, it publishes unrelayed rows in `seq` order in
//! batches (all publishes of a batch in flight at once, then every confirm
//! awaited), and marks as relayed exactly the rows the broker confirmed. When
//! the broker is away publishing fails, nothing is marked, the rows stay in the
//! outbox and the relay retries with a capped backoff: publishing resumes by
//! itself when the connection recovers. Each pass also refreshes the unrelayed
//! count that [`DeliveryQueue::admit`](super::DeliveryQueue::admit) compares to
//! the outbox limit, and from time to time re-queues stale rows (see
//! [`crate::store::Store::requeue_stale`]).

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::{Duration, Instant};

use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

use super::envelope::{Envelope, VERSION};
use super::{check_confirm, RabbitQueue};
use crate::store::outbox::Unrelayed;

const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often the relay looks for stale deliveries: every 30 s, or every half
/// of `stale_after` when that is shorter, so a lost message is re-published
/// within about 1.5 × `stale_after`.
fn stale_check_every(stale_after: Duration) -> Duration {
    (stale_after / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

pub(super) async fn run(q: Weak<RabbitQueue>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    let mut last_stale_check = Instant::now();
    let outage = crate::store::Outage::new("the outbox relay");
    loop {
        let Some(this) = q.upgrade() else { return };
        let mut failed = false;
        loop {
            let limit = this.opts.relay_batch;
            let relayed = this
                .store
                .relay_batch(limit, |rows| publish_rows(&this, rows))
                .await;
            if relayed.is_ok() {
                outage.recovered();
            }
            match relayed {
                Ok((selected, published)) if published < selected => {
                    failed = true;
                    break;
                }
                Ok((selected, _)) if selected as i64 >= limit => continue,
                Ok(_) => break,
                Err(e) if e.is_retryable() => {
                    outage.failed("relaying the outbox", &e);
                    failed = true;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox relay: the store failed; retrying");
                    failed = true;
                    break;
                }
            }
        }
        match this.store.unrelayed_count().await {
            Ok(n) => {
                this.unrelayed.store(n, Ordering::Relaxed);
                metrics::gauge!("lienthong_outbox_unrelayed").set(n as f64);
            }
            Err(e) => outage.failed("counting unrelayed deliveries", &e),
        }
        if last_stale_check.elapsed() >= stale_check_every(this.opts.stale_after) {
            last_stale_check = Instant::now();
            match this
                .store
                .requeue_stale(this.opts.stale_after.as_millis() as i64)
                .await
            {
                Ok(destinations) if destinations.is_empty() => {}
                Ok(destinations) => {
                    tracing::warn!(?destinations, "re-publishing due deliveries nobody claimed (their broker messages were lost, or the consumers are silent)");
                    // Lost messages come back through the relay. A consumer that
                    // has handed nothing over all that time is silent: the
                    // watchdog re-subscribes it. One that is merely busy (a
                    // backlog behind a slow partner) is left alone.
                    for d in &destinations {
                        if this.consumer_quiet(d, this.opts.stale_after).await {
                            this.resubscribe.store(true, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
                Err(e) => outage.failed("checking for stale deliveries", &e),
            }
        }
        let pause = if failed {
            backoff = (backoff * 2).min(Duration::from_secs(2));
            backoff
        } else {
            backoff = Duration::from_millis(100);
            IDLE_POLL
        };
        {
            let wake = this.relay_wake.notified();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = wake, if !failed => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        // `this` is dropped here, so a queue nobody else holds ends the relay.
        drop(this);
    }
}

/// Publishes `rows` (all in flight at once) and returns the seqs the broker confirmed.
async fn publish_rows(q: &RabbitQueue, rows: Vec<Unrelayed>) -> Vec<i64> {
    let names = q.topology.names();
    let exchange = names.deliveries_exchange();
    let mut pending = Vec::with_capacity(rows.len());
    for r in rows {
        if let Err(e) = q.ensure_declared(&r.destination).await {
            tracing::warn!(error = %e, "outbox relay: declaring a destination failed; will retry");
            break;
        }
        let env = Envelope {
            v: VERSION,
            delivery_id: r.id.clone(),
            seq: r.seq,
            destination: r.destination.clone(),
            correlation_id: r.correlation_id.clone(),
        };
        match q
            .publish_start(
                &exchange,
                &r.destination,
                &env.to_bytes(),
                &r.id,
                FieldTable::default(),
                true,
            )
            .await
        {
            Ok(confirm) => pending.push((r, confirm)),
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: publishing failed; the rows stay in the outbox");
                break;
            }
        }
    }
    let mut done = Vec::with_capacity(pending.len());
    let mut unroutable = std::collections::BTreeSet::new();
    for (r, confirm) in pending {
        let Ok(confirmed) = tokio::time::timeout(super::CONFIRM_TIMEOUT, confirm).await else {
            tracing::warn!(delivery_id = %r.id, "outbox relay: no confirm in time; will retry");
            continue;
        };
        let returned = matches!(confirmed, Ok(lapin::Confirmation::Ack(Some(_))));
        match check_confirm(confirmed, &exchange, &r.destination) {
            Ok(()) => done.push(r.seq),
            Err(e) if returned => {
                tracing::warn!(delivery_id = %r.id, error = %e, "outbox relay: no queue took it (deleted by hand?); declaring the destination's queues again, will retry");
                unroutable.insert(r.destination);
            }
            Err(e) => {
                tracing::warn!(delivery_id = %r.id, error = %e, "outbox relay: not confirmed; will retry")
            }
        }
    }
    // The next pass declares them again (`ensure_declared`), which also binds them.
    if !unroutable.is_empty() {
        let mut declared = q.declared.lock().await;
        for d in &unroutable {
            declared.remove(d);
        }
    }
    done
}
