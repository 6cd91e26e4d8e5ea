//! The tax authority's GIP gateway (land-obligation interconnection).
//!
//! ## Protocol (envelope and header verified from a GDT GIP client; the
//! transfer-form content is assumed)
//! `POST {url}` SOAP 1.1 with WS-Security UsernameToken (PasswordDigest). The SOAP
//! body is `<gip:xuLyTruyVanMsg><in_msg><![CDATA[<DATA>…</DATA>]]></in_msg>` (the
//! operation, part and namespace are configurable); the business document is
//! `<DATA><HEADER/><BODY/><SECURITY/></DATA>`. The reply carries a `<DATA>` whose
//! `HEADER/ERROR_CODE` tells the outcome.
//!
//! ## What the hub hands this connector
//! The mapping for a tax message produces the business document (format `tax-gip`),
//! and the hub stores and hands over the bare `<DATA>` document
//! (`MessageSchema::encode`): the envelope is added here, once. The connector also
//! accepts the full GIP SOAP envelope (deliveries stored by earlier versions carry
//! one), a `<BODY>` element, or a single `<ROW>`. The document, its envelope and
//! the reply header are written by `lienthong_core::codec::tax_gip`, the same code
//! the hub decodes inbound tax messages with.
//! It always re-emits the `HEADER` in the gateway's field order, keeping every field
//! the mapping filled and filling the empty or missing ones by rule:
//! `VERSION` 1, `SENDER_CODE`/`SENDER_NAME`/`ORIGINAL_*` from config,
//! `RECEIVER_CODE`/`RECEIVER_NAME` from config (default `GIP` / `Hệ Thống GIP`),
//! `TRAN_CODE` from `tran_codes[message_type]` else `tran_code`,
//! `MSG_ID` = sender code + `yyyyMMdd` + a 9-digit sequence (seeded from the time of
//! day so a restart does not reuse numbers), `SEND_DATE`/`ORIGINAL_DATE` = today
//! `dd-MM-yyyy` in Asia/Ho_Chi_Minh. For a bare `<ROW>` without `TYPE`, `TYPE` and
//! `NAME` come from `types[message_type]`. `SECURITY` is passed through (the XMLDSig
//! signature with the department's certificate is **not implemented**: no
//! certificate has been issued; the gateway may require it).
//!
//! ## Classification ([`classify`])
//! Reply `ERROR_CODE` empty, `0`, `00`, `000`: success (the `MSG_ID` sent, and the
//! reply's, become the partner reference). Codes in `transient_error_codes` (default
//! `["99", "-1"]`, **assumed**: GIP's code list is not public): transient; any other
//! code: permanent. SOAP `Server` fault / 5xx / timeouts: transient; `Client` fault and
//! other 4xx: permanent.
//!
//! ## Config keys (`connectors.tax`)
//! `url`, `username`, `password_env` | `password_file`, `sender_code`, `sender_name`,
//! `receiver_code`, `receiver_name`, `tran_code`, `tran_codes`, `types`
//! (message type → `{code, name}`), `operation`, `part`, `namespace`, `soap_action`,
//! `transient_error_codes`, `timeout_ms`.

pub mod auth;
pub mod classify;
pub mod client;
pub mod codec;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lienthong_core::{Diagnostic, Diagnostics};
use serde::Deserialize;

pub use client::TaxClient;

pub const SYSTEM: &str = "tax";

/// A GIP message kind.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GipType {
    /// e.g. `00109`.
    pub code: String,
    /// e.g. `Truy vấn sổ thuế nhà đất`.
    #[serde(default)]
    pub name: String,
}

/// `connectors.tax` in the hub's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxConfig {
    pub url: String,
    pub username: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    pub sender_code: String,
    pub sender_name: String,
    #[serde(default = "default_receiver_code")]
    pub receiver_code: String,
    #[serde(default = "default_receiver_name")]
    pub receiver_name: String,
    #[serde(default = "default_tran_code")]
    pub tran_code: String,
    #[serde(default)]
    pub tran_codes: BTreeMap<String, String>,
    #[serde(default = "default_types")]
    pub types: BTreeMap<String, GipType>,
    #[serde(default = "default_operation")]
    pub operation: String,
    #[serde(default = "default_part")]
    pub part: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub soap_action: String,
    #[serde(default = "default_transient")]
    pub transient_error_codes: Vec<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_receiver_code() -> String {
    "GIP".into()
}
fn default_receiver_name() -> String {
    "Hệ Thống GIP".into()
}
fn default_tran_code() -> String {
    "05011".into()
}
fn default_types() -> BTreeMap<String, GipType> {
    BTreeMap::from([
        (
            "ledger.query".to_string(),
            GipType {
                code: "00109".into(),
                name: "Truy vấn sổ thuế nhà đất".into(),
            },
        ),
        (
            "transfer-form".to_string(),
            GipType {
                code: "00101".into(),
                name: "Phiếu chuyển thông tin nghĩa vụ tài chính".into(),
            },
        ),
    ])
}
fn default_operation() -> String {
    "xuLyTruyVanMsg".into()
}
fn default_part() -> String {
    "in_msg".into()
}
fn default_namespace() -> String {
    "http://gip.request.com/".into()
}
fn default_transient() -> Vec<String> {
    vec!["99".into(), "-1".into()]
}
fn default_timeout_ms() -> u64 {
    30_000
}

impl TaxConfig {
    pub fn new(
        url: impl Into<String>,
        username: impl Into<String>,
        sender_code: impl Into<String>,
        sender_name: impl Into<String>,
    ) -> Self {
        TaxConfig {
            url: url.into(),
            username: username.into(),
            password_env: None,
            password_file: None,
            sender_code: sender_code.into(),
            sender_name: sender_name.into(),
            receiver_code: default_receiver_code(),
            receiver_name: default_receiver_name(),
            tran_code: default_tran_code(),
            tran_codes: BTreeMap::new(),
            types: default_types(),
            operation: default_operation(),
            part: default_part(),
            namespace: default_namespace(),
            soap_action: String::new(),
            transient_error_codes: default_transient(),
            timeout_ms: default_timeout_ms(),
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
        crate::province_portal::check_url(&mut push, "url", &self.url);
        for (k, v) in [
            ("username", &self.username),
            ("sender_code", &self.sender_code),
            ("sender_name", &self.sender_name),
        ] {
            if v.trim().is_empty() {
                push(
                    k,
                    "empty; set the value the tax authority registered for the department".into(),
                );
            }
        }
        if !self
            .sender_code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            push(
                "sender_code",
                format!(
                    "`{}` must be letters, digits or `_` (it prefixes MSG_ID)",
                    self.sender_code
                ),
            );
        }
        for (k, v) in [("operation", &self.operation), ("part", &self.part)] {
            if v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                push(
                    k,
                    format!(
                        "`{v}` is not an XML element name (no prefix; the `gip` prefix is added)"
                    ),
                );
            }
        }
        for (t, g) in &self.types {
            if g.code.is_empty() || !g.code.chars().all(|c| c.is_ascii_digit()) {
                push(
                    &format!("types.{t}.code"),
                    format!("`{}` must be the digits of a GIP TYPE, e.g. 00109", g.code),
                );
            }
        }
        if self.timeout_ms == 0 {
            push("timeout_ms", "must be greater than 0".into());
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
