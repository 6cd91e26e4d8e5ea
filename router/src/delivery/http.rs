//! The generic HTTP transport: `POST` the mapped body to a URL, classify the answer.
//!
//! One `reqwest::Client` per destination, so each partner has its own connection
//! pool and timeout. Classification follows the usual rules: 2xx delivered;
//! timeout, connection errors, 408, 429 and 5xx transient (with `Retry-After`
//! honoured); every other status permanent. It never retries by itself.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::transport::{Failure, FailureClass, Outbound, Receipt, Transport};

/// Bytes of a response body kept for the trail.
pub const EXCERPT_BYTES: usize = 2048;

pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
}

impl HttpTransport {
    /// A transport for `url` with a whole-request `timeout`.
    pub fn new(
        url: impl Into<String>,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("lienthong/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url: url.into(),
        })
    }

    async fn send_once(&self, out: &Outbound) -> Result<Receipt, Failure> {
        let fail =
            |class, reason: String, detail: String, status, retry_after, excerpt: String| Failure {
                class,
                reason,
                detail,
                status,
                retry_after,
                request: out.body.clone(),
                response_excerpt: excerpt,
            };
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, &out.content_type)
            .header("Idempotency-Key", &out.idempotency_key)
            .header("X-Correlation-Id", &out.correlation_id)
            .header("X-Message-Type", &out.message_type)
            .header("X-Lienthong-Attempt", out.attempt.to_string())
            .body(out.body.clone())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "http-error"
                };
                return Err(fail(
                    FailureClass::Transient,
                    reason.into(),
                    format!("POST {}: {e}", self.url),
                    None,
                    None,
                    String::new(),
                ));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if (200..300).contains(&status) => {
                // The partner accepted; a broken body after the status does not undo that.
                tracing::debug!(error = %e, "response body unreadable after a 2xx");
                Default::default()
            }
            Err(e) => {
                return Err(fail(
                    FailureClass::Transient,
                    "timeout".into(),
                    format!("reading the response: {e}"),
                    Some(status),
                    retry_after,
                    String::new(),
                ))
            }
        };
        let excerpt = excerpt(&body);
        if (200..300).contains(&status) {
            return Ok(Receipt {
                status: Some(status),
                request: out.body.clone(),
                response_excerpt: excerpt,
                partner_reference: None,
            });
        }
        let class = if status == 408 || status == 429 || status >= 500 {
            FailureClass::Transient
        } else {
            FailureClass::Permanent
        };
        Err(fail(
            class,
            format!("http-{status}"),
            format!("POST {} answered {status}", self.url),
            Some(status),
            retry_after,
            excerpt,
        ))
    }
}

/// The first [`EXCERPT_BYTES`] of `body` as text (lossy, cut on a char boundary).
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
    text.trim_end_matches('\u{FFFD}').to_string()
}

impl Transport for HttpTransport {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>> {
        self.send_once(out).boxed()
    }
}
