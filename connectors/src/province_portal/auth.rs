//! OAuth2 client-credentials tokens for the LGSP, cached and refreshed ahead of expiry.
//!
//! One token serves every concurrent delivery; a `tokio::sync::Mutex` around the
//! cache makes the refresh single-flight (a burst of deliveries at expiry causes one
//! token request, not fifty). A token is considered stale `margin` before its
//! `expires_in` runs out so it never expires in flight.

use std::time::Duration;

use bytes::Bytes;
use lienthong_core::transport::{Failure, FailureClass};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::secret::Secret;
use crate::wire;

#[derive(Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
}

/// Fetches and caches bearer tokens.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    consumer_key: String,
    consumer_secret: Secret,
    margin: Duration,
    cached: Mutex<Option<Token>>,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        consumer_key: String,
        consumer_secret: Secret,
        margin: Duration,
    ) -> Self {
        TokenSource {
            http,
            token_url,
            consumer_key,
            consumer_secret,
            margin,
            cached: Mutex::new(None),
        }
    }

    /// A token that is still fresh, fetching one when needed.
    pub async fn bearer(&self, request: &Bytes) -> Result<Secret, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        let t = self.fetch(request).await?;
        *cached = Some(t.clone());
        Ok(t.value)
    }

    /// Called after a 401 with the token that was refused: fetches a new one
    /// unless another task already replaced it.
    pub async fn refresh(&self, refused: &Secret, request: &Bytes) -> Result<Secret, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref() {
            if &t.value != refused && Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        *cached = None;
        let t = self.fetch(request).await?;
        *cached = Some(t.clone());
        Ok(t.value)
    }

    async fn fetch(&self, request: &Bytes) -> Result<Token, Failure> {
        let started = Instant::now();
        let builder = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.consumer_key, Some(self.consumer_secret.expose()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        let response = wire::execute(builder, request).await.map_err(|mut f| {
            f.reason = format!("token-{}", f.reason);
            f.detail = format!(
                "LGSP token request to {} failed: {}",
                self.token_url, f.detail
            );
            f
        })?;
        if !wire::is_success(response.status) {
            let mut f = wire::status_failure("the LGSP token endpoint", &response, request);
            f.reason = format!("token-{}", f.reason);
            if matches!(response.status, 400 | 401 | 403) {
                f.class = FailureClass::Permanent;
                f.detail = format!(
                    "the LGSP refused the consumer key/secret (HTTP {}); check consumer_key and the consumer secret",
                    response.status
                );
            }
            return Err(f);
        }
        let reply: TokenReply = serde_json::from_slice(&response.body).map_err(|e| {
            wire::failure(
                FailureClass::Transient,
                "token-reply",
                format!("the LGSP token reply is not {{access_token, expires_in}}: {e}"),
                Some(response.status),
                request,
                b"",
            )
        })?;
        let lifetime = reply
            .expires_in
            .and_then(|n| n.as_f64())
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(300));
        // A margin larger than the lifetime would refresh on every call: use half the lifetime then.
        let margin = if self.margin >= lifetime {
            lifetime / 2
        } else {
            self.margin
        };
        tracing::debug!(token_url = %self.token_url, lifetime_s = lifetime.as_secs(), "LGSP token obtained");
        Ok(Token {
            value: Secret::new(reply.access_token),
            refresh_at: started + lifetime - margin,
        })
    }
}

/// `Authorization` header name, re-exported for the client.
pub const AUTH_HEADER: reqwest::header::HeaderName = AUTHORIZATION;
