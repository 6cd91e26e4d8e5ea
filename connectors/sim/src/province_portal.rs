//! LGSP (WSO2) simulator for the province portal: `/token` issues bearer tokens
//! to the configured consumer key/secret (HTTP Basic, `grant_type=client_credentials`);
//! API paths check the bearer token (WSO2's `900901 Invalid Credentials` on 401) and
//! answer `{status, errorCode, errorDesc, data}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{serve, Fault, SimCore, SimServer};
use connectors::error::ConnectorError;
use connectors::secret::Secret;

/// Simulator settings.
#[derive(Clone)]
pub struct LgspSimConfig {
    pub consumer_key: String,
    pub consumer_secret: Secret,
    /// `expires_in` of issued tokens.
    pub token_ttl: Duration,
    /// API path → message type.
    pub paths: BTreeMap<String, String>,
}

impl LgspSimConfig {
    pub fn new(consumer_key: impl Into<String>, consumer_secret: Secret) -> Self {
        LgspSimConfig {
            consumer_key: consumer_key.into(),
            consumer_secret,
            token_ttl: Duration::from_secs(3600),
            paths: BTreeMap::from([(
                "/motcua/v1.0.0/hoso/capnhattrangthai".to_string(),
                "status.update".to_string(),
            )]),
        }
    }
}

struct State_ {
    config: LgspSimConfig,
    core: Arc<SimCore>,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    statuses: Mutex<BTreeMap<String, String>>,
}

/// A running LGSP simulator.
pub struct LgspSim {
    server: SimServer,
    state: Arc<State_>,
}

impl LgspSim {
    pub async fn start(config: LgspSimConfig) -> Result<Self, ConnectorError> {
        let core = SimCore::new("province-portal", &[]);
        let state = Arc::new(State_ {
            config,
            core: Arc::clone(&core),
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            statuses: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new()
            .route("/token", post(token))
            .fallback(api)
            .with_state(Arc::clone(&state));
        let server = serve(app, core).await?;
        Ok(LgspSim { server, state })
    }

    pub fn url(&self) -> &str {
        self.server.url()
    }
    pub fn core(&self) -> &Arc<SimCore> {
        self.server.core()
    }
    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.state.issued.load(Ordering::Relaxed)
    }
    /// Revokes every token now.
    pub fn revoke_tokens(&self) {
        self.state.tokens.lock().expect("tokens poisoned").clear();
    }
    /// The last status applied per dossier (`MaHoSo` → `TrangThaiHoSo`).
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.state
            .statuses
            .lock()
            .expect("statuses poisoned")
            .clone()
    }
    pub async fn shutdown(self) {
        self.server.shutdown().await
    }
}

fn basic_ok(headers: &HeaderMap, cfg: &LgspSimConfig) -> bool {
    let Some(v) = super::header(headers, "authorization") else {
        return false;
    };
    let Some(b64) = v.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = B64.decode(b64.trim()) else {
        return false;
    };
    raw == format!("{}:{}", cfg.consumer_key, cfg.consumer_secret.expose()).into_bytes()
}

async fn token(State(s): State<Arc<State_>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = String::from_utf8_lossy(&body);
    if !form
        .split('&')
        .any(|p| p == "grant_type=client_credentials")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if !basic_ok(&headers, &s.config) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "Client Authentication failed."})))
            .into_response();
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    s.tokens
        .lock()
        .expect("tokens poisoned")
        .insert(token.clone(), Instant::now() + s.config.token_ttl);
    s.issued.fetch_add(1, Ordering::Relaxed);
    Json(json!({"access_token": token, "scope": "am_application_scope default", "token_type": "Bearer", "expires_in": s.config.token_ttl.as_secs()}))
        .into_response()
}

fn lgsp(status: u8, code: &str, desc: &str, data: Value) -> Response {
    Json(json!({"status": status, "errorCode": code, "errorDesc": desc, "data": data}))
        .into_response()
}

/// Structural checks when no schema validator is plugged in.
fn structural(v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(o) = v.as_object() else {
        return vec!["body is not a JSON object".into()];
    };
    for k in ["MaHoSo", "TrangThaiHoSo"] {
        if o.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
            errs.push(format!("/{k}: required non-empty string"));
        }
    }
    errs
}

async fn api(
    State(s): State<Arc<State_>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let core = &s.core;
    let Some(message_type) = s.config.paths.get(&path).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({"code": 404, "message": "No matching resource found for given API Request"}),
            ),
        )
            .into_response();
    };
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let fault = match core.apply_fault().await {
        Ok(f) => f,
        Err(resp) => {
            core.record(
                &path,
                &message_type,
                &headers,
                &body,
                false,
                format!("fault: HTTP {}", resp.status().as_u16()),
            );
            return resp;
        }
    };
    if fault == Some(Fault::ExpireAuth) {
        s.tokens.lock().expect("tokens poisoned").clear();
    }
    let bearer = super::header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
    let valid = bearer.is_some_and(|t| {
        s.tokens
            .lock()
            .expect("tokens poisoned")
            .get(&t)
            .is_some_and(|exp| Instant::now() < *exp)
    });
    if !valid {
        core.record(
            &path,
            &message_type,
            &headers,
            &body,
            false,
            "rejected: invalid credentials",
        );
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"fault": {"code": 900901, "message": "Invalid Credentials", "description": "Invalid Credentials. Make sure you have provided the correct security credentials"}})),
        )
            .into_response();
    }
    match fault {
        Some(Fault::BusinessError { code, message }) => {
            core.record(
                &path,
                &message_type,
                &headers,
                &body,
                false,
                format!("fault: errorCode {code}"),
            );
            return lgsp(0, &code, &message, Value::Null);
        }
        Some(Fault::SoapFault { .. }) => {
            core.record(
                &path,
                &message_type,
                &headers,
                &body,
                false,
                "fault: HTTP 500",
            );
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        _ => {}
    }
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let errors = match (&parsed, core.validate(&message_type, &body)) {
        (Err(e), _) => vec![format!("body is not JSON: {e}")],
        (Ok(_), Some(Err(errs))) => errs,
        (Ok(_), Some(Ok(()))) => Vec::new(),
        (Ok(v), None) => structural(v),
    };
    if !errors.is_empty() {
        core.record(
            &path,
            &message_type,
            &headers,
            &body,
            false,
            format!("rejected: {}", errors.join("; ")),
        );
        return lgsp(
            0,
            "DATA_INVALID",
            &format!("Dữ liệu không hợp lệ: {}", errors.join("; ")),
            Value::Null,
        );
    }
    let key = super::header(&headers, "idempotency-key");
    let duplicate = core.seen_before(key.as_deref());
    let v = parsed.expect("checked above");
    let ma = v["MaHoSo"].as_str().unwrap_or_default().to_string();
    if !duplicate {
        if let Some(st) = v["TrangThaiHoSo"].as_str() {
            s.statuses
                .lock()
                .expect("statuses poisoned")
                .insert(ma.clone(), st.to_string());
        }
    }
    core.record(&path, &message_type, &headers, &body, duplicate, "accepted");
    lgsp(1, "0", "", json!({"MaHoSo": ma}))
}
