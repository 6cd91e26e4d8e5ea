//! Land information system (TMV.LIS; VBDLIS is the same family).
//!
//! ## Protocol
//! SOAP 1.1 over HTTP(S): `POST {url}` with `Content-Type: text/xml; charset=utf-8`
//! and a `SOAPAction` header per message type (`soap_actions`, else
//! `soap_action_prefix` + message type). The mapped XML body (root element as the
//! mapping produced it, any `<?xml?>` declaration dropped) goes verbatim inside
//! `soapenv:Body`. **Assumed**: the TMV.LIS service contract is not public; the field
//! vocabulary of the bodies follows VBDLIS (verified), the transport is the common
//! .NET ASMX/WCF style.
//!
//! ## Authentication
//! WS-Security UsernameToken with PasswordDigest, a fresh Nonce and Created per
//! request ([`crate::wssec`]). The trail keeps the envelope with the digest replaced
//! by `***`.
//!
//! ## Classification ([`classify`])
//! SOAP fault `Client*` (incl. `Client.Authentication`), `VersionMismatch`,
//! `MustUnderstand`: permanent. `Server*`: transient. HTTP 5xx without a fault,
//! 408, 429, timeouts: transient (`Retry-After` honoured). Other 4xx: permanent.
//! A 2xx reply is accepted; the text of `reference_element` (default `SoBienNhan`)
//! in the reply, when present, becomes the partner reference.
//!
//! ## Config keys (`connectors.lis`)
//! `url`, `username`, `password_env` | `password_file`, `soap_action_prefix`,
//! `soap_actions` (message type → action), `reference_element`, `timeout_ms`.

pub mod auth;
pub mod classify;
pub mod client;
pub mod codec;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lienthong_core::{Diagnostic, Diagnostics};
use serde::Deserialize;

pub use client::LisClient;

pub const SYSTEM: &str = "lis";

/// `connectors.lis` in the hub's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LisConfig {
    pub url: String,
    pub username: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_prefix")]
    pub soap_action_prefix: String,
    #[serde(default)]
    pub soap_actions: BTreeMap<String, String>,
    #[serde(default = "default_reference")]
    pub reference_element: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_prefix() -> String {
    "http://lis.quangnam.gov.vn/hoso/".into()
}
fn default_reference() -> String {
    "SoBienNhan".into()
}
fn default_timeout_ms() -> u64 {
    30_000
}

impl LisConfig {
    pub fn new(url: impl Into<String>, username: impl Into<String>) -> Self {
        LisConfig {
            url: url.into(),
            username: username.into(),
            password_env: None,
            password_file: None,
            soap_action_prefix: default_prefix(),
            soap_actions: BTreeMap::new(),
            reference_element: default_reference(),
            timeout_ms: default_timeout_ms(),
        }
    }

    /// The SOAPAction for a message type.
    pub fn soap_action(&self, message_type: &str) -> String {
        self.soap_actions
            .get(message_type)
            .cloned()
            .unwrap_or_else(|| format!("{}{message_type}", self.soap_action_prefix))
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
        crate::province_portal::check_url(&mut push, "url", &self.url);
        if self.username.trim().is_empty() {
            push(
                "username",
                "empty; set the WS-Security username LIS issued to the hub".into(),
            );
        }
        if self.timeout_ms == 0 {
            push("timeout_ms", "must be greater than 0".into());
        }
        for (t, a) in &self.soap_actions {
            if a.contains(['"', '\r', '\n']) {
                push(
                    &format!("soap_actions.{t}"),
                    "must not contain quotes or line breaks".into(),
                );
            }
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
