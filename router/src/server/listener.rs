//! The HTTP listener: hyper's connection loop with the limits `axum::serve` does
//! not set, and the request layers that bound what one client can hold.
//!
//! Why not `axum::serve`: it gives hyper no timer, so hyper's header-read
//! timeout never fires. A client trickling one header line every few seconds,
//! or a kept-alive socket that never sends its next request, then holds a
//! connection and a task for as long as it likes. Here each connection is
//! served by hyper's own HTTP/1 builder with a timer, and:
//!
//! | limit | key | default | answer |
//! |---|---|---|---|
//! | headers of a request, and the idle time before the next one on a kept-alive connection | `server.header_read_timeout` | 10 s | connection closed |
//! | pause between two pieces of a body | `server.body_read_timeout` | 15 s | 408 |
//! | headers to answer | `server.request_timeout` | 60 s | 408 |
//! | requests in flight | `server.max_concurrent_requests` | 256 | 503 + `Retry-After` |
//!
//! The timeouts and the concurrency limit are tower / tower-http layers
//! ([`limit`]); the probes (`/healthz`, `/readyz`, `/metrics`) are outside the
//! concurrency limit so that a load balancer still sees a busy hub as alive.
//!
//! Shutdown is hyper-util's graceful watcher: once `stop` fires the listener
//! stops accepting, idle connections are closed, and requests in progress get
//! up to `drain` to finish.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::config::HttpLimits;

/// `Retry-After` (seconds) on a request shed because too many are in flight.
const SHED_RETRY_AFTER_SECS: u64 = 1;

/// `router` behind the request timeouts and the concurrency limit.
pub fn limit(router: Router, limits: &HttpLimits) -> Router {
    let max = limits.max_concurrent_requests;
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(
                    move |_: tower::BoxError| async move { shed(max) },
                ))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(max)),
        )
}

fn shed(max: usize) -> Response {
    let mut resp = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "error": "busy",
            "reasons": [format!(
                "the hub is handling as many requests as it allows at once \
                 (server.max_concurrent_requests = {max}); retry after {SHED_RETRY_AFTER_SECS}s"
            )],
        })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(SHED_RETRY_AFTER_SECS),
    );
    resp
}

/// Serves `app` on `listener` until `stop` fires, then drains for up to `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the
                    // connections already open keep being served.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // The peer's address, for the console's trusted-proxy check
        // (`axum::extract::ConnectInfo`, as axum's own `serve` records it).
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            app.clone(),
            move |mut r: axum::http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        ));
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(deadline = ?drain, "HTTP connections still open after the drain deadline; closing them");
    }
    Ok(())
}
