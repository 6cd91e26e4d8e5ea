//! The observation batcher: a bounded channel and one task.
//!
//! Callers push `(body, key, reply)` and await `reply`. The task takes the first
//! waiting item, then keeps taking until the batch has `size` items or `linger` has
//! passed since that first item, sends the batch, and answers every caller with the
//! batch's outcome. Batches are sent one after another: while one is in flight, new
//! items wait in the bounded channel, which is what pushes back on the delivery
//! workers when the IOC is slow. The task ends when the client (every sender) is dropped.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use lienthong_core::transport::{Failure, Receipt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// One message waiting for its batch.
pub struct Item {
    pub observations: Vec<serde_json::Value>,
    pub reply: oneshot::Sender<Result<Receipt, Failure>>,
}

/// A batch ready to send.
pub struct Batch {
    pub observations: Vec<serde_json::Value>,
    /// How many messages it merges.
    pub messages: usize,
}

/// Runs the batcher until every sender is dropped.
pub async fn run<F, Fut>(mut rx: mpsc::Receiver<Item>, size: usize, linger: Duration, flush: F)
where
    F: Fn(Batch) -> Fut,
    Fut: Future<Output = Result<Receipt, Failure>>,
{
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + linger;
        let mut items = vec![first];
        while items.len() < size {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(item) => items.push(item),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let mut batch = Batch {
            observations: Vec::new(),
            messages: items.len(),
        };
        let mut replies = Vec::with_capacity(items.len());
        for item in items {
            batch.observations.extend(item.observations);
            replies.push(item.reply);
        }
        tracing::debug!(
            messages = replies.len(),
            observations = batch.observations.len(),
            "flushing IOC batch"
        );
        let outcome = flush(batch).await;
        for reply in replies {
            // A caller that gave up (its future was dropped) no longer listens.
            let _ = reply.send(outcome.clone());
        }
    }
}

/// Placeholder bytes for failures that happen before a batch exists.
pub fn no_request() -> Bytes {
    Bytes::new()
}
