//! IOC authentication: a static API key in a header. The key lives in a [`Secret`];
//! the request bytes recorded for the trail are the body only, so it never lands there.

pub use crate::secret::Secret as ApiKey;
