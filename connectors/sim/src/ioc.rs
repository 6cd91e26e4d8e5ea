//! IOC simulator: checks the API key header, accepts observation batches and alerts.
//! The key is compared as bytes (a header value need not be text). A wrong key gets 401; a malformed body gets 400 `{"error": …}` (the IOC's error
//! shape is assumed). Accepted: 200 `{"status": "ok", "accepted": n}`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{serve, Fault, SimCore, SimServer};
use connectors::error::ConnectorError;
use connectors::secret::Secret;

/// Simulator settings.
#[derive(Clone)]
pub struct IocSimConfig {
    pub api_key_header: String,
    pub api_key: Secret,
    pub observations_path: String,
    pub alerts_path: String,
}

impl IocSimConfig {
    pub fn new(api_key: Secret) -> Self {
        IocSimConfig {
            api_key_header: "X-API-Key".into(),
            api_key,
            observations_path: "/api/v1/observations".into(),
            alerts_path: "/api/v1/alerts".into(),
        }
    }
}

struct State_ {
    config: IocSimConfig,
    core: Arc<SimCore>,
    batches: Mutex<Vec<Value>>,
    alerts: Mutex<Vec<Value>>,
}

/// A running IOC simulator.
pub struct IocSim {
    server: SimServer,
    state: Arc<State_>,
}

impl IocSim {
    pub async fn start(config: IocSimConfig) -> Result<Self, ConnectorError> {
        let header = config.api_key_header.to_ascii_lowercase();
        let core = SimCore::new("ioc", &[&header]);
        let state = Arc::new(State_ {
            config,
            core: Arc::clone(&core),
            batches: Mutex::new(Vec::new()),
            alerts: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        Ok(IocSim {
            server: serve(app, core).await?,
            state,
        })
    }
    pub fn url(&self) -> &str {
        self.server.url()
    }
    pub fn core(&self) -> &Arc<SimCore> {
        self.server.core()
    }
    /// Accepted observation batches (whole bodies), in order.
    pub fn batches(&self) -> Vec<Value> {
        self.state.batches.lock().expect("batches poisoned").clone()
    }
    /// Every accepted observation, flattened.
    pub fn observations(&self) -> Vec<Value> {
        self.batches()
            .into_iter()
            .flat_map(|b| b["observations"].as_array().cloned().unwrap_or_default())
            .collect()
    }
    pub fn alerts(&self) -> Vec<Value> {
        self.state.alerts.lock().expect("alerts poisoned").clone()
    }
    pub async fn shutdown(self) {
        self.server.shutdown().await
    }
}

fn structural_batch(v: &Value) -> Vec<String> {
    let Some(items) = v.get("observations").and_then(Value::as_array) else {
        return vec!["/observations: required array".into()];
    };
    let mut errs = Vec::new();
    for (i, o) in items.iter().enumerate() {
        for k in ["stationCode", "measuredAt"] {
            if !o.get(k).is_some_and(Value::is_string) {
                errs.push(format!("/observations/{i}/{k}: required string"));
            }
        }
        if !o.get("parameters").is_some_and(Value::is_array) {
            errs.push(format!("/observations/{i}/parameters: required array"));
        }
    }
    errs
}

fn structural_alert(v: &Value) -> Vec<String> {
    ["stationCode", "alertType"]
        .iter()
        .filter(|k| !v.get(**k).is_some_and(Value::is_string))
        .map(|k| format!("/{k}: required string"))
        .collect()
}

async fn handle(
    State(s): State<Arc<State_>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let core = &s.core;
    let path = uri.path().to_string();
    let message_type = if path == s.config.observations_path {
        "observations"
    } else if path == s.config.alerts_path {
        "alert"
    } else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such endpoint"})),
        )
            .into_response();
    };
    let record = |outcome: String, dup: bool| {
        core.record(&path, message_type, &headers, &body, dup, outcome)
    };
    let injected = match core.apply_fault().await {
        Ok(f) => f,
        Err(resp) => {
            record(format!("fault: HTTP {}", resp.status().as_u16()), false);
            return resp;
        }
    };
    // Bytes, not text: a header value that is not visible ASCII is still a value,
    // and the key either matches byte for byte or it does not.
    let presented = headers
        .get(s.config.api_key_header.as_str())
        .map(|v| v.as_bytes());
    if presented != Some(s.config.api_key.expose().as_bytes())
        || injected == Some(Fault::ExpireAuth)
    {
        record("rejected: API key".into(), false);
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid or missing API key"})),
        )
            .into_response();
    }
    if let Some(Fault::BusinessError { code, message }) | Some(Fault::SoapFault { code, message }) =
        injected
    {
        record(format!("fault: {code}"), false);
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": code, "message": message})),
        )
            .into_response();
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            record(format!("rejected: not JSON: {e}"), false);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("body is not JSON: {e}")})),
            )
                .into_response();
        }
    };
    let errors = match core.validate(message_type, &body) {
        Some(Err(e)) => e,
        Some(Ok(())) => Vec::new(),
        None if message_type == "observations" => structural_batch(&v),
        None => structural_alert(&v),
    };
    if !errors.is_empty() {
        record(format!("rejected: {}", errors.join("; ")), false);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": errors.join("; ")})),
        )
            .into_response();
    }
    let duplicate = core.seen_before(super::header(&headers, "idempotency-key").as_deref());
    let accepted = if message_type == "observations" {
        v["observations"].as_array().map_or(0, Vec::len)
    } else {
        1
    };
    if !duplicate {
        if message_type == "observations" {
            s.batches.lock().expect("batches poisoned").push(v);
        } else {
            s.alerts.lock().expect("alerts poisoned").push(v);
        }
    }
    record("accepted".into(), duplicate);
    Json(json!({"status": "ok", "accepted": accepted})).into_response()
}
