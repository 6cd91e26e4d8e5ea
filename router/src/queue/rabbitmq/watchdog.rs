//! The connection watchdog: a safety net under lapin's automatic recovery.
//!
//! Every [`PROBE_EVERY`] it publishes a probe (with confirm, to a routing key
//! nothing is bound to, so the broker drops it) on the current connection, with a timeout. While lapin recovers by itself the probe simply
//! succeeds again soon. If it fails [`FAILURES_BEFORE_REBUILD`] times in a row
//! (the broker has been back for a while but the recovered connection still
//! cannot open channels, or recovery gave up), or succeeds again after having
//! failed (consumers re-subscribed by lapin during a broker restart can stay
//! silent while quorum queues elect their leaders), the queue builds a new connection
//! and retires the old one ([`super::RabbitQueue::rebuild`]); while the broker
//! is still away that attempt fails and is simply tried again at the next probe.

use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::RabbitQueue;

pub const PROBE_EVERY: Duration = Duration::from_secs(2);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
pub const FAILURES_BEFORE_REBUILD: u32 = 4;

pub(super) async fn run(q: Weak<RabbitQueue>, stop: CancellationToken) {
    let mut failures = 0u32;
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
        if ok && failures == 0 {
            continue;
        }
        if !ok {
            failures += 1;
            if failures < FAILURES_BEFORE_REBUILD {
                continue;
            }
        }
        // Either the connection still fails, or it came back after an outage:
        // lapin's recovery re-subscribes consumers too early for quorum queues
        // that are still electing a leader, so re-subscribe on a fresh connection.
        tracing::warn!(
            failures,
            "the RabbitMQ connection has not recovered; opening a new one"
        );
        match this.rebuild().await {
            Ok(()) => {
                tracing::info!("RabbitMQ connection replaced; consumers re-subscribed");
                failures = 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "replacing the RabbitMQ connection failed; will retry")
            }
        }
    }
}
