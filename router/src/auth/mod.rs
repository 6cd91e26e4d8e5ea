//! Roles and bearer tokens for the HTTP API.
//!
//! # The model
//!
//! | role | may |
//! |---|---|
//! | `partner:<system>` | submit inbound messages as `<system>`, nothing else |
//! | `auditor` | read messages, timelines and the trail; verify; export; replay |
//! | `admin` | everything |
//!
//! Tokens are configured by their SHA-256 ([`config`]); a presented token is
//! hashed and compared with every configured hash in constant time (`subtle`), so
//! neither the comparison nor the loop leaks how much of a guess was right.
//!
//! # Order of checks, and why
//!
//! A handler authenticates and authorizes **before it looks anything up**:
//! missing, unknown, revoked or expired token → 401; valid token, wrong role →
//! 403. Only then is the resource read, so a caller without the right role can
//! never learn whether message `X` or dossier `Y` exists from a 404 versus 403.
//!
//! # Revoking a token
//!
//! Set `revoked: true` on its entry (or delete the entry) and restart or reload
//! the hub. Keeping the entry with `revoked: true` documents that the name once
//! existed, which helps when reading old trail rows that name it as the actor.

pub mod config;
pub mod routes;

use axum::http::HeaderMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Role {
    Admin,
    Auditor,
    /// May only submit inbound messages as this system.
    Partner(String),
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.as_string()
    }
}

impl Role {
    /// `admin`, `auditor` or `partner:<system>`.
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            other => {
                let sys = other.strip_prefix("partner:")?;
                let ok = !sys.is_empty()
                    && sys
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                ok.then(|| Role::Partner(sys.to_string()))
            }
        }
    }
    pub fn as_string(&self) -> String {
        match self {
            Role::Admin => "admin".into(),
            Role::Auditor => "auditor".into(),
            Role::Partner(s) => format!("partner:{s}"),
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// Admin or auditor: read, verify, export, replay.
    Auditor,
    /// Admin only.
    Admin,
}

impl Need {
    pub fn allows(self, role: &Role) -> bool {
        matches!(
            (self, role),
            (_, Role::Admin) | (Need::Auditor, Role::Auditor)
        )
    }
}

/// A configured token (hash only).
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
    /// Epoch ms after which the token is refused.
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

impl TokenEntry {
    /// An entry for a token known in clear (the demo's one-run tokens); only its
    /// SHA-256 is kept, as for configured tokens.
    pub fn for_secret(name: &str, role: Role, secret: &str) -> TokenEntry {
        TokenEntry {
            name: name.into(),
            role,
            sha256: Sha256::digest(secret.as_bytes()).into(),
            expires_at: None,
            revoked: false,
        }
    }
}

/// A fresh random token: two v4 UUIDs from the OS's random source (244 random bits).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// How the trail names this caller: `admin:<name>`, `auditor:<name>`, `partner:<system>:<name>`.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role.as_string(), self.name)
    }
    /// May read audit data, mappings and the console: admins and auditors.
    pub fn can_read(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor)
    }
    /// May change mappings, replay and prune: admins only.
    pub fn can_change(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    /// Unknown, revoked or expired: deliberately one message, so a caller cannot
    /// tell a revoked token from one that never existed.
    #[error("the bearer token is not valid (unknown, revoked or expired): ask an administrator for a token")]
    Invalid,
    #[error("the token `{name}` has role `{role}`, which may not {action}")]
    Forbidden {
        name: String,
        role: String,
        action: String,
    },
}

impl AuthError {
    /// 401 for authentication, 403 for authorization.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Invalid => 401,
            AuthError::Forbidden { .. } => 403,
        }
    }
    /// Never: the caller must change its credentials.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    entries: Vec<TokenEntry>,
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl TokenStore {
    pub fn new(entries: Vec<TokenEntry>) -> Self {
        TokenStore { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Who `token` is, at `now_ms`. Every entry is compared (no early exit).
    pub fn authenticate(&self, token: &str, now_ms: i64) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.authenticate_digest(&digest, now_ms)
    }

    /// Who the token with SHA-256 `digest` is, at `now_ms` (a console session
    /// keeps only the hash). Every entry is compared (no early exit).
    pub fn authenticate_digest(
        &self,
        digest: &[u8; 32],
        now_ms: i64,
    ) -> Result<Principal, AuthError> {
        let mut found: Option<&TokenEntry> = None;
        for e in &self.entries {
            if bool::from(e.sha256.as_slice().ct_eq(digest.as_slice())) {
                found = Some(e);
            }
        }
        let e = found.ok_or(AuthError::Invalid)?;
        if e.revoked || e.expires_at.is_some_and(|x| now_ms >= x) {
            return Err(AuthError::Invalid);
        }
        Ok(Principal {
            name: e.name.clone(),
            role: e.role.clone(),
        })
    }

    /// Authenticates the request's bearer token and checks it may do `need`.
    /// `action` words the 403 ("read messages", "replay"...).
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        need: Need,
        action: &str,
        now_ms: i64,
    ) -> Result<Principal, AuthError> {
        let token = bearer(headers).ok_or(AuthError::Missing)?;
        let p = self.authenticate(token, now_ms)?;
        if need.allows(&p.role) {
            Ok(p)
        } else {
            Err(AuthError::Forbidden {
                name: p.name,
                role: p.role.as_string(),
                action: action.into(),
            })
        }
    }

    /// For intake: may this token submit messages as `system`? Admins may (for tests and
    /// manual re-submission); a partner only as its own system.
    pub fn authorize_submit(
        &self,
        headers: &HeaderMap,
        system: &str,
        now_ms: i64,
    ) -> Result<Principal, AuthError> {
        let token = bearer(headers).ok_or(AuthError::Missing)?;
        let p = self.authenticate(token, now_ms)?;
        match &p.role {
            Role::Admin => Ok(p),
            Role::Partner(s) if s == system => Ok(p),
            _ => Err(AuthError::Forbidden {
                name: p.name,
                role: p.role.as_string(),
                action: format!("submit messages as `{system}`"),
            }),
        }
    }
}

// The mapping admin API (`crate::admin`) uses these same tokens through its
// `Authenticate` trait, implemented in `admin/access.rs`.

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> TokenStore {
        let e = |name: &str, token: &str, role: Role, expires_at, revoked| TokenEntry {
            name: name.into(),
            role,
            sha256: Sha256::digest(token.as_bytes()).into(),
            expires_at,
            revoked,
        };
        TokenStore::new(vec![
            e("a", "tok-admin", Role::Admin, None, false),
            e("b", "tok-aud", Role::Auditor, Some(1_000), false),
            e("c", "tok-lis", Role::Partner("lis".into()), None, false),
            e("d", "tok-old", Role::Auditor, None, true),
        ])
    }

    fn h(token: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("authorization", format!("Bearer {token}").parse().unwrap());
        m
    }

    #[test]
    fn roles_expiry_and_revocation() {
        let s = store();
        assert_eq!(
            s.authorize(&h("tok-aud"), Need::Auditor, "read", 999)
                .unwrap()
                .name,
            "b"
        );
        assert_eq!(
            s.authorize(&h("tok-aud"), Need::Auditor, "read", 1_000),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            s.authorize(&h("tok-old"), Need::Auditor, "read", 0),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            s.authorize(&h("nope"), Need::Auditor, "read", 0),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            s.authorize(&HeaderMap::new(), Need::Auditor, "read", 0),
            Err(AuthError::Missing)
        );
        assert_eq!(
            s.authorize(&h("tok-aud"), Need::Admin, "prune", 0)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            s.authorize(&h("tok-lis"), Need::Auditor, "read", 0)
                .unwrap_err()
                .status(),
            403
        );
        assert!(s
            .authorize(&h("tok-admin"), Need::Admin, "prune", 0)
            .is_ok());
        assert!(s.authorize_submit(&h("tok-lis"), "lis", 0).is_ok());
        assert_eq!(
            s.authorize_submit(&h("tok-lis"), "tax", 0)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            s.authorize_submit(&h("tok-aud"), "lis", 0)
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn config_reports_every_problem() {
        let bad = vec![
            config::TokenConfig {
                name: "x".into(),
                role: "root".into(),
                sha256: "abc".into(),
                expires_at: Some("tomorrow".into()),
                revoked: false,
            },
            config::TokenConfig {
                name: "x".into(),
                role: "partner:lis".into(),
                sha256: "00".repeat(32),
                expires_at: None,
                revoked: false,
            },
        ];
        let d = config::build("lienthong.yaml", &bad).unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("role `root`")
                && text.contains("64 hex")
                && text.contains("RFC 3339")
                && text.contains("used twice"),
            "{text}"
        );
    }
}
