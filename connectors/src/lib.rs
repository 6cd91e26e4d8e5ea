//! # lienthong-connectors: the partner side of the hub
//!
//! The router decides *what* to send and *when* (retries, backoff, rate limits and
//! ordering all live in `router::delivery`). This crate knows *how* each partner
//! wants to be spoken to: its envelope, its authentication dance and how to read
//! its answer. Every connector implements [`router::delivery::Transport`]: it sends
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
//! * [`sim`]: one in-process simulator per partner, used by `lienthong demo` and tests.
//! * [`stations`]: monitoring-station intake helpers (QCVN thresholds, drop folder).
//!
//! Shared plumbing: [`secret`] (secrets that never print), [`wire`] (HTTP helpers and
//! generic classification), [`wssec`] (WS-Security UsernameToken), [`soap`] (SOAP 1.1
//! envelopes and faults), [`xml`] (small quick-xml helpers), [`error`].

pub mod error;
pub mod ioc;
pub mod lis;
pub mod national_portal;
pub mod province_portal;
pub mod registry;
pub mod secret;
pub mod sim;
pub mod soap;
pub mod stations;
pub mod tax;
pub mod wire;
pub mod wssec;
pub mod xml;

pub use error::ConnectorError;
pub use registry::{register_all, ConnectorsConfig};
pub use secret::Secret;
