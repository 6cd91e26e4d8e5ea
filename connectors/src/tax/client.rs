//! The tax GIP [`Transport`].

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::future::BoxFuture;
use lienthong_core::transport::{Failure, FailureClass, Outbound, Receipt, Transport};
use reqwest::header::CONTENT_TYPE;

use super::auth::Credentials;
use super::codec::{self, MsgIds};
use super::{classify, TaxConfig, SYSTEM};
use crate::error::ConnectorError;
use crate::secret::Secret;
use lienthong_core::codec::{soap, tax_gip};

use crate::wire;

/// Sends GIP documents to the tax gateway.
pub struct TaxClient {
    config: TaxConfig,
    http: reqwest::Client,
    credentials: Credentials,
    msg_ids: MsgIds,
}

impl TaxClient {
    pub fn new(config: TaxConfig) -> Result<Self, ConnectorError> {
        let password = Secret::load(
            &format!("connectors.{SYSTEM}.password"),
            config.password_env.as_deref(),
            config.password_file.as_deref(),
        )?;
        Self::with_password(config, password)
    }

    pub fn with_password(config: TaxConfig, password: Secret) -> Result<Self, ConnectorError> {
        let http = wire::build_client(SYSTEM, Duration::from_millis(config.timeout_ms))?;
        let credentials = Credentials {
            username: config.username.clone(),
            password,
        };
        Ok(TaxClient {
            config,
            http,
            credentials,
            msg_ids: MsgIds::new(),
        })
    }

    /// The GIP document that would be sent for `out` (header filled), and its MSG_ID.
    pub fn document(&self, out: &Outbound) -> Result<(String, String), String> {
        let text = std::str::from_utf8(&out.body)
            .map_err(|e| format!("the mapped body is not UTF-8: {e}"))?;
        let parts = codec::parts(text, &self.config, &out.message_type)?;
        let now = Utc::now();
        let header = codec::header(
            &parts.header,
            &self.config,
            &out.message_type,
            || self.msg_ids.next(&self.config.sender_code, now),
            now,
        );
        let msg_id = header
            .iter()
            .find(|(f, _)| *f == "MSG_ID")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Ok((
            tax_gip::data_document(&header, &parts.body, &parts.security),
            msg_id,
        ))
    }

    async fn deliver(&self, out: &Outbound) -> Result<Receipt, Failure> {
        let (data, msg_id) = self.document(out).map_err(|e| {
            wire::failure(
                FailureClass::Permanent,
                "bad-body",
                format!("{e}; fix the mapping"),
                None,
                &out.body,
                b"",
            )
        })?;
        let (envelope, redacted) = codec::envelope(&data, &self.credentials.header(), &self.config);
        let recorded = Bytes::from(redacted);
        let builder = self
            .http
            .post(&self.config.url)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}\"", self.config.soap_action))
            .header("Idempotency-Key", &out.idempotency_key)
            .body(envelope);
        let response = wire::execute(builder, &recorded).await?;
        let text = String::from_utf8_lossy(&response.body);
        let reply = if text.trim_start().starts_with('<') {
            soap::parse_reply(&text).ok()
        } else {
            None
        };
        let body = match reply {
            Some(soap::Reply::Fault(fault)) => {
                let (reason, detail) =
                    crate::lis::classify::fault_text("the tax GIP gateway", &fault);
                let mut f = wire::failure(
                    crate::lis::classify::fault_class(&fault),
                    reason,
                    detail,
                    Some(response.status),
                    &recorded,
                    &response.body,
                );
                f.retry_after = wire::retry_after(&response.headers);
                return Err(f);
            }
            _ if !wire::is_success(response.status) => {
                return Err(wire::status_failure(
                    "the tax GIP gateway",
                    &response,
                    &recorded,
                ))
            }
            Some(soap::Reply::Body(body)) => body,
            None => {
                return Err(wire::failure(
                    FailureClass::Permanent,
                    "unexpected-reply",
                    format!(
                        "the tax gateway answered HTTP {} without a SOAP envelope; check the url",
                        response.status
                    ),
                    Some(response.status),
                    &recorded,
                    &response.body,
                ))
            }
        };
        let header = tax_gip::reply_header(&body).map_err(|e| {
            wire::failure(
                FailureClass::Permanent,
                "unexpected-reply",
                format!("the tax gateway's reply to MSG_ID {msg_id} is not understood: {e}"),
                Some(response.status),
                &recorded,
                &response.body,
            )
        })?;
        if let Some((class, reason)) =
            classify::classify(&header.error_code, &self.config.transient_error_codes)
        {
            let advice = if class == FailureClass::Transient {
                "transient: worth retrying"
            } else {
                "the tax authority rejected the message; fix the data or the mapping and replay"
            };
            let mut f = wire::failure(
                class,
                reason,
                format!(
                    "GIP ERROR_CODE {:?} for MSG_ID {msg_id}: {} ({advice})",
                    header.error_code, header.error_desc
                ),
                Some(response.status),
                &recorded,
                &response.body,
            );
            f.retry_after = wire::retry_after(&response.headers);
            return Err(f);
        }
        let reference = if header.msg_id.is_empty() || header.msg_id == msg_id {
            format!("MSG_ID={msg_id}")
        } else {
            format!("MSG_ID={msg_id}; reply MSG_ID={}", header.msg_id)
        };
        Ok(wire::receipt(&response, &recorded, Some(reference)))
    }
}

impl Transport for TaxClient {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(self.deliver(out))
    }
}
