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
//! [`routes`] registers every route with its role through
//! [`crate::auth::routes::Registry`], which checks the caller before the handler
//! runs; the role test walks the hub's table of every route.

mod handlers;

use std::sync::Arc;

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::audit::replay::{ReplayContext, ReplayError};
use crate::auth::routes::{Access, Guards, Registry};
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

/// The `/api/v1` audit routes, each with the role it needs.
pub fn routes(state: ApiState, guards: Guards) -> Registry {
    let auditor = Access::Api(Need::Auditor);
    Registry::new(guards)
        .add(Method::GET, "/api/v1/messages", auditor, handlers::search)
        .add(
            Method::GET,
            "/api/v1/messages/{id}",
            auditor,
            handlers::show,
        )
        .add(
            Method::POST,
            "/api/v1/messages/{id}/replay",
            auditor,
            handlers::replay,
        )
        .add(
            Method::GET,
            "/api/v1/dossiers/{code}/timeline",
            auditor,
            handlers::timeline,
        )
        .add(
            Method::POST,
            "/api/v1/dead-letters/replay",
            auditor,
            handlers::replay_dead,
        )
        .add(
            Method::GET,
            "/api/v1/audit/verify",
            auditor,
            handlers::verify,
        )
        .add(
            Method::POST,
            "/api/v1/audit/prune",
            Access::Api(Need::Admin),
            handlers::prune,
        )
        .body_limit(Some(64 * 1024))
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
