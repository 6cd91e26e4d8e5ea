//! LIS (SOAP + WS-Security) connector against its simulator.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_class, assert_no_secret, init, outbound};
use connectors::lis::auth::Credentials;
use connectors::lis::{codec, LisClient, LisConfig};
use connectors::Secret;
use lienthong_core::transport::{FailureClass, Transport};
use sim::lis::{LisSim, LisSimConfig};
use sim::Fault;

const PASSWORD: &str = "LIS-pass-Ư7";
const BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DangKyHoSo xmlns="http://lis.quangnam.gov.vn/hoso"><MaHoSo>000.00.32.H47-220915-0001</MaHoSo><ChuSuDung><HoTen>Nguyễn Văn A</HoTen><SoGiayTo>049090000123</SoGiayTo></ChuSuDung><ThuaDat><SoTo>18</SoTo><SoThua>125</SoThua></ThuaDat></DangKyHoSo>"#;

async fn setup(password: &str, timeout_ms: u64) -> (LisSim, LisClient) {
    init();
    let sim = LisSim::start(LisSimConfig {
        username: "HUB_STNMT".into(),
        password: Secret::new(PASSWORD),
        actions: Default::default(),
    })
    .await
    .unwrap();
    let mut c = LisConfig::new(sim.url(), "HUB_STNMT");
    c.timeout_ms = timeout_ms;
    (
        sim,
        LisClient::with_password(c, Secret::new(password)).unwrap(),
    )
}

#[tokio::test]
async fn digest_verified_and_body_verbatim() {
    let (sim, client) = setup(PASSWORD, 5000).await;
    let r = client
        .send(&outbound("lis", "dossier.register", BODY, "k1"))
        .await
        .unwrap();
    assert_eq!(r.partner_reference.as_deref(), Some("LIS-000001"));
    let got = &sim.core().received()[0];
    assert_eq!(got.outcome, "accepted");
    assert_eq!(got.message_type, "dossier.register");
    assert_eq!(
        got.headers["soapaction"],
        "\"http://lis.quangnam.gov.vn/hoso/dossier.register\""
    );
    assert!(
        got.body
            .contains(&BODY[BODY.find("<DangKyHoSo").unwrap()..]),
        "body goes verbatim inside soapenv:Body"
    );
    let sent = String::from_utf8(r.request.to_vec()).unwrap();
    assert!(
        sent.contains("#PasswordDigest\">***</wsse:Password>"),
        "{sent}"
    );
    assert!(
        got.body.contains("#PasswordDigest\">") && !got.body.contains("#PasswordDigest\">***"),
        "the wire had the digest"
    );
    assert_no_secret("receipt", &r.request, &format!("{r:?}"), &[PASSWORD]);
    // The same delivery again: acknowledged with the same receipt number, not applied twice.
    let again = client
        .send(&outbound("lis", "dossier.register", BODY, "k1"))
        .await
        .unwrap();
    assert_eq!(again.partner_reference.as_deref(), Some("LIS-000001"));
    assert_eq!(sim.core().duplicates(), 1);
}

#[tokio::test]
async fn wrong_password_and_replayed_nonce_are_client_faults() {
    let (sim, client) = setup("wrong", 5000).await;
    let f = client
        .send(&outbound("lis", "dossier.register", BODY, "k1"))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "soap-fault:Client");
    assert!(
        f.detail.contains("PasswordDigest does not match"),
        "{}",
        f.detail
    );
    assert_no_secret(
        "failure",
        &f.request,
        &format!("{f:?}"),
        &["wrong", PASSWORD],
    );

    // Replaying a captured envelope (same nonce) is refused.
    let creds = Credentials {
        username: "HUB_STNMT".into(),
        password: Secret::new(PASSWORD),
    };
    let (envelope, _) = codec::envelope(BODY.as_bytes(), &creds.header()).unwrap();
    let http = reqwest::Client::new();
    let post = || {
        http.post(sim.url())
            .header("SOAPAction", "\"x/dossier.register\"")
            .body(envelope.clone())
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    let replay = post().await.unwrap().text().await.unwrap();
    assert!(
        replay.contains("Client.Authentication") && replay.contains("Nonce was already used"),
        "{replay}"
    );
}

#[tokio::test]
async fn fault_classes() {
    let (sim, client) = setup(PASSWORD, 400).await;
    let send = |k: &'static str, body: &'static str| {
        let client = &client;
        async move {
            client
                .send(&outbound("lis", "dossier.register", body, k))
                .await
        }
    };
    sim.core().inject_next(
        Fault::SoapFault {
            code: "Server".into(),
            message: "Database unavailable".into(),
        },
        1,
    );
    let f = send("1", BODY).await.unwrap_err();
    assert_class(&f, FailureClass::Transient, "soap-fault:Server");
    assert!(f.detail.contains("Database unavailable"));
    sim.core().inject_next(
        Fault::SoapFault {
            code: "Client".into(),
            message: "Thửa đất không tồn tại".into(),
        },
        1,
    );
    assert_class(
        &send("2", BODY).await.unwrap_err(),
        FailureClass::Permanent,
        "soap-fault:Client",
    );
    sim.core().inject_next(
        Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
        1,
    );
    assert_class(
        &send("3", BODY).await.unwrap_err(),
        FailureClass::Transient,
        "http-500",
    );
    sim.core().inject_next(
        Fault::Status {
            status: 429,
            retry_after_secs: Some(11),
        },
        1,
    );
    assert_eq!(
        send("4", BODY).await.unwrap_err().retry_after,
        Some(Duration::from_secs(11))
    );
    sim.core().inject_next(Fault::Hang, 1);
    assert_class(
        &send("5", BODY).await.unwrap_err(),
        FailureClass::Transient,
        "timeout",
    );
    let f = send("6", "<DangKyHoSo><ChuSuDung/></DangKyHoSo>")
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "soap-fault:Client");
    assert!(f.detail.contains("MaHoSo"));
    assert_class(
        &send("7", "{\"not\":\"xml\"}").await.unwrap_err(),
        FailureClass::Permanent,
        "bad-body",
    );
}
