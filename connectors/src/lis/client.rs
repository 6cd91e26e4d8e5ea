//! The LIS [`Transport`].

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use lienthong_core::transport::{Failure, FailureClass, Outbound, Receipt, Transport};
use reqwest::header::CONTENT_TYPE;

use super::auth::Credentials;
use super::{classify, codec, LisConfig, SYSTEM};
use crate::error::ConnectorError;
use crate::secret::Secret;
use lienthong_core::codec::{fragment, soap};

use crate::wire;

/// Sends mapped XML to LIS as SOAP with WS-Security.
pub struct LisClient {
    config: LisConfig,
    http: reqwest::Client,
    credentials: Credentials,
}

impl LisClient {
    pub fn new(config: LisConfig) -> Result<Self, ConnectorError> {
        let password = Secret::load(
            &format!("connectors.{SYSTEM}.password"),
            config.password_env.as_deref(),
            config.password_file.as_deref(),
        )?;
        Self::with_password(config, password)
    }

    pub fn with_password(config: LisConfig, password: Secret) -> Result<Self, ConnectorError> {
        let http = wire::build_client(SYSTEM, Duration::from_millis(config.timeout_ms))?;
        let credentials = Credentials {
            username: config.username.clone(),
            password,
        };
        Ok(LisClient {
            config,
            http,
            credentials,
        })
    }

    async fn deliver(&self, out: &Outbound) -> Result<Receipt, Failure> {
        let (envelope, redacted) =
            codec::envelope(&out.body, &self.credentials.header()).map_err(|e| {
                wire::failure(
                    FailureClass::Permanent,
                    "bad-body",
                    format!("{e}; fix the mapping"),
                    None,
                    &out.body,
                    b"",
                )
            })?;
        let recorded = Bytes::from(redacted);
        let builder = self
            .http
            .post(&self.config.url)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header(
                "SOAPAction",
                format!("\"{}\"", self.config.soap_action(&out.message_type)),
            )
            .header("Idempotency-Key", &out.idempotency_key)
            .body(envelope);
        let response = wire::execute(builder, &recorded).await?;
        classify_response(&response, &recorded, &self.config.reference_element, "LIS")
    }
}

/// Shared by LIS-style SOAP partners: a fault wins over the status; a 2xx with a
/// body is a receipt.
// `Failure` is the router's transport contract type; boxing it here would only move the copy.
#[allow(clippy::result_large_err)]
pub(crate) fn classify_response(
    response: &wire::Response,
    recorded: &Bytes,
    reference_element: &str,
    system: &str,
) -> Result<Receipt, Failure> {
    let text = String::from_utf8_lossy(&response.body);
    let parsed = if text.trim_start().starts_with('<') {
        soap::parse_reply(&text).ok()
    } else {
        None
    };
    match parsed {
        Some(soap::Reply::Fault(fault)) => {
            let (reason, detail) = classify::fault_text(system, &fault);
            let mut f = wire::failure(classify::fault_class(&fault), reason, detail, Some(response.status), recorded, &response.body);
            f.retry_after = wire::retry_after(&response.headers);
            Err(f)
        }
        _ if !wire::is_success(response.status) => Err(wire::status_failure(system, response, recorded)),
        Some(soap::Reply::Body(body)) => {
            let reference = if reference_element.is_empty() {
                None
            } else {
                fragment::text(&body, reference_element).ok().flatten().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
            };
            Ok(wire::receipt(response, recorded, reference))
        }
        None => Err(wire::failure(
            FailureClass::Permanent,
            "unexpected-reply",
            format!("{system} answered HTTP {} without a SOAP envelope; check the url (the message may or may not have been applied)", response.status),
            Some(response.status),
            recorded,
            &response.body,
        )),
    }
}

impl Transport for LisClient {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(self.deliver(out))
    }
}
