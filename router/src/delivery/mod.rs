//! Delivery: the one layer that owns retries, backoff, rate limits, concurrency
//! caps and per-`(correlation_id, destination)` ordering.
//!
//! * [`transport`]: the fixed contract with whatever puts bytes on the wire.
//! * [`http`]: the generic HTTP transport (partner protocols live in `connectors`).
//! * [`policy`]: per-destination timeout, rate, concurrency, attempts and backoff.
//! * [`worker`]: the per-destination loops that lease, send, classify and settle.
//!
//! Ordering itself is enforced by the queue ([`crate::queue`]), which only leases
//! head-of-line deliveries; the workers never hold more than their concurrency.
pub mod http;
pub mod policy;
pub mod worker;

pub use http::HttpTransport;
/// The contract lives in the core crate, beside the connectors that implement it.
pub use lienthong_core::transport;
pub use policy::{Backoff, DestinationPolicy};
pub use transport::{Failure, FailureClass, Outbound, Receipt, Transport, TransportRegistry};
pub use worker::{Dispatcher, Running};
