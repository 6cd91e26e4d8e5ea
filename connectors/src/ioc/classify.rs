//! IOC replies: any 2xx is accepted; everything else is classified by HTTP status
//! alone ([`crate::wire::status_failure`]) because the IOC's error bodies are unknown.

pub use crate::wire::{is_success, status_failure};
