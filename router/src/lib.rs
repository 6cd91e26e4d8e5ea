//! # lienthong-router: the core of the lienthong integration hub
//!
//! Every message that crosses the hub takes the same path, and each step lives in
//! its own module so that a newcomer can follow one dossier from the socket to the
//! partner and back:
//!
//! ```text
//!  partner ──HTTP──▶ server ──▶ intake ──decode──▶ codec ──validate──▶ schema
//!                                  │                                      │
//!                                  ▼                                      ▼
//!                               routes ──for each target──▶ mapping ──▶ schema (output)
//!                                  │
//!                                  ▼  one transaction: raw + parsed + deliveries + trail
//!                                store ◀──────────── audit (hash-chained trail)
//!                                  │
//!                                  ▼
//!                               queue (embedded SQLite, or RabbitMQ) ──▶ delivery ──▶ partner
//! ```
//!
//! * [`codec`]: bytes ⇄ tree (JSON, XML by a documented convention, SOAP 1.1,
//!   the tax GIP envelope, Thông tư 10/2021 station files).
//! * [`schema`]: JSON Schema (draft 2020-12) registry; every message type has one.
//! * [`mapping`]: the declarative mapping engine administrators edit.
//! * [`routes`]: which inbound message fans out to which targets, through which mapping.
//! * [`config`]: typed, validated configuration (pure validation first, then a build that does I/O).
//! * [`store`]: the durable message store (SQLite by default, PostgreSQL when configured).
//! * [`queue`]: durable delivery queues (embedded, or RabbitMQ).
//! * [`delivery`]: the one layer that owns retries, backoff, rate limits, concurrency and ordering.
//! * [`intake`]: authentication, validation, idempotency and acceptance of inbound messages.
//! * [`server`]: the HTTP surface (intake, operations, API).
//! * [`audit`]: the tamper-evident trail, verification, export, search and replay.
//! * [`redact`]: connection URLs without their passwords, for logs and errors.
//!
//! Errors: one [`Error`] enum for the crate; each variant knows whether it is retryable.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod config;
pub mod console;
pub mod delivery;
pub mod intake;
pub mod queue;
pub mod server;

// The core crate's modules, under the names the rest of the hub has always
// used: `router::codec` is `lienthong_core::codec`.
pub use lienthong_core::{codec, duration, error, limits, mapping, redact, routes, schema};
// The store is its own crate (the only one that speaks SQL), under its old name.
pub use lienthong_core::{BoxError, Diagnostic, Diagnostics, Error, Result};
pub use lienthong_store as store;
