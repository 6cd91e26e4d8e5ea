//! The HTTP surface and the running hub.
//!
//! * [`hub`]: [`Hub::start`] turns a validated [`crate::config::Config`] into a
//!   running hub (the I/O half of the two-phase config), and
//!   [`RunningHub::shutdown`] stops it in the right order.
//! * [`http`]: the axum routes: intake, `/healthz`, `/readyz`, `/metrics`, and the
//!   read-only message API.
//! * [`metrics`]: the Prometheus recorder, installed once per process.

pub mod api;
pub mod errors;
pub mod http;
pub mod hub;
pub mod listener;
pub mod metrics;

pub use hub::{Hub, HubOptions, RunningHub};
