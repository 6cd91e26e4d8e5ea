//! # lienthong-connectors: the partner side of the hub
//!
//! The router decides *what* to send and *when* (retries, backoff, rate limits and
//! ordering all live in `router::delivery`). This crate knows *how* each partner
//! wants to be spoken to: its envelope, its authentication dance and how to read
//! its answer. Every connector implements [`lienthong_core::transport::Transport`]: it sends
//! one message once and classifies the outcome as a `Receipt` or a transient /
//! permanent `Failure`. The only "second try" a connector ever makes is protocol
//! re-authentication (one silent re-token on an LGSP 401, one re-login when a DVCQG
//! session expired), because that is part of the partner's protocol, not a retry
//! policy.
//!
//! Layout (one folder per partner, each with `mod.rs` docs, `codec.rs`, `auth.rs`,
//! `client.rs`, `classify.rs`):
//!
//! * [`province_portal`]: provincial one-stop system through the LGSP (WSO2, OAuth2).
//! * [`national_portal`]: Cổng DVCQG (session login, `dstcode` header, services).
//! * [`lis`]: land information system (SOAP 1.1 + WS-Security UsernameToken).
//! * [`tax`]: tax GIP gateway (SOAP, business XML in CDATA, `<DATA><HEADER/><BODY/>`).
//! * [`ioc`]: provincial IOC (JSON, API key; observations batched, alerts at once).
//! * [`registry`]: explicit registration of the configured connectors by system id.
//! * [`stations`]: monitoring-station intake helpers (QCVN thresholds, drop folder).
//!
//! The partner simulators live in their own crate (`connectors/sim`, crate `sim`),
//! used by `lienthong demo` and the tests, so that the hub does not ship them and
//! this crate needs no HTTP server.
//!
//! Shared plumbing: [`secret`] (secrets that never print), [`wire`] (HTTP helpers and
//! generic classification), [`wssec`] (WS-Security UsernameToken), [`error`]. The
//! wire formats themselves (SOAP 1.1 envelopes and faults, the tax GIP document,
//! the XML text helpers) are written once, in the core crate's `codec`
//! (`lienthong_core::codec::{soap, tax_gip, fragment}`), which the hub's own
//! decoders use too.

pub mod error;
pub mod ioc;
pub mod lis;
pub mod national_portal;
pub mod province_portal;
pub mod registry;
pub mod secret;
pub mod stations;
pub mod tax;
pub mod wire;
pub mod wssec;

pub use error::ConnectorError;
pub use registry::{register_all, ConnectorsConfig};
pub use secret::Secret;
