//! DVCQG simulator: session login with `dstcode`, the integration endpoint with
//! `{session, madonvi, service, isUpdating, data}`, `error_code` replies. Sessions
//! expire after `session_ttl`; an expired or unknown session gets `error_code` `"401"`.
//!
//! What is validated is the business message: the body without `session`, which
//! is transport (the connector adds it after mapping, like the `dstcode` header), so
//! the hub's closed `national-portal/*` schemas apply as they are when plugged in
//! ([`SimCore::use_schemas`](super::SimCore::use_schemas)). A bad message gets
//! `error_code` `"03"` with every reason.
//!
//! `DongBoHoSoMC` with `isUpdating: "True"` updates a dossier the portal already
//! has: the record may be partial (`MaHoSo`, `TrangThaiHoSo` and what changed) and
//! its fields are merged into the stored record; an update for a dossier the portal
//! does not have is refused with `error_code` `"04"` ("Không tìm thấy hồ sơ"), as
//! `TraCuuHoSo` answers for an unknown code. `isUpdating: "False"` (or absent) is a
//! first sync and must carry the full record. The verified part is the flag and its
//! meaning (opencps `DVCQGIntegrationActionImpl`, the Hà Giang proxy's
//! `isUpdating=True`); that DVCQG accepts a partial record on update, and the
//! rejection code, are ASSUMED (see mappings/FLOWS.md).

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
use connectors::error::ConnectorError;
use connectors::secret::Secret;

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

/// `isUpdating: "True"` (DVCQG spelling; a JSON `true` is read the same way).
fn is_updating(v: &Value) -> bool {
    match &v["isUpdating"] {
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Bool(b) => *b,
        _ => false,
    }
}

/// Structural checks (the verified DVCQG field names) when no schema is plugged in.
/// A first sync carries the full record; an update (`isUpdating` True) at least
/// `MaHoSo` and `TrangThaiHoSo`, and any date it carries must be well-formed.
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
    let update = service == "DongBoHoSoMC" && is_updating(v);
    for (i, item) in items.iter().enumerate() {
        let (strings, dates): (&[&str], &[&str]) = match service {
            "DongBoHoSoMC" if update => (&["MaHoSo", "TrangThaiHoSo"], &[]),
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
        if update {
            for k in ["NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy"] {
                let present = item
                    .get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if present && !is_date14(item, k) {
                    errs.push(format!("/data/{i}/{k}: must be yyyyMMddHHmmss"));
                }
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
    let errors = match core.validate(&service, &business_part(&v)) {
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
    let key = super::header(&headers, "idempotency-key");
    let items: Vec<Value> = v["data"].as_array().cloned().unwrap_or_default();
    if service == "CapNhatTienDoHoSoMC" {
        let duplicate = core.seen_before(key.as_deref());
        if !duplicate {
            s.progress.lock().expect("progress poisoned").extend(items);
        }
        record("accepted".into(), duplicate);
        return reply("00", "Thành công");
    }
    // DongBoHoSoMC: the existence check and the write under one lock, all items or none.
    let update = is_updating(&v);
    let mut dossiers = s.dossiers.lock().expect("dossiers poisoned");
    if update {
        let unknown: Vec<&str> = items
            .iter()
            .filter_map(|i| i["MaHoSo"].as_str())
            .filter(|ma| !dossiers.contains_key(*ma))
            .collect();
        if !unknown.is_empty() {
            let unknown = unknown.join(", ");
            drop(dossiers);
            record(
                format!("rejected: isUpdating True for unknown dossier {unknown}"),
                false,
            );
            return reply(
                "04",
                &format!("Không tìm thấy hồ sơ {unknown} để cập nhật (isUpdating = True)"),
            );
        }
    }
    let duplicate = core.seen_before(key.as_deref());
    if !duplicate {
        for item in items {
            let ma = item["MaHoSo"].as_str().unwrap_or_default().to_string();
            match (dossiers.get_mut(&ma), item) {
                (Some(Value::Object(stored)), Value::Object(fields)) if update => {
                    stored.extend(fields);
                }
                (_, item) => {
                    dossiers.insert(ma, item);
                }
            }
        }
    }
    drop(dossiers);
    record("accepted".into(), duplicate);
    reply("00", "Thành công")
}

/// The business message: the body without `session` (transport, added by the
/// connector after mapping), as JSON bytes for the validator.
fn business_part(v: &Value) -> Vec<u8> {
    let mut business = v.clone();
    if let Some(o) = business.as_object_mut() {
        o.remove("session");
    }
    serde_json::to_vec(&business).unwrap_or_default()
}
