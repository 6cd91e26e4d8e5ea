//! The audit bundle: a self-contained, offline-checkable copy of part of the trail.
//!
//! # Layout (a directory, or the same files in a POSIX ustar `.tar`, see [`write_tar`])
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
use super::digest::{sha256_hex, TableSpec, TABLES};
use super::verify::{ChainChecker, Expected, Problem, RecordChecker, Report};
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

/// Writes a POSIX ustar archive, with the `tar` crate but header for header as
/// bundles have always been written (`tests/audit_bundle.rs` pins the bytes):
/// regular files only, mode 0644, uid and gid 0, mtime 0, no user or group names,
/// the whole name in the 100-byte name field (no prefix, no extension headers),
/// and the checksum in the traditional `NNNNNN\0 ` form. A name that is longer,
/// absolute, has `..` or is not written as given is refused.
pub fn write_tar(w: &mut impl Write, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut archive = tar::Builder::new(w);
    for (name, bytes) in files {
        archive.append(&ustar_header(name, bytes.len())?, bytes.as_slice())?;
    }
    archive.finish()
}

fn ustar_header(name: &str, size: usize) -> std::io::Result<tar::Header> {
    let refuse =
        |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{why}: {name}"));
    if name.len() > 100 {
        return Err(refuse("file name too long for ustar"));
    }
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    if h.path_bytes().as_ref() != name.as_bytes() {
        return Err(refuse("not a plain relative file name"));
    }
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size as u64);
    h.set_cksum();
    // The crate writes `0NNNNNN\0`; bundles carry `NNNNNN\0 ` (the same number).
    let sum = h.cksum()?;
    h.as_mut_bytes()[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Reads the regular files of a ustar archive, strictly: every header's checksum,
/// every file whole, the end-of-archive block present (a cut archive is refused,
/// not read short), no name that is absolute or climbs out with `..`, and nothing
/// but regular files (directories are skipped). Extension headers (pax, GNU long
/// names) and links are refused rather than interpreted, so this reader and
/// `tar -xf` always see the same files.
pub fn read_tar(bytes: &[u8]) -> std::result::Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    // Where the next header starts.
    let mut next: u64 = 0;
    let entries = archive.entries().map_err(|e| e.to_string())?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{e} (the header at byte {next})"))?;
        let name = entry_name(&entry.path_bytes())?;
        let size = entry.size();
        next = entry.raw_file_position() + size.div_ceil(512) * 512;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "{name} is not a regular file (type {:?})",
                char::from(kind.as_byte())
            ));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("reading {name}: {e}"))?;
        if data.len() as u64 != size {
            return Err(format!("{name} is truncated"));
        }
        out.insert(name, data);
    }
    let end = usize::try_from(next)
        .ok()
        .and_then(|n| bytes.get(n..n.checked_add(512)?));
    match end {
        Some(block) if block.iter().all(|b| *b == 0) => Ok(out),
        _ => Err("the archive ends without its end-of-archive blocks (truncated)".into()),
    }
}

/// An entry's name, unless it could point outside the bundle.
fn entry_name(path: &[u8]) -> std::result::Result<String, String> {
    let name = std::str::from_utf8(path)
        .map_err(|_| format!("the name {} is not UTF-8", String::from_utf8_lossy(path)))?;
    if name.is_empty() || name.starts_with('/') || name.split(['/', '\\']).any(|c| c == "..") {
        return Err(format!("`{name}` is not a relative name inside the bundle"));
    }
    Ok(name.to_string())
}

fn problem(table: &str, key: impl ToString, field: &str, what: impl Into<String>) -> Problem {
    Problem {
        table: table.into(),
        key: key.to_string(),
        field: field.into(),
        what: what.into(),
    }
}

/// Verifies a bundle offline: the checks below, in this order. See the module
/// docs for what each file proves.
pub fn verify(b: &Bundle) -> Report {
    let mut report = Report::default();
    if !check_sums(b, &mut report) {
        return report;
    }
    let Some(manifest) = check_manifest(b, &mut report) else {
        return report;
    };
    let spine = jsonl(b, "spine.jsonl");
    let links = check_spine(&spine, &mut report);
    check_anchors(&spine, &manifest["anchors"], &mut report);
    let mut chain = check_trail(b, &links, &mut report);
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
    check_records(b, &mut chain, &mut report);
    // The checker's own findings about records and outcomes; its linking findings do
    // not apply (the exported rows are not adjacent: the spine links them).
    report.problems.extend(
        chain
            .report
            .problems
            .into_iter()
            .filter(|p| p.field != "seq" && p.field != "prev_hash"),
    );
    report
}

/// The lines of a `.jsonl` file of the bundle (a line that is not JSON is `null`).
fn jsonl(b: &Bundle, name: &str) -> Vec<Value> {
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
}

/// Check 1: every file against SHA256SUMS, and nothing unlisted. `false` when there is
/// no SHA256SUMS at all (nothing else can be trusted then).
fn check_sums(b: &Bundle, report: &mut Report) -> bool {
    let Some(sums) = b.files.get("SHA256SUMS") else {
        report
            .problems
            .push(problem("bundle", "SHA256SUMS", "file", "is missing"));
        return false;
    };
    let mut listed = parse_sums(sums, report);
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
    true
}

/// SHA256SUMS as file name → digest; a line not in `sha256sum` form is a problem.
fn parse_sums(sums: &[u8], report: &mut Report) -> HashMap<String, String> {
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
    listed
}

/// Check 2: the manifest: its format, and its own list of file digests. `None` when it is
/// missing or not JSON (the anchors are in it).
fn check_manifest(b: &Bundle, report: &mut Report) -> Option<Value> {
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
            return None;
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
    Some(manifest)
}

/// The spine by seq: `(prev_hash, hash)`.
type Links = HashMap<i64, (String, String)>;

/// Check 3: the spine: one unbroken chain, every seq from the first to the last, each
/// row's `prev_hash` the hash of the row before.
fn check_spine(spine: &[Value], report: &mut Report) -> Links {
    let mut links = Links::new();
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
        links.insert(seq, (p.to_string(), h.to_string()));
    }
    links
}

/// The manifest's anchors are the spine's ends.
fn check_anchors(spine: &[Value], anchors: &Value, report: &mut Report) {
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
}

/// Check 4: each exported row: canonical, hashes to its spine entry. The rows are fed to
/// a [`ChainChecker`] (without re-linking: the spine did that), which collects
/// what they say the records, outcomes and prune cut-offs must be.
fn check_trail(b: &Bundle, links: &Links, report: &mut Report) -> ChainChecker {
    let mut chain = ChainChecker::new(None);
    for (i, t) in jsonl(b, "trail.jsonl").iter().enumerate() {
        if let Some(row) = check_trail_row(i, t, links, report) {
            chain.unlink();
            chain.push(&row);
            report.trail_rows += 1;
        }
    }
    chain
}

/// One line of `trail.jsonl`; the row as stored, unless the line cannot be read.
fn check_trail_row(
    i: usize,
    t: &Value,
    links: &Links,
    report: &mut Report,
) -> Option<StoredTrailRow> {
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
        return None;
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
            return None;
        }
    };
    check_row(seq, (p, h), canon, &ev, links, report);
    Some(StoredTrailRow {
        seq,
        at: ev["at"].as_i64().unwrap_or_default(),
        message_id: ev["message_id"].as_str().map(String::from),
        delivery_id: ev["delivery_id"].as_str().map(String::from),
        kind: ev["kind"].as_str().unwrap_or_default().to_string(),
        actor: ev["actor"].as_str().unwrap_or_default().to_string(),
        detail: canonical_json(&ev["detail"]),
        prev_hash: p.to_string(),
        hash: h.to_string(),
    })
}

/// A row's text is canonical, its hash recomputes, and it is the row the spine links.
fn check_row(
    seq: i64,
    (p, h): (&str, &str),
    canon: &str,
    ev: &Value,
    links: &Links,
    report: &mut Report,
) {
    if canonical_json(ev) != canon || ev["seq"].as_i64() != Some(seq) {
        report.problems.push(problem(
            "trail",
            seq,
            "canonical",
            "is not the canonical text of this row (edited)",
        ));
    }
    if event_hash(p, ev) != h {
        report.problems.push(problem(
            "trail",
            seq,
            "content",
            "hash mismatch: the row was changed",
        ));
    }
    match links.get(&seq) {
        Some((sp, sh)) if sp == p && sh == h => {}
        _ => report.problems.push(problem(
            "trail",
            seq,
            "hash",
            "does not match its spine entry",
        )),
    }
}

/// Check 5: records against what the rows recorded: each record pinned down by a row and
/// matching it, and every record a row pins down present.
fn check_records(b: &Bundle, chain: &mut ChainChecker, report: &mut Report) {
    let mut expected = std::mem::take(&mut chain.expected);
    for (i, r) in jsonl(b, "records.jsonl").iter().enumerate() {
        check_record(b, i, r, &mut expected, chain.prune_cutoff, report);
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
}

/// One line of `records.jsonl`, checked against (and removed from) `expected`.
fn check_record(
    b: &Bundle,
    i: usize,
    r: &Value,
    expected: &mut HashMap<(String, String), Expected>,
    prune_cutoff: Option<i64>,
    report: &mut Report,
) {
    let table = r["table"].as_str().unwrap_or_default();
    let key = r["key"].as_str().unwrap_or_default().to_string();
    let Some(spec) = TABLES.iter().find(|s| s.table == table) else {
        report.problems.push(problem(
            "records.jsonl",
            i + 1,
            "table",
            format!("unknown table `{table}`"),
        ));
        return;
    };
    let Some(exp) = expected.remove(&(table.to_string(), key.clone())) else {
        report.problems.push(problem(
            table,
            &key,
            "row",
            "is in the bundle but no exported trail row records it",
        ));
        return;
    };
    let payloads = record_payloads(b, spec, r);
    if payloads.iter().any(|p| p.is_err()) {
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
        payloads: payloads.into_iter().map(|p| p.ok().flatten()).collect(),
        pruned_at: r["pruned_at"].as_i64(),
        state: None,
    };
    RecordChecker { spec, prune_cutoff }.check(&exp, &stored, report);
}

/// A record's payloads, read from the files they name: `Ok(None)` for none (SQL NULL
/// or pruned), `Err` for a file that is not in the bundle.
fn record_payloads(b: &Bundle, spec: &TableSpec, r: &Value) -> Vec<Result<Option<Vec<u8>>, ()>> {
    spec.payloads
        .iter()
        .map(|(n, _)| match r["payloads"][*n].as_str() {
            None => Ok(None),
            Some(f) => b.files.get(f).map(|bytes| Some(bytes.clone())).ok_or(()),
        })
        .collect()
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

    fn one_file() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([("x".to_string(), b"data".to_vec())])
    }

    /// A one-file archive whose first header `edit` changes (its checksum redone),
    /// as someone building an archive by hand would.
    fn patched(edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut out = Vec::new();
        write_tar(&mut out, &one_file()).unwrap();
        let h = &mut out[..512];
        edit(h);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out
    }

    fn named(name: &'static str) -> impl FnOnce(&mut [u8]) {
        move |h| {
            h[..100].fill(0);
            h[..name.len()].copy_from_slice(name.as_bytes());
        }
    }

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

    #[test]
    fn a_cut_archive_is_refused_not_read_short() {
        let mut out = Vec::new();
        write_tar(&mut out, &one_file()).unwrap();
        assert_eq!(read_tar(&out).unwrap(), one_file());
        // Without the end-of-archive blocks, and cut inside the data.
        assert!(read_tar(&out[..1024])
            .unwrap_err()
            .contains("end-of-archive"));
        assert!(read_tar(&out[..514]).unwrap_err().contains("truncated"));
        assert!(read_tar(&[]).unwrap_err().contains("end-of-archive"));
    }

    #[test]
    fn names_outside_the_bundle_are_refused() {
        for name in ["../x", "/etc/x", "payloads/../../x", "..", "a\\..\\x"] {
            let err = read_tar(&patched(named(name))).unwrap_err();
            assert!(err.contains("not a relative name"), "{name}: {err}");
        }
        // Through the ustar prefix field too.
        let err = read_tar(&patched(|h| h[345..347].copy_from_slice(b".."))).unwrap_err();
        assert!(err.contains("`../x`"), "{err}");
        // And the writer never writes one.
        for name in ["../x", "/x", "a/../x", "./x", "a//x"] {
            let files = BTreeMap::from([(name.to_string(), Vec::new())]);
            assert!(write_tar(&mut Vec::new(), &files).is_err(), "{name}");
        }
    }

    #[test]
    fn only_regular_files_are_read() {
        // A symlink, a hard link and a pax extension header are refused.
        for kind in [b'2', b'1', b'x'] {
            let err = read_tar(&patched(|h| h[156] = kind)).unwrap_err();
            assert!(err.contains("not a regular file"), "{err}");
        }
        // A directory entry is skipped.
        let dir = patched(|h| {
            named("payloads/")(h);
            h[156] = b'5';
            h[124..136].copy_from_slice(b"00000000000\0");
        });
        let mut dir = dir[..512].to_vec();
        dir.extend_from_slice(&[0u8; 1024]);
        assert_eq!(read_tar(&dir).unwrap(), BTreeMap::new());
    }
}
