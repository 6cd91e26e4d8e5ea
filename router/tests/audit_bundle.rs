//! The audit bundle's `.tar` format is a contract with every bundle already handed
//! to an auditor: a bundle exported by an earlier build must still read and verify,
//! and the writer must go on producing the same bytes for the same files.
//!
//! `fixtures/audit/bundle-v1.tar` is a real export (dossier H1 of the seeded trail
//! of `tests/audit_tamper.rs`), written by the hand-written ustar writer that the
//! hub used before it moved to the `tar` crate.

use std::collections::BTreeMap;
use std::path::PathBuf;

use router::audit::bundle::{self, read_tar, write_tar, Bundle};
use sha2::{Digest, Sha256};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/bundle-v1.tar")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_bundle_exported_before_still_reads_and_verifies() {
    let b = Bundle::read(&fixture()).unwrap();
    let names: Vec<&str> = b.files.keys().map(String::as_str).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("payloads/")).count(),
        4,
        "{names:?}"
    );
    for n in [
        "SHA256SUMS",
        "manifest.json",
        "records.jsonl",
        "spine.jsonl",
        "trail.jsonl",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    let r = bundle::verify(&b);
    assert!(r.ok(), "{:#?}", r.problems);
    assert!(r.trail_rows > 0);
}

#[test]
fn the_writer_reproduces_an_earlier_bundle_byte_for_byte() {
    let bytes = std::fs::read(fixture()).unwrap();
    assert_eq!(
        sha256(&bytes),
        "fb914df8cfc8ef925569932d31016b6e917a6e147e63edc775bb3aac4f486d27"
    );
    let files = read_tar(&bytes).unwrap();
    let mut out = Vec::new();
    write_tar(&mut out, &files).unwrap();
    assert!(
        out == bytes,
        "the same files no longer give the same archive"
    );
}

#[test]
fn the_writer_output_for_a_fixed_input_is_unchanged() {
    // A name of exactly 100 bytes (the ustar limit), an empty file, a file of exactly
    // one block and one that crosses block boundaries. The digest was recorded from
    // the hand-written writer.
    let mut files = BTreeMap::new();
    files.insert("a.txt".to_string(), b"hello".to_vec());
    files.insert("empty".to_string(), Vec::new());
    files.insert("payloads/block".to_string(), vec![b'x'; 512]);
    files.insert("payloads/x".to_string(), vec![7u8; 1300]);
    files.insert(
        format!("payloads/{}", "n".repeat(91)),
        b"long name".to_vec(),
    );
    let mut out = Vec::new();
    write_tar(&mut out, &files).unwrap();
    // Five headers, data blocks 1 + 0 + 1 + 3 + 1, the two end-of-archive blocks.
    assert_eq!(out.len(), 512 * (5 + 6) + 1024);
    assert_eq!(
        sha256(&out),
        "415f8c59e2a463161fed9bb66cde4e76fc2ebefaf268f138c068ec4017274e07"
    );
    assert_eq!(read_tar(&out).unwrap(), files);
    // Longer names do not fit a ustar header: refused, not truncated.
    files.insert(format!("payloads/{}", "n".repeat(92)), Vec::new());
    assert!(write_tar(&mut Vec::new(), &files).is_err());
}
