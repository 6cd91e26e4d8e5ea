//! The audit bundle: a self-contained, offline-checkable copy of part of the trail.
//!
//! # Layout (a directory, or the same files in a POSIX ustar `.tar`)
//!
//! ```text
//! manifest.json      scope, chain anchors, counts, SHA-256 of every other file
//! spine.jsonl        {"seq","prev_hash","hash"} for EVERY trail row from the first
//!                    exported seq to the last: the links that join the exported rows
//! trail.jsonl        {"seq","prev_hash","hash","canonical"} for the exported rows;
//!                    `canonical` is the exact text that was hashed
//! records.jsonl      {"table","key","pruned_at","cols","payloads"} for every message,
//!                    delivery and attempt the exported rows record; `payloads` names
//!                    files under payloads/ (null when SQL NULL or pruned)
//! payloads/<sha256>  payload bytes, content-addressed
//! SHA256SUMS         `sha256sum -c` list of every file above, manifest included
//! ```
//!
//! # Why a spine
//!
//! A dossier's rows are scattered through the chain between other dossiers'
//! rows. Exporting all rows in between would leak other dossiers; exporting only
//! the dossier's rows would leave nothing to link them. The spine carries, for each
//! row in between, only its `seq`, `prev_hash` and `hash`: enough to check that
//! the exported rows sit, unchanged, in one unbroken chain from the first anchor
//! (`prev_hash` of the first row) to the last (`hash` of the last row), and nothing
//! about the other dossiers. Comparing the anchors with the live chain (or with a
//! head hash published earlier) ties the bundle to the hub.
//!
//! A time-range export has every row of the range in `trail.jsonl`; it uses the
//! same format (its spine simply has a full row for every entry). Retention events
//! after the first exported row are always exported in full, so a pruned payload in
//! the bundle can be told from a deleted one.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

use serde_json::{json, Value};

use super::chain::{canonical_json, event_hash};
use super::digest::{sha256_hex, TABLES};
use super::verify::{ChainChecker, Problem, RecordChecker, Report};
use crate::store::audit_ops::{StoredRecord, StoredTrailRow};
use crate::{Error, Result};

pub const FORMAT: &str = "lienthong-audit-bundle/1";

/// A bundle in memory: file name → bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    pub files: BTreeMap<String, Vec<u8>>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context, e)
}

impl Bundle {
    /// Adds `SHA256SUMS` over every file (call last).
    pub fn seal(&mut self) {
        self.files.remove("SHA256SUMS");
        let mut sums = String::new();
        for (name, bytes) in &self.files {
            sums.push_str(&format!("{}  {name}\n", sha256_hex(bytes)));
        }
        self.files.insert("SHA256SUMS".into(), sums.into_bytes());
    }

    /// Writes the bundle: a `.tar` when `path` ends in `.tar`, else a directory.
    pub fn write(&self, path: &Path) -> Result<()> {
        if path.extension().is_some_and(|e| e == "tar") {
            let mut f =
                std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
            write_tar(&mut f, &self.files).map_err(io(format!("writing {}", path.display())))?;
            f.sync_all()
                .map_err(io(format!("syncing {}", path.display())))
        } else {
            for (name, bytes) in &self.files {
                let p = path.join(name);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(io(format!("creating {}", parent.display())))?;
                }
                std::fs::write(&p, bytes).map_err(io(format!("writing {}", p.display())))?;
            }
            Ok(())
        }
    }

    /// Reads a bundle written by [`Bundle::write`] (a `.tar` file or a directory).
    pub fn read(path: &Path) -> Result<Bundle> {
        let meta = std::fs::metadata(path).map_err(io(format!("reading {}", path.display())))?;
        let mut files = BTreeMap::new();
        if meta.is_dir() {
            read_dir(path, path, &mut files)?;
        } else {
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io(format!("reading {}", path.display())))?;
            files = read_tar(&bytes).map_err(|m| Error::Io {
                context: format!(
                    "{}: not a ustar archive written by `lienthong audit export`",
                    path.display()
                ),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, m),
            })?;
        }
        Ok(Bundle { files })
    }
}

fn read_dir(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
        let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
        let p = entry.path();
        if p.is_dir() {
            read_dir(root, &p, out)?;
        } else {
            let name = p
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(
                name,
                std::fs::read(&p).map_err(io(format!("reading {}", p.display())))?,
            );
        }
    }
    Ok(())
}

/// Writes a POSIX ustar archive (regular files only; names ≤ 100 bytes).
pub fn write_tar(w: &mut impl Write, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    for (name, bytes) in files {
        if name.len() > 100 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("file name too long for ustar: {name}"),
            ));
        }
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", bytes.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        w.write_all(&h)?;
        w.write_all(bytes)?;
        let pad = (512 - bytes.len() % 512) % 512;
        w.write_all(&vec![0u8; pad])?;
    }
    w.write_all(&[0u8; 1024])
}

/// Reads the regular files of a ustar archive.
pub fn read_tar(bytes: &[u8]) -> std::result::Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut pos = 0;
    let field = |h: &[u8], a: usize, b: usize| {
        String::from_utf8_lossy(&h[a..b])
            .trim_end_matches('\0')
            .to_string()
    };
    let octal = |h: &[u8], a: usize, b: usize| -> Option<usize> {
        let t: String = String::from_utf8_lossy(&h[a..b])
            .trim_start()
            .chars()
            .take_while(|c| c.is_digit(8))
            .collect();
        usize::from_str_radix(&t, 8).ok()
    };
    while pos + 512 <= bytes.len() {
        let h = &bytes[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            return Ok(out);
        }
        let stored =
            octal(h, 148, 156).ok_or_else(|| format!("bad header checksum at byte {pos}"))? as u32;
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        if sum != stored {
            return Err(format!("header checksum mismatch at byte {pos}"));
        }
        let name = {
            let prefix = field(h, 345, 500);
            let n = field(h, 0, 100);
            if prefix.is_empty() {
                n
            } else {
                format!("{prefix}/{n}")
            }
        };
        let size = octal(h, 124, 136).ok_or_else(|| format!("bad size for {name}"))?;
        let start = pos + 512;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| format!("{name} is truncated"))?;
        if h[156] == b'0' || h[156] == 0 {
            out.insert(name, bytes[start..end].to_vec());
        }
        pos = start + size.div_ceil(512) * 512;
    }
    Err("the archive ends without its end-of-archive blocks (truncated)".into())
}

fn problem(table: &str, key: impl ToString, field: &str, what: impl Into<String>) -> Problem {
    Problem {
        table: table.into(),
        key: key.to_string(),
        field: field.into(),
        what: what.into(),
    }
}

/// Verifies a bundle offline. See the module docs for what each file proves.
pub fn verify(b: &Bundle) -> Report {
    let mut report = Report::default();
    // 1. Every file against SHA256SUMS, and nothing unlisted.
    let Some(sums) = b.files.get("SHA256SUMS") else {
        report
            .problems
            .push(problem("bundle", "SHA256SUMS", "file", "is missing"));
        return report;
    };
    let mut listed = HashMap::new();
    for (i, line) in String::from_utf8_lossy(sums).lines().enumerate() {
        match line.split_once("  ") {
            Some((h, name)) => {
                listed.insert(name.to_string(), h.to_string());
            }
            None => report.problems.push(problem(
                "bundle",
                format!("SHA256SUMS:{}", i + 1),
                "line",
                "is not `<sha256>  <file>`",
            )),
        }
    }
    for (name, bytes) in &b.files {
        if name == "SHA256SUMS" {
            continue;
        }
        match listed.remove(name) {
            None => report.problems.push(problem(
                "bundle",
                name,
                "file",
                "is not listed in SHA256SUMS (added after export)",
            )),
            Some(h) if h != sha256_hex(bytes) => report.problems.push(problem(
                "bundle",
                name,
                "sha256",
                "does not match SHA256SUMS: the file was changed",
            )),
            Some(_) => {}
        }
    }
    for name in listed.keys() {
        report.problems.push(problem(
            "bundle",
            name,
            "file",
            "is listed in SHA256SUMS but missing (deleted)",
        ));
    }
    // 2. The manifest's own list and anchors.
    let manifest: Value = match b
        .files
        .get("manifest.json")
        .map(|m| serde_json::from_slice(m))
    {
        Some(Ok(v)) => v,
        _ => {
            report.problems.push(problem(
                "bundle",
                "manifest.json",
                "file",
                "is missing or not JSON",
            ));
            return report;
        }
    };
    if manifest["format"] != FORMAT {
        report.problems.push(problem(
            "bundle",
            "manifest.json",
            "format",
            format!("is not `{FORMAT}`"),
        ));
    }
    if let Some(files) = manifest["files"].as_object() {
        for (name, h) in files {
            match b.files.get(name) {
                Some(bytes) if h.as_str() == Some(sha256_hex(bytes).as_str()) => {}
                _ => report.problems.push(problem(
                    "bundle",
                    name,
                    "sha256",
                    "does not match manifest.json",
                )),
            }
        }
    }
    // 3. The spine: one unbroken chain between the anchors.
    let lines = |name: &str| -> Vec<Value> {
        b.files
            .get(name)
            .map(|x| {
                String::from_utf8_lossy(x)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default()
    };
    let spine = lines("spine.jsonl");
    let mut spine_by_seq: HashMap<i64, (String, String)> = HashMap::new();
    let mut prev: Option<(i64, String)> = None;
    for (i, s) in spine.iter().enumerate() {
        let (Some(seq), Some(p), Some(h)) = (
            s["seq"].as_i64(),
            s["prev_hash"].as_str(),
            s["hash"].as_str(),
        ) else {
            report.problems.push(problem(
                "spine.jsonl",
                i + 1,
                "line",
                "is not {seq, prev_hash, hash}",
            ));
            continue;
        };
        if let Some((pseq, phash)) = &prev {
            if seq != pseq + 1 {
                report.problems.push(problem(
                    "trail",
                    pseq + 1,
                    "seq",
                    format!("rows {}..{} are missing from the spine", pseq + 1, seq),
                ));
            } else if p != phash {
                report.problems.push(problem(
                    "trail",
                    seq,
                    "prev_hash",
                    format!("does not link to the hash of seq {pseq}"),
                ));
            }
        }
        prev = Some((seq, h.to_string()));
        spine_by_seq.insert(seq, (p.to_string(), h.to_string()));
    }
    let anchors = &manifest["anchors"];
    if let Some(first) = spine.first() {
        if first["prev_hash"] != anchors["first_prev_hash"] {
            report.problems.push(problem(
                "bundle",
                "manifest.json",
                "anchors.first_prev_hash",
                "differs from the first spine row",
            ));
        }
    }
    if let Some(last) = spine.last() {
        if last["hash"] != anchors["last_hash"] {
            report.problems.push(problem(
                "bundle",
                "manifest.json",
                "anchors.last_hash",
                "differs from the last spine row",
            ));
        }
    }
    // 4. Each exported row: canonical, hashes to its spine entry.
    let mut chain = ChainChecker::new(None);
    for (i, t) in lines("trail.jsonl").iter().enumerate() {
        let (Some(seq), Some(p), Some(h), Some(canon)) = (
            t["seq"].as_i64(),
            t["prev_hash"].as_str(),
            t["hash"].as_str(),
            t["canonical"].as_str(),
        ) else {
            report.problems.push(problem(
                "trail.jsonl",
                i + 1,
                "line",
                "is not {seq, prev_hash, hash, canonical}",
            ));
            continue;
        };
        let ev: Value = match serde_json::from_str(canon) {
            Ok(v) => v,
            Err(e) => {
                report.problems.push(problem(
                    "trail",
                    seq,
                    "canonical",
                    format!("is not JSON: {e}"),
                ));
                continue;
            }
        };
        if canonical_json(&ev) != canon || ev["seq"].as_i64() != Some(seq) {
            report.problems.push(problem(
                "trail",
                seq,
                "canonical",
                "is not the canonical text of this row (edited)",
            ));
        }
        if event_hash(p, &ev) != h {
            report.problems.push(problem(
                "trail",
                seq,
                "content",
                "hash mismatch: the row was changed",
            ));
        }
        match spine_by_seq.get(&seq) {
            Some((sp, sh)) if sp == p && sh == h => {}
            _ => report.problems.push(problem(
                "trail",
                seq,
                "hash",
                "does not match its spine entry",
            )),
        }
        // Feed the checker (for records, outcomes and prune cut-offs) without re-linking.
        let row = StoredTrailRow {
            seq,
            at: ev["at"].as_i64().unwrap_or_default(),
            message_id: ev["message_id"].as_str().map(String::from),
            delivery_id: ev["delivery_id"].as_str().map(String::from),
            kind: ev["kind"].as_str().unwrap_or_default().to_string(),
            actor: ev["actor"].as_str().unwrap_or_default().to_string(),
            detail: canonical_json(&ev["detail"]),
            prev_hash: p.to_string(),
            hash: h.to_string(),
        };
        chain.unlink();
        chain.push(&row);
        report.trail_rows += 1;
    }
    report.first_seq = spine.first().and_then(|s| s["seq"].as_i64());
    report.last_seq = spine.last().and_then(|s| s["seq"].as_i64());
    report.first_prev_hash = spine
        .first()
        .and_then(|s| s["prev_hash"].as_str())
        .map(String::from);
    report.last_hash = spine
        .last()
        .and_then(|s| s["hash"].as_str())
        .map(String::from);
    // 5. Records against what the rows recorded.
    let mut expected = std::mem::take(&mut chain.expected);
    for (i, r) in lines("records.jsonl").iter().enumerate() {
        let table = r["table"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or_default().to_string();
        let Some(spec) = TABLES.iter().find(|s| s.table == table) else {
            report.problems.push(problem(
                "records.jsonl",
                i + 1,
                "table",
                format!("unknown table `{table}`"),
            ));
            continue;
        };
        let Some(exp) = expected.remove(&(table.to_string(), key.clone())) else {
            report.problems.push(problem(
                table,
                &key,
                "row",
                "is in the bundle but no exported trail row records it",
            ));
            continue;
        };
        let mut missing_payload = false;
        let payloads = spec
            .payloads
            .iter()
            .map(|(n, _)| match r["payloads"][*n].as_str() {
                None => None,
                Some(f) => match b.files.get(f) {
                    Some(bytes) => Some(bytes.clone()),
                    None => {
                        missing_payload = true;
                        None
                    }
                },
            })
            .collect();
        if missing_payload {
            report.problems.push(problem(
                table,
                &key,
                "payloads",
                "names a payload file that is not in the bundle",
            ));
        }
        let stored = StoredRecord {
            key: key.clone(),
            cols: spec
                .cols
                .iter()
                .map(|(n, _)| r["cols"][*n].clone())
                .collect(),
            payloads,
            pruned_at: r["pruned_at"].as_i64(),
            state: None,
        };
        RecordChecker {
            spec,
            prune_cutoff: chain.prune_cutoff,
        }
        .check(&exp, &stored, &mut report);
    }
    for ((table, key), e) in expected {
        report.problems.push(problem(
            &table,
            &key,
            "row",
            format!(
                "is recorded by trail seq {} but missing from records.jsonl",
                e.seq
            ),
        ));
    }
    report.problems.extend(
        chain
            .report
            .problems
            .into_iter()
            .filter(|p| p.field != "seq" && p.field != "prev_hash"),
    );
    report
}

/// Builds a bundle from rows and records already read (see `export`).
pub fn assemble(
    manifest_scope: Value,
    spine: &[(i64, String, String)],
    rows: &[StoredTrailRow],
    records: &[(&'static str, StoredRecord)],
    head: (i64, String),
    created_by: &str,
) -> Result<Bundle> {
    let mut b = Bundle::default();
    let mut spine_txt = String::new();
    for (seq, p, h) in spine {
        spine_txt.push_str(&json!({"seq": seq, "prev_hash": p, "hash": h}).to_string());
        spine_txt.push('\n');
    }
    let mut trail_txt = String::new();
    for r in rows {
        let detail: Value =
            serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail.clone()));
        let ev = super::chain::event_object(
            r.seq,
            r.at,
            r.message_id.as_deref(),
            r.delivery_id.as_deref(),
            &r.kind,
            &r.actor,
            &detail,
        );
        trail_txt.push_str(&json!({"seq": r.seq, "prev_hash": r.prev_hash, "hash": r.hash, "canonical": canonical_json(&ev)}).to_string());
        trail_txt.push('\n');
    }
    let mut rec_txt = String::new();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (table, r) in records {
        let spec = TABLES
            .iter()
            .find(|s| s.table == *table)
            .expect("known table");
        let cols: serde_json::Map<String, Value> = spec
            .cols
            .iter()
            .zip(&r.cols)
            .map(|((n, _), v)| (n.to_string(), v.clone()))
            .collect();
        let mut payloads = serde_json::Map::new();
        for ((n, _), p) in spec.payloads.iter().zip(&r.payloads) {
            let v = match p {
                Some(bytes) if !(r.pruned_at.is_some() && bytes.is_empty()) => {
                    let name = format!("payloads/{}", sha256_hex(bytes));
                    b.files.insert(name.clone(), bytes.clone());
                    Value::from(name)
                }
                _ => Value::Null,
            };
            payloads.insert(n.to_string(), v);
        }
        rec_txt.push_str(&json!({"table": table, "key": r.key, "pruned_at": r.pruned_at, "cols": cols, "payloads": payloads}).to_string());
        rec_txt.push('\n');
        *counts.entry(table).or_default() += 1;
    }
    b.files.insert("spine.jsonl".into(), spine_txt.into_bytes());
    b.files.insert("trail.jsonl".into(), trail_txt.into_bytes());
    b.files.insert("records.jsonl".into(), rec_txt.into_bytes());
    let files: serde_json::Map<String, Value> = b
        .files
        .iter()
        .map(|(n, x)| (n.clone(), Value::from(sha256_hex(x))))
        .collect();
    let manifest = json!({
        "format": FORMAT,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "created_by": created_by,
        "scope": manifest_scope,
        "anchors": {
            "first_seq": spine.first().map(|s| s.0),
            "first_prev_hash": spine.first().map(|s| s.1.clone()),
            "last_seq": spine.last().map(|s| s.0),
            "last_hash": spine.last().map(|s| s.2.clone()),
            "chain_head_seq": head.0,
            "chain_head_hash": head.1,
        },
        "counts": { "spine_rows": spine.len(), "trail_rows": rows.len(), "records": counts, "payload_files": b.files.keys().filter(|k| k.starts_with("payloads/")).count() },
        "hash_rule": "hash = hex(SHA-256(prev_hash || canonical)); see docs/AUDIT.md",
        "files": files,
    });
    b.files.insert(
        "manifest.json".into(),
        serde_json::to_vec_pretty(&manifest).expect("JSON"),
    );
    b.seal();
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trip_and_checksum() {
        let mut files = BTreeMap::new();
        files.insert("a.txt".to_string(), b"hello".to_vec());
        files.insert("payloads/x".to_string(), vec![7u8; 1300]);
        let mut out = Vec::new();
        write_tar(&mut out, &files).unwrap();
        assert_eq!(out.len() % 512, 0);
        assert_eq!(read_tar(&out).unwrap(), files);
        let mut bad = out.clone();
        bad[3] ^= 1;
        assert!(read_tar(&bad).unwrap_err().contains("checksum"));
        assert!(read_tar(&out[..600]).is_err());
    }
}
