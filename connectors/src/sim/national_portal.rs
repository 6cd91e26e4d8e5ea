//! DVCQG simulator: session login with `dstcode`, the integration endpoint with
//! `{session, madonvi, service, data}`, `error_code` replies. Sessions expire after
//! `session_ttl`; an expired or unknown session gets `error_code` `"401"`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{serve, Fault, SimCore, SimServer};
use crate::error::ConnectorError;
use crate::secret::Secret;

/// Simulator settings.
#[derive(Clone)]
pub struct DvcqgSimConfig {
    pub dstcode: String,
    pub username: String,
    pub password: Secret,
    pub session_ttl: Duration,
}

/// Paths the simulator serves.
pub const AUTH_PATH: &str = "/api/auth";
pub const INTEGRATION_PATH: &str = "/api/integration";

struct State_ {
    config: DvcqgSimConfig,
    core: Arc<SimCore>,
    sessions: Mutex<HashMap<String, Instant>>,
    logins: AtomicU64,
    dossiers: Mutex<BTreeMap<String, Value>>,
    progress: Mutex<Vec<Value>>,
}

/// A running DVCQG simulator.
pub struct DvcqgSim {
    server: SimServer,
    state: Arc<State_>,
}

impl DvcqgSim {
    pub async fn start(config: DvcqgSimConfig) -> Result<Self, ConnectorError> {
        let core = SimCore::new("national-portal", &[]);
        let state = Arc::new(State_ {
            config,
            core: Arc::clone(&core),
            sessions: Mutex::new(HashMap::new()),
            logins: AtomicU64::new(0),
            dossiers: Mutex::new(BTreeMap::new()),
            progress: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(AUTH_PATH, post(auth))
            .route(INTEGRATION_PATH, post(integration))
            .with_state(Arc::clone(&state));
        let server = serve(app, core).await?;
        Ok(DvcqgSim { server, state })
    }

    pub fn url(&self) -> &str {
        self.server.url()
    }
    pub fn auth_url(&self) -> String {
        format!("{}{AUTH_PATH}", self.url())
    }
    pub fn integration_url(&self) -> String {
        format!("{}{INTEGRATION_PATH}", self.url())
    }
    pub fn core(&self) -> &Arc<SimCore> {
        self.server.core()
    }
    pub fn logins(&self) -> u64 {
        self.state.logins.load(Ordering::Relaxed)
    }
    /// Ends every session now.
    pub fn expire_sessions(&self) {
        self.state
            .sessions
            .lock()
            .expect("sessions poisoned")
            .clear();
    }
    /// Dossiers synced with `DongBoHoSoMC`, by `MaHoSo`.
    pub fn dossiers(&self) -> BTreeMap<String, Value> {
        self.state
            .dossiers
            .lock()
            .expect("dossiers poisoned")
            .clone()
    }
    /// Progress entries received with `CapNhatTienDoHoSoMC`, in order.
    pub fn progress(&self) -> Vec<Value> {
        self.state
            .progress
            .lock()
            .expect("progress poisoned")
            .clone()
    }
    pub async fn shutdown(self) {
        self.server.shutdown().await
    }
}

fn reply(code: &str, message: &str) -> Response {
    Json(json!({"error_code": code, "message": message})).into_response()
}

async fn auth(State(s): State<Arc<State_>>, headers: HeaderMap, body: Bytes) -> Response {
    if super::header(&headers, "dstcode").as_deref() != Some(s.config.dstcode.as_str()) {
        return reply("98", "dstcode không hợp lệ");
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if v["username"].as_str() != Some(&s.config.username)
        || v["password"].as_str() != Some(s.config.password.expose())
    {
        return reply("01", "Sai tên đăng nhập hoặc mật khẩu");
    }
    let session = uuid::Uuid::new_v4().simple().to_string();
    s.sessions
        .lock()
        .expect("sessions poisoned")
        .insert(session.clone(), Instant::now() + s.config.session_ttl);
    s.logins.fetch_add(1, Ordering::Relaxed);
    Json(json!({"error_code": 0, "message": "Thành công", "session": session})).into_response()
}

fn is_str(v: &Value, k: &str) -> bool {
    v.get(k)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

fn is_date14(v: &Value, k: &str) -> bool {
    v.get(k)
        .and_then(Value::as_str)
        .is_some_and(|s| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()))
}

/// Structural checks (the verified DVCQG field names) when no schema is plugged in.
fn structural(service: &str, v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    if !is_str(v, "madonvi") {
        errs.push("/madonvi: required".into());
    }
    let Some(items) = v
        .get("data")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        errs.push("/data: required non-empty array".into());
        return errs;
    };
    for (i, item) in items.iter().enumerate() {
        let (strings, dates): (&[&str], &[&str]) = match service {
            "DongBoHoSoMC" => (&["MaHoSo", "TrangThaiHoSo", "ChuHoSo"], &["NgayTiepNhan"]),
            _ => (&["MaHoSo", "TrangThai"], &["ThoiDiemXuLy"]),
        };
        for k in strings {
            if !is_str(item, k) {
                errs.push(format!("/data/{i}/{k}: required non-empty string"));
            }
        }
        for k in dates {
            if !is_date14(item, k) {
                errs.push(format!("/data/{i}/{k}: must be yyyyMMddHHmmss"));
            }
        }
    }
    errs
}

async fn integration(State(s): State<Arc<State_>>, headers: HeaderMap, body: Bytes) -> Response {
    let core = &s.core;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let service = v["service"].as_str().unwrap_or_default().to_string();
    let record = |outcome: String, dup: bool| {
        core.record(INTEGRATION_PATH, &service, &headers, &body, dup, outcome)
    };
    let fault = match core.apply_fault().await {
        Ok(f) => f,
        Err(resp) => {
            record(format!("fault: HTTP {}", resp.status().as_u16()), false);
            return resp;
        }
    };
    if fault == Some(Fault::ExpireAuth) {
        s.sessions.lock().expect("sessions poisoned").clear();
    }
    if super::header(&headers, "dstcode").as_deref() != Some(s.config.dstcode.as_str()) {
        record("rejected: dstcode".into(), false);
        return reply("98", "dstcode không hợp lệ");
    }
    let session_ok = v["session"].as_str().is_some_and(|t| {
        s.sessions
            .lock()
            .expect("sessions poisoned")
            .get(t)
            .is_some_and(|exp| Instant::now() < *exp)
    });
    if !session_ok {
        record("rejected: session expired".into(), false);
        return reply("401", "Phiên làm việc đã hết hạn, vui lòng đăng nhập lại");
    }
    match fault {
        Some(Fault::BusinessError { code, message }) => {
            record(format!("fault: error_code {code}"), false);
            return reply(&code, &message);
        }
        Some(Fault::SoapFault { .. }) => {
            record("fault: HTTP 500".into(), false);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        _ => {}
    }
    if !matches!(
        service.as_str(),
        "DongBoHoSoMC" | "CapNhatTienDoHoSoMC" | "TraCuuHoSo"
    ) {
        record(format!("rejected: unknown service {service:?}"), false);
        return reply("02", &format!("Dịch vụ không tồn tại: {service}"));
    }
    if service == "TraCuuHoSo" {
        let ma = v["data"]["MaHoSo"]
            .as_str()
            .or_else(|| v["MaHoSo"].as_str())
            .unwrap_or_default();
        let found = s
            .dossiers
            .lock()
            .expect("dossiers poisoned")
            .get(ma)
            .cloned();
        record("accepted".into(), false);
        return match found {
            Some(d) => Json(json!({"error_code": "00", "message": "Thành công", "result": [d]}))
                .into_response(),
            None => reply("04", "Không tìm thấy hồ sơ"),
        };
    }
    let errors = match core.validate(&service, &body) {
        Some(Err(errs)) => errs,
        Some(Ok(())) => Vec::new(),
        None => structural(&service, &v),
    };
    if !errors.is_empty() {
        record(format!("rejected: {}", errors.join("; ")), false);
        return reply(
            "03",
            &format!("Dữ liệu không hợp lệ: {}", errors.join("; ")),
        );
    }
    let duplicate = core.seen_before(super::header(&headers, "idempotency-key").as_deref());
    if !duplicate {
        for item in v["data"].as_array().into_iter().flatten() {
            if service == "DongBoHoSoMC" {
                let ma = item["MaHoSo"].as_str().unwrap_or_default().to_string();
                s.dossiers
                    .lock()
                    .expect("dossiers poisoned")
                    .insert(ma, item.clone());
            } else {
                s.progress
                    .lock()
                    .expect("progress poisoned")
                    .push(item.clone());
            }
        }
    }
    record("accepted".into(), duplicate);
    reply("00", "Thành công")
}
