//! The connection watchdog: a safety net under lapin's automatic recovery.
//!
//! Every [`PROBE_EVERY`] it opens and closes a channel on the current
//! connection, with a timeout. While lapin recovers by itself the probe simply
//! succeeds again soon. If it fails [`FAILURES_BEFORE_REBUILD`] times in a row
//! (the broker has been back for a while but the recovered connection still
//! cannot open channels, or recovery gave up), the queue builds a new connection
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
        let link = this.link();
        let ok = match tokio::time::timeout(PROBE_TIMEOUT, link.conn.create_channel()).await {
            Ok(Ok(ch)) => {
                let _ = tokio::time::timeout(PROBE_TIMEOUT, ch.close(200, "probe".into())).await;
                true
            }
            _ => false,
        };
        drop(link);
        if ok {
            failures = 0;
            continue;
        }
        failures += 1;
        if failures < FAILURES_BEFORE_REBUILD {
            continue;
        }
        tracing::warn!(failures, "the RabbitMQ connection has not recovered; opening a new one");
        match this.rebuild().await {
            Ok(()) => {
                tracing::info!("RabbitMQ connection replaced; consumers re-subscribed");
                failures = 0;
            }
            Err(e) => tracing::warn!(error = %e, "replacing the RabbitMQ connection failed; will retry"),
        }
    }
}
