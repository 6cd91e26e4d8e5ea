//! The simulators validate with the hub's own JSON Schemas (`schemas/`), so a
//! mapping that drifts from the partner contract fails in the demo and in tests the
//! way it would fail at the partner.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{assert_class, init, outbound};
use connectors::national_portal::{NationalPortalClient, NationalPortalConfig};
use connectors::province_portal::{ProvincePortalClient, ProvincePortalConfig};
use connectors::tax::{TaxClient, TaxConfig};
use connectors::Secret;
use lienthong_core::schema::SchemaRegistry;
use lienthong_core::transport::{FailureClass, Transport};
use serde_json::{json, Value};
use sim::national_portal::{DvcqgSim, DvcqgSimConfig};
use sim::province_portal::{LgspSim, LgspSimConfig};
use sim::tax::{TaxSim, TaxSimConfig};

fn registry() -> SchemaRegistry {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    SchemaRegistry::load(&dir).unwrap_or_else(|d| panic!("schemas/ does not load:\n{d}"))
}

#[tokio::test]
async fn lgsp_simulator_enforces_the_status_update_schema() {
    init();
    let sim = LgspSim::start(LgspSimConfig::new("k", Secret::new("s")))
        .await
        .unwrap();
    assert!(sim.core().use_schemas(&registry()) >= 1);
    let client = ProvincePortalClient::with_secret(
        ProvincePortalConfig::new(sim.url(), "k"),
        Secret::new("s"),
    )
    .unwrap();
    let sample: Value = serde_json::from_str(include_str!(
        "data/province-portal.status-update.via-lgsp.json"
    ))
    .unwrap();
    let good = sample["request"].to_string();
    let r = client
        .send(&outbound("province-portal", "status.update", good, "a"))
        .await;
    assert!(
        r.is_ok(),
        "the reference sample must satisfy schemas/province-portal/status.update: {r:?}"
    );
    let mut bad = sample["request"].clone();
    bad.as_object_mut().unwrap().remove("NgayCapNhat");
    let f = client
        .send(&outbound(
            "province-portal",
            "status.update",
            bad.to_string(),
            "b",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "lgsp-error:DATA_INVALID");
    assert!(f.detail.contains("NgayCapNhat"), "{}", f.detail);
}

#[tokio::test]
async fn dvcqg_simulator_enforces_the_progress_schema() {
    init();
    let sim = DvcqgSim::start(DvcqgSimConfig {
        dstcode: "H47".into(),
        username: "u".into(),
        password: Secret::new("p"),
        session_ttl: std::time::Duration::from_secs(60),
    })
    .await
    .unwrap();
    assert!(sim.core().use_schemas(&registry()) >= 2);
    let client = NationalPortalClient::with_password(
        NationalPortalConfig::new(sim.auth_url(), sim.integration_url(), "H47", "u"),
        Secret::new("p"),
    )
    .unwrap();
    // The schema describes the mapped body plus the session the connector adds.
    let bad = json!({"madonvi": "000.00.32.H47", "service": "CapNhatTienDoHoSoMC", "data": [{"TrangThai": "6"}]}).to_string();
    let f = client
        .send(&outbound(
            "national-portal",
            "CapNhatTienDoHoSoMC",
            bad,
            "b",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:03");
    assert!(f.detail.contains("MaHoSo"), "{}", f.detail);
}

async fn dvcqg_with_schemas() -> (DvcqgSim, NationalPortalClient) {
    init();
    let sim = DvcqgSim::start(DvcqgSimConfig {
        dstcode: "H47".into(),
        username: "u".into(),
        password: Secret::new("p"),
        session_ttl: std::time::Duration::from_secs(60),
    })
    .await
    .unwrap();
    assert!(sim.core().use_schemas(&registry()) >= 2);
    let client = NationalPortalClient::with_password(
        NationalPortalConfig::new(sim.auth_url(), sim.integration_url(), "H47", "u"),
        Secret::new("p"),
    )
    .unwrap();
    (sim, client)
}

const MA: &str = "000.00.32.H47-220915-0001";

/// The connector adds `session` (transport) to the mapped body; the simulator
/// validates the business part against the closed schema, so a valid first sync
/// passes, and a partial update (`isUpdating` True) of that dossier passes and is
/// merged into the stored record.
#[tokio::test]
async fn dvcqg_schemas_accept_the_business_part_and_partial_updates() {
    let (sim, client) = dvcqg_with_schemas().await;
    let first = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "False",
        "data": [{"MaHoSo": MA, "MaTTHC": "1.004227", "TenTTHC": "Đăng ký biến động", "ChuHoSo": "Nguyễn Văn A",
                  "TrichYeuHoSo": "Chuyển nhượng", "NgayTiepNhan": "20220915083000", "NgayHenTra": "20221006170000",
                  "TrangThaiHoSo": "2"}]});
    let r = client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            first.to_string(),
            "s1",
        ))
        .await;
    assert!(
        r.is_ok(),
        "a valid first sync with the connector's session: {r:?}"
    );
    let update = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "True",
        "data": [{"MaHoSo": MA, "TrangThaiHoSo": "4"}]});
    let r = client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            update.to_string(),
            "s2",
        ))
        .await;
    assert!(r.is_ok(), "a partial update of a known dossier: {r:?}");
    let stored = &sim.dossiers()[MA];
    assert_eq!(
        (stored["TrangThaiHoSo"].as_str(), stored["ChuHoSo"].as_str()),
        (Some("4"), Some("Nguyễn Văn A")),
        "the update is merged into the record: {stored}"
    );
    // The schema still applies: an unknown field in a closed schema is refused.
    let bad = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "True",
        "data": [{"MaHoSo": MA, "TrangThaiHoSo": "6", "TrangThai": "6"}]});
    let f = client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            bad.to_string(),
            "s3",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:03");
    assert!(f.detail.contains("TrangThai"), "{}", f.detail);
    assert_eq!(sim.dossiers()[MA]["TrangThaiHoSo"], "4", "nothing applied");
}

/// An update for a dossier the portal does not have is refused (`error_code` 04),
/// with or without schemas plugged in, and the hub dead-letters it (permanent).
#[tokio::test]
async fn dvcqg_refuses_an_update_of_an_unknown_dossier() {
    let (sim, client) = dvcqg_with_schemas().await;
    let update = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "True",
        "data": [{"MaHoSo": "000.00.32.H47-220915-0099", "TrangThaiHoSo": "4"}]});
    let f = client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            update.to_string(),
            "u1",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:04");
    assert!(f.detail.contains("0099"), "{}", f.detail);
    assert!(sim.dossiers().is_empty());

    // Without schemas, the built-in checks: a partial first sync is refused, a partial update is not.
    let plain = DvcqgSim::start(DvcqgSimConfig {
        dstcode: "H47".into(),
        username: "u".into(),
        password: Secret::new("p"),
        session_ttl: std::time::Duration::from_secs(60),
    })
    .await
    .unwrap();
    let client = NationalPortalClient::with_password(
        NationalPortalConfig::new(plain.auth_url(), plain.integration_url(), "H47", "u"),
        Secret::new("p"),
    )
    .unwrap();
    let partial_first = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "False",
        "data": [{"MaHoSo": MA, "TrangThaiHoSo": "2"}]});
    let f = client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            partial_first.to_string(),
            "p1",
        ))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "dvcqg-error:03");
    assert!(f.detail.contains("ChuHoSo"), "{}", f.detail);
    let full = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "False",
        "data": [{"MaHoSo": MA, "TrangThaiHoSo": "2", "ChuHoSo": "Nguyễn Văn A", "NgayTiepNhan": "20220915083000"}]});
    client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            full.to_string(),
            "p2",
        ))
        .await
        .unwrap();
    let update = json!({"madonvi": "000.00.32.H47", "service": "DongBoHoSoMC", "isUpdating": "True",
        "data": [{"MaHoSo": MA, "TrangThaiHoSo": "9"}]});
    client
        .send(&outbound(
            "national-portal",
            "DongBoHoSoMC",
            update.to_string(),
            "p3",
        ))
        .await
        .unwrap();
    assert_eq!(plain.dossiers()[MA]["TrangThaiHoSo"], "9");
    assert_eq!(plain.dossiers()[MA]["ChuHoSo"], "Nguyễn Văn A");
}

fn transfer_form(ma_hs: &str) -> String {
    format!(
        "<DATA><HEADER><VERSION>1</VERSION><SENDER_CODE>STNMT_QNAM</SENDER_CODE><RECEIVER_CODE>GIP</RECEIVER_CODE>\
         <TRAN_CODE>05010</TRAN_CODE><MSG_ID/><SEND_DATE/></HEADER><BODY><ROW><TYPE>00101</TYPE><PHIEU_CHUYEN>\
         <SO_PHIEU>125/PCTT</SO_PHIEU><MA_HS>{ma_hs}</MA_HS><MA_CQUAN_THU>1050000</MA_CQUAN_THU>\
         <NGUOI_NOP_THUE><ROW_NNT><VAI_TRO>BEN_NHAN</VAI_TRO><TEN_NNT>Nguyễn Văn A</TEN_NNT><SO>049090000123</SO></ROW_NNT></NGUOI_NOP_THUE>\
         <THUA_DAT><SO_THUADAT>125</SO_THUADAT><SO_TO_BANDO>18</SO_TO_BANDO><MA_DBHC>20341</MA_DBHC><DIEN_TICH>150.0</DIEN_TICH>\
         <MUC_DICH_SD><ROW_MDSD><MA_LOAI_DAT>ODT</MA_LOAI_DAT><DIEN_TICH>150.0</DIEN_TICH></ROW_MDSD></MUC_DICH_SD></THUA_DAT>\
         <GIA_CHUYEN_NHUONG>1500000000</GIA_CHUYEN_NHUONG></PHIEU_CHUYEN></ROW></BODY></DATA>"
    )
}

/// The tax simulator validates the business XML inside the GIP envelope (HEADER
/// and BODY), not the `SECURITY` block the transport carries: a valid transfer form
/// is accepted; one that breaks the schema gets the gateway's `ERROR_CODE` reply,
/// which the connector classifies as permanent (a dead letter in the hub).
#[tokio::test]
async fn tax_simulator_enforces_the_transfer_form_schema() {
    init();
    let sim = TaxSim::start(TaxSimConfig::new("STNMT_QNAM", Secret::new("gip")))
        .await
        .unwrap();
    assert!(sim.core().use_schemas(&registry()) >= 2);
    let client = TaxClient::with_password(
        TaxConfig::new(sim.url(), "STNMT_QNAM", "STNMT_QNAM", "Sở TN&MT"),
        Secret::new("gip"),
    )
    .unwrap();
    let r = client
        .send(&outbound("tax", "transfer-form", transfer_form(MA), "t1"))
        .await;
    assert!(
        r.is_ok(),
        "a valid form in an envelope with SECURITY: {r:?}"
    );
    assert!(
        sim.documents()[0].contains("<SECURITY"),
        "the transport block was sent"
    );
    let bad = transfer_form(MA).replace("<SO>049090000123</SO>", "");
    let f = client
        .send(&outbound("tax", "transfer-form", bad, "t2"))
        .await
        .unwrap_err();
    assert_class(&f, FailureClass::Permanent, "gip-error:01");
    assert!(f.detail.contains("SO"), "{}", f.detail);
    assert_eq!(sim.documents().len(), 1, "the bad form was not applied");
}
