//! Cổng Dịch vụ công Quốc gia (DVCQG), the national public-service portal.
//!
//! ## Protocol (verified from VietOpenCPS `DVCQGIntegrationActionImpl`)
//! * Login: `POST {auth_url}` with header `dstcode: <dstcode>` and body
//!   `{"username", "password"}` → `{error_code, message, session}`.
//! * Every call: `POST {integration_url}` with header `dstcode` and body
//!   `{session, madonvi, service, isUpdating?, data}`. Services used by the hub:
//!   `DongBoHoSoMC` (dossier sync; `isUpdating` "True"/"False") and
//!   `CapNhatTienDoHoSoMC` (progress). The mapped body carries `service`, `madonvi`
//!   (else the configured `madonvi` is used), `isUpdating` and `data`; this connector
//!   adds `session` in front.
//! * Success: `error_code` `"00"` or `0`.
//!
//! ## Session
//! The session is re-used by every delivery and re-established (single-flight) when
//! the portal says it expired — HTTP 401 or an `error_code` in
//! `session_expired_codes` (default `["401", "SESSION_EXPIRED"]`, **assumed**: the
//! public source only checks `"00"`) — or proactively after `session_ttl_secs`.
//! After a re-login the call is re-sent once; that is protocol, not a retry.
//! Because the expiry codes are assumed, HTTP 403 and **any** non-success
//! `error_code` to a session that was used before are treated as a possible
//! expiry too: one re-login, one resend, and only that answer is classified.
//! A permanent answer drops the cached session, so a refusal never leaves a
//! poisoned session behind (the next delivery logs in).
//!
//! ## Classification ([`classify`])
//! Transport errors, 408/429/5xx: transient. Login refused: permanent (fix the
//! credentials). `error_code` in `transient_error_codes` (default `["99", "500",
//! "503"]`, **assumed**): transient. Any other non-success code: permanent.
//!
//! ## Trail
//! The bytes recorded for the trail are the body sent with `session` replaced by `***`.
//!
//! ## Config keys (`connectors.national-portal`)
//! `auth_url`, `integration_url`, `dstcode`, `username`, `password_env` |
//! `password_file`, `madonvi`, `timeout_ms`, `session_ttl_secs`,
//! `session_expired_codes`, `transient_error_codes`.

pub mod auth;
pub mod classify;
pub mod client;
pub mod codec;

use std::path::PathBuf;

use lienthong_core::{Diagnostic, Diagnostics};
use serde::Deserialize;

pub use client::NationalPortalClient;

pub const SYSTEM: &str = "national-portal";

/// `connectors.national-portal` in the hub's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalPortalConfig {
    pub auth_url: String,
    pub integration_url: String,
    pub dstcode: String,
    pub username: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Mã định danh of the department, used when the mapped body has no `madonvi`.
    #[serde(default)]
    pub madonvi: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Re-login proactively after this many seconds (unset: only when the portal says so).
    #[serde(default)]
    pub session_ttl_secs: Option<u64>,
    #[serde(default = "default_expired_codes")]
    pub session_expired_codes: Vec<String>,
    #[serde(default = "default_transient_codes")]
    pub transient_error_codes: Vec<String>,
}

fn default_timeout_ms() -> u64 {
    30_000
}
fn default_expired_codes() -> Vec<String> {
    vec!["401".into(), "SESSION_EXPIRED".into()]
}
fn default_transient_codes() -> Vec<String> {
    vec!["99".into(), "500".into(), "503".into()]
}

impl NationalPortalConfig {
    pub fn new(
        auth_url: impl Into<String>,
        integration_url: impl Into<String>,
        dstcode: impl Into<String>,
        username: impl Into<String>,
    ) -> Self {
        NationalPortalConfig {
            auth_url: auth_url.into(),
            integration_url: integration_url.into(),
            dstcode: dstcode.into(),
            username: username.into(),
            password_env: None,
            password_file: None,
            madonvi: None,
            timeout_ms: default_timeout_ms(),
            session_ttl_secs: None,
            session_expired_codes: default_expired_codes(),
            transient_error_codes: default_transient_codes(),
        }
    }

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
        crate::province_portal::check_url(&mut push, "auth_url", &self.auth_url);
        crate::province_portal::check_url(&mut push, "integration_url", &self.integration_url);
        if self.dstcode.trim().is_empty() {
            push(
                "dstcode",
                "empty; set the dstcode DVCQG issued to the department".into(),
            );
        }
        if self.username.trim().is_empty() {
            push(
                "username",
                "empty; set the DVCQG integration account".into(),
            );
        }
        if self.timeout_ms == 0 {
            push("timeout_ms", "must be greater than 0".into());
        }
        if self.session_ttl_secs == Some(0) {
            push(
                "session_ttl_secs",
                "must be greater than 0 (or removed)".into(),
            );
        }
        crate::secret::validate_source(
            &mut d,
            file,
            &ctx("password_env|password_file"),
            self.password_env.as_deref(),
            self.password_file.as_ref(),
        );
        d
    }
}
