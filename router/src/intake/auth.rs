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

use std::time::Duration;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::PartnerAuth;

/// Checks a request against a partner's credentials; `Err` says why it failed.
pub fn check(
    auth: &PartnerAuth,
    headers: &HeaderMap,
    body: &[u8],
    max_skew: Duration,
    now_secs: i64,
) -> Result<(), String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let signature = headers.get("x-signature").and_then(|v| v.to_str().ok());
    let mut reasons = Vec::new();
    if let (Some(expected), Some(key)) = (auth.api_key_sha256, bearer) {
        let got = Sha256::digest(key.trim().as_bytes());
        if bool::from(got.as_slice().ct_eq(&expected)) {
            return Ok(());
        }
        reasons.push("the API key is not valid".to_string());
    }
    if let (Some(secret), Some(sig)) = (&auth.hmac_secret, signature) {
        match verify_signature(secret, headers, sig, body, max_skew, now_secs) {
            Ok(()) => return Ok(()),
            Err(e) => reasons.push(e),
        }
    }
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
    Err(reasons.join("; "))
}

fn verify_signature(
    secret: &[u8],
    headers: &HeaderMap,
    sig: &str,
    body: &[u8],
    max_skew: Duration,
    now: i64,
) -> Result<(), String> {
    let ts = headers
        .get("x-timestamp")
        .and_then(|v| v.to_str().ok())
        .ok_or("X-Signature needs an X-Timestamp header (unix seconds)")?;
    let ts_num: i64 = ts
        .trim()
        .parse()
        .map_err(|_| format!("X-Timestamp `{ts}` is not unix seconds"))?;
    if (now - ts_num).unsigned_abs() > max_skew.as_secs() {
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
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(ts.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| "the signature does not match the body".to_string())
}

/// `sha256=<hex>` for `body` at `timestamp`: what a partner (or a test) sends.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
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
}
