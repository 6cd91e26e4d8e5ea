//! WS-Security UsernameToken with PasswordDigest (OASIS UsernameToken Profile 1.0).
//!
//! Both SOAP partners (LIS and the tax GIP gateway) authenticate this way:
//! `PasswordDigest = Base64(SHA-1(nonce_bytes + created + password))`, with a fresh
//! random 16-byte nonce and a `Created` UTC timestamp, so the password itself never
//! crosses the wire and a captured header cannot be replayed (the server remembers
//! nonces for the freshness window and refuses stale `Created` values).
//!
//! The same code builds the header (connectors) and verifies it (simulators), so the
//! test of one is the test of the other; the digest function is also pinned against
//! an independently computed value in the unit tests.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngCore;
use sha1::{Digest, Sha1};

use crate::secret::Secret;
use lienthong_core::codec::fragment;

pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const DIGEST_TYPE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
pub const BASE64_ENCODING: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// `Base64(SHA-1(nonce + created + password))`.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    B64.encode(h.finalize())
}

/// A `<wsse:Security>` header element with a fresh nonce, created `now`.
pub fn security_header(username: &str, password: &Secret, now: DateTime<Utc>) -> String {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let created = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let digest = password_digest(&nonce, &created, password.expose());
    format!(
        concat!(
            r#"<wsse:Security soapenv:mustUnderstand="1" xmlns:wsse="{wsse}" xmlns:wsu="{wsu}">"#,
            r#"<wsse:UsernameToken wsu:Id="UsernameToken-{id}">"#,
            r#"<wsse:Username>{user}</wsse:Username>"#,
            r#"<wsse:Password Type="{ptype}">{digest}</wsse:Password>"#,
            r#"<wsse:Nonce EncodingType="{enc}">{nonce}</wsse:Nonce>"#,
            r#"<wsu:Created>{created}</wsu:Created>"#,
            r#"</wsse:UsernameToken></wsse:Security>"#
        ),
        wsse = WSSE_NS,
        wsu = WSU_NS,
        id = uuid::Uuid::new_v4().simple(),
        user = fragment::escape(username),
        ptype = DIGEST_TYPE,
        digest = digest,
        enc = BASE64_ENCODING,
        nonce = B64.encode(nonce),
        created = created,
    )
}

/// Replaces the content of every `<...:Password ...>` element with `***`, so the
/// bytes kept in the trail carry no credential (the digest is a short-lived
/// credential on its own).
pub fn redact(envelope: &str) -> String {
    let mut out = String::with_capacity(envelope.len());
    let mut rest = envelope;
    while let Some(start) = find_password_open(rest) {
        let Some(gt) = rest[start..].find('>') else {
            break;
        };
        let content_start = start + gt + 1;
        if rest[start..content_start].ends_with("/>") {
            out.push_str(&rest[..content_start]);
            rest = &rest[content_start..];
            continue;
        }
        let Some(close) = rest[content_start..].find("</") else {
            break;
        };
        out.push_str(&rest[..content_start]);
        out.push_str("***");
        rest = &rest[content_start + close..];
    }
    out.push_str(rest);
    out
}

fn find_password_open(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("Password") {
        let at = from + i;
        let before = &s[..at];
        let tag_start = before.rfind('<')?;
        let name = &s[tag_start + 1..at];
        let after = s[at + "Password".len()..].chars().next();
        let name_ok =
            name.is_empty() || (name.ends_with(':') && !name.contains(['<', '>', ' ', '/']));
        if name_ok && matches!(after, Some(' ' | '>' | '/')) {
            return Some(tag_start);
        }
        from = at + "Password".len();
    }
    None
}

/// Why a UsernameToken was refused (the simulator turns these into SOAP faults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Missing(&'static str),
    UnknownUser,
    NotDigest,
    BadDigest,
    Stale,
    ReplayedNonce,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Missing(what) => write!(f, "UsernameToken has no {what}"),
            TokenError::UnknownUser => f.write_str("unknown username"),
            TokenError::NotDigest => f.write_str("Password Type must be PasswordDigest"),
            TokenError::BadDigest => f.write_str("PasswordDigest does not match"),
            TokenError::Stale => f.write_str("Created is outside the freshness window"),
            TokenError::ReplayedNonce => f.write_str("Nonce was already used"),
        }
    }
}

/// Server side: verifies UsernameTokens and remembers nonces for the window.
pub struct Verifier {
    username: String,
    password: Secret,
    window: chrono::Duration,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Verifier {
    pub fn new(username: impl Into<String>, password: Secret, window: std::time::Duration) -> Self {
        Verifier {
            username: username.into(),
            password,
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(5)),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies the UsernameToken in a SOAP envelope's header.
    pub fn verify(&self, envelope: &str, now: DateTime<Utc>) -> Result<(), TokenError> {
        let header = fragment::inner(envelope, "Security")
            .ok()
            .flatten()
            .ok_or(TokenError::Missing("Security header"))?;
        let field = |name: &'static str| -> Result<String, TokenError> {
            fragment::text(header, name)
                .ok()
                .flatten()
                .map(|s| s.trim().to_string())
                .ok_or(TokenError::Missing(name))
        };
        let user = field("Username")?;
        let digest = field("Password")?;
        let nonce_b64 = field("Nonce")?;
        let created = field("Created")?;
        if !header.contains("#PasswordDigest") {
            return Err(TokenError::NotDigest);
        }
        if user != self.username {
            return Err(TokenError::UnknownUser);
        }
        let nonce = B64
            .decode(nonce_b64.as_bytes())
            .map_err(|_| TokenError::Missing("valid base64 Nonce"))?;
        let created_at = DateTime::parse_from_rfc3339(&created)
            .map_err(|_| TokenError::Stale)?
            .with_timezone(&Utc);
        if (now - created_at).abs() > self.window {
            return Err(TokenError::Stale);
        }
        if password_digest(&nonce, &created, self.password.expose()) != digest {
            return Err(TokenError::BadDigest);
        }
        let mut seen = self.seen.lock().expect("nonce cache poisoned");
        seen.retain(|_, at| now - *at <= self.window * 2);
        if seen.insert(nonce_b64, now).is_some() {
            return Err(TokenError::ReplayedNonce);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_profile_example() {
        // Independently computed: printf 'nonce-bytes2022-09-20T08:25:07.145Zsecret' | sha1sum | xxd -r -p | base64
        assert_eq!(
            password_digest(b"nonce-bytes", "2022-09-20T08:25:07.145Z", "secret"),
            "EQbWQCjQyhdmh1JGDzqAb25w4IE="
        );
    }

    #[test]
    fn header_verifies_once_and_redacts() {
        let pw = Secret::new("mat-khau");
        let now = Utc::now();
        let env = format!("<e><h>{}</h></e>", security_header("HUB", &pw, now));
        let v = Verifier::new("HUB", pw.clone(), std::time::Duration::from_secs(300));
        assert_eq!(v.verify(&env, now), Ok(()));
        assert_eq!(v.verify(&env, now), Err(TokenError::ReplayedNonce));
        let wrong = Verifier::new(
            "HUB",
            Secret::new("other"),
            std::time::Duration::from_secs(300),
        );
        assert_eq!(wrong.verify(&env, now), Err(TokenError::BadDigest));
        let late = Verifier::new("HUB", pw, std::time::Duration::from_secs(300));
        assert_eq!(
            late.verify(&env, now + chrono::Duration::minutes(10)),
            Err(TokenError::Stale)
        );
        let red = redact(&env);
        assert!(
            red.contains("#PasswordDigest\">***</wsse:Password>"),
            "{red}"
        );
        assert!(red.contains("<wsse:Nonce"));
    }
}
