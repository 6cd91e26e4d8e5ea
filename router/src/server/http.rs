//! The axum routes.
//!
//! The intake handler reads the body itself (instead of axum's `Bytes` extractor)
//! so that an oversize body is answered with the same JSON error shape as every
//! other rejection, and recorded.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::auth::routes::{Access, Guards, Registry};
use crate::auth::{Need, Principal};
use crate::intake::{InboundRequest, Intake, IntakeResponse};
use crate::limits::MAX_BODY_BYTES;
use crate::queue::DeliveryQueue;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<Intake>,
    pub store: Store,
    pub queue: Arc<dyn DeliveryQueue>,
    /// Route targets with no URL and no connector: their deliveries wait
    /// (see `Config::unconfigured_targets`); `/readyz` names them.
    pub unconfigured: Arc<Vec<String>>,
    /// Destinations with a `lienthong_queue_depth` series: the route targets,
    /// and any other destination the depth query has named since. A drained
    /// destination has no row in that query, and its gauge must say 0, not
    /// keep its last value. Bounded: depth rows name only stored destinations.
    pub depth_series: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

/// The probes, public: health, readiness and metrics. They are served outside
/// the concurrency limit ([`super::listener::limit`]), so a busy hub still
/// answers its load balancer.
pub fn probes(state: AppState, guards: Guards) -> Registry {
    Registry::new(guards)
        .add(Method::GET, "/healthz", Access::Public, || async { "ok\n" })
        .add(Method::GET, "/readyz", Access::Public, readyz)
        .add(Method::GET, "/metrics", Access::Public, metrics)
        .with_state(state)
}

/// The front door, intake and the plain message API, each with its access.
pub fn routes(state: AppState, guards: Guards) -> Registry {
    Registry::new(guards)
        // A browser pointed at the hub lands on the console (which asks for a sign-in).
        .add(Method::GET, "/", Access::Public, || async {
            Redirect::to("/console")
        })
        .add(
            Method::POST,
            "/inbound/{system}/{message_type}",
            Access::Partner,
            inbound,
        )
        .add(
            Method::GET,
            "/api/messages/{id}",
            Access::Api(Need::Auditor),
            message,
        )
        .add(
            Method::GET,
            "/api/messages/{id}/trail",
            Access::Api(Need::Auditor),
            trail,
        )
        .body_limit(None)
        .with_state(state)
}

fn to_response(r: IntakeResponse) -> Response {
    let mut resp = (r.status, Json(r.body)).into_response();
    if let Some(secs) = r.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if r.close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Intake in the order that keeps an unauthenticated caller cheap: the headers
/// are checked first ([`Intake::admit`]: system, credentials, rate, backlog),
/// then the declared size, then room in the in-flight body budget is reserved,
/// and only then is the body read. A caller refused on its headers costs no
/// body buffer and writes nothing to the store.
async fn inbound(
    State(s): State<AppState>,
    Path((system, message_type)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let admitted = match s.intake.admit(&system, &headers) {
        Ok(a) => a,
        Err(r) => return to_response(r),
    };
    let too_big = |n: String| format!("the body is {n} bytes; the limit is {MAX_BODY_BYTES} bytes");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared.filter(|&n| n > MAX_BODY_BYTES as u64) {
        let r = s
            .intake
            .reject_early(
                &system,
                &message_type,
                &headers,
                admitted,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large",
                too_big(len.to_string()),
            )
            .await;
        return to_response(r);
    }
    // A chunked body of unknown length reserves the most it may grow to.
    let reserve = declared.map_or(MAX_BODY_BYTES, |n| n as usize);
    let _permit = match s.intake.reserve_body(reserve).await {
        Ok(p) => p,
        Err(r) => return to_response(r),
    };
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) if body_failure(&e) == BodyFailure::TooLarge => {
            let r = s
                .intake
                .reject_early(
                    &system,
                    &message_type,
                    &headers,
                    admitted,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body too large",
                    too_big("more than".into()),
                )
                .await;
            return to_response(r);
        }
        Err(e) if body_failure(&e) == BodyFailure::Stalled => {
            return to_response(IntakeResponse::error(
                StatusCode::REQUEST_TIMEOUT,
                "body too slow",
                vec![format!(
                    "no part of the body arrived for longer than server.body_read_timeout ({e}); send it again"
                )],
            ))
        }
        Err(e) => {
            return to_response(IntakeResponse::error(
                StatusCode::BAD_REQUEST,
                "body not read",
                vec![format!(
                    "the request body could not be read to its end ({e}); send it again"
                )],
            ))
        }
    };
    to_response(
        s.intake
            .handle_admitted(
                InboundRequest {
                    system,
                    message_type,
                    headers,
                    body,
                },
                admitted,
            )
            .await,
    )
}

/// Why reading a body failed: over [`MAX_BODY_BYTES`], or stalled past
/// `server.body_read_timeout`, or the connection went away.
#[derive(PartialEq)]
enum BodyFailure {
    TooLarge,
    Stalled,
    Broken,
}

fn body_failure(e: &axum::Error) -> BodyFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return BodyFailure::TooLarge;
        }
        if err.is::<tower_http::timeout::TimeoutError>() {
            return BodyFailure::Stalled;
        }
        source = err.source();
    }
    BodyFailure::Broken
}

async fn readyz(State(s): State<AppState>) -> Response {
    if !s.intake.is_accepting() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    // Intake would refuse work (the broker's outbox is at its limit): a load
    // balancer should send it elsewhere, not here to be refused.
    if let Err(e) = s.queue.admit() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not admitting work: {e}\n"),
        )
            .into_response();
    }
    match s.store.ping().await {
        // Degraded, not down: the hub accepts and keeps everything; what goes
        // to these destinations waits until they are configured.
        Ok(()) if !s.unconfigured.is_empty() => (
            StatusCode::OK,
            format!(
                "ready (degraded): waiting for configuration: {}\n",
                s.unconfigured.join(", ")
            ),
        )
            .into_response(),
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store not ready: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    if let Ok(depth) = s.queue.depth().await {
        let mut reported = s.depth_series.lock().unwrap_or_else(|p| p.into_inner());
        for dest in reported.iter() {
            if !depth.iter().any(|(d, _)| d == dest) {
                metrics::gauge!("lienthong_queue_depth", "destination" => dest.clone()).set(0.0);
            }
        }
        for (dest, n) in depth {
            metrics::gauge!("lienthong_queue_depth", "destination" => dest.clone()).set(n as f64);
            reported.insert(dest);
        }
    }
    match super::metrics::handle() {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response(),
    }
}

/// Records that `who` read message content (`audit.read`), as the `/api/v1` reads do.
/// A read that cannot be recorded is not answered.
async fn record_read(s: &AppState, who: &Principal, id: &str, what: &str) -> Result<(), Response> {
    let ev = crate::audit::TrailEvent {
        at: crate::store::now_ms(),
        message_id: Some(id.to_string()),
        delivery_id: None,
        kind: "audit.read",
        actor: who.actor(),
        detail: json!({ "route": what }),
    };
    s.store.record_events(vec![ev]).await.map_err(|e| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "store unavailable", "reasons": [e.to_string()]})),
        )
            .into_response()
    })
}

async fn message(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let found = s.store.message(&id).await;
    if let Ok(Some(_)) = &found {
        if let Err(r) = record_read(&s, &who, &id, "GET /api/messages/{id}").await {
            return r;
        }
    }
    match found {
        Ok(Some(m)) => Json(m).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not found", "reasons": [format!("no message {id}")]})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "store unavailable", "reasons": [e.to_string()]})),
        )
            .into_response(),
    }
}

async fn trail(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match s.store.trail_for_message(&id).await {
        Ok(rows) => {
            if !rows.is_empty() {
                if let Err(r) = record_read(&s, &who, &id, "GET /api/messages/{id}/trail").await {
                    return r;
                }
            }
            Json(rows).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "store unavailable", "reasons": [e.to_string()]})),
        )
            .into_response(),
    }
}
