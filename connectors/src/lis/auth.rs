//! LIS authentication: a WS-Security UsernameToken per request.
//!
//! Nothing is cached: the digest depends on a fresh nonce and timestamp, which is
//! what makes a captured request useless to replay.

use chrono::Utc;

use crate::secret::Secret;
use crate::wssec;

/// Credentials for the UsernameToken.
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    /// A fresh `<wsse:Security>` header block.
    pub fn header(&self) -> String {
        wssec::security_header(&self.username, &self.password, Utc::now())
    }
}
