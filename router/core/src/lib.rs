//! # lienthong-core: what every other part of the hub agrees on
//!
//! The bottom room of the house. It holds what a message *is* and how it is
//! turned from one partner's shape into another's, and nothing that does I/O
//! beyond reading the files an administrator edits:
//!
//! * [`codec`]: bytes ⇄ tree (JSON, XML by a documented convention, SOAP 1.1,
//!   the tax GIP envelope, Thông tư 10/2021 station files). The one
//!   implementation of each wire format: the connectors use it too.
//! * [`schema`]: JSON Schema (draft 2020-12) registry; every message type has one.
//! * [`mapping`]: the declarative mapping engine administrators edit.
//! * [`routes`]: which inbound message fans out to which targets, through which mapping.
//! * [`transport`]: the contract between the delivery layer and whatever puts
//!   bytes on the wire (the partner connectors implement it).
//! * [`limits`]: the size and depth limits every decoder enforces.
//! * [`redact`]: connection URLs without their passwords, for logs and errors.
//! * [`duration`]: how a duration is written in the files an administrator edits.
//!
//! Errors: one [`Error`] enum; each variant knows whether it is retryable.
//!
//! # Why a crate of its own
//!
//! The partner connectors need the codecs, the schemas and the transport
//! contract, and nothing else of the hub. Kept here, they compile without
//! sqlx, lapin or axum, and the compiler, not a convention, stops the engine
//! from reaching up into the store, the queues or the HTTP server. The
//! `router` crate re-exports these modules under the same names, so
//! `router::codec` and `lienthong_core::codec` are one module.

pub mod codec;
pub mod duration;
pub mod error;
pub mod limits;
pub mod mapping;
pub mod redact;
pub mod routes;
pub mod schema;
pub mod transport;

pub use error::{BoxError, Diagnostic, Diagnostics, Error, Result};
