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

/// Largest station file accepted, in bytes (1 MiB); a real 5-minute file is a few hundred bytes.
pub const MAX_STATION_FILE_BYTES: usize = 1024 * 1024;

/// Largest mapping or routes file accepted, in bytes (1 MiB).
pub const MAX_MAPPING_FILE_BYTES: usize = 1024 * 1024;
