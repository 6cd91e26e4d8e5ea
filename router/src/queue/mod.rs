//! Durable delivery queues.
//!
//! # The contract
//!
//! Acceptance writes every delivery into the store's `deliveries` table in the
//! same transaction as the message (the *transactional outbox*). A queue backend
//! then decides *which* deliveries a worker may send *now*, with these semantics,
//! which every backend must keep:
//!
//! 1. **Durable, at least once.** A delivery is only finished ([`DeliveryQueue::settle`]
//!    with delivered or dead) after the transport returned. Anything leased by a
//!    worker that dies is leased again later (lease expiry, or at start-up).
//!    Duplicates are possible after a crash; partners get an `Idempotency-Key`
//!    (the delivery id) to drop them.
//! 2. **Delayed retries.** A settle with `Retry { at }` makes the delivery due
//!    again at `at`, not before.
//! 3. **Ordering per `(correlation_id, destination)`.** A delivery is only leased
//!    when every earlier-accepted delivery (lower `seq`) for the same dossier or
//!    station and destination is delivered or dead. A dossier whose first message
//!    is retrying holds its later messages back; other dossiers keep flowing.
//! 4. **Per destination.** Workers lease per destination, so one slow partner
//!    never holds up another.
//!
//! The store's `deliveries` row stays the source of truth for state, attempts and
//! the trail in every backend; [`DeliveryQueue::settle`] always writes it.
//!
//! # The RabbitMQ backend
//!
//! [`rabbitmq`] implements the same trait for several replicas sharing one
//! broker and one PostgreSQL store: `committed` wakes an outbox relay that
//! publishes pointers to the store's rows, `lease` consumes from one queue per
//! destination and *claims* the row in the store (the claim only succeeds for
//! the head of its `(correlation_id, destination)` lane, which is what keeps
//! rule 3 across replicas; there is no sharding by `correlation_id` in the
//! broker), and `settle` writes the store and then acks, or parks a copy on a
//! delay tier for `Retry`. Its module docs give the design. The delivery layer
//! ([`crate::delivery`]) is the same for both backends.

mod embedded;
pub mod rabbitmq;

use std::time::Duration;

use futures::future::BoxFuture;

pub use embedded::EmbeddedQueue;

pub use crate::store::{LeasedDelivery, SettleOutcome, Settlement};
use crate::Result;

/// A durable delivery queue backend. See the module docs for the semantics.
pub trait DeliveryQueue: Send + Sync + 'static {
    /// New deliveries for these destinations were committed to the outbox.
    /// Embedded: wakes the workers. Brokers: publish them.
    fn committed<'a>(&'a self, destinations: &'a [String]) -> BoxFuture<'a, Result<()>>;

    /// Leases up to `max` due, head-of-line deliveries for `destination` for `lease`
    /// (after which they count as abandoned and are leased again). Waits up to
    /// `wait` for one to become due; returns an empty list when none did.
    fn lease<'a>(
        &'a self,
        destination: &'a str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Vec<LeasedDelivery>>>;

    /// Records an attempt and its outcome; delivered or dead ends the delivery (ack),
    /// retry makes it due again at the given time.
    fn settle(&self, settlement: Settlement) -> BoxFuture<'_, Result<()>>;

    /// Gives back leases that were never sent (see
    /// [`crate::store::Store::release_leases`]): at shutdown, so that another
    /// replica need not wait for them to expire. Returns how many were released.
    fn release(&self, leases: Vec<(String, i64)>) -> BoxFuture<'_, Result<u64>>;

    /// Deliveries not yet finished, per destination.
    fn depth(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>>>;

    /// Destinations that have unfinished deliveries (so workers start for them).
    fn active_destinations(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// May intake accept a message now? A broker backend refuses (retryable
    /// [`crate::Error::Unavailable`], i.e. 503 + `Retry-After`) while too many
    /// accepted deliveries wait in the outbox for an unreachable broker.
    fn admit(&self) -> Result<()> {
        Ok(())
    }
}
