//! Verifying the trail and every row it covers.
//!
//! # What is checked, and how each tampering shows up
//!
//! Walking the trail in `seq` order ([`ChainChecker`]):
//!
//! * a **deleted trail row** leaves a gap in `seq` (or, at the end, a `chain_head`
//!   that is ahead of the last row);
//! * an **edited trail row** no longer hashes to its `hash`. If the next row still
//!   links to the stored `hash`, the row's content (`at`, `kind`, `actor`, ids or
//!   `detail`) was changed; if the next row links to the *recomputed* hash, the
//!   `hash` column itself was changed;
//! * `detail` is also compared byte for byte with its canonical form, so even a
//!   whitespace-only edit (which would not change the parsed JSON) is caught;
//! * an edited `prev_hash` breaks the link to the previous row.
//!
//! Comparing the recorded rows ([`RecordChecker`], see [`super::digest`]):
//!
//! * an **edited message, delivery or attempt** differs from the record in the
//!   event written with it: verify names the column (small columns are compared
//!   verbatim, payloads by SHA-256);
//! * a **deleted row** is missing for a record; a row **inserted behind the hub's
//!   back** has no record (full verification only);
//! * a delivery whose `state` says delivered or dead must have that outcome in the
//!   trail (full verification only), so flipping a dead letter to "delivered" shows;
//! * a **pruned** payload (empty, `pruned_at` set) is accepted only when a
//!   `retention.pruned` event's cut-off covers the record's date; otherwise
//!   marking a row pruned would be a way to hide an edit.
//!
//! The same checkers verify an exported bundle offline ([`super::bundle`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::chain::{canonical_json, event_hash, event_object, GENESIS_HASH};
use super::digest::{sha256_hex, TableSpec, TABLES};
use crate::store::audit_ops::{StoredRecord, StoredTrailRow};
use crate::store::Store;
use crate::Result;

/// Most problems kept in a report (the first one is what matters; the rest help triage).
pub const MAX_PROBLEMS: usize = 200;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `trail`, `chain_head`, `messages`, `deliveries`, `attempts`, or a bundle file.
    pub table: String,
    /// Trail `seq`, or the record key (`<delivery_id>#<n>` for attempts).
    pub key: String,
    /// The column (or `row` when the whole row is missing or extra).
    pub field: String,
    /// What is wrong, in words.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.table, self.key, self.field, self.what
        )
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub trail_rows: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// `prev_hash` of the first row checked and `hash` of the last: the anchors.
    pub first_prev_hash: Option<String>,
    pub last_hash: Option<String>,
    pub records_checked: u64,
    pub records_pruned: u64,
    pub problems: Vec<Problem>,
    /// More problems existed than [`MAX_PROBLEMS`].
    pub truncated: bool,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
    fn push(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.truncated = true;
        }
    }
}

fn problem(table: &str, key: impl ToString, field: &str, what: impl Into<String>) -> Problem {
    Problem {
        table: table.into(),
        key: key.to_string(),
        field: field.into(),
        what: what.into(),
    }
}

/// A record expected from the trail: the trail seq that holds it and the record object.
#[derive(Debug, Clone)]
pub struct Expected {
    pub seq: i64,
    pub record: Value,
}

/// Walks trail rows in order; see the module docs.
#[derive(Debug, Default)]
pub struct ChainChecker {
    pub report: Report,
    /// `(table, key)` → the record that pins that row down.
    pub expected: HashMap<(String, String), Expected>,
    /// Latest cut-off of any `retention.pruned` event.
    pub prune_cutoff: Option<i64>,
    /// Last `delivered`/`dead` event per delivery id.
    pub outcomes: HashMap<String, String>,
    /// The previous row: `(seq, stored hash, recomputed hash)`.
    prev: Option<(i64, String, String)>,
}

impl ChainChecker {
    /// `anchor` is the `prev_hash` the first row must carry (`None`: accept the first row's own).
    pub fn new(anchor: Option<(i64, String)>) -> Self {
        let mut c = ChainChecker::default();
        if let Some((seq, hash)) = anchor {
            c.prev = Some((seq, hash.clone(), hash));
        }
        c
    }

    /// Forgets the previous row, so the next one is not linked to it (bundles link
    /// through their spine instead).
    pub fn unlink(&mut self) {
        self.prev = None;
    }

    /// Checks one row; rows must come in increasing `seq`.
    pub fn push(&mut self, row: &StoredTrailRow) {
        let r = &mut self.report;
        r.trail_rows += 1;
        if r.first_seq.is_none() {
            r.first_seq = Some(row.seq);
            r.first_prev_hash = Some(row.prev_hash.clone());
        }
        r.last_seq = Some(row.seq);
        r.last_hash = Some(row.hash.clone());
        let seq = row.seq;
        // Parse and check the canonical form of `detail`.
        let detail: Value = match serde_json::from_str(&row.detail) {
            Ok(v) => v,
            Err(e) => {
                self.report.push(problem(
                    "trail",
                    seq,
                    "detail",
                    format!("not valid JSON any more ({e}): the row was edited"),
                ));
                Value::String(row.detail.clone())
            }
        };
        if detail.is_object() && canonical_json(&detail) != row.detail {
            self.report.push(problem(
                "trail",
                seq,
                "detail",
                "the stored bytes differ from the canonical form the hub writes: the row was edited",
            ));
        }
        let obj = event_object(
            seq,
            row.at,
            row.message_id.as_deref(),
            row.delivery_id.as_deref(),
            &row.kind,
            &row.actor,
            &detail,
        );
        let recomputed = event_hash(&row.prev_hash, &obj);
        // Link to the previous row.
        if let Some((pseq, pstored, precomputed)) = self.prev.take() {
            let content_changed = pstored != precomputed;
            if seq != pseq + 1 {
                if seq > pseq + 1 {
                    let what = if seq == pseq + 2 {
                        format!("trail row {} is missing (deleted)", pseq + 1)
                    } else {
                        format!(
                            "trail rows {}..={} are missing (deleted)",
                            pseq + 1,
                            seq - 1
                        )
                    };
                    self.report.push(problem("trail", pseq + 1, "seq", what));
                } else {
                    self.report.push(problem(
                        "trail",
                        seq,
                        "seq",
                        format!("out of order or duplicated after seq {pseq}"),
                    ));
                }
            } else if row.prev_hash == pstored {
                if content_changed {
                    self.report.push(problem(
                        "trail",
                        pseq,
                        "content",
                        "hash mismatch: one of at, kind, actor, message_id, delivery_id or detail was changed",
                    ));
                }
            } else if content_changed && row.prev_hash == precomputed {
                self.report.push(problem(
                    "trail",
                    pseq,
                    "hash",
                    "the hash column was changed",
                ));
            } else {
                if content_changed {
                    self.report.push(problem(
                        "trail",
                        pseq,
                        "content",
                        "hash mismatch: the row was changed",
                    ));
                }
                self.report.push(problem(
                    "trail",
                    seq,
                    "prev_hash",
                    format!(
                        "does not link to the hash of seq {pseq}: the prev_hash column was changed"
                    ),
                ));
            }
        }
        self.prev = Some((seq, row.hash.clone(), recomputed));
        // What this row pins down.
        if let Some(records) = detail.get("records").and_then(Value::as_array) {
            for rec in records {
                let table = rec
                    .get("table")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let key = rec
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.expected.insert(
                    (table, key),
                    Expected {
                        seq,
                        record: rec.clone(),
                    },
                );
            }
        }
        match row.kind.as_str() {
            "retention.pruned" => {
                if let Some(c) = detail.get("older_than").and_then(Value::as_i64) {
                    self.prune_cutoff = Some(self.prune_cutoff.map_or(c, |p| p.max(c)));
                }
            }
            "delivered" | "dead" => {
                if let Some(d) = &row.delivery_id {
                    self.outcomes.insert(d.clone(), row.kind.clone());
                }
            }
            _ => {}
        }
    }

    /// Ends the walk. `head` is the store's `chain_head` (`None` for a bundle, whose
    /// anchors are checked separately). Reports a last row whose hash does not match.
    pub fn finish(&mut self, head: Option<(i64, &str)>) {
        let Some((pseq, pstored, precomputed)) = self.prev.clone() else {
            if let Some((hseq, _)) = head {
                if hseq > 0 {
                    self.report.push(problem(
                        "trail",
                        1,
                        "row",
                        format!(
                            "the trail is empty but chain_head is at seq {hseq}: rows were deleted"
                        ),
                    ));
                }
            }
            return;
        };
        if self.report.trail_rows == 0 {
            return;
        }
        let changed = pstored != precomputed;
        match head {
            Some((hseq, hhash)) => {
                if hseq > pseq {
                    self.report.push(problem(
                        "trail",
                        pseq + 1,
                        "row",
                        format!("rows {}..={hseq} are missing (deleted from the end; chain_head is at {hseq})", pseq + 1),
                    ));
                } else if hseq == pseq && hhash != pstored {
                    if changed && hhash == precomputed {
                        self.report.push(problem(
                            "trail",
                            pseq,
                            "hash",
                            "the hash column was changed",
                        ));
                    } else {
                        self.report.push(problem(
                            "chain_head",
                            1,
                            "hash",
                            format!("does not match the hash of the last row (seq {pseq})"),
                        ));
                    }
                } else if changed {
                    self.report.push(problem(
                        "trail",
                        pseq,
                        "content",
                        "hash mismatch: the row was changed",
                    ));
                }
            }
            None => {
                if changed {
                    self.report.push(problem(
                        "trail",
                        pseq,
                        "content",
                        "hash mismatch: the row was changed",
                    ));
                }
            }
        }
    }
}

/// Compares recorded rows with their records.
pub struct RecordChecker<'a> {
    pub spec: &'a TableSpec,
    pub prune_cutoff: Option<i64>,
}

impl RecordChecker<'_> {
    /// Checks one stored row against its record; pushes problems into `report`.
    pub fn check(&self, expected: &Expected, stored: &StoredRecord, report: &mut Report) {
        let t = self.spec.table;
        let key = &stored.key;
        report.records_checked += 1;
        let rec = &expected.record;
        for ((name, _), actual) in self.spec.cols.iter().zip(&stored.cols) {
            let want = rec
                .get("cols")
                .and_then(|c| c.get(*name))
                .unwrap_or(&Value::Null);
            if !json_eq(want, actual) {
                report.push(problem(
                    t,
                    key,
                    name,
                    format!("is {actual} but trail seq {} recorded {want}", expected.seq),
                ));
            }
        }
        let pruned = stored.pruned_at.is_some();
        if pruned {
            report.records_pruned += 1;
            let dated = self
                .spec
                .cols
                .iter()
                .position(|(n, _)| *n == self.spec.time_col)
                .and_then(|i| stored.cols[i].as_i64());
            let covered = matches!((self.prune_cutoff, dated), (Some(c), Some(d)) if d < c);
            if !covered {
                report.push(problem(
                    t,
                    key,
                    "pruned_at",
                    "is marked pruned but no retention.pruned event in the trail covers its date: the mark was added by hand",
                ));
            }
        }
        for ((name, _), actual) in self.spec.payloads.iter().zip(&stored.payloads) {
            let want = rec
                .get("sha256")
                .and_then(|c| c.get(*name))
                .unwrap_or(&Value::Null);
            let empty = actual.as_ref().is_none_or(|b| b.is_empty());
            if pruned && empty {
                continue;
            }
            let got = actual
                .as_deref()
                .map_or(Value::Null, |b| Value::from(sha256_hex(b)));
            if &got != want {
                report.push(problem(
                    t,
                    key,
                    name,
                    format!("payload digest mismatch: SHA-256 is {got} but trail seq {} recorded {want}", expected.seq),
                ));
            }
        }
    }
}

/// Numbers compared by value (the trail keeps them as JSON text).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.to_string() == y.to_string() || x.as_i64() == y.as_i64() && x.as_i64().is_some()
        }
        _ => a == b,
    }
}

/// What to verify and how to report progress.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// Only trail rows with `at` in this range (epoch ms, inclusive), and the rows they record.
    pub range: Option<(i64, i64)>,
    /// Called now and then with `(rows done, rows total)`.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

const PAGE: i64 = 5000;

/// Verifies the store: the whole chain, or a time range. See the module docs.
pub async fn verify_store(store: &Store, opts: &VerifyOptions<'_>) -> Result<Report> {
    let (head_seq, head_hash) = store.chain_head().await?;
    let full = opts.range.is_none();
    let (lo, hi) = match opts.range {
        None => (1, head_seq),
        Some((from, to)) => match store.seq_bounds(from, to).await? {
            Some(b) => b,
            None => return Ok(Report::default()),
        },
    };
    let anchor = if lo <= 1 {
        Some((0, GENESIS_HASH.to_string()))
    } else {
        store
            .trail_rows(&[lo - 1])
            .await?
            .pop()
            .map(|r| (r.seq, r.hash))
    };
    let mut chain = ChainChecker::new(anchor);
    if lo > 1 && chain.prev.is_none() {
        chain.report.push(problem(
            "trail",
            lo - 1,
            "row",
            "is missing (deleted): the range cannot be linked to the chain",
        ));
    }
    let total = (hi - lo + 1).max(0) as u64;
    let mut cursor = lo;
    while cursor <= hi {
        let page = store.trail_page(cursor, hi, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq + 1;
        for row in &page {
            chain.push(row);
        }
        if let Some(p) = opts.progress {
            p(chain.report.trail_rows, total);
        }
    }
    if full {
        chain.finish(Some((head_seq, &head_hash)));
    } else {
        chain.finish(None);
    }
    let ChainChecker {
        mut report,
        mut expected,
        prune_cutoff,
        outcomes,
        ..
    } = chain;

    // Rows appended while we walked are not covered by what we read; read their records
    // too so that a concurrently inserted row is not reported as "not covered".
    let mut later: HashSet<(String, String)> = HashSet::new();
    if full {
        let extra = store.trail_page(head_seq + 1, i64::MAX, 100_000).await?;
        for row in &extra {
            if let Ok(Value::Object(d)) = serde_json::from_str::<Value>(&row.detail) {
                for rec in d
                    .get("records")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let t = rec.get("table").and_then(Value::as_str).unwrap_or_default();
                    let k = rec.get("key").and_then(Value::as_str).unwrap_or_default();
                    later.insert((t.to_string(), k.to_string()));
                }
            }
        }
    }

    for spec in TABLES {
        let mut keys: Vec<String> = expected
            .keys()
            .filter(|(t, _)| t == spec.table)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        let stored = store.records(spec, &keys).await?;
        let checker = RecordChecker { spec, prune_cutoff };
        let mut seen: BTreeMap<String, ()> = BTreeMap::new();
        for s in &stored {
            if let Some(e) = expected.get(&(spec.table.to_string(), s.key.clone())) {
                checker.check(e, s, &mut report);
                if full && spec.table == "deliveries" {
                    check_state(s, outcomes.get(&s.key), &mut report);
                }
            }
            seen.insert(s.key.clone(), ());
        }
        for k in &keys {
            if !seen.contains_key(k) {
                let e = expected
                    .remove(&(spec.table.to_string(), k.clone()))
                    .expect("listed from the map");
                report.push(problem(
                    spec.table,
                    k,
                    "row",
                    format!("is missing (deleted); trail seq {} recorded it", e.seq),
                ));
            }
        }
        if full {
            for k in store.record_keys(spec).await? {
                let id = (spec.table.to_string(), k.clone());
                if !expected.contains_key(&id) && !later.contains(&id) {
                    report.push(problem(
                        spec.table,
                        &k,
                        "row",
                        "is not recorded in the trail: inserted or re-keyed outside the hub",
                    ));
                }
            }
        }
    }
    Ok(report)
}

fn check_state(s: &StoredRecord, outcome: Option<&String>, report: &mut Report) {
    let state = s.state.as_deref().unwrap_or_default();
    let bad = match (state, outcome.map(String::as_str)) {
        ("delivered", Some("delivered")) | ("dead", Some("dead")) => false,
        ("delivered", _) | ("dead", _) => true,
        (_, Some(_)) => true,
        _ => false,
    };
    if bad {
        report.push(problem(
            "deliveries",
            &s.key,
            "state",
            format!(
                "is `{state}` but the trail's outcome for it is {}",
                outcome.map_or("none".to_string(), |o| format!("`{o}`"))
            ),
        ));
    }
}
