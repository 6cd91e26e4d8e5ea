//! The national-portal connector against a fake DVCQG written from the public
//! protocol description, not from this project's simulator (issue 14,
//! defect 2): its session-expiry answer is `{"error_code":"-1","message":
//! "session expired"}`, a code the connector's defaults do not list (the
//! reference marks the expiry codes as assumed), and it refuses expired
//! sessions with HTTP 403 on another path.
//!
//! On the main of 2026-12-04 the unlisted code was a permanent failure and
//! the cached session was kept, so every later delivery died too, until a
//! restart. What holds now: a non-success answer to a session that was used
//! before is a doubt, settled by one re-login and one resend; a real
//! rejection is still a rejection after that, and never leaves a poisoned
//! session behind.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Json;
use common::{assert_class, init, outbound};
use connectors::national_portal::{NationalPortalClient, NationalPortalConfig};
use connectors::Secret;
use lienthong_core::transport::{FailureClass, Transport};
use serde_json::{json, Value};

/// The fake portal's state: sessions it issued, those it has expired, and how
/// it refuses an expired one.
#[derive(Default)]
struct Fake {
    logins: AtomicU64,
    issued: Mutex<Vec<String>>,
    expired: Mutex<HashSet<String>>,
    /// Refuse an expired session with HTTP 403 instead of `error_code` -1.
    forbid_expired: std::sync::atomic::AtomicBool,
    /// The sessions each integration call carried, in order.
    calls: Mutex<Vec<String>>,
}

async fn login(State(f): State<Arc<Fake>>) -> impl IntoResponse {
    let n = f.logins.fetch_add(1, Ordering::SeqCst) + 1;
    let s = format!("phien-{n}");
    f.issued.lock().unwrap().push(s.clone());
    // Success as the portal's documentation shows it: a numeric 0.
    Json(json!({"error_code": 0, "message": "Thành công", "session": s}))
}

async fn integrate(
    State(f): State<Arc<Fake>>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let session = body["session"].as_str().unwrap_or_default().to_string();
    f.calls.lock().unwrap().push(session.clone());
    let known = f.issued.lock().unwrap().contains(&session);
    if !known || f.expired.lock().unwrap().contains(&session) {
        if f.forbid_expired.load(Ordering::SeqCst) {
            return (StatusCode::FORBIDDEN, "phiên đã hết hạn").into_response();
        }
        return Json(json!({"error_code": "-1", "message": "session expired"})).into_response();
    }
    if body["data"][0]["MaHoSo"] == "KHONG-CO" {
        return Json(json!({"error_code": "04", "message": "Không tìm thấy hồ sơ"}))
            .into_response();
    }
    Json(json!({"error_code": "00", "message": "Thành công"})).into_response()
}

async fn start() -> (Arc<Fake>, NationalPortalClient) {
    init();
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/auth", post(login))
        .route("/api", post(integrate))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut c = NationalPortalConfig::new(
        format!("http://{addr}/auth"),
        format!("http://{addr}/api"),
        "H47",
        "stnmt-qnam",
    );
    c.madonvi = Some("000.00.32.H47".into());
    c.timeout_ms = 2000;
    let client = NationalPortalClient::with_password(c, Secret::new("mật-khẩu")).unwrap();
    (fake, client)
}

fn dossier(code: &str) -> String {
    json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [{"MaHoSo": code}]})
        .to_string()
}

async fn send(
    client: &NationalPortalClient,
    code: &str,
    key: &str,
) -> Result<(), lienthong_core::transport::Failure> {
    client
        .send(&outbound(
            "national-portal",
            "dossier.sync",
            dossier(code),
            key,
        ))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_unlisted_expiry_code_renews_the_session_once() {
    let (fake, client) = start().await;
    send(&client, "000.00.32.H47-261204-0001", "k1")
        .await
        .unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1);

    // The portal ends the session; it says so with a code nobody listed.
    fake.expired.lock().unwrap().insert("phien-1".into());
    send(&client, "000.00.32.H47-261204-0002", "k2")
        .await
        .expect("a doubtful answer to a used session: log in again and resend, once");
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    // The new session is kept: the next delivery needs no login.
    send(&client, "000.00.32.H47-261204-0003", "k3")
        .await
        .unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    assert_eq!(
        *fake.calls.lock().unwrap(),
        ["phien-1", "phien-1", "phien-2", "phien-2"]
    );
}

#[tokio::test]
async fn http_403_to_a_used_session_renews_it() {
    let (fake, client) = start().await;
    send(&client, "000.00.32.H47-261204-0011", "k1")
        .await
        .unwrap();
    fake.forbid_expired.store(true, Ordering::SeqCst);
    fake.expired.lock().unwrap().insert("phien-1".into());
    send(&client, "000.00.32.H47-261204-0012", "k2")
        .await
        .unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_real_rejection_stays_permanent_and_leaves_no_poisoned_session() {
    let (fake, client) = start().await;
    send(&client, "000.00.32.H47-261204-0021", "k1")
        .await
        .unwrap();
    // A dossier the portal does not know: rejected with every session.
    let f = send(&client, "KHONG-CO", "k2").await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:04");
    assert!(f.detail.contains("Không tìm thấy hồ sơ"), "{}", f.detail);
    // It was asked once more with a fresh session before it was believed.
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    // A permanent answer drops the session it came with: the next delivery logs in.
    send(&client, "000.00.32.H47-261204-0022", "k3")
        .await
        .unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 3);
    // The portal ends that session and also the next one it issues: after one
    // renewal the answer is believed (permanent, an unknown code), and the
    // refused session is not kept either.
    fake.expired.lock().unwrap().insert("phien-3".into());
    fake.expired.lock().unwrap().insert("phien-4".into());
    let f = send(&client, "000.00.32.H47-261204-0023", "k4")
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:-1");
    assert_eq!(fake.logins.load(Ordering::SeqCst), 4);
    send(&client, "000.00.32.H47-261204-0024", "k5")
        .await
        .unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 5);
}
