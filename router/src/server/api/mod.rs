//! `/api/v1`: the auditors' HTTP API (messages, timelines, replay, verify, prune).
//!
//! | method | path | role | what |
//! |---|---|---|---|
//! | GET | `/api/v1/messages` | auditor, admin | search (filters in [`crate::audit::search`]) |
//! | GET | `/api/v1/messages/{id}` | auditor, admin | raw inbound, parsed, each output with mapping id+version, every attempt |
//! | POST | `/api/v1/messages/{id}/replay` | auditor, admin | replay ([`crate::audit::replay`]) |
//! | GET | `/api/v1/dossiers/{code}/timeline` | auditor, admin | every hop of one dossier, in chain order |
//! | POST | `/api/v1/dead-letters/replay` | auditor, admin | bulk replay of dead letters by filter (dry run first) |
//! | GET | `/api/v1/audit/verify` | auditor, admin | verify the chain (optionally `from`/`to`) |
//! | POST | `/api/v1/audit/prune` | admin | retention: prune payloads older than `older_than` |
//!
//! Every handler authenticates and authorizes first ([`crate::auth`]), before
//! reading anything, so 401/403 never reveal whether a resource exists. Every
//! call that succeeds is recorded in the trail with the caller as actor
//! (`audit.search`, `audit.read`, `audit.timeline`, `audit.verify`,
//! `replay.requested`/`replay.previewed`, `retention.pruned`...).
//!
//! [`ROUTES`] lists every route with its role; the role test walks it, so a route
//! added without an entry there fails the build's tests.

mod handlers;

use std::sync::Arc;

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::audit::replay::{ReplayContext, ReplayError};
use crate::auth::{AuthError, Need, TokenStore};

/// Shared state of the `/api/v1` routes.
#[derive(Clone)]
pub struct ApiState {
    pub tokens: Arc<TokenStore>,
    /// Store, mappings, schemas and queue (replays need them all; reads need the store).
    pub replay: ReplayContext,
}

impl ApiState {
    /// The state for a started hub: its tokens, store, queue, mappings (normally
    /// [`crate::audit::replay::VersionedMappings`]) and schemas.
    pub fn for_hub(
        config: &crate::config::Config,
        store: &crate::store::Store,
        queue: &Arc<dyn crate::queue::DeliveryQueue>,
        mappings: impl crate::audit::replay::MappingLookup + 'static,
        schemas: &Arc<crate::schema::SchemaRegistry>,
    ) -> ApiState {
        ApiState {
            tokens: config.tokens.clone(),
            replay: ReplayContext {
                store: store.clone(),
                mappings: Arc::new(mappings),
                schemas: schemas.clone(),
                queue: Some(queue.clone()),
            },
        }
    }
}

/// Every route: method, path (axum syntax), the role it needs.
pub const ROUTES: &[(Method, &str, Need)] = &[
    (Method::GET, "/api/v1/messages", Need::Auditor),
    (Method::GET, "/api/v1/messages/{id}", Need::Auditor),
    (Method::POST, "/api/v1/messages/{id}/replay", Need::Auditor),
    (
        Method::GET,
        "/api/v1/dossiers/{code}/timeline",
        Need::Auditor,
    ),
    (Method::POST, "/api/v1/dead-letters/replay", Need::Auditor),
    (Method::GET, "/api/v1/audit/verify", Need::Auditor),
    (Method::POST, "/api/v1/audit/prune", Need::Admin),
];

/// The `/api/v1` audit routes (merge them into the hub's router).
pub fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/messages", get(handlers::search))
        .route("/api/v1/messages/{id}", get(handlers::show))
        .route("/api/v1/messages/{id}/replay", post(handlers::replay))
        .route("/api/v1/dossiers/{code}/timeline", get(handlers::timeline))
        .route("/api/v1/dead-letters/replay", post(handlers::replay_dead))
        .route("/api/v1/audit/verify", get(handlers::verify))
        .route("/api/v1/audit/prune", post(handlers::prune))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// An error as JSON (`{"error", "reasons"}`) with the status that says what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub reasons: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            reasons: Vec::new(),
        }
    }
    pub fn bad_request(reasons: Vec<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad request".into(),
            reasons,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body: Value = json!({ "error": self.error, "reasons": self.reasons });
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"lienthong\""),
            );
        }
        r
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(
            StatusCode::from_u16(e.status()).expect("401/403"),
            e.to_string(),
        )
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        let status = match &e {
            crate::Error::NotFound(_) => StatusCode::NOT_FOUND,
            crate::Error::Unauthorized(_) => StatusCode::FORBIDDEN,
            e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "audit API request failed");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Router(r) => r.into(),
            other => ApiError::new(
                StatusCode::from_u16(other.status()).expect("valid status"),
                other.to_string(),
            ),
        }
    }
}
