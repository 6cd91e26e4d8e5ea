//! The embedded queue: the store's `deliveries` table *is* the queue.
//!
//! Leasing is one `UPDATE ... RETURNING` (see `store::deliveries::lease`) that picks due,
//! head-of-line rows; retries are rows whose `next_attempt_at` is in the future.
//! Workers sleep until the earliest due time or until woken: by new commits
//! ([`DeliveryQueue::committed`]) or by a settle, which may unblock the next
//! message of the same dossier.
//!
//! The embedded queue assumes one hub process owns the database (the SQLite
//! default). So at start-up it puts every in-flight delivery back to pending:
//! whatever the previous process was sending when it died is sent again at once
//! (at least once) instead of after its lease expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::Notify;

use super::{DeliveryQueue, LeasedDelivery, Settlement};
use crate::store::{now_ms, Store};
use crate::Result;

/// How long a worker sleeps at most between polls when nothing wakes it.
const MAX_IDLE: Duration = Duration::from_millis(500);
/// Shortest sleep when rows are due but blocked behind an earlier delivery.
const MIN_IDLE: Duration = Duration::from_millis(20);

pub struct EmbeddedQueue {
    store: Store,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl EmbeddedQueue {
    /// Wraps `store` and releases the leases a previous process left behind.
    pub async fn start(store: Store) -> Result<Arc<Self>> {
        let released = store.release_all_leases().await?;
        if released > 0 {
            tracing::warn!(
                released,
                "re-queued deliveries that were in flight when the previous process stopped"
            );
        }
        Ok(Arc::new(Self {
            store,
            wakers: Mutex::new(HashMap::new()),
        }))
    }

    fn waker(&self, destination: &str) -> Arc<Notify> {
        let mut w = self.wakers.lock().expect("waker map poisoned");
        w.entry(destination.to_string()).or_default().clone()
    }

    async fn lease_inner(
        &self,
        destination: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<LeasedDelivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        let waker = self.waker(destination);
        loop {
            // Register interest before looking, so a commit in between is not missed.
            let notified = waker.notified();
            let rows = self
                .store
                .lease(destination, max, now_ms() + lease.as_millis() as i64)
                .await?;
            if !rows.is_empty() {
                return Ok(rows);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(rows);
            }
            let mut sleep = MAX_IDLE.min(deadline - now);
            if let Some(due) = self.store.next_due(destination).await? {
                let until = Duration::from_millis((due - now_ms()).max(0) as u64);
                sleep = sleep.min(until.max(MIN_IDLE));
            }
            let _ = tokio::time::timeout(sleep, notified).await;
        }
    }
}

impl DeliveryQueue for EmbeddedQueue {
    fn committed<'a>(&'a self, destinations: &'a [String]) -> BoxFuture<'a, Result<()>> {
        for d in destinations {
            self.waker(d).notify_one();
        }
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
        async move {
            let destination = settlement.destination.clone();
            self.store.settle(settlement).await?;
            // The next message of the same dossier may be head-of-line now.
            self.waker(&destination).notify_one();
            Ok(())
        }
        .boxed()
    }

    fn release(&self, leases: Vec<(String, i64)>) -> BoxFuture<'_, Result<u64>> {
        async move { self.store.release_leases(&leases).await }.boxed()
    }

    fn depth(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>>> {
        self.store.queue_depth().boxed()
    }

    fn active_destinations(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        self.store.active_destinations().boxed()
    }
}
