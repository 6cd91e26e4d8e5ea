//! Per-destination delivery policy: timeout, rate, concurrency, attempts, backoff.
//!
//! These are the only knobs that decide *when* a delivery is tried again; the
//! transport only says whether a failure is transient or permanent.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// Fraction (0..=1) of the delay that is randomised, both ways, so that many
    /// deliveries failing together do not retry together.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// Delay before attempt `failed_attempt + 1`, after `failed_attempt` (1-based) failed.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        let exp = self
            .multiplier
            .powi(failed_attempt.saturating_sub(1).min(64) as i32);
        let base = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            rand::rng().random_range((1.0 - j)..=(1.0 + j))
        } else {
            1.0
        };
        Duration::from_secs_f64((base * factor).min(self.max.as_secs_f64()).max(0.0))
    }
}

/// How one destination is delivered to.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationPolicy {
    /// Whole-request timeout of one attempt.
    pub timeout: Duration,
    /// Sustained requests per second (governor); excess waits, never dropped.
    pub rate_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Most attempts in flight at once.
    pub concurrency: u32,
    /// Attempts before a transient failure becomes a dead letter.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl Default for DestinationPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            rate_per_second: 50,
            burst: 50,
            concurrency: 8,
            max_attempts: 10,
            backoff: Backoff::default(),
        }
    }
}

impl DestinationPolicy {
    /// How long a worker may hold a delivery: waiting for the rate limiter (at most
    /// `concurrency / rate` seconds) plus the attempt, with a generous margin.
    pub fn lease(&self) -> Duration {
        let rate_wait =
            Duration::from_secs_f64(self.concurrency as f64 / self.rate_per_second.max(1) as f64);
        self.timeout * 2 + rate_wait + Duration::from_secs(30)
    }

    /// One replica's share of this policy when `replicas` hubs deliver to the
    /// same partner: rate, burst and concurrency divided by `replicas`, rounded
    /// up (never below 1). The partner then sees at most about the configured
    /// totals. (A delivery-policy question, so it lives here, not with the
    /// RabbitMQ settings that carry `replicas`.)
    pub fn replica_share(&self, replicas: u32) -> DestinationPolicy {
        let n = replicas.max(1);
        let div = |v: u32| v.div_ceil(n).max(1);
        DestinationPolicy {
            rate_per_second: div(self.rate_per_second),
            burst: div(self.burst),
            concurrency: div(self.concurrency),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_split_the_limits() {
        let p = DestinationPolicy {
            rate_per_second: 10,
            burst: 5,
            concurrency: 8,
            ..Default::default()
        };
        let s = p.replica_share(3);
        assert_eq!((s.rate_per_second, s.burst, s.concurrency), (4, 2, 3));
        assert_eq!(p.replica_share(1), p);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(5), Duration::from_secs(1));
        assert_eq!(b.delay(50), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(100),
            multiplier: 2.0,
            jitter: 0.5,
        };
        for _ in 0..200 {
            let d = b.delay(1).as_secs_f64();
            assert!((5.0..=15.0).contains(&d), "{d}");
        }
    }
}
