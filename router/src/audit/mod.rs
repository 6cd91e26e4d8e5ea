//! The tamper-evident trail, and what auditors do with it.
//!
//! Every step a message takes (received or rejected, routed, mapped, each delivery
//! attempt, delivered or dead, and later replays and admin actions) is one row in
//! the `trail` table. Rows are hash-chained ([`chain`]) so that deleting, editing or
//! reordering any row is detectable by recomputing the chain. Appends happen inside
//! the same transaction as the state change they describe, so the trail can never
//! say something happened that the store does not reflect, or the other way round.
//!
//! The chain alone protects only the trail rows; [`digest`] extends it to the
//! messages, deliveries and attempts by recording each row (small columns verbatim,
//! payloads as SHA-256) in the event written with it.
//!
//! * [`verify`]: recompute the chain and compare every recorded row; report the first broken link.
//! * [`bundle`]: the self-contained export format and its offline verifier.
//! * [`export`]: writing a bundle from the store (a time range, or one dossier).
//! * [`search`]: parsing and validating search filters and time ranges.
//! * [`replay`]: as-sent and remap replays, dry-run diffs, bulk dead-letter replay.
//! * [`retention`]: pruning old payloads while keeping the chain verifiable.
//!
//! See `docs/AUDIT.md` for the operator's view.

pub mod bundle;
pub mod chain;
pub mod digest;
pub mod export;
pub mod replay;
pub mod retention;
pub mod search;
pub mod verify;

pub use chain::{canonical_json, event_hash, TrailEvent, GENESIS_HASH};
