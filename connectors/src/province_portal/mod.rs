//! Provincial one-stop system (Hệ thống thông tin giải quyết TTHC tỉnh) through
//! Quảng Nam's LGSP, a WSO2 API Manager.
//!
//! ## Protocol
//! * Token: `POST {base_url}{token_path}` (default `/token`) with HTTP Basic
//!   `consumer_key:consumer_secret` and the form body `grant_type=client_credentials`
//!   → `{access_token, token_type: "Bearer", expires_in}`. **Verified** (LGSP
//!   client code of several Quảng Nam systems).
//! * Call: `POST {base_url}{path}` with `Authorization: Bearer <token>`, the mapped
//!   JSON body as is, and `Idempotency-Key`. The path per message type comes from
//!   `paths`, else `default_path` (`/motcua/v1.0.0/hoso/capnhattrangthai`, **assumed**:
//!   the one-stop dossier API was not found publicly).
//! * Reply: `{status, errorCode, errorDesc, data}`. **Verified** shape (other LGSP
//!   APIs). Success is `status == 1` or `errorCode == "0"`.
//!
//! ## Authentication
//! The token is cached and refreshed `token_refresh_margin_secs` before `expires_in`
//! runs out. If the gateway still answers 401 (token revoked, gateway restarted),
//! the connector fetches one new token and re-sends once: that is the OAuth2
//! protocol, not a retry. A second 401 is permanent (the application is not
//! subscribed to the API).
//!
//! ## Classification ([`classify`])
//! Transport errors, 408/429/5xx: transient (429 carries `Retry-After`). Other 4xx:
//! permanent. `errorCode` in the WSO2 gateway's throttling/back-end families
//! (900800-900806, 101503-101508) or in `transient_error_codes`: transient; any other
//! non-zero `errorCode`: a business rejection, permanent.
//!
//! ## Config keys (`connectors.province-portal`)
//! `base_url`, `token_path`, `consumer_key`, `consumer_secret_env` | `consumer_secret_file`,
//! `default_path`, `paths` (message type → path), `timeout_ms`,
//! `token_refresh_margin_secs`, `transient_error_codes`.

pub mod auth;
pub mod classify;
pub mod client;
pub mod codec;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lienthong_core::{Diagnostic, Diagnostics};
use serde::Deserialize;

pub use client::ProvincePortalClient;

/// The system id this connector registers under.
pub const SYSTEM: &str = "province-portal";

/// `connectors.province-portal` in the hub's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvincePortalConfig {
    /// e.g. `https://api.lgsp.quangnam.gov.vn`
    pub base_url: String,
    #[serde(default = "default_token_path")]
    pub token_path: String,
    pub consumer_key: String,
    #[serde(default)]
    pub consumer_secret_env: Option<String>,
    #[serde(default)]
    pub consumer_secret_file: Option<PathBuf>,
    #[serde(default = "default_path")]
    pub default_path: String,
    /// Message type → API path under `base_url`.
    #[serde(default)]
    pub paths: BTreeMap<String, String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_margin")]
    pub token_refresh_margin_secs: u64,
    /// Extra LGSP `errorCode`s to treat as transient.
    #[serde(default)]
    pub transient_error_codes: Vec<String>,
}

fn default_token_path() -> String {
    "/token".into()
}
fn default_path() -> String {
    "/motcua/v1.0.0/hoso/capnhattrangthai".into()
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_margin() -> u64 {
    60
}

impl ProvincePortalConfig {
    /// A config with defaults for everything but the endpoint and the key.
    pub fn new(base_url: impl Into<String>, consumer_key: impl Into<String>) -> Self {
        ProvincePortalConfig {
            base_url: base_url.into(),
            token_path: default_token_path(),
            consumer_key: consumer_key.into(),
            consumer_secret_env: None,
            consumer_secret_file: None,
            default_path: default_path(),
            paths: BTreeMap::new(),
            timeout_ms: default_timeout_ms(),
            token_refresh_margin_secs: default_margin(),
            transient_error_codes: Vec::new(),
        }
    }

    /// Pure validation (no I/O): every problem at once.
    pub fn validate(&self, file: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        let ctx = |k: &str| format!("connectors.{SYSTEM}.{k}");
        let mut push = |k: &str, m: String| {
            d.push(Diagnostic {
                file: file.into(),
                line: 0,
                column: 0,
                context: ctx(k),
                message: m,
            })
        };
        check_url(&mut push, "base_url", &self.base_url);
        if self.consumer_key.trim().is_empty() {
            push(
                "consumer_key",
                "empty; set the LGSP application's consumer key".into(),
            );
        }
        for (k, p) in std::iter::once(("token_path".to_string(), &self.token_path))
            .chain(std::iter::once((
                "default_path".to_string(),
                &self.default_path,
            )))
            .chain(self.paths.iter().map(|(t, p)| (format!("paths.{t}"), p)))
        {
            if !p.starts_with('/') {
                push(
                    &k,
                    format!("`{p}` must start with `/` (it is appended to base_url)"),
                );
            }
        }
        if self.timeout_ms == 0 {
            push("timeout_ms", "must be greater than 0".into());
        }
        crate::secret::validate_source(
            &mut d,
            file,
            &ctx("consumer_secret_env|consumer_secret_file"),
            self.consumer_secret_env.as_deref(),
            self.consumer_secret_file.as_ref(),
        );
        d
    }
}

/// Shared URL check used by every connector's `validate`.
pub(crate) fn check_url(push: &mut impl FnMut(&str, String), key: &str, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => push(
            key,
            format!("`{url}` has scheme `{}`; use http or https", u.scheme()),
        ),
        Err(e) => push(
            key,
            format!("`{url}` is not a URL ({e}); write e.g. https://host:port"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reports_everything() {
        let mut c = ProvincePortalConfig::new("ftp://x", "");
        c.paths.insert("dossier.status".into(), "no-slash".into());
        c.timeout_ms = 0;
        let d = c.validate("lienthong.yaml");
        let text = d.to_string();
        assert_eq!(d.len(), 5, "{text}");
        assert!(text.contains("connectors.province-portal.paths.dossier.status"));
        let mut ok = ProvincePortalConfig::new("https://api.lgsp.quangnam.gov.vn", "key");
        ok.consumer_secret_env = Some("LGSP_SECRET".into());
        assert!(ok.validate("f").is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_str::<ProvincePortalConfig>(
            r#"{"base_url":"http://x","consumer_key":"k","secret":"s"}"#,
        );
        assert!(e.unwrap_err().to_string().contains("unknown field"));
    }
}
