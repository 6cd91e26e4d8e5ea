//! National portal (DVCQG) connector against its simulator.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_class, assert_no_secret, init, outbound};
use connectors::national_portal::{NationalPortalClient, NationalPortalConfig};
use connectors::Secret;
use lienthong_core::transport::{FailureClass, Transport};
use serde_json::{json, Value};
use sim::national_portal::{DvcqgSim, DvcqgSimConfig};
use sim::Fault;

const PASSWORD: &str = "mật-khẩu-DVCQG";

/// The verified sample, without its `_` annotations, as the mapping would produce it.
fn sync_body() -> String {
    let sample: Value =
        serde_json::from_str(include_str!("data/national-portal.DongBoHoSoMC.json")).unwrap();
    let mut body = serde_json::Map::new();
    for (k, v) in sample.as_object().unwrap() {
        if !k.starts_with('_') && k != "session" {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert("madonvi".into(), json!("000.00.32.H47"));
    serde_json::to_string(&body).unwrap()
}

fn progress_body() -> String {
    json!({"service": "CapNhatTienDoHoSoMC", "data": [{"MaHoSo": "000.00.32.H47-220915-0001", "NguoiXuLy": "Trần Thị B", "ThoiDiemXuLy": "20220916100000", "NoiDungXuLy": "Chuyển thuế", "TrangThai": "6"}]}).to_string()
}

async fn setup(ttl: Duration, password: &str) -> (DvcqgSim, NationalPortalClient) {
    init();
    let sim = DvcqgSim::start(DvcqgSimConfig {
        dstcode: "H47".into(),
        username: "stnmt-qnam".into(),
        password: Secret::new(PASSWORD),
        session_ttl: ttl,
    })
    .await
    .unwrap();
    let mut c =
        NationalPortalConfig::new(sim.auth_url(), sim.integration_url(), "H47", "stnmt-qnam");
    c.madonvi = Some("000.00.32.H47".into());
    c.timeout_ms = 2000;
    let client = NationalPortalClient::with_password(c, Secret::new(password)).unwrap();
    (sim, client)
}

#[tokio::test]
async fn sync_and_progress_with_one_session() {
    let (sim, client) = setup(Duration::from_secs(3600), PASSWORD).await;
    let r = client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            sync_body(),
            "k1",
        ))
        .await
        .unwrap();
    client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "k2",
        ))
        .await
        .unwrap();
    assert_eq!(sim.logins(), 1);
    let dossier = &sim.dossiers()["000.NN.NN.H47-220915-0001"];
    assert_eq!(dossier["ChuHoSo"], "Nguyễn Văn A");
    assert_eq!(
        sim.progress()[0]["TrangThai"],
        "6",
        "madonvi came from config"
    );
    let sent: Value = serde_json::from_slice(&r.request).unwrap();
    assert_eq!(sent["session"], "***", "the trail never holds the session");
    assert_eq!(sent.as_object().unwrap().keys().next().unwrap(), "session");
    let wire: Value = serde_json::from_str(&sim.core().received()[0].body).unwrap();
    assert_ne!(wire["session"], "***", "the partner got the real session");
    assert_no_secret(
        "receipt",
        &r.request,
        &format!("{r:?}"),
        &[PASSWORD, wire["session"].as_str().unwrap()],
    );
}

#[tokio::test]
async fn relogin_when_the_session_expired() {
    let (sim, client) = setup(Duration::from_secs(3600), PASSWORD).await;
    client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "a",
        ))
        .await
        .unwrap();
    sim.expire_sessions();
    client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "b",
        ))
        .await
        .unwrap();
    assert_eq!(sim.logins(), 2);
    let outcomes: Vec<_> = sim
        .core()
        .received()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec!["accepted", "rejected: session expired", "accepted"]
    );
    sim.core().inject_next(Fault::ExpireAuth, 1);
    client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "c",
        ))
        .await
        .unwrap();
    assert_eq!(sim.logins(), 3);
    // Sessions that time out on the portal's side are renewed the same way.
    let (sim, client) = setup(Duration::from_millis(300), PASSWORD).await;
    client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "a",
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "b",
        ))
        .await
        .unwrap();
    assert_eq!(sim.logins(), 2);
}

#[tokio::test]
async fn fault_classes() {
    let (sim, client) = setup(Duration::from_secs(3600), PASSWORD).await;
    let send = |k: &'static str, body: String| {
        let client = &client;
        async move {
            client
                .send(&outbound("national-portal", "CapNhatTienDoHoSoMC", body, k))
                .await
        }
    };
    sim.core().inject_next(
        Fault::BusinessError {
            code: "05".into(),
            message: "Hồ sơ không thuộc đơn vị".into(),
        },
        1,
    );
    let f = send("1", progress_body()).await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:05");
    assert!(f.detail.contains("Hồ sơ không thuộc đơn vị"));
    sim.core().inject_next(
        Fault::BusinessError {
            code: "99".into(),
            message: "Hệ thống bận".into(),
        },
        1,
    );
    assert_class(
        &send("2", progress_body()).await.unwrap_err(),
        FailureClass::Transient,
        "dvcqg-error:99",
    );
    sim.core().inject_next(
        Fault::Status {
            status: 503,
            retry_after_secs: Some(3),
        },
        1,
    );
    let f = send("3", progress_body()).await.unwrap_err();
    assert_class(&f, FailureClass::Transient, "http-503");
    assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
    sim.core().inject_next(Fault::Hang, 1);
    assert_class(
        &send("4", progress_body()).await.unwrap_err(),
        FailureClass::Transient,
        "timeout",
    );
    let bad = json!({"service": "CapNhatTienDoHoSoMC", "data": [{"MaHoSo": "X", "TrangThai": "6", "ThoiDiemXuLy": "16/09/2022"}]}).to_string();
    let f = send("5", bad).await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:03");
    assert!(f.detail.contains("ThoiDiemXuLy"), "{}", f.detail);
    let f = send("6", r#"{"data": []}"#.into()).await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "bad-body");
    assert_no_secret("failure", &f.request, &format!("{f:?}"), &[PASSWORD]);
}

#[tokio::test]
async fn wrong_password_is_permanent_and_never_shown() {
    let (_sim, client) = setup(Duration::from_secs(3600), "sai-mat-khau").await;
    let f = client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            progress_body(),
            "x",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-login:01");
    assert_no_secret(
        "failure",
        &f.request,
        &format!("{f:?}"),
        &["sai-mat-khau", PASSWORD],
    );
}
