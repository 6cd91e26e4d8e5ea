//! Documented hard limits for untrusted input.
//!
//! Every decoder and the mapping engine enforce these so that hostile or broken
//! input fails with a clear error instead of exhausting memory or the stack.
//! They are deliberately generous for real dossiers (the largest real dossier
//! message we know of is well under 1 MiB) and small enough to keep one bad
//! partner from hurting the others.

/// Largest inbound message body accepted, in bytes (8 MiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Deepest nesting of objects/arrays (JSON) or elements (XML) accepted.
pub const MAX_DEPTH: usize = 64;

/// Most values (JSON) or elements and attributes (XML) in one inbound document.
///
/// The byte limit alone does not bound memory: 8 MiB of `[1,1,1,...]` is four
/// million values, and the tree built from it takes about fifty times its text
/// (each value is a separate allocation). 200,000 is far beyond a real dossier
/// (a few hundred values, a few thousand with attachment lists) and keeps the
/// tree of the largest accepted document to some tens of MiB.
pub const MAX_NODES: usize = 200_000;

/// Largest station file accepted, in bytes (1 MiB); a real 5-minute file is a few hundred bytes.
pub const MAX_STATION_FILE_BYTES: usize = 1024 * 1024;

/// Largest mapping or routes file accepted, in bytes (1 MiB).
pub const MAX_MAPPING_FILE_BYTES: usize = 1024 * 1024;
