//! HTTP plumbing shared by every connector: building a client, reading a bounded
//! response, and the generic classification of transport-level outcomes.
//!
//! Partner-specific classification (an LGSP `errorCode`, a DVCQG `error_code`, a
//! SOAP fault, a GIP `ERROR_CODE`) lives in each connector's `classify.rs`; what is
//! here is what every HTTP partner shares: a timeout or a refused connection is
//! worth retrying, so is a 5xx, a 408 or a 429 (whose `Retry-After` the delivery
//! layer must honour), while any other 4xx means the request itself is wrong.

use std::time::Duration;

use bytes::Bytes;
use lienthong_core::transport::{Failure, FailureClass, Receipt};
use reqwest::header::HeaderMap;

use crate::error::ConnectorError;

/// How much of a response body goes into the trail.
pub const EXCERPT_LIMIT: usize = 4096;
/// Largest response body a connector reads; a partner answering more is broken.
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// A client with a whole-request timeout. No connector-level retries: reqwest does
/// not retry by itself, and we never add it.
pub fn build_client(connector: &str, timeout: Duration) -> Result<reqwest::Client, ConnectorError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| ConnectorError::Client {
            connector: connector.to_string(),
            message: e.to_string(),
        })
}

/// The first [`EXCERPT_LIMIT`] bytes of a body as text, cut on a char boundary.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LIMIT)]).into_owned();
    text.trim_end_matches('\u{FFFD}').to_string()
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// A sent request's response, fully read (bounded).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends a built request and reads the whole (bounded) response. Transport
/// errors come back as a classified [`Failure`] carrying `request_bytes`.
pub async fn execute(
    request: reqwest::RequestBuilder,
    request_bytes: &Bytes,
) -> Result<Response, Failure> {
    let mut response = request
        .send()
        .await
        .map_err(|e| from_reqwest(&e, request_bytes))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    return Err(failure(
                        FailureClass::Transient,
                        "response-too-large",
                        format!("the partner answered more than {MAX_RESPONSE} bytes; the response was dropped"),
                        Some(status),
                        request_bytes,
                        &body,
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(from_reqwest(&e, request_bytes)),
        }
    }
    Ok(Response {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// Classifies a reqwest error: all of them are transient (timeout, connect,
/// reset...), but the reason says which, so an operator can tell a hang from a
/// refused connection.
pub fn from_reqwest(err: &reqwest::Error, request: &Bytes) -> Failure {
    let reason = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() || err.is_decode() {
        "body"
    } else {
        "io"
    };
    // reqwest's Display includes the URL (never a secret: secrets travel in headers
    // and bodies only) but not the request headers.
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    Failure {
        class: FailureClass::Transient,
        reason: reason.to_string(),
        detail,
        status: err.status().map(|s| s.as_u16()),
        retry_after: None,
        request: request.clone(),
        response_excerpt: String::new(),
    }
}

/// Builds a failure.
pub fn failure(
    class: FailureClass,
    reason: impl Into<String>,
    detail: impl Into<String>,
    status: Option<u16>,
    request: &Bytes,
    response: &[u8],
) -> Failure {
    Failure {
        class,
        reason: reason.into(),
        detail: detail.into(),
        status,
        retry_after: None,
        request: request.clone(),
        response_excerpt: excerpt(response),
    }
}

/// Generic classification of a non-success HTTP status: 408, 425, 429 and 5xx are
/// transient (with `Retry-After` when given), every other status permanent.
pub fn status_failure(system: &str, response: &Response, request: &Bytes) -> Failure {
    let status = response.status;
    let transient = matches!(status, 408 | 425 | 429) || status >= 500;
    let class = if transient {
        FailureClass::Transient
    } else {
        FailureClass::Permanent
    };
    let detail = if transient {
        format!("{system} answered HTTP {status}; transient: worth retrying")
    } else {
        format!("{system} rejected the request with HTTP {status}; fix the message or the connector configuration, then replay")
    };
    let mut f = failure(
        class,
        format!("http-{status}"),
        detail,
        Some(status),
        request,
        &response.body,
    );
    f.retry_after = retry_after(&response.headers);
    f
}

/// Builds a receipt.
pub fn receipt(response: &Response, request: &Bytes, partner_reference: Option<String>) -> Receipt {
    Receipt {
        status: Some(response.status),
        request: request.clone(),
        response_excerpt: excerpt(&response.body),
        partner_reference,
    }
}

/// Whether a status is a 2xx.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_seconds_and_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let future = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&future).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }

    #[test]
    fn excerpt_is_bounded_and_valid_utf8() {
        let long = "ạ".repeat(5000);
        let e = excerpt(long.as_bytes());
        assert!(e.len() <= EXCERPT_LIMIT);
        assert!(e.chars().all(|c| c == 'ạ'));
    }

    #[test]
    fn statuses() {
        let req = Bytes::from_static(b"x");
        let mk = |s| Response {
            status: s,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        assert_eq!(
            status_failure("p", &mk(503), &req).class,
            FailureClass::Transient
        );
        assert_eq!(
            status_failure("p", &mk(429), &req).class,
            FailureClass::Transient
        );
        assert_eq!(
            status_failure("p", &mk(400), &req).class,
            FailureClass::Permanent
        );
        assert_eq!(status_failure("p", &mk(404), &req).reason, "http-404");
    }
}
