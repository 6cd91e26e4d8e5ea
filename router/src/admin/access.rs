//! Who is calling: the small contract the admin API and the console need from
//! token authentication.
//!
//! Tokens and roles belong to the API's authentication module; the admin
//! layer only needs "which principal does this bearer token name, and with
//! which role". Keeping that as a trait lets the console and the mapping API
//! be tested with a fixed token table and wired to the real token store in
//! `serve` without depending on how tokens are stored.

use std::collections::HashMap;

use serde::Serialize;

/// What a caller may do. Changes need `Admin`; `Auditor` may read everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Auditor,
    /// Any other authenticated role (e.g. an operator): reads only what is not audit data.
    Other,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The token's name; recorded as the actor (`admin:<name>`) in the trail.
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The trail actor for this principal.
    pub fn actor(&self) -> String {
        match self.role {
            Role::Admin => format!("admin:{}", self.name),
            Role::Auditor => format!("auditor:{}", self.name),
            Role::Other => format!("user:{}", self.name),
        }
    }
    pub fn can_read(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor)
    }
    pub fn can_change(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Resolves a bearer token to a principal.
pub trait Authenticate: Send + Sync {
    fn authenticate(&self, token: &str) -> Option<Principal>;
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
}

/// The API's configured tokens (`router::auth`): admin and auditor map to
/// themselves, partner tokens may not use the admin API or the console.
impl Authenticate for crate::auth::TokenStore {
    fn authenticate(&self, token: &str) -> Option<Principal> {
        let p = crate::auth::TokenStore::authenticate(self, token, crate::store::now_ms()).ok()?;
        let role = match p.role {
            crate::auth::Role::Admin => Role::Admin,
            crate::auth::Role::Auditor => Role::Auditor,
            crate::auth::Role::Partner(_) => Role::Other,
        };
        Some(Principal { name: p.name, role })
    }
}
