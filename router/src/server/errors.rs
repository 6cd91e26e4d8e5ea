//! One error shape for every route: `{"error": "...", "reasons": ["..."]}`.
//!
//! Handlers answer in that shape themselves, but some answers are written by
//! axum, not by a handler: an unknown path (404), a known path with the wrong
//! method (405), an extractor's rejection (a query that does not parse, a form
//! or JSON body of the wrong type, 413 from a body limit) and the server's
//! timeouts. A partner's client or a script should not have to parse plain text
//! for those. So the whole router gets a JSON fallback for 404 and 405, and a
//! response layer that rewrites any other error whose body is not JSON (or the
//! console's HTML) into the shape, keeping its status and headers (`Allow`,
//! `Retry-After`, `WWW-Authenticate`) and its text as the reason.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde_json::json;

/// Error bodies longer than this are not worth quoting (axum's are one line).
const MAX_QUOTED: usize = 4096;

/// `router` with JSON 404/405 and every error body in the documented shape.
pub fn uniform(router: Router) -> Router {
    router
        .fallback(|uri: axum::http::Uri| async move {
            body(
                StatusCode::NOT_FOUND,
                format!(
                    "no route for `{}`: see /api/v1/routes for the routes this hub serves",
                    uri.path()
                ),
            )
        })
        .method_not_allowed_fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                body(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("`{}` does not take {method}", uri.path()),
                )
            },
        )
        .layer(axum::middleware::map_response(to_json))
}

fn body(status: StatusCode, reason: String) -> axum::response::Response {
    (
        status,
        Json(json!({ "error": label(status), "reasons": [reason] })),
    )
        .into_response()
}

/// The `error` word for a status: its canonical reason, lower case.
fn label(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
}

async fn to_json(resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") || ct.starts_with("text/html") {
        return resp;
    }
    let (mut parts, b) = resp.into_parts();
    let text = match axum::body::to_bytes(b, MAX_QUOTED).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let text = match status {
        // tower-http's and axum's words for it say neither which limit nor what to do.
        StatusCode::PAYLOAD_TOO_LARGE if text.is_empty() || text == "length limit exceeded" => {
            "the request body is larger than this route accepts (SECURITY.md lists the limits): \
             send less"
                .to_string()
        }
        StatusCode::REQUEST_TIMEOUT if text.is_empty() => {
            "the request was not completed within server.request_timeout: send it again".to_string()
        }
        _ => text,
    };
    let reasons: Vec<String> = if text.is_empty() {
        Vec::new()
    } else {
        vec![text]
    };
    let json = json!({ "error": label(status), "reasons": reasons }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}
