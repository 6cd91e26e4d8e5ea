//! Exporting a bundle from the store: a time range, or one dossier.
//!
//! What goes in, and why, is described with the format in [`super::bundle`].
//! The export itself is an auditor action and is recorded in the trail
//! (`audit.export`, with the scope, the anchors and the bundle's manifest
//! digest), after the bundle is built; so the export event is never part of the
//! bundle it describes.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{json, Value};

use super::bundle::{self, Bundle};
use super::digest::{sha256_hex, TABLES};
use super::TrailEvent;
use crate::store::audit_ops::StoredTrailRow;
use crate::store::{now_ms, Store};
use crate::{Error, Result};

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Epoch ms, inclusive: trail rows with `at` in this range.
    pub from: i64,
    pub to: i64,
    /// Only this dossier's (or station's) rows, linked by the spine.
    pub dossier: Option<String>,
    /// Recorded as the actor of the `audit.export` event.
    pub actor: String,
}

/// A summary of what was exported.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub trail_rows: usize,
    pub spine_rows: usize,
    pub records: usize,
    pub first_seq: i64,
    pub last_seq: i64,
    pub first_prev_hash: String,
    pub last_hash: String,
    pub manifest_sha256: String,
}

const PAGE: i64 = 5000;

/// Builds the bundle and records the export in the trail.
pub async fn export(store: &Store, opts: &ExportOptions) -> Result<(Bundle, ExportSummary)> {
    let head = store.chain_head().await?;
    let mut seqs: BTreeSet<i64> = BTreeSet::new();
    match &opts.dossier {
        Some(code) => seqs.extend(store.dossier_seqs(code, opts.from, opts.to).await?),
        None => {
            if let Some((lo, hi)) = store.seq_bounds(opts.from, opts.to).await? {
                seqs.extend(lo..=hi);
            }
        }
    }
    let Some(&lo) = seqs.first() else {
        return Err(Error::NotFound(match &opts.dossier {
            Some(c) => format!("no trail rows for dossier `{c}` in the time range: check the code and widen --from/--to"),
            None => "no trail rows in the time range: widen --from/--to".into(),
        }));
    };
    // Retention events after the first row, so pruned payloads can be told from deleted ones.
    seqs.extend(
        store
            .trail_seqs_of_kind("retention.pruned", lo)
            .await?
            .into_iter()
            .filter(|s| *s <= head.0),
    );
    let hi = *seqs.last().expect("not empty");
    let spine = store.trail_spine(lo, hi).await?;
    let mut rows: Vec<StoredTrailRow> = Vec::with_capacity(seqs.len());
    let wanted: Vec<i64> = seqs.iter().copied().collect();
    if opts.dossier.is_none() {
        // Contiguous: page through.
        let mut cursor = lo;
        while cursor <= hi {
            let page = store.trail_page(cursor, hi, PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = last.seq + 1;
            rows.extend(page.into_iter().filter(|r| seqs.contains(&r.seq)));
        }
    } else {
        rows = store.trail_rows(&wanted).await?;
    }
    // The records those rows pin down.
    let mut keys: HashMap<&'static str, Vec<String>> = HashMap::new();
    for r in &rows {
        if let Ok(Value::Object(d)) = serde_json::from_str::<Value>(&r.detail) {
            for rec in d
                .get("records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let t = rec.get("table").and_then(Value::as_str).unwrap_or_default();
                if let (Some(spec), Some(k)) = (
                    TABLES.iter().find(|s| s.table == t),
                    rec.get("key").and_then(Value::as_str),
                ) {
                    keys.entry(spec.table).or_default().push(k.to_string());
                }
            }
        }
    }
    let mut records = Vec::new();
    for spec in TABLES {
        let ks = keys.remove(spec.table).unwrap_or_default();
        for r in store.records(spec, &ks).await? {
            records.push((spec.table, r));
        }
    }
    let scope = json!({
        "from": chrono::DateTime::from_timestamp_millis(opts.from).map(|d| d.to_rfc3339()),
        "to": chrono::DateTime::from_timestamp_millis(opts.to).map(|d| d.to_rfc3339()),
        "dossier": opts.dossier,
    });
    let b = bundle::assemble(scope.clone(), &spine, &rows, &records, head, &opts.actor)?;
    let (first, last) = (
        spine.first().expect("lo exists"),
        spine.last().expect("hi exists"),
    );
    let summary = ExportSummary {
        trail_rows: rows.len(),
        spine_rows: spine.len(),
        records: records.len(),
        first_seq: first.0,
        last_seq: last.0,
        first_prev_hash: first.1.clone(),
        last_hash: last.2.clone(),
        manifest_sha256: sha256_hex(b.files.get("manifest.json").expect("assembled")),
    };
    store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: None,
            delivery_id: None,
            kind: "audit.export",
            actor: opts.actor.clone(),
            detail: json!({ "scope": scope, "summary": summary }),
        }])
        .await?;
    Ok((b, summary))
}
