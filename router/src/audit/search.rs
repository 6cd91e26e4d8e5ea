//! Search filters and time ranges: parsing and validation.
//!
//! The API and the CLI accept the same filters. They are parsed here, once,
//! into a [`MessageQuery`] the store runs; anything malformed is refused with a
//! message naming the parameter and what would be accepted, before any SQL runs.
//!
//! # Why a maximum range
//!
//! A search without bounds over years of messages is a full scan that competes
//! with intake for the same database. Searches default to the last 7 days and
//! may span at most [`MAX_SEARCH_RANGE_DAYS`]; an auditor who needs more runs
//! several searches or an export.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Asia::Ho_Chi_Minh;

use crate::store::audit_ops::MessageQuery;

/// Largest search window.
pub const MAX_SEARCH_RANGE_DAYS: i64 = 366;
/// Default window when `from` is not given.
pub const DEFAULT_SEARCH_DAYS: i64 = 7;
/// Largest page.
pub const MAX_LIMIT: i64 = 500;
pub const DAY_MS: i64 = 86_400_000;

const STATES: &[&str] = &[
    "accepted",
    "rejected",
    "pending",
    "in_flight",
    "delivered",
    "dead",
];

/// Parses a point in time: RFC 3339 (`2026-11-28T08:00:00+07:00`), a date
/// (`2026-11-28`, midnight in Asia/Ho_Chi_Minh, the province's time), or epoch milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        if let Some(x) = Ho_Chi_Minh.from_local_datetime(&midnight).single() {
            return Ok(x.timestamp_millis());
        }
    }
    if !t.is_empty() && t.len() >= 10 && t.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(ms) = t.parse::<i64>() {
            return Ok(ms);
        }
    }
    Err(format!(
        "`{s}` is not a time: write RFC 3339 (2026-11-28T08:00:00+07:00), a date (2026-11-28, Vietnam time) or epoch milliseconds"
    ))
}

/// Epoch ms as RFC 3339 in Vietnam time (how times are shown to auditors).
pub fn show_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(&Ho_Chi_Minh).to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}

/// `from`/`to` (either may be missing) into an inclusive epoch-ms range.
/// `default_days` applies when `from` is missing; `max_days` bounds the span (`None`: unbounded).
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    now_ms: i64,
    default_days: i64,
    max_days: Option<i64>,
) -> Result<(i64, i64), String> {
    let to_ms = to
        .map(parse_time)
        .transpose()
        .map_err(|e| format!("to: {e}"))?
        .unwrap_or(now_ms);
    let from_ms = from
        .map(parse_time)
        .transpose()
        .map_err(|e| format!("from: {e}"))?
        .unwrap_or(to_ms - default_days * DAY_MS);
    if from_ms > to_ms {
        return Err(format!(
            "the time range is inverted: from ({from_ms}) is after to ({to_ms}); swap them"
        ));
    }
    if let Some(max) = max_days {
        if to_ms - from_ms > max * DAY_MS {
            return Err(format!(
                "the time range spans {} days, more than the {max} allowed: narrow it, or run several searches",
                (to_ms - from_ms) / DAY_MS
            ));
        }
    }
    Ok((from_ms, to_ms))
}

/// Query-string parameters of `GET /api/v1/messages` (and `lienthong messages search`).
pub const SEARCH_PARAMS: &[&str] = &[
    "dossier",
    "system",
    "message_type",
    "state",
    "from",
    "to",
    "mapping",
    "mapping_version",
    "limit",
    "cursor",
];

/// Validates search parameters; every problem is reported at once.
pub fn message_query(
    params: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<MessageQuery, Vec<String>> {
    let mut errs = Vec::new();
    for k in params.keys() {
        if !SEARCH_PARAMS.contains(&k.as_str()) {
            errs.push(format!(
                "unknown filter `{k}`: use one of {}",
                SEARCH_PARAMS.join(", ")
            ));
        }
    }
    let text = |k: &str, errs: &mut Vec<String>| -> Option<String> {
        let v = params.get(k)?.trim().to_string();
        if v.is_empty() || v.len() > 200 || v.chars().any(char::is_control) {
            errs.push(format!(
                "filter `{k}` must be 1 to 200 printable characters"
            ));
            return None;
        }
        Some(v)
    };
    let dossier = text("dossier", &mut errs);
    let system = text("system", &mut errs);
    let message_type = text("message_type", &mut errs);
    let mapping_id = text("mapping", &mut errs);
    let state = text("state", &mut errs);
    if let Some(s) = &state {
        if !STATES.contains(&s.as_str()) {
            errs.push(format!("state `{s}` is not one of {}", STATES.join(", ")));
        }
    }
    let mapping_version = match params.get("mapping_version") {
        None => None,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                errs.push(format!("mapping_version `{v}` must be a whole number ≥ 1"));
                None
            }
        },
    };
    let limit = match params.get("limit") {
        None => 50,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errs.push(format!(
                    "limit `{v}` must be a whole number from 1 to {MAX_LIMIT}"
                ));
                50
            }
        },
    };
    let before = match params.get("cursor") {
        None => None,
        Some(c) => {
            match c
                .split_once(':')
                .and_then(|(a, id)| Some((a.parse::<i64>().ok()?, id.to_string())))
            {
                Some((a, id)) if !id.is_empty() => Some((a, id)),
                _ => {
                    errs.push(format!("cursor `{c}` is malformed: pass back the `next_cursor` of the previous page"));
                    None
                }
            }
        }
    };
    let range = parse_range(
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
        now_ms,
        DEFAULT_SEARCH_DAYS,
        Some(MAX_SEARCH_RANGE_DAYS),
    );
    let (from, to) = match range {
        Ok(r) => r,
        Err(e) => {
            errs.push(e);
            (0, 0)
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(MessageQuery {
        dossier,
        system,
        message_type,
        state,
        from,
        to,
        mapping_id,
        mapping_version,
        before,
        limit,
        ..MessageQuery::default()
    })
}

/// The cursor for the page after one ending with this message.
pub fn cursor_after(received_at: i64, id: &str) -> String {
    format!("{received_at}:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn times_and_ranges() {
        assert_eq!(
            parse_time("2026-11-28T00:00:00+07:00").unwrap(),
            parse_time("2026-11-28").unwrap()
        );
        assert_eq!(parse_time("1764262800000").unwrap(), 1_764_262_800_000);
        assert!(parse_time("yesterday").is_err());
        assert!(
            parse_range(Some("2026-11-28"), Some("2026-11-27"), 0, 7, None)
                .unwrap_err()
                .contains("inverted")
        );
        assert!(
            parse_range(Some("2024-01-01"), Some("2026-01-01"), 0, 7, Some(366))
                .unwrap_err()
                .contains("more than")
        );
        let now = 1_800_000_000_000;
        assert_eq!(
            parse_range(None, None, now, 7, Some(366)).unwrap(),
            (now - 7 * DAY_MS, now)
        );
    }

    #[test]
    fn filters_are_validated() {
        let q = message_query(
            &p(&[
                ("dossier", "H49.01-2026-00042"),
                ("state", "dead"),
                ("limit", "10"),
            ]),
            1_800_000_000_000,
        )
        .unwrap();
        assert_eq!(q.dossier.as_deref(), Some("H49.01-2026-00042"));
        assert_eq!(q.limit, 10);
        let e = message_query(
            &p(&[
                ("state", "lost"),
                ("limit", "0"),
                ("mapping_version", "x"),
                ("colour", "red"),
                ("cursor", "zz"),
            ]),
            0,
        )
        .unwrap_err();
        assert_eq!(e.len(), 5, "{e:?}");
    }
}
