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
use axum::response::{IntoResponse, Response};
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
}

/// Intake, health, metrics and the plain message API, each with its access.
pub fn routes(state: AppState, guards: Guards) -> Registry {
    Registry::new(guards)
        .add(
            Method::POST,
            "/inbound/{system}/{message_type}",
            Access::Partner,
            inbound,
        )
        .add(Method::GET, "/healthz", Access::Public, || async { "ok\n" })
        .add(Method::GET, "/readyz", Access::Public, readyz)
        .add(Method::GET, "/metrics", Access::Public, metrics)
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
    resp
}

async fn inbound(
    State(s): State<AppState>,
    Path((system, message_type)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let too_big = |n: String| format!("the body is {n} bytes; the limit is {MAX_BODY_BYTES} bytes");
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_BODY_BYTES {
            let r = s
                .intake
                .reject_early(
                    &system,
                    &message_type,
                    &headers,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body too large",
                    too_big(len.to_string()),
                )
                .await;
            return to_response(r);
        }
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let r = s
                .intake
                .reject_early(
                    &system,
                    &message_type,
                    &headers,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body too large",
                    too_big("more than".into()),
                )
                .await;
            return to_response(r);
        }
    };
    to_response(
        s.intake
            .handle(InboundRequest {
                system,
                message_type,
                headers,
                body,
            })
            .await,
    )
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
        for (dest, n) in depth {
            metrics::gauge!("lienthong_queue_depth", "destination" => dest).set(n as f64);
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
