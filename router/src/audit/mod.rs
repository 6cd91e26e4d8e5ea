//! The tamper-evident trail.
//!
//! Every step a message takes (received or rejected, routed, mapped, each delivery
//! attempt, delivered or dead, and later replays and admin actions) is one row in
//! the `trail` table. Rows are hash-chained ([`chain`]) so that deleting, editing or
//! reordering any row is detectable by recomputing the chain. Appends happen inside
//! the same transaction as the state change they describe, so the trail can never
//! say something happened that the store does not reflect, or the other way round.

pub mod chain;

pub use chain::{canonical_json, event_hash, TrailEvent, GENESIS_HASH};
