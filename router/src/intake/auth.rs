//! Partner authentication at intake.
//!
//! Two schemes, per partner in the config (`partners.<system>`):
//!
//! * **API key**: `Authorization: Bearer <key>`. The config holds only the SHA-256
//!   of the key, so a leaked config does not leak the key; the request's key is
//!   hashed and compared in constant time.
//! * **HMAC-SHA256 signature**: `X-Timestamp: <unix seconds>` and
//!   `X-Signature: sha256=<hex>` where the hex is
//!   `HMAC-SHA256(secret, "<X-Timestamp>." || body)`. Signing the timestamp with the
//!   body means a captured request cannot be replayed outside `max_clock_skew`.
//!   The secret itself must be known to verify, so it comes from an environment
//!   variable or file named in the config, never the config itself.
//!
//! Either scheme is enough when both are configured.
//!
//! **What the signature covers.** Besides the body, the hub acts on two request
//! headers: `Idempotency-Key` (which decides whether a message is new) and
//! `X-File-Name` (which names a station file). A signature that left them out
//! could be replayed inside the skew window with a new `Idempotency-Key`, and
//! each replay would be accepted as a new message. So when a request carries
//! either header, the signed string is
//! `"v2\n" <X-Timestamp> "\n" "idempotency-key:" <value> "\n" "x-file-name:" <value> "\n\n" <body>`
//! (an absent header signs as an empty value); a request with neither signs
//! `<X-Timestamp> "." <body>` as before. The two forms cannot be confused: a
//! timestamp never starts with `v`. Adding, changing or removing either header
//! breaks the signature. [`sign_request`] builds either form.
//!
//! **Two steps.** An API key is checked from the headers alone. A signature can
//! only be checked against the body, but its form, its timestamp and the skew are
//! checked from the headers first ([`check_headers`]), so a request with no or
//! stale credentials is refused before a byte of its body is read.

use std::time::Duration;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::PartnerAuth;

/// The headers a signature covers besides the timestamp and the body.
pub const SIGNED_HEADERS: [&str; 2] = ["idempotency-key", "x-file-name"];

/// What [`check_headers`] could establish before the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A valid API key: nothing more to check.
    Authenticated,
    /// A well-formed, fresh signature: [`check`] verifies it against the body.
    SignatureToVerify,
}

/// Step one, on the headers alone; `Err` says why the request is refused.
pub fn check_headers(
    auth: &PartnerAuth,
    headers: &HeaderMap,
    max_skew: Duration,
    now_secs: i64,
) -> Result<HeaderCheck, String> {
    let mut reasons = Vec::new();
    if let (Some(expected), Some(key)) = (auth.api_key_sha256, crate::auth::bearer(headers)) {
        if api_key_matches(&expected, key) {
            return Ok(HeaderCheck::Authenticated);
        }
        reasons.push("the API key is not valid".to_string());
    }
    if let (Some(_), Some(sig)) = (&auth.hmac_secret, signature_of(headers)) {
        match signature_parts(headers, sig, max_skew, now_secs) {
            Ok(_) => return Ok(HeaderCheck::SignatureToVerify),
            Err(e) => reasons.push(e),
        }
    }
    Err(refusal(auth, reasons))
}

/// Checks a request, body included, against a partner's credentials; `Err` says why it failed.
pub fn check(
    auth: &PartnerAuth,
    headers: &HeaderMap,
    body: &[u8],
    max_skew: Duration,
    now_secs: i64,
) -> Result<(), String> {
    let mut reasons = Vec::new();
    if let (Some(expected), Some(key)) = (auth.api_key_sha256, crate::auth::bearer(headers)) {
        if api_key_matches(&expected, key) {
            return Ok(());
        }
        reasons.push("the API key is not valid".to_string());
    }
    if let (Some(secret), Some(sig)) = (&auth.hmac_secret, signature_of(headers)) {
        match verify_signature(secret, headers, sig, body, max_skew, now_secs) {
            Ok(()) => return Ok(()),
            Err(e) => reasons.push(e),
        }
    }
    Err(refusal(auth, reasons))
}

fn api_key_matches(expected: &[u8; 32], key: &str) -> bool {
    let got = Sha256::digest(key.trim().as_bytes());
    bool::from(got.as_slice().ct_eq(expected))
}

fn signature_of(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-signature").and_then(|v| v.to_str().ok())
}

fn refusal(auth: &PartnerAuth, mut reasons: Vec<String>) -> String {
    if reasons.is_empty() {
        let mut how = Vec::new();
        if auth.api_key_sha256.is_some() {
            how.push("`Authorization: Bearer <key>`");
        }
        if auth.hmac_secret.is_some() {
            how.push("`X-Signature: sha256=<hex>` with `X-Timestamp`");
        }
        reasons.push(format!("no credentials sent: send {}", how.join(" or ")));
    }
    reasons.join("; ")
}

/// The timestamp and the decoded signature, once their form and the skew are checked.
fn signature_parts<'h>(
    headers: &'h HeaderMap,
    sig: &str,
    max_skew: Duration,
    now: i64,
) -> Result<(&'h str, Vec<u8>), String> {
    let ts = headers
        .get("x-timestamp")
        .and_then(|v| v.to_str().ok())
        .ok_or("X-Signature needs an X-Timestamp header (unix seconds)")?
        .trim();
    let ts_num: i64 = ts
        .parse()
        .map_err(|_| format!("X-Timestamp `{ts}` is not unix seconds"))?;
    if now.abs_diff(ts_num) > max_skew.as_secs() {
        return Err(format!(
            "X-Timestamp {ts_num} is more than {}s away from the hub's clock ({now})",
            max_skew.as_secs()
        ));
    }
    let hex_sig = sig
        .trim()
        .strip_prefix("sha256=")
        .ok_or("X-Signature must look like `sha256=<hex>`")?;
    let given = hex::decode(hex_sig).map_err(|_| "X-Signature is not hex".to_string())?;
    Ok((ts, given))
}

fn verify_signature(
    secret: &[u8],
    headers: &HeaderMap,
    sig: &str,
    body: &[u8],
    max_skew: Duration,
    now: i64,
) -> Result<(), String> {
    let (ts, given) = signature_parts(headers, sig, max_skew, now)?;
    let covered: Vec<(&str, String)> = SIGNED_HEADERS
        .iter()
        .map(|name| {
            let value = headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (*name, value)
        })
        .collect();
    let pairs: Vec<(&str, &str)> = covered.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut mac = mac_over(secret, ts, &pairs);
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| {
        "the signature does not match the body and the signed headers \
         (X-Timestamp, and Idempotency-Key and X-File-Name when sent)"
            .to_string()
    })
}

/// The MAC state after the prefix of the signed string (everything but the body).
fn mac_over(secret: &[u8], ts: &str, headers: &[(&str, &str)]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    };
    if SIGNED_HEADERS.iter().all(|h| value(h).is_empty()) {
        mac.update(ts.as_bytes());
        mac.update(b".");
    } else {
        mac.update(b"v2\n");
        mac.update(ts.as_bytes());
        mac.update(b"\n");
        for h in SIGNED_HEADERS {
            mac.update(h.as_bytes());
            mac.update(b":");
            mac.update(value(h).as_bytes());
            mac.update(b"\n");
        }
        mac.update(b"\n");
    }
    mac
}

/// `sha256=<hex>` for a request with these headers (any of them; those in
/// [`SIGNED_HEADERS`] are signed) and `body` at `timestamp`: what a partner sends.
pub fn sign_request(
    secret: &[u8],
    timestamp: i64,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut mac = mac_over(secret, &timestamp.to_string(), headers);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `sha256=<hex>` for `body` at `timestamp`, for a request that sends neither
/// `Idempotency-Key` nor `X-File-Name`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    sign_request(secret, timestamp, &[], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> PartnerAuth {
        PartnerAuth {
            api_key_sha256: Some(Sha256::digest(b"k3y").into()),
            hmac_secret: Some(b"s3cret".to_vec()),
            rate: None,
        }
    }

    #[test]
    fn bearer_and_signature() {
        let skew = Duration::from_secs(300);
        let mut h = HeaderMap::new();
        assert!(check(&auth(), &h, b"x", skew, 1000)
            .unwrap_err()
            .contains("no credentials"));
        h.insert("authorization", "Bearer k3y".parse().unwrap());
        assert!(check(&auth(), &h, b"x", skew, 1000).is_ok());
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert!(check(&auth(), &h, b"x", skew, 1000).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-timestamp", "1000".parse().unwrap());
        h.insert(
            "x-signature",
            sign(b"s3cret", 1000, b"body").parse().unwrap(),
        );
        assert!(check(&auth(), &h, b"body", skew, 1100).is_ok());
        assert!(check(&auth(), &h, b"bodY", skew, 1100)
            .unwrap_err()
            .contains("does not match"));
        assert!(check(&auth(), &h, b"body", skew, 2000)
            .unwrap_err()
            .contains("clock"));
    }

    #[test]
    fn the_signature_covers_the_idempotency_key() {
        let skew = Duration::from_secs(300);
        let mut h = HeaderMap::new();
        h.insert("x-timestamp", "1000".parse().unwrap());
        h.insert("idempotency-key", "k-1".parse().unwrap());
        let sig = sign_request(b"s3cret", 1000, &[("Idempotency-Key", "k-1")], b"body");
        h.insert("x-signature", sig.parse().unwrap());
        assert!(check(&auth(), &h, b"body", skew, 1000).is_ok());
        // A replay with another key, or with none, no longer verifies.
        h.insert("idempotency-key", "k-2".parse().unwrap());
        assert!(check(&auth(), &h, b"body", skew, 1000).is_err());
        h.remove("idempotency-key");
        assert!(check(&auth(), &h, b"body", skew, 1000).is_err());
        // A v1 signature (no covered header) gains no header either.
        h.insert(
            "x-signature",
            sign(b"s3cret", 1000, b"body").parse().unwrap(),
        );
        assert!(check(&auth(), &h, b"body", skew, 1000).is_ok());
        h.insert("idempotency-key", "k-3".parse().unwrap());
        assert!(check(&auth(), &h, b"body", skew, 1000).is_err());
    }

    #[test]
    fn headers_are_checked_before_the_body() {
        let skew = Duration::from_secs(300);
        let mut h = HeaderMap::new();
        assert!(check_headers(&auth(), &h, skew, 1000).is_err());
        h.insert("authorization", "bearer k3y".parse().unwrap());
        assert_eq!(
            check_headers(&auth(), &h, skew, 1000),
            Ok(HeaderCheck::Authenticated)
        );
        let mut h = HeaderMap::new();
        h.insert("x-timestamp", "1000".parse().unwrap());
        h.insert("x-signature", "sha256=00".parse().unwrap());
        assert_eq!(
            check_headers(&auth(), &h, skew, 1000),
            Ok(HeaderCheck::SignatureToVerify)
        );
        assert!(check_headers(&auth(), &h, skew, 5000)
            .unwrap_err()
            .contains("clock"));
    }
}
