//! The land dossier lifecycle (transfer of land-use rights, dossier 0001) end to end:
//! the built `lienthong serve` against the five partner simulators, over HTTP.
//!
//! Steps, as the partners would send them (fixtures under `tests/fixtures/inbound/`):
//! filed at the province portal → registered in LIS and published on DVCQG (2);
//! LIS sends the financial-obligation form → tax, progress 4 on both portals; tax
//! answers with the payment notices (1006 + 2801) → DVCQG shows status 6 and the
//! notices, LIS gets them; PayGov reports the payment → confirmation to tax and
//! LIS, status 4; LIS issues the certificate → 9; the result is handed over → 10.
//!
//! `happy_path` waits for every hop of a step and checks it on the partner's side
//! before the next step. `with_faults_at_every_partner` injects, at every partner,
//! 5xx, 429 with Retry-After, hangs past the client timeout, token/session expiry
//! and SOAP `Server` faults, feeds all steps back to back, and requires the same
//! end state: every message delivered once (duplicates recognised by the
//! partner), and each partner's statuses in lifecycle order.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use sim::{Fault, FaultRule};
use support::flows::*;
use support::{Backend, Hub, Partners};

const D1: &str = "000.00.32.H47-220915-0001";

/// (system, message type, fixture) of each step.
const STEPS: [(&str, &str, &str); 6] = [
    (
        "province-portal",
        "dossier.filed",
        "province-portal/dossier.filed/01-tam-ky-an-my-chuyen-nhuong.json",
    ),
    (
        "lis",
        "financial-obligation.transfer",
        "lis/financial-obligation.transfer/01-d0001-tam-ky.json",
    ),
    (
        "tax",
        "payment-notice",
        "tax/payment-notice/01-d0001-tncn-lptb-soap.xml",
    ),
    (
        "national-portal",
        "payment.result",
        "national-portal/payment.result/01-d0001-thanh-cong.json",
    ),
    (
        "lis",
        "certificate.issued",
        "lis/certificate.issued/01-d0001-gcn-da812345.xml",
    ),
    (
        "lis",
        "result.returned",
        "lis/result.returned/01-d0001-tra-tai-mot-cua.json",
    ),
];

/// Cumulative deliveries per partner after each step: LIS, tax, DVCQG progress, DVCQG sync, LGSP.
const AFTER: [[usize; 5]; 6] = [
    [1, 0, 0, 1, 0],
    [1, 1, 1, 1, 1],
    [2, 1, 2, 2, 2],
    [3, 2, 3, 2, 3],
    [3, 2, 4, 3, 4],
    [3, 2, 5, 4, 5],
];

fn counts(p: &Partners) -> [usize; 5] {
    [
        lis_messages(p, D1).len(),
        tax_documents(p, D1).len(),
        progress(p, D1).len(),
        syncs(p, D1).len(),
        province_updates(p, D1).len(),
    ]
}

async fn wait_counts(p: &Partners, hub: &Hub, want: [usize; 5], what: &str, timeout: Duration) {
    support::wait_for(what, timeout, Some(hub), || {
        let got = counts(p);
        if got.iter().zip(want).any(|(g, w)| *g > w) {
            panic!("{what}: more deliveries than expected: got [lis, tax, progress, sync, province] = {got:?}, want {want:?}");
        }
        if got == want {
            Ok(())
        } else {
            Err(format!("[lis, tax, progress, sync, province] = {got:?}, want {want:?}"))
        }
    })
    .await
}

/// What a partner must hold at the end, whatever happened on the way.
fn assert_end_state(p: &Partners) {
    let lis = lis_messages(p, D1);
    let kinds: Vec<&str> = lis.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "dossier.register",
            "financial-obligation.notice",
            "payment.confirmed"
        ],
        "LIS messages in lifecycle order"
    );
    assert!(
        lis[0]
            .1
            .contains("<hoSoTiepNhanId>000.00.32.H47-220915-0001</hoSoTiepNhanId>")
            && lis[0].1.contains("Lê Thị C"),
        "LIS registration: {}",
        lis[0].1
    );
    assert!(
        lis[0].1.contains("<soThuTuThua>125</soThuTuThua>")
            && lis[0]
                .1
                .contains("<maSoDinhDanh>049090000123</maSoDinhDanh>"),
        "parcel and CCCD with leading zero"
    );
    for (tm, amount) in [("1006", "3000000"), ("2801", "600000")] {
        assert!(
            lis[1].1.contains(&format!("<tieuMuc>{tm}</tieuMuc>"))
                && lis[1].1.contains(&format!("<soTien>{amount}</soTien>")),
            "LIS notice {tm}: {}",
            lis[1].1
        );
    }

    let tax = tax_documents(p, D1);
    assert_eq!(tax.len(), 2, "tax documents: {tax:?}");
    assert!(
        tax[0].contains("<TYPE>00101</TYPE>")
            && tax[0].contains("<SO_PHIEU>125/PCTT-CNVPĐKĐĐ</SO_PHIEU>"),
        "first the transfer form: {}",
        tax[0]
    );
    assert!(
        !tax[1].contains("<TYPE>00101</TYPE>"),
        "then the payment confirmation: {}",
        tax[1]
    );

    assert_eq!(
        progress_statuses(p, D1),
        ["4", "6", "4", "9", "10"],
        "DVCQG progress entries in order"
    );
    let notices = &progress(p, D1)[1];
    assert!(
        notices["NoiDungXuLy"]
            .as_str()
            .unwrap_or_default()
            .contains("TNCN 3.000.000đ, LPTB 600.000đ"),
        "{notices}"
    );
    assert_eq!(
        sync_statuses(p, D1),
        ["2", "6", "9", "10"],
        "DVCQG dossier syncs in order"
    );
    let at6 = &syncs(p, D1)[1];
    let fees: Vec<&str> = at6["DanhSachLePhi"]
        .as_array()
        .expect("DanhSachLePhi")
        .iter()
        .map(|f| f["MaPhiLePhi"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fees,
        ["1006", "2801"],
        "the national portal shows the notices with status 6: {at6}"
    );
    assert_eq!(
        p.national.dossiers()[D1]["TrangThaiHoSo"],
        "10",
        "final status on DVCQG"
    );

    assert_eq!(
        province_statuses(p, D1),
        ["4", "6", "4", "9", "10"],
        "LGSP status updates in order"
    );
    let at6 = &province_updates(p, D1)[1];
    let items: Vec<(&str, u64)> = at6["NghiaVuTaiChinh"]
        .as_array()
        .expect("NghiaVuTaiChinh")
        .iter()
        .map(|n| {
            (
                n["TieuMuc"].as_str().unwrap_or_default(),
                n["SoTien"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(items, [("1006", 3_000_000), ("2801", 600_000)], "{at6}");
    assert_eq!(
        p.province.statuses()[D1],
        "10",
        "final status on the province portal"
    );
    p.assert_nothing_rejected();
}

fn assert_no_secret_logged(hub: &Hub) {
    let log = hub.log_text();
    for s in support::partners::SECRETS {
        assert!(!log.contains(s), "a partner secret appears in the hub log");
    }
}

async fn setup(dir: &std::path::Path, backend: &Backend) -> (Partners, Hub) {
    let p = Partners::start(Duration::from_secs(3600), Duration::from_secs(3600)).await;
    let hub = Hub::start(dir, backend, &p.connectors_yaml(dir, 1000, 20), "").await;
    (p, hub)
}

async fn happy_path(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, hub) = setup(dir.path(), &backend).await;
    let mut first = None;
    for (i, (system, mt, file)) in STEPS.iter().enumerate() {
        let a = hub
            .post_fixture_keyed(
                system,
                mt,
                &support::fixture(file),
                Some(&format!("lgsp-{i}")),
            )
            .await;
        assert_eq!(a.status, 202, "{file}: {}", a.body);
        first.get_or_insert(a.body["id"].as_str().expect("id").to_string());
        wait_counts(
            &p,
            &hub,
            AFTER[i],
            &format!("step {} ({system} {mt})", i + 1),
            Duration::from_secs(20),
        )
        .await;
        match i {
            0 => {
                let d = &p.national.dossiers()[D1];
                assert_eq!(
                    (d["TrangThaiHoSo"].as_str(), d["ChuHoSo"].as_str()),
                    (Some("2"), Some("Nguyễn Văn A")),
                    "filed: DVCQG shows status 2"
                );
                // The province portal resends the same dossier: recognised, not delivered again.
                let again = hub
                    .post_fixture_keyed(system, mt, &support::fixture(file), Some("lgsp-0"))
                    .await;
                assert_eq!(
                    (again.status, again.body["duplicate"].as_bool()),
                    (202, Some(true)),
                    "{}",
                    again.body
                );
                assert_eq!(
                    again.body["id"].as_str(),
                    first.as_deref(),
                    "the original id comes back"
                );
                // dossier.filed carries no message id; its natural key (MaHoSo,
                // TrangThaiHoSo, NgayTiepNhan: the schema's dedupe_key) recognises a
                // resend without an Idempotency-Key, or with a new one.
                for key in [None, Some("lgsp-resend")] {
                    let again = hub
                        .post_fixture_keyed(system, mt, &support::fixture(file), key)
                        .await;
                    assert_eq!(
                        (
                            again.status,
                            again.body["duplicate"].as_bool(),
                            again.body["id"].as_str()
                        ),
                        (202, Some(true), first.as_deref()),
                        "resend with key {key:?}: {}",
                        again.body
                    );
                }
            }
            2 => assert_eq!(
                p.national.dossiers()[D1]["TrangThaiHoSo"],
                "6",
                "notices: DVCQG shows status 6"
            ),
            4 => assert_eq!(
                p.province.statuses()[D1],
                "9",
                "certificate issued: status 9"
            ),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        counts(&p),
        AFTER[5],
        "nothing more was delivered (the duplicate filing included)"
    );
    assert_end_state(&p);
    let trail = hub.trail(first.as_deref().expect("an id")).await;
    let kinds: Vec<&str> = trail
        .as_array()
        .expect("trail")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"received") && kinds.iter().filter(|k| **k == "delivered").count() == 2,
        "trail of the filing: {kinds:?}"
    );
    assert_no_secret_logged(&hub);
    hub.stop().await;
    p.shutdown().await;
    backend.cleanup().await;
}

fn inject(core: &sim::SimCore, faults: &[(Fault, u32)]) {
    for (f, n) in faults {
        core.inject(FaultRule {
            fault: f.clone(),
            count: Some(*n),
            probability: None,
        });
    }
}

async fn with_faults(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, hub) = setup(dir.path(), &backend).await;
    let status = |s: u16, ra: Option<u64>| Fault::Status {
        status: s,
        retry_after_secs: ra,
    };
    let soap_server = Fault::SoapFault {
        code: "Server".into(),
        message: "Hệ thống đang bận".into(),
    };
    inject(
        p.lis.core(),
        &[
            (soap_server.clone(), 1),
            (status(503, None), 1),
            (Fault::Hang, 1),
            (status(500, None), 1),
        ],
    );
    inject(
        p.tax.core(),
        &[
            (Fault::Hang, 1),
            (soap_server.clone(), 2),
            (status(502, None), 1),
        ],
    );
    inject(
        p.national.core(),
        &[
            (status(429, Some(1)), 1),
            (Fault::ExpireAuth, 1),
            (Fault::Hang, 1),
            (status(503, None), 2),
            (Fault::ExpireAuth, 1),
        ],
    );
    inject(
        p.province.core(),
        &[
            (status(503, None), 2),
            (Fault::ExpireAuth, 1),
            (status(429, Some(1)), 1),
            (Fault::Hang, 1),
            (Fault::ExpireAuth, 1),
        ],
    );
    for (system, mt, file) in STEPS {
        hub.accept(system, mt, file).await;
    }
    wait_counts(
        &p,
        &hub,
        AFTER[5],
        "every step delivered despite the faults",
        Duration::from_secs(45),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&p), AFTER[5]);
    assert_end_state(&p);
    // Every injected status and SOAP fault was answered (hangs are logged by the
    // simulator only when they end, at its shutdown), and the expiries were hit.
    let outcomes = |core: &sim::SimCore| {
        core.received()
            .into_iter()
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    };
    let count = |core: &sim::SimCore, prefix: &str| {
        outcomes(core)
            .iter()
            .filter(|o| o.starts_with(prefix))
            .count()
    };
    for (system, core) in p.cores().into_iter().take(4) {
        assert!(
            count(core, "fault: ") >= 3,
            "{system}: injected faults answered: {:?}",
            outcomes(core)
        );
    }
    assert_eq!(
        count(p.lis.core(), "fault: SOAP Server") + count(p.tax.core(), "fault: SOAP Server"),
        3,
        "SOAP Server faults"
    );
    assert_eq!(
        count(p.national.core(), "rejected: session expired"),
        2,
        "DVCQG sessions expired twice on the way"
    );
    assert_eq!(
        count(p.province.core(), "rejected: invalid credentials"),
        2,
        "LGSP tokens expired twice on the way"
    );
    assert!(
        p.national.logins() >= 2,
        "the connector logged in again after the session expired"
    );
    assert!(
        p.province.tokens_issued() >= 2,
        "the connector fetched a new LGSP token after expiry"
    );
    assert_no_secret_logged(&hub);
    hub.stop().await;
    p.shutdown().await;
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_embedded() {
    happy_path(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_faults_at_every_partner_embedded() {
    with_faults(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_rabbitmq_postgres() {
    happy_path(Backend::rabbit_pg("happy_path").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_faults_at_every_partner_rabbitmq_postgres() {
    with_faults(Backend::rabbit_pg("with_faults_").await).await;
}
