//! (being written by the pipeline owner) retries, backoff, rate limits, concurrency, ordering.
pub mod transport;
pub use transport::{Failure, FailureClass, Outbound, Receipt, Transport, TransportRegistry};
