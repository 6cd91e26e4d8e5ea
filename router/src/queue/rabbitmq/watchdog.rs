//! The connection watchdog: a safety net under lapin's automatic recovery.
//!
//! Every [`PROBE_EVERY`] it publishes a probe (with confirm, to a routing key
//! nothing is bound to, so the broker drops it) on the current connection, with
//! a timeout. While lapin recovers by itself the probe simply succeeds again
//! soon. The queue builds a new connection, re-subscribes its consumers on it
//! and retires the old one ([`super::RabbitQueue::rebuild`]) when:
//!
//! * the probe fails [`FAILURES_BEFORE_REBUILD`] times in a row (the broker has
//!   been back for a while but the recovered connection still cannot open
//!   channels, or recovery gave up); while the broker is still away that
//!   attempt fails and is simply tried again at the next probe;
//! * the probe succeeds again after having failed: consumers re-subscribed
//!   during a broker restart can stay silent while quorum queues elect their
//!   leaders. This includes a rebuild made by the rule above while the broker
//!   was still starting: such a rebuild proves nothing about its consumers, so
//!   the first good probe after it re-subscribes once more (a `.ci/run` once
//!   saw a rebuild 7 s into a slow restart leave every consumer silent);
//! * a consumer asked for it (`RabbitQueue::resubscribe`): the broker cancelled
//!   it (its queue was deleted, say; the new connection declares the queues
//!   again), or the relay found due deliveries that nobody claimed for
//!   `stale_after` while their consumer handed nothing over (a consumer busy
//!   with a backlog behind a slow partner does not count). Whatever the cause,
//!   consumers that are not consuming get a fresh start, while the relay
//!   re-publishes what they missed.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::RabbitQueue;

pub const PROBE_EVERY: Duration = Duration::from_secs(2);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
pub const FAILURES_BEFORE_REBUILD: u32 = 4;

pub(super) async fn run(q: Weak<RabbitQueue>, stop: CancellationToken) {
    let mut failures = 0u32;
    // The last rebuild happened while the probe was failing.
    let mut rebuilt_while_failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
        }
        let Some(this) = q.upgrade() else { return };
        // End to end: a publish with confirm to a key nothing is bound to (not
        // mandatory, so it is silently dropped). A confirm proves the connection works.
        let exchange = this.topology.names().deliveries_exchange();
        let probe = async {
            let confirm = this
                .publish_start(
                    &exchange,
                    "lienthong-probe",
                    b"",
                    "probe",
                    Default::default(),
                    false,
                )
                .await
                .ok()?;
            confirm.await.ok()
        };
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, probe).await,
            Ok(Some(_))
        );
        let requested = this.resubscribe.swap(false, Ordering::Relaxed);
        let reason = if !ok {
            failures += 1;
            if failures < FAILURES_BEFORE_REBUILD {
                continue;
            }
            "the RabbitMQ connection has not recovered; opening a new one"
        } else if failures > 0 || rebuilt_while_failing {
            // lapin's recovery (or our own rebuild during the outage) re-subscribed
            // consumers too early for quorum queues still electing a leader.
            "the RabbitMQ connection is back after an outage; re-subscribing on a new one"
        } else if requested {
            "a consumer was cancelled or deliveries went unclaimed; re-subscribing on a new connection"
        } else {
            continue;
        };
        tracing::warn!(failures, "{reason}");
        match this.rebuild().await {
            Ok(()) => {
                tracing::info!("RabbitMQ connection replaced; consumers re-subscribed");
                rebuilt_while_failing = !ok;
                failures = 0;
            }
            Err(e) => {
                if requested {
                    this.resubscribe.store(true, Ordering::Relaxed);
                }
                tracing::warn!(error = %e, "replacing the RabbitMQ connection failed; will retry")
            }
        }
    }
}
