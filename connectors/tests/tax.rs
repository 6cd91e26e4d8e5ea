//! Tax GIP connector against its simulator.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_class, assert_no_secret, init, outbound};
use connectors::tax::{TaxClient, TaxConfig};
use connectors::Secret;
use lienthong_core::codec::fragment;
use lienthong_core::transport::{FailureClass, Transport};
use sim::tax::{TaxNotice, TaxSim, TaxSimConfig};
use sim::Fault;

const PASSWORD: &str = "GIP-pass-Ơ1";
const SAMPLE: &str = include_str!("data/tax.query-land-tax-ledger.request.xml");
const ROW: &str =
    "<ROW><TRUYVAN><MA_HS>000.00.32.H47-220915-0001</MA_HS><SO>049090000123</SO></TRUYVAN></ROW>";

async fn setup(timeout_ms: u64) -> (TaxSim, TaxClient) {
    init();
    let sim = TaxSim::start(TaxSimConfig::new("STNMT_QNAM", Secret::new(PASSWORD)))
        .await
        .unwrap();
    let mut c = TaxConfig::new(
        sim.url(),
        "STNMT_QNAM",
        "STNMT_QNAM",
        "Sở Tài nguyên và Môi trường tỉnh Quảng Nam",
    );
    c.timeout_ms = timeout_ms;
    (
        sim,
        TaxClient::with_password(c, Secret::new(PASSWORD)).unwrap(),
    )
}

fn notice(tmuc: &str, amount: &str) -> TaxNotice {
    TaxNotice {
        ma_hs: "000.00.32.H47-220915-0001".into(),
        so: "049090000123".into(),
        ma_so_thue: "8000000001".into(),
        ten_nnt: "Nguyễn Văn A".into(),
        so_quyet_dinh: format!("LTB2250301-TK{tmuc}/TB-CCT"),
        ma_tmuc: tmuc.into(),
        ten_tmuc: "Thuế".into(),
        so_tien: amount.into(),
        han_nop: "2022-10-19 00:00:00.0".into(),
    }
}

#[tokio::test]
async fn sample_envelope_keeps_the_mapped_header() {
    let (sim, client) = setup(5000).await;
    let r = client
        .send(&outbound("tax", "ledger.query", SAMPLE, "k1"))
        .await
        .unwrap();
    assert!(
        r.partner_reference
            .as_deref()
            .unwrap()
            .starts_with("MSG_ID=PARTNER20220920000001; reply MSG_ID=GIP"),
        "{r:?}"
    );
    let doc = &sim.documents()[0];
    assert_eq!(
        fragment::text(doc, "MSG_ID").unwrap().unwrap(),
        "PARTNER20220920000001"
    );
    assert_eq!(
        fragment::text(doc, "MA_HS").unwrap().unwrap(),
        "000.NN.NN.H47-220915-0001"
    );
    let sent = String::from_utf8(r.request.to_vec()).unwrap();
    assert!(
        sent.contains("<![CDATA[<DATA><HEADER><VERSION>1</VERSION>"),
        "{sent}"
    );
    assert!(sent.contains("#PasswordDigest\">***<"));
    assert_no_secret("receipt", &r.request, &format!("{r:?}"), &[PASSWORD]);
}

#[tokio::test]
async fn bare_row_gets_header_and_type_and_ledger_reply() {
    let (sim, client) = setup(5000).await;
    sim.add_notice(notice("1006", "3000000"));
    sim.add_notice(notice("2801", "600000"));
    let r = client
        .send(&outbound("tax", "ledger.query", ROW, "k1"))
        .await
        .unwrap();
    assert!(
        r.response_excerpt.contains("<TYPE>00110</TYPE>") || r.response_excerpt.contains("00110"),
        "{}",
        r.response_excerpt
    );
    assert!(r.response_excerpt.contains("<TT_NNT>3600000</TT_NNT>"));
    let doc = &sim.documents()[0];
    let field = |n: &str| fragment::text(doc, n).unwrap().unwrap();
    assert_eq!(field("SENDER_CODE"), "STNMT_QNAM");
    assert_eq!(field("RECEIVER_CODE"), "GIP");
    assert_eq!(field("TYPE"), "00109");
    assert!(field("MSG_ID").starts_with("STNMT_QNAM"));
    assert!(chrono::NaiveDate::parse_from_str(&field("SEND_DATE"), "%d-%m-%Y").is_ok());
    // Two sends of the same ROW get different MSG_IDs.
    client
        .send(&outbound("tax", "ledger.query", ROW, "k2"))
        .await
        .unwrap();
    let ids: Vec<String> = sim
        .documents()
        .iter()
        .map(|d| fragment::text(d, "MSG_ID").unwrap().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    // The payment notice for the scenario tests is a well-formed TYPE 00110 document.
    let pn = sim
        .payment_notice("000.00.32.H47-220915-0001", "STNMT_QNAM", "Sở TN&MT")
        .unwrap();
    assert_eq!(fragment::root_name(&pn).unwrap(), "DATA");
    assert_eq!(fragment::text(&pn, "TYPE").unwrap().unwrap(), "00110");
    assert!(sim.payment_notice("nope", "X", "Y").is_none());
}

#[tokio::test]
async fn duplicate_msg_id_is_counted_not_applied() {
    let (sim, client) = setup(5000).await;
    client
        .send(&outbound("tax", "ledger.query", SAMPLE, "a"))
        .await
        .unwrap();
    client
        .send(&outbound("tax", "ledger.query", SAMPLE, "b"))
        .await
        .unwrap();
    assert_eq!(sim.core().duplicates(), 1);
    assert_eq!(sim.documents().len(), 1);
}

#[tokio::test]
async fn fault_classes() {
    let (sim, client) = setup(400).await;
    let send = |k: &'static str, body: &'static str| {
        let client = &client;
        async move { client.send(&outbound("tax", "ledger.query", body, k)).await }
    };
    sim.core().inject_next(
        Fault::BusinessError {
            code: "05".into(),
            message: "Mã hồ sơ không hợp lệ".into(),
        },
        1,
    );
    let f = send("1", ROW).await.unwrap_err();
    assert_class(&f, FailureClass::Permanent, "gip-error:05");
    assert!(f.detail.contains("Mã hồ sơ không hợp lệ"));
    sim.core().inject_next(
        Fault::BusinessError {
            code: "99".into(),
            message: "Hệ thống bận".into(),
        },
        1,
    );
    assert_class(
        &send("2", ROW).await.unwrap_err(),
        FailureClass::Transient,
        "gip-error:99",
    );
    sim.core().inject_next(
        Fault::SoapFault {
            code: "Server".into(),
            message: "x".into(),
        },
        1,
    );
    assert_class(
        &send("3", ROW).await.unwrap_err(),
        FailureClass::Transient,
        "soap-fault:Server",
    );
    sim.core().inject_next(
        Fault::Status {
            status: 503,
            retry_after_secs: Some(5),
        },
        1,
    );
    let f = send("4", ROW).await.unwrap_err();
    assert_class(&f, FailureClass::Transient, "http-503");
    assert_eq!(f.retry_after, Some(Duration::from_secs(5)));
    sim.core().inject_next(Fault::Hang, 1);
    assert_class(
        &send("5", ROW).await.unwrap_err(),
        FailureClass::Transient,
        "timeout",
    );
    // A document without TYPE is refused by the gateway (ERROR_CODE 01: permanent).
    let f = send("6", "<BODY><ROW><TRUYVAN/></ROW></BODY>")
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "gip-error:01");
    assert!(f.detail.contains("TYPE"), "{}", f.detail);
    // A message type with no configured TYPE never leaves the hub.
    let f = client
        .send(&outbound("tax", "unknown.kind", ROW, "7"))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "bad-body");
    assert!(f.detail.contains("connectors.tax.types"));
}

#[tokio::test]
async fn wrong_password_is_a_permanent_client_fault() {
    init();
    let sim = TaxSim::start(TaxSimConfig::new("STNMT_QNAM", Secret::new(PASSWORD)))
        .await
        .unwrap();
    let client = TaxClient::with_password(
        TaxConfig::new(sim.url(), "STNMT_QNAM", "STNMT_QNAM", "Sở"),
        Secret::new("bad-pass"),
    )
    .unwrap();
    let f = client
        .send(&outbound("tax", "ledger.query", ROW, "x"))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "soap-fault:Client");
    assert_no_secret(
        "failure",
        &f.request,
        &format!("{f:?}"),
        &["bad-pass", PASSWORD],
    );
}
