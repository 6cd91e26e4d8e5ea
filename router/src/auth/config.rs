//! The `tokens:` section of the configuration.
//!
//! ```yaml
//! tokens:
//!   - name: thanh-tra-so           # recorded as the actor in the trail (auditor:thanh-tra-so)
//!     role: auditor                # admin | auditor | partner:<system>
//!     sha256: 5e88...              # SHA-256 hex of the token; the token itself is never stored
//!     expires_at: 2027-06-30T00:00:00+07:00   # optional, RFC 3339
//!     revoked: false               # optional; true refuses the token at once (kept for the record)
//! ```
//!
//! Only the hash is configured so that a leaked config file (or a backup, or a
//! Kubernetes ConfigMap) does not leak a working token. Generate one with
//! `openssl rand -hex 32 | tee token.txt | tr -d '\n' | sha256sum`.

use serde::Deserialize;

use super::{Role, TokenEntry, TokenStore};
use crate::{Diagnostic, Diagnostics};

/// One configured token, as written.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: String,
    pub sha256: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub revoked: bool,
}

/// Validates every entry (all problems at once) and builds the token store.
/// `file` names the config file in the diagnostics.
pub fn build(file: &str, entries: &[TokenConfig]) -> Result<TokenStore, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, t) in entries.iter().enumerate() {
        let ctx = format!("tokens[{i}] (name: {})", t.name);
        let mut err = |message: String| {
            diags.push(Diagnostic {
                file: file.into(),
                line: 0,
                column: 0,
                context: ctx.clone(),
                message,
            })
        };
        if t.name.trim().is_empty() {
            err(
                "`name` is empty: give each token a name, it is recorded as the actor in the trail"
                    .into(),
            );
        }
        if !names.insert(t.name.clone()) {
            err(format!(
                "the name `{}` is used twice: token names must be unique",
                t.name
            ));
        }
        let role = match Role::parse(&t.role) {
            Some(r) => Some(r),
            None => {
                err(format!(
                    "role `{}` is not one of `admin`, `auditor`, `partner:<system>`",
                    t.role
                ));
                None
            }
        };
        let hash = match hex::decode(t.sha256.trim()) {
            Ok(h) if h.len() == 32 => Some(<[u8; 32]>::try_from(h.as_slice()).expect("32 bytes")),
            _ => {
                err("`sha256` must be 64 hex digits (the SHA-256 of the token, e.g. from `sha256sum`), not the token itself".into());
                None
            }
        };
        let expires_at = match &t.expires_at {
            None => None,
            Some(s) => match chrono::DateTime::parse_from_rfc3339(s.trim()) {
                Ok(d) => Some(d.timestamp_millis()),
                Err(e) => {
                    err(format!("`expires_at` `{s}` is not an RFC 3339 time ({e}); write e.g. 2027-06-30T00:00:00+07:00"));
                    None
                }
            },
        };
        if let (Some(role), Some(sha256)) = (role, hash) {
            out.push(TokenEntry {
                name: t.name.clone(),
                role,
                sha256,
                expires_at,
                revoked: t.revoked,
            });
        }
    }
    diags.into_result().map(|()| TokenStore::new(out))
}
