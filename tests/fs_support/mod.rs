//! The repository root and a recursive copy, for the tests that run on a
//! copy of `mappings/`, `schemas/` or `tests/fixtures/` (so that they can edit
//! files without touching the checkout). One copy of these for every test
//! crate: include it with `mod fs_support;` (or through `hub_support`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (the root package's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the tree `from` to `to`, following symlinks (`tests/fixtures/inbound`
/// points into `mappings/testdata/`), so the copy holds plain files only.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
