//! Who is calling: the small contract the admin API and the console need from
//! token authentication.
//!
//! Tokens and roles belong to the API's authentication module; the admin
//! layer only needs "which principal does this bearer token name, and with
//! which role". Keeping that as a trait lets the console and the mapping API
//! be tested with a fixed token table and wired to the real token store in
//! `serve` without depending on how tokens are stored.

use std::collections::HashMap;

/// The one principal and role type of the hub, defined with the tokens in
/// [`crate::auth`]; re-exported here because the admin API and the console
/// speak of them.
pub use crate::auth::{Principal, Role};

/// Resolves a bearer token to a principal.
pub trait Authenticate: Send + Sync {
    fn authenticate(&self, token: &str) -> Option<Principal>;
    /// Who the token with this SHA-256 is, if it is still valid: a console
    /// session keeps the token's hash, never the token, and is checked against
    /// the tokens on every request, so revoking a token ends its sessions.
    fn authenticate_sha256(&self, sha256: &[u8; 32]) -> Option<Principal>;
}

/// A fixed token table (tests, and `serve` before a token store is configured).
/// Comparison is constant-time per candidate so response timing does not leak tokens.
#[derive(Debug, Default, Clone)]
pub struct StaticTokens {
    tokens: HashMap<String, Principal>,
}

impl StaticTokens {
    pub fn new(entries: impl IntoIterator<Item = (String, Principal)>) -> Self {
        StaticTokens {
            tokens: entries.into_iter().collect(),
        }
    }
}

impl Authenticate for StaticTokens {
    fn authenticate(&self, token: &str) -> Option<Principal> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (t, p) in &self.tokens {
            if t.len() == token.len() && bool::from(t.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(p.clone());
            }
        }
        found
    }

    fn authenticate_sha256(&self, sha256: &[u8; 32]) -> Option<Principal> {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (t, p) in &self.tokens {
            let d = sha2::Sha256::digest(t.as_bytes());
            if bool::from(d.as_slice().ct_eq(sha256)) {
                found = Some(p.clone());
            }
        }
        found
    }
}

/// The API's configured tokens (`router::auth`). A partner token authenticates
/// but may neither read ([`Principal::can_read`]) nor change anything here.
impl Authenticate for crate::auth::TokenStore {
    fn authenticate(&self, token: &str) -> Option<Principal> {
        crate::auth::TokenStore::authenticate(self, token, crate::store::now_ms()).ok()
    }

    fn authenticate_sha256(&self, sha256: &[u8; 32]) -> Option<Principal> {
        crate::auth::TokenStore::authenticate_digest(self, sha256, crate::store::now_ms()).ok()
    }
}
