//! LIS simulator: SOAP 1.1 with WS-Security UsernameToken.
//!
//! Refuses a request without `SOAPAction`, a missing/invalid/stale token or a
//! replayed nonce (`Client.Authentication` fault, HTTP 500 as SOAP 1.1 requires),
//! and a body that is not a well-formed element with the dossier code `MaHoSo`
//! (`Client` fault) unless a validator for the message type is plugged in. Accepted
//! messages get `<…Response><SoBienNhan>LIS-000001</SoBienNhan><KetQua>OK</KetQua>`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;

use super::{serve, Fault, SimCore, SimServer};
use connectors::error::ConnectorError;
use connectors::secret::Secret;
use connectors::wssec::Verifier;
use lienthong_core::codec::{fragment, soap};

/// The path the simulator serves.
pub const PATH: &str = "/lis/ws";

/// Simulator settings.
#[derive(Clone)]
pub struct LisSimConfig {
    pub username: String,
    pub password: Secret,
    /// SOAPAction → message type; unknown actions use the text after the last `/`.
    pub actions: BTreeMap<String, String>,
}

struct State_ {
    config: LisSimConfig,
    core: Arc<SimCore>,
    verifier: Verifier,
    receipts: AtomicU64,
    answers: Mutex<BTreeMap<String, String>>,
}

/// A running LIS simulator.
pub struct LisSim {
    server: SimServer,
}

impl LisSim {
    pub async fn start(config: LisSimConfig) -> Result<Self, ConnectorError> {
        let core = SimCore::new("lis", &[]);
        let verifier = Verifier::new(
            config.username.clone(),
            config.password.clone(),
            Duration::from_secs(300),
        );
        let state = Arc::new(State_ {
            config,
            core: Arc::clone(&core),
            verifier,
            receipts: AtomicU64::new(0),
            answers: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new().route(PATH, post(handle)).with_state(state);
        Ok(LisSim {
            server: serve(app, core).await?,
        })
    }
    /// The service URL (`{base}/lis/ws`).
    pub fn url(&self) -> String {
        format!("{}{PATH}", self.server.url())
    }
    pub fn core(&self) -> &Arc<SimCore> {
        self.server.core()
    }
    pub async fn shutdown(self) {
        self.server.shutdown().await
    }
}

fn fault(code: &str, message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "text/xml; charset=utf-8")],
        soap::fault_envelope(code, message),
    )
        .into_response()
}

/// Structural checks: a well-formed element carrying a non-empty `MaHoSo`.
fn structural(body: &str) -> Vec<String> {
    if let Err(e) = fragment::root_name(body) {
        return vec![e];
    }
    match fragment::text(body, "MaHoSo") {
        Ok(Some(t)) if !t.trim().is_empty() => Vec::new(),
        Ok(_) => vec!["MaHoSo: required".into()],
        Err(e) => vec![e],
    }
}

async fn handle(State(s): State<Arc<State_>>, headers: HeaderMap, body: Bytes) -> Response {
    let core = &s.core;
    let action = super::header(&headers, "soapaction").map(|a| a.trim_matches('"').to_string());
    let message_type = action
        .as_deref()
        .map(|a| {
            s.config
                .actions
                .get(a)
                .cloned()
                .unwrap_or_else(|| a.rsplit('/').next().unwrap_or(a).to_string())
        })
        .unwrap_or_default();
    let record = |outcome: String, dup: bool| {
        core.record(PATH, &message_type, &headers, &body, dup, outcome)
    };
    let injected = match core.apply_fault().await {
        Ok(f) => f,
        Err(resp) => {
            record(format!("fault: HTTP {}", resp.status().as_u16()), false);
            return resp;
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        record("rejected: not UTF-8".into(), false);
        return fault("Client", "Request is not UTF-8");
    };
    if action.as_deref().is_none_or(str::is_empty) {
        record("rejected: no SOAPAction".into(), false);
        return fault("Client", "Missing SOAPAction header");
    }
    let inner = match soap::parse_reply(text) {
        Ok(soap::Reply::Body(b)) => b,
        Ok(soap::Reply::Fault(_)) | Err(_) => {
            record("rejected: not a SOAP envelope".into(), false);
            return fault("Client", "Request is not a SOAP 1.1 envelope");
        }
    };
    if let Err(e) = s.verifier.verify(text, Utc::now()) {
        record(format!("rejected: WS-Security: {e}"), false);
        return fault(
            "Client.Authentication",
            &format!("The security token could not be authenticated: {e}"),
        );
    }
    match injected {
        Some(Fault::SoapFault { code, message }) => {
            record(format!("fault: SOAP {code}"), false);
            return fault(
                &code,
                if message.is_empty() {
                    "simulated fault"
                } else {
                    &message
                },
            );
        }
        Some(Fault::BusinessError { code, message }) => {
            record(format!("fault: business {code}"), false);
            return fault("Client", &format!("{code}: {message}"));
        }
        _ => {}
    }
    let errors = match core.validate(&message_type, inner.as_bytes()) {
        Some(Err(e)) => e,
        Some(Ok(())) => Vec::new(),
        None => structural(&inner),
    };
    if !errors.is_empty() {
        record(format!("rejected: {}", errors.join("; ")), false);
        return fault(
            "Client",
            &format!("Dữ liệu không hợp lệ: {}", errors.join("; ")),
        );
    }
    let key = super::header(&headers, "idempotency-key");
    let duplicate = core.seen_before(key.as_deref());
    let root = fragment::root_name(&inner).unwrap_or_else(|_| "KetQua".into());
    let answer = {
        let mut answers = s.answers.lock().expect("answers poisoned");
        match key.as_ref().and_then(|k| answers.get(k).cloned()) {
            Some(a) => a,
            None => {
                let n = s.receipts.fetch_add(1, Ordering::Relaxed) + 1;
                let a = format!("LIS-{n:06}");
                if let Some(k) = key {
                    answers.insert(k, a.clone());
                }
                a
            }
        }
    };
    record("accepted".into(), duplicate);
    let reply = soap::envelope(
        "",
        &format!(
            r#"<{root}Response xmlns="http://lis.quangnam.gov.vn/hoso"><SoBienNhan>{answer}</SoBienNhan><KetQua>OK</KetQua></{root}Response>"#
        ),
    );
    ([("content-type", "text/xml; charset=utf-8")], reply).into_response()
}
