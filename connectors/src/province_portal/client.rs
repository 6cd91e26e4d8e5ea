//! The province-portal [`Transport`]: bearer token, POST, one silent re-token on 401.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use lienthong_core::transport::{Failure, FailureClass, Outbound, Receipt, Transport};
use reqwest::header::CONTENT_TYPE;

use super::auth::{TokenSource, AUTH_HEADER};
use super::{classify, codec, ProvincePortalConfig, SYSTEM};
use crate::error::ConnectorError;
use crate::secret::Secret;
use crate::wire;

/// Sends mapped messages to the province portal through the LGSP.
pub struct ProvincePortalClient {
    config: ProvincePortalConfig,
    http: reqwest::Client,
    tokens: TokenSource,
}

impl ProvincePortalClient {
    /// Reads the consumer secret from the configured env var or file.
    pub fn new(config: ProvincePortalConfig) -> Result<Self, ConnectorError> {
        let secret = Secret::load(
            &format!("connectors.{SYSTEM}.consumer_secret"),
            config.consumer_secret_env.as_deref(),
            config.consumer_secret_file.as_deref(),
        )?;
        Self::with_secret(config, secret)
    }

    /// Builds the client with an already loaded secret (tests, demo).
    pub fn with_secret(
        config: ProvincePortalConfig,
        consumer_secret: Secret,
    ) -> Result<Self, ConnectorError> {
        let http = wire::build_client(SYSTEM, Duration::from_millis(config.timeout_ms))?;
        let tokens = TokenSource::new(
            http.clone(),
            format!(
                "{}{}",
                config.base_url.trim_end_matches('/'),
                config.token_path
            ),
            config.consumer_key.clone(),
            consumer_secret,
            Duration::from_secs(config.token_refresh_margin_secs),
        );
        Ok(ProvincePortalClient {
            config,
            http,
            tokens,
        })
    }

    fn url(&self, message_type: &str) -> String {
        let path = self
            .config
            .paths
            .get(message_type)
            .unwrap_or(&self.config.default_path);
        format!("{}{}", self.config.base_url.trim_end_matches('/'), path)
    }

    async fn post(
        &self,
        out: &Outbound,
        token: &Secret,
        request: &Bytes,
    ) -> Result<wire::Response, Failure> {
        let builder = self
            .http
            .post(self.url(&out.message_type))
            .header(AUTH_HEADER, format!("Bearer {}", token.expose()))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header("Idempotency-Key", &out.idempotency_key)
            .body(request.clone());
        wire::execute(builder, request).await
    }

    async fn deliver(&self, out: &Outbound) -> Result<Receipt, Failure> {
        // The body goes out unchanged; credentials travel only in headers, so the
        // bytes recorded in the trail are exactly the bytes sent.
        let request = out.body.clone();
        let token = self.tokens.bearer(&request).await?;
        let mut response = self.post(out, &token, &request).await?;
        if response.status == 401 {
            tracing::info!(delivery = %out.delivery_id, "LGSP answered 401; fetching a new token once");
            let fresh = self.tokens.refresh(&token, &request).await?;
            response = self.post(out, &fresh, &request).await?;
            if response.status == 401 {
                let mut f = wire::status_failure("the LGSP", &response, &request);
                f.class = FailureClass::Permanent;
                f.reason = "lgsp-unauthorized".into();
                f.detail = "the LGSP refused a freshly issued token (HTTP 401): the application is probably not subscribed to this API; subscribe it in the LGSP store".into();
                return Err(f);
            }
        }
        if !wire::is_success(response.status) {
            return Err(wire::status_failure(
                "the province portal (LGSP)",
                &response,
                &request,
            ));
        }
        let reply = codec::parse_reply(&response.body).map_err(|e| {
            wire::failure(
                FailureClass::Permanent,
                "unexpected-reply",
                format!(
                    "the LGSP answered HTTP {} but {e}; check the configured path",
                    response.status
                ),
                Some(response.status),
                &request,
                &response.body,
            )
        })?;
        if let Some((class, reason, detail)) =
            classify::classify(&reply, &self.config.transient_error_codes)
        {
            let mut f = wire::failure(
                class,
                reason,
                detail,
                Some(response.status),
                &request,
                &response.body,
            );
            f.retry_after = wire::retry_after(&response.headers);
            return Err(f);
        }
        Ok(wire::receipt(&response, &request, codec::reference(&reply)))
    }
}

impl Transport for ProvincePortalClient {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(self.deliver(out))
    }
}
