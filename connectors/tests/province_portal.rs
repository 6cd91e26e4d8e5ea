//! Province portal (LGSP) connector against its simulator, over real HTTP on loopback.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_class, assert_no_secret, init, outbound};
use connectors::province_portal::{ProvincePortalClient, ProvincePortalConfig};
use connectors::Secret;
use lienthong_core::transport::{FailureClass, Transport};
use sim::province_portal::{LgspSim, LgspSimConfig};
use sim::{Fault, FaultRule};

const SECRET: &str = "consumer-secret-Đ9";
const BODY: &str = r#"{"MaHoSo":"000.00.32.H47-220915-0001","MaTTHC":"1.004227","TrangThaiHoSo":"6","NgayCapNhat":"20220919093000","NoiDungXuLy":"Đã có Thông báo nộp tiền"}"#;

async fn setup(ttl: Duration, margin: u64, timeout_ms: u64) -> (LgspSim, ProvincePortalClient) {
    init();
    let mut sc = LgspSimConfig::new("hub-key", Secret::new(SECRET));
    sc.token_ttl = ttl;
    let sim = LgspSim::start(sc).await.unwrap();
    let mut c = ProvincePortalConfig::new(sim.url(), "hub-key");
    c.token_refresh_margin_secs = margin;
    c.timeout_ms = timeout_ms;
    let client = ProvincePortalClient::with_secret(c, Secret::new(SECRET)).unwrap();
    (sim, client)
}

#[tokio::test]
async fn happy_path_and_duplicates() {
    let (sim, client) = setup(Duration::from_secs(3600), 60, 5000).await;
    let out = outbound("province-portal", "status.update", BODY, "k1");
    let r = client.send(&out).await.unwrap();
    assert_eq!(r.status, Some(200));
    assert_eq!(
        r.request,
        BODY.as_bytes(),
        "the trail keeps the exact body sent"
    );
    assert_eq!(
        r.partner_reference.as_deref(),
        Some("000.00.32.H47-220915-0001")
    );
    assert_eq!(sim.statuses()["000.00.32.H47-220915-0001"], "6");
    let log = sim.core().received();
    assert_eq!(log[0].headers["authorization"], "***");
    assert_eq!(log[0].idempotency_key.as_deref(), Some("k1"));
    assert!(
        log[0].body.contains("Đã có Thông báo nộp tiền"),
        "UTF-8 survives"
    );
    // At-least-once redelivery: acknowledged, counted, not applied twice.
    client.send(&out).await.unwrap();
    assert_eq!(sim.core().duplicates(), 1);
    assert_eq!(sim.core().accepted().len(), 1);
    assert_eq!(sim.tokens_issued(), 1, "token cached");
    assert_no_secret("receipt", &r.request, &format!("{r:?}"), &[SECRET]);
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let (sim, client) = setup(Duration::from_secs(3), 2, 5000).await;
    client
        .send(&outbound("province-portal", "status.update", BODY, "a"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client
        .send(&outbound("province-portal", "status.update", BODY, "b"))
        .await
        .unwrap();
    assert_eq!(sim.tokens_issued(), 2, "refreshed ahead of expiry");
    assert!(
        sim.core()
            .received()
            .iter()
            .all(|r| r.outcome == "accepted"),
        "never presented an expired token"
    );
}

#[tokio::test]
async fn one_silent_retoken_on_401() {
    let (sim, client) = setup(Duration::from_secs(3600), 60, 5000).await;
    client
        .send(&outbound("province-portal", "status.update", BODY, "a"))
        .await
        .unwrap();
    sim.revoke_tokens();
    let r = client
        .send(&outbound("province-portal", "status.update", BODY, "b"))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(sim.tokens_issued(), 2);
    let outcomes: Vec<_> = sim
        .core()
        .received()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec!["accepted", "rejected: invalid credentials", "accepted"]
    );
    // ExpireAuth as an injected fault behaves the same.
    sim.core().inject_next(Fault::ExpireAuth, 1);
    client
        .send(&outbound("province-portal", "status.update", BODY, "c"))
        .await
        .unwrap();
    assert_eq!(sim.tokens_issued(), 3);
}

#[tokio::test]
async fn fault_classes() {
    let (sim, client) = setup(Duration::from_secs(3600), 60, 400).await;
    let send = |k: &'static str| {
        let out = outbound("province-portal", "status.update", BODY, k);
        let client = &client;
        async move { client.send(&out).await }
    };
    sim.core().inject_next(
        Fault::Status {
            status: 503,
            retry_after_secs: None,
        },
        1,
    );
    assert_class(
        &send("1").await.unwrap_err(),
        FailureClass::Transient,
        "http-503",
    );

    sim.core().inject_next(
        Fault::Status {
            status: 429,
            retry_after_secs: Some(7),
        },
        1,
    );
    let f = send("2").await.unwrap_err();
    assert_class(&f, FailureClass::Transient, "http-429");
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)));

    sim.core().inject_next(
        Fault::BusinessError {
            code: "HOSO_KHONG_TON_TAI".into(),
            message: "Không tìm thấy hồ sơ".into(),
        },
        1,
    );
    let f = send("3").await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "lgsp-error:HOSO_KHONG_TON_TAI");
    assert!(f.detail.contains("Không tìm thấy hồ sơ"));

    sim.core().inject(FaultRule {
        fault: Fault::BusinessError {
            code: "900800".into(),
            message: "Message throttled out".into(),
        },
        count: Some(1),
        probability: None,
    });
    assert_class(
        &send("4").await.unwrap_err(),
        FailureClass::Transient,
        "lgsp-error:900800",
    );

    sim.core().inject_next(Fault::Hang, 1);
    let started = std::time::Instant::now();
    assert_class(
        &send("5").await.unwrap_err(),
        FailureClass::Transient,
        "timeout",
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    sim.core().inject_next(Fault::Latency { ms: 100 }, 1);
    assert!(send("6").await.is_ok());

    let bad = outbound("province-portal", "status.update", r#"{"MaHoSo":""}"#, "7");
    let f = client.send(&bad).await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "lgsp-error:DATA_INVALID");
    assert!(f.detail.contains("TrangThaiHoSo"), "{}", f.detail);
    assert_no_secret("failure", &f.request, &format!("{f:?}"), &[SECRET]);
}

#[tokio::test]
async fn wrong_consumer_secret_is_permanent_and_not_leaked() {
    init();
    let sim = LgspSim::start(LgspSimConfig::new("hub-key", Secret::new(SECRET)))
        .await
        .unwrap();
    let client = ProvincePortalClient::with_secret(
        ProvincePortalConfig::new(sim.url(), "hub-key"),
        Secret::new("wrong-secret"),
    )
    .unwrap();
    let f = client
        .send(&outbound("province-portal", "status.update", BODY, "x"))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "token-http-401");
    assert_no_secret(
        "failure",
        &f.request,
        &format!("{f:?}"),
        &["wrong-secret", SECRET],
    );
}

#[tokio::test]
async fn connection_refused_is_transient() {
    init();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client =
        ProvincePortalClient::with_secret(ProvincePortalConfig::new(url, "k"), Secret::new(SECRET))
            .unwrap();
    let f = client
        .send(&outbound("province-portal", "status.update", BODY, "x"))
        .await
        .unwrap_err();
    assert_eq!(f.class, FailureClass::Transient);
    assert_eq!(f.reason, "token-connect");
}

#[tokio::test]
async fn control_api_injects_faults_over_http() {
    let (sim, client) = setup(Duration::from_secs(3600), 60, 5000).await;
    let http = reqwest::Client::new();
    let rule = serde_json::json!({"fault": {"kind": "status", "status": 502}, "count": 1});
    let r = http
        .post(format!("{}/_sim/faults", sim.url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_class(
        &client
            .send(&outbound("province-portal", "status.update", BODY, "a"))
            .await
            .unwrap_err(),
        FailureClass::Transient,
        "http-502",
    );
    let log: serde_json::Value = http
        .get(format!("{}/_sim/log", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log[0]["outcome"], "fault: HTTP 502");
}
