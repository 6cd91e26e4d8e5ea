//! The simulators validate with the hub's own JSON Schemas (`schemas/`), so a
//! mapping that drifts from the partner contract fails in the demo and in tests the
//! way it would fail at the partner.

mod common;

use std::path::PathBuf;

use common::{assert_class, init, outbound};
use connectors::national_portal::{NationalPortalClient, NationalPortalConfig};
use connectors::province_portal::{ProvincePortalClient, ProvincePortalConfig};
use connectors::sim::national_portal::{DvcqgSim, DvcqgSimConfig};
use connectors::sim::province_portal::{LgspSim, LgspSimConfig};
use connectors::Secret;
use router::delivery::{FailureClass, Transport};
use router::schema::SchemaRegistry;
use serde_json::{json, Value};

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
