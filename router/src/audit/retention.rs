//! Retention: emptying old payloads while the chain stays verifiable.
//!
//! # What is pruned, what is kept
//!
//! Pruning removes the *payloads* of records older than a cut-off:
//! `messages.raw` (emptied) and `messages.parsed` (NULL), `deliveries.body`
//! (emptied, only for delivered or dead deliveries) and the attempts'
//! `request_excerpt`/`response_excerpt` (NULL). It sets `pruned_at` on each
//! pruned row. A message is only pruned when none of its deliveries is still
//! pending, so a replay in progress never loses its bytes.
//!
//! Everything else is kept for ever: the trail rows (with the SHA-256 of every
//! payload), and each record's small columns (ids, systems, types, dossier code,
//! times, states, errors). So after pruning one can still prove *that* a given
//! document was received and forwarded, and check a copy of it against its digest,
//! without the hub holding personal data longer than allowed.
//!
//! Each run appends one `retention.pruned` event with the cut-off
//! (`older_than`, epoch ms) and the counts. Verify accepts an empty payload only on
//! a row marked pruned whose date is before some such cut-off, so marking a row
//! "pruned" by hand is itself detected.

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::TrailEvent;
use crate::store::audit_ops::WriteOp;
use crate::store::prune::prune_payloads;
use crate::store::{now_ms, Store};
use crate::Result;

/// The default age after which payloads may be pruned (`retention.payloads` in the config).
pub const DEFAULT_RETENTION_DAYS: u64 = 365;

/// The `retention:` section of the config.
///
/// ```yaml
/// retention:
///   payloads: 365d    # `lienthong audit prune` without --older-than uses this
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default)]
    pub payloads: Option<String>,
}

/// Parses an age: `365d`, `12h`, `30m`, `90s`, or `2w`.
pub fn parse_age(s: &str) -> std::result::Result<std::time::Duration, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not an age: write e.g. `365d`, `26w`, `48h`");
    let i = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let too_old = || {
        format!(
            "`{s}` is older than anything the hub can hold (the most is {}d, 100 years): \
             to keep payloads for ever, leave the age out",
            MAX_AGE_SECS / 86_400
        )
    };
    let n: u64 = t[..i].parse().map_err(|_| too_old())?;
    let unit: u64 = match &t[i..] {
        "w" => 7 * 86_400,
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit).ok_or_else(too_old)?;
    if secs == 0 {
        return Err(format!("`{s}`: the age must be more than zero"));
    }
    if secs > MAX_AGE_SECS {
        return Err(too_old());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// The oldest age a prune may name: 100 years. Older than the hub, and far from
/// the edge of the epoch-millisecond arithmetic that turns an age into a cut-off.
pub const MAX_AGE_SECS: u64 = 100 * 365 * 86_400;

/// What a prune run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Records dated strictly before this (epoch ms) were pruned.
    pub older_than: i64,
    pub messages: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

struct Prune {
    cutoff: i64,
    at: i64,
    actor: String,
}

impl WriteOp for Prune {
    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        events: &'c mut Vec<TrailEvent>,
    ) -> BoxFuture<'c, Result<Value>> {
        Box::pin(async move {
            let pruned = prune_payloads(conn, self.cutoff, self.at).await?;
            let (m, d, a) = (pruned.messages, pruned.deliveries, pruned.attempts);
            let out =
                json!({ "older_than": self.cutoff, "messages": m, "deliveries": d, "attempts": a });
            events.push(TrailEvent {
                at: self.at,
                message_id: None,
                delivery_id: None,
                kind: "retention.pruned",
                actor: self.actor.clone(),
                detail: out.clone(),
            });
            Ok(out)
        })
    }
}

/// Prunes payloads of records dated before `now - older_than`.
pub async fn prune(
    store: &Store,
    older_than: std::time::Duration,
    actor: &str,
) -> Result<PruneOutcome> {
    let at = now_ms();
    // Ages come from `parse_age`, which refuses anything over MAX_AGE_SECS; the
    // clamp keeps a caller that built a Duration itself from wrapping the cut-off.
    let age_ms = older_than.as_secs().min(MAX_AGE_SECS) as i64 * 1000;
    let cutoff = at.saturating_sub(age_ms);
    prune_before(store, cutoff, actor).await
}

/// Prunes payloads of records dated strictly before `cutoff` (epoch ms).
pub async fn prune_before(store: &Store, cutoff: i64, actor: &str) -> Result<PruneOutcome> {
    let v = store
        .audit_write(Box::new(Prune {
            cutoff,
            at: now_ms(),
            actor: actor.to_string(),
        }))
        .await?;
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(PruneOutcome {
        older_than: cutoff,
        messages: n("messages"),
        deliveries: n("deliveries"),
        attempts: n("attempts"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("365d").unwrap().as_secs(), 365 * 86_400);
        assert_eq!(parse_age("2w").unwrap().as_secs(), 14 * 86_400);
        assert!(parse_age("1y").is_err());
        assert!(parse_age("0d").is_err());
        assert!(parse_age("d").is_err());
    }

    #[test]
    fn huge_ages_are_refused_not_wrapped() {
        for t in [
            "9300000000000000s",
            "99999999999999999d",
            "18446744073709551616s",
            "36501d",
        ] {
            let e = parse_age(t).unwrap_err();
            assert!(e.contains("100 years"), "{t}: {e}");
        }
        assert!(parse_age("36500d").is_ok());
    }
}
