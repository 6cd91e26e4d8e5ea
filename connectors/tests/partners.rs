//! All simulators at once, through the registry, as `lienthong demo` uses them.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod common;

use common::{init, outbound};
use lienthong_core::transport::TransportRegistry;
use serde_json::json;
use sim::partners::Partners;

#[tokio::test]
async fn every_destination_is_reachable_through_the_registry() {
    init();
    let partners = Partners::start().await.unwrap();
    let mut registry = TransportRegistry::new();
    partners.register(&mut registry, 5000).unwrap();
    assert_eq!(
        registry.destinations().collect::<Vec<_>>(),
        vec!["ioc", "lis", "national-portal", "province-portal", "tax"]
    );
    let status = json!({"MaHoSo": "000.00.32.H47-220915-0001", "TrangThaiHoSo": "4"}).to_string();
    let progress = json!({"service": "CapNhatTienDoHoSoMC", "data": [{"MaHoSo": "000.00.32.H47-220915-0001", "TrangThai": "4", "ThoiDiemXuLy": "20220916100000"}]}).to_string();
    let lis = "<XacNhanThanhToan><MaHoSo>000.00.32.H47-220915-0001</MaHoSo></XacNhanThanhToan>";
    let tax = "<ROW><XAC_NHAN><MA_HS>000.00.32.H47-220915-0001</MA_HS></XAC_NHAN></ROW>";
    let obs = json!({"observations": [{"stationCode": "QNAM_CTYXYZ_NUOCTHAI01", "measuredAt": "2022-09-15T10:30:00+07:00", "parameters": []}]}).to_string();
    let cases = [
        ("province-portal", "status.update", status),
        ("national-portal", "CapNhatTienDoHoSoMC", progress),
        ("lis", "payment.confirmed", lis.to_string()),
        ("tax", "transfer-form", tax.to_string()),
        ("ioc", "observations", obs),
    ];
    for (dest, ty, body) in cases {
        let t = registry.get(dest).unwrap();
        let r = t
            .send(&outbound(dest, ty, body, &format!("k-{dest}")))
            .await;
        assert!(r.is_ok(), "{dest}: {r:?}");
    }
    assert_eq!(partners.province_portal.core().accepted().len(), 1);
    assert_eq!(partners.national_portal.progress().len(), 1);
    assert_eq!(partners.lis.core().accepted().len(), 1);
    assert_eq!(partners.tax.documents().len(), 1);
    assert_eq!(partners.ioc.observations().len(), 1);
    partners.shutdown().await;
}
