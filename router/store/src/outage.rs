//! One background task's view of a store outage (a delivery worker, the
//! outbox relay, the mapping-generation poller), so that it is logged once
//! when it begins, then at most every [`REPEAT_EVERY`], and once when it ends,
//! instead of once per failed operation.
//!
//! Why a type of its own: during a PostgreSQL restart every in-flight delivery
//! of every destination fails to settle, the lease loop fails, the relay and
//! the poller fail every pass. Logged per failure, that was about 6,000 ERROR
//! lines in 15 minutes per hub, which buries the one line an operator needs
//! ("the store is away since …, N failures so far") and costs I/O while the
//! hub should be catching up. It lives in the store, the bottom floor, so
//! that every task above can use it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a continuing outage is logged again.
pub const REPEAT_EVERY: Duration = Duration::from_secs(30);

pub struct Outage {
    /// Who is speaking, in the log lines and the metric: `delivery to tax`,
    /// `outbox relay`, ...
    task: String,
    state: Mutex<Option<State>>,
}

struct State {
    since: Instant,
    last_logged: Instant,
    failures: u64,
}

impl Outage {
    pub fn new(task: impl Into<String>) -> Outage {
        Outage {
            task: task.into(),
            state: Mutex::new(None),
        }
    }

    /// `what` (an operation of this task) failed with a retryable store error.
    pub fn failed(&self, what: &str, error: &lienthong_core::Error) {
        metrics::counter!("lienthong_store_outage_failures_total", "task" => self.task.clone())
            .increment(1);
        let task = &self.task;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match state.as_mut() {
            None => {
                tracing::error!(%task, %error, "{what} failed: the store is unreachable; \
                    {task} pauses and retries until it is back (logged again every {REPEAT_EVERY:?})");
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
                    tracing::error!(%task, %error, failures = s.failures, away = ?now.duration_since(s.since),
                        "the store is still unreachable; {task} is paused");
                }
            }
        }
    }

    /// An operation of this task succeeded: ends an outage, if any.
    pub fn recovered(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = state.take() {
            let task = &self.task;
            tracing::info!(%task, failures = s.failures, away = ?s.since.elapsed(),
                "the store is reachable again; {task} resumes");
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
        let o = Outage::new("delivery to tax");
        let e = lienthong_core::Error::Store {
            message: "down".into(),
            retryable: true,
            source: None,
        };
        assert_eq!(o.failures(), None);
        o.failed("settling", &e);
        o.failed("leasing", &e);
        assert_eq!(o.failures(), Some(2));
        o.recovered();
        assert_eq!(o.failures(), None);
        o.failed("settling", &e);
        assert_eq!(o.failures(), Some(1));
    }
}
