//! One destination worker's view of a store outage, so that it is logged once
//! when it begins, then at most every [`REPEAT_EVERY`], and once when it ends,
//! instead of once per leased delivery and retry.
//!
//! Why a type of its own: during a PostgreSQL restart every in-flight delivery
//! of every destination fails to settle, and the lease loop fails too. Logged
//! per failure, that was about 6,000 ERROR lines in 15 minutes per hub, which
//! buries the one line an operator needs ("the store is away since …, N
//! failures so far") and costs I/O while the hub should be catching up.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a continuing outage is logged again.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Outage {
    state: Mutex<Option<State>>,
}

struct State {
    since: Instant,
    last_logged: Instant,
    failures: u64,
}

impl Outage {
    /// A store operation of this worker failed with a retryable error.
    pub(crate) fn failed(&self, destination: &str, what: &str, error: &crate::Error) {
        metrics::counter!("lienthong_delivery_store_failures_total", "destination" => destination.to_string())
            .increment(1);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match state.as_mut() {
            None => {
                tracing::error!(%destination, %error, "{what} failed: the store is unreachable; \
                    delivery pauses and retries until it is back (logged again every {REPEAT_EVERY:?})");
                *state = Some(State {
                    since: now,
                    last_logged: now,
                    failures: 1,
                });
            }
            Some(s) => {
                s.failures += 1;
                if now.duration_since(s.last_logged) >= REPEAT_EVERY {
                    s.last_logged = now;
                    tracing::error!(%destination, %error, failures = s.failures, away = ?now.duration_since(s.since),
                        "the store is still unreachable; delivery is paused");
                }
            }
        }
    }

    /// A store operation of this worker succeeded: ends an outage, if any.
    pub(crate) fn recovered(&self, destination: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = state.take() {
            tracing::info!(%destination, failures = s.failures, away = ?s.since.elapsed(),
                "the store is reachable again; delivery resumes");
        }
    }

    #[cfg(test)]
    fn failures(&self) -> Option<u64> {
        self.state.lock().unwrap().as_ref().map(|s| s.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_counted_until_a_success_ends_it() {
        let o = Outage::default();
        let e = crate::Error::Store {
            message: "down".into(),
            retryable: true,
        };
        assert_eq!(o.failures(), None);
        o.failed("tax", "settling", &e);
        o.failed("tax", "leasing", &e);
        assert_eq!(o.failures(), Some(2));
        o.recovered("tax");
        assert_eq!(o.failures(), None);
        o.failed("tax", "settling", &e);
        assert_eq!(o.failures(), Some(1));
    }
}
