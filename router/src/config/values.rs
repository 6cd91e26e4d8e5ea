//! The validation phase's tools: [`Ctx`] collects diagnostics at the position of
//! the value they are about, and checks the kinds of value that recur in many
//! sections (durations, positive counts, rates, delivery policies).
//!
//! Each check reports and returns a usable fallback (the default, or the value it
//! would inherit), so that validation goes on and reports every problem at once.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::duration::parse_duration;
use super::model::*;
use crate::delivery::policy::Backoff;
use crate::delivery::DestinationPolicy;
use crate::{Diagnostic, Diagnostics};

/// Collects diagnostics with the position of a value (file line, or the env var that set it).
pub(super) struct Ctx<'a> {
    pub file: &'a str,
    pub raw: &'a RawConfig,
    pub diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    pub fn err<T>(&mut self, key: &str, at: Option<&Spanned<T>>, message: String) {
        let (file, line, column) = match (self.raw.env_sources.get(key), at) {
            (Some(var), _) => (format!("environment {var}"), 0, 0),
            (None, Some(s)) => (
                self.file.to_string(),
                s.referenced.line() as usize,
                s.referenced.column() as usize,
            ),
            (None, None) => (self.file.to_string(), 0, 0),
        };
        self.diags.push(Diagnostic {
            file,
            line,
            column,
            context: key.to_string(),
            message,
        });
    }

    pub fn duration(
        &mut self,
        key: &str,
        v: &Option<Spanned<String>>,
        default: Duration,
    ) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(&s.value) {
                Ok(d) => d,
                Err(e) => {
                    self.err(key, Some(s), e);
                    default
                }
            },
        }
    }

    pub fn positive(&mut self, key: &str, v: &Option<Spanned<u32>>, default: u32) -> u32 {
        match v {
            Some(s) if s.value == 0 => {
                self.err(key, Some(s), "must be at least 1".into());
                default
            }
            Some(s) => s.value,
            None => default,
        }
    }

    /// A duration that must lie within `range` (inclusive); out of range reports and uses `default`.
    pub fn duration_in(
        &mut self,
        key: &str,
        v: &Option<Spanned<String>>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let d = self.duration(key, v, default);
        if d < min || d > max {
            self.err(
                key,
                v.as_ref(),
                format!("{d:?} is out of range: use {min:?} to {max:?}"),
            );
            return default;
        }
        d
    }

    pub fn rate(&mut self, key: &str, r: &Option<RawRate>, default: (u32, u32)) -> (u32, u32) {
        match r {
            None => default,
            Some(r) => {
                let per = self.positive(&format!("{key}.per_second"), &r.per_second, default.0);
                let burst = self.positive(
                    &format!("{key}.burst"),
                    &r.burst,
                    per.max(default.1.min(per)),
                );
                (per, burst)
            }
        }
    }

    /// A destination's delivery policy; every key not given is inherited from `base`.
    pub fn policy(
        &mut self,
        key: &str,
        d: &RawDestination,
        base: &DestinationPolicy,
    ) -> DestinationPolicy {
        let timeout = self.duration(&format!("{key}.timeout"), &d.timeout, base.timeout);
        if timeout.is_zero() {
            self.err(
                &format!("{key}.timeout"),
                d.timeout.as_ref(),
                "must be more than zero".into(),
            );
        }
        let (rate_per_second, burst) = self.rate(
            &format!("{key}.rate_limit"),
            &d.rate_limit,
            (base.rate_per_second, base.burst),
        );
        let concurrency = self.positive(
            &format!("{key}.concurrency"),
            &d.concurrency,
            base.concurrency,
        );
        let max_attempts = self.positive(
            &format!("{key}.max_attempts"),
            &d.max_attempts,
            base.max_attempts,
        );
        let backoff = match &d.backoff {
            Some(b) => self.backoff(key, b, &base.backoff),
            None => base.backoff.clone(),
        };
        DestinationPolicy {
            timeout,
            rate_per_second,
            burst,
            concurrency,
            max_attempts,
            backoff,
        }
    }

    /// `<key>.backoff`: delays, multiplier (1.0..=10.0) and jitter (0.0..=1.0); initial ≤ max.
    fn backoff(&mut self, key: &str, b: &RawBackoff, base: &Backoff) -> Backoff {
        let mut backoff = base.clone();
        backoff.initial = self.duration(
            &format!("{key}.backoff.initial"),
            &b.initial,
            backoff.initial,
        );
        backoff.max = self.duration(&format!("{key}.backoff.max"), &b.max, backoff.max);
        if let Some(m) = &b.multiplier {
            if !(1.0..=10.0).contains(&m.value) {
                self.err(
                    &format!("{key}.backoff.multiplier"),
                    Some(m),
                    format!("{} is out of range: use 1.0 to 10.0", m.value),
                );
            } else {
                backoff.multiplier = m.value;
            }
        }
        if let Some(j) = &b.jitter {
            if !(0.0..=1.0).contains(&j.value) {
                self.err(
                    &format!("{key}.backoff.jitter"),
                    Some(j),
                    format!("{} is out of range: use 0.0 to 1.0", j.value),
                );
            } else {
                backoff.jitter = j.value;
            }
        }
        if backoff.initial > backoff.max {
            self.err(
                &format!("{key}.backoff.initial"),
                b.initial.as_ref(),
                format!(
                    "initial delay {:?} is longer than max {:?}",
                    backoff.initial, backoff.max
                ),
            );
        }
        backoff
    }
}
