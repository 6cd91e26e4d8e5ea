//! What the broker backend does with a consumed message whose delivery could
//! not be claimed: the decision. The rows it looks at, and every other
//! statement on the outbox, are the store's ([`crate::store::outbox`]).

use crate::store::{now_ms, Store};
use crate::Result;

/// Why a consumed delivery could not be claimed, and so what to do with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No such delivery (for this destination) in the store.
    Unknown,
    /// Delivered or dead: the message is a duplicate; drop it.
    Finished,
    /// Try again at this time (epoch ms): not yet due, leased by someone else, or
    /// waiting for an earlier delivery of the same dossier.
    WaitUntil(i64),
}

/// Shortest wait for a delivery blocked behind an earlier one of its dossier.
/// It is a safety net only: when the earlier delivery is settled, the queue
/// publishes a wake-up for the next one at once (found by
/// [`Store::settle_and_next`](crate::store::Store::settle_and_next)), so a blocked
/// message does not need to poll. Parking it for longer keeps a long lane (a
/// station's day of observations relayed in one burst) from bouncing every
/// message through the broker every few milliseconds.
const BLOCKED_MIN_WAIT_MS: i64 = 1_000;

/// Decides what to do with a message whose delivery
/// [`Store::claim_many`] did not return.
pub async fn verdict(store: &Store, delivery_id: &str, destination: &str) -> Result<Verdict> {
    let now = now_ms();
    let Some(pos) = store.lane_position(delivery_id, destination, now).await? else {
        return Ok(Verdict::Unknown);
    };
    let (next, lease) = (pos.next_attempt_at, pos.lease_until);
    match pos.state.as_str() {
        "delivered" | "dead" => return Ok(Verdict::Finished),
        "pending" if next > now => return Ok(Verdict::WaitUntil(next)),
        "in_flight" if lease.unwrap_or(0) >= now => {
            return Ok(Verdict::WaitUntil(lease.unwrap_or(now) + 1))
        }
        _ => {}
    }
    // Due, so it must be blocked: wait until the head of its dossier is due again.
    // Until the head can be settled: its retry time when it waits, the end of
    // its lease when it is in flight. Its settlement wakes this one sooner.
    let at = match pos.head {
        Some((state, next, _)) if state == "pending" => next,
        Some((_, _, lease)) => lease.unwrap_or(now),
        None => now,
    };
    Ok(Verdict::WaitUntil(at.max(now + BLOCKED_MIN_WAIT_MS)))
}
