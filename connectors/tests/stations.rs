//! Station helpers: threshold evaluation on the reference sample file, drop folder.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connectors::stations::dropfolder::{DropFolder, DropFolderConfig, Submit};
use connectors::stations::threshold::{
    station_config, Evaluator, ThresholdsConfig, DEFAULT_LIMITS_FILE,
};
use connectors::stations::AlertKind;
use serde_json::{json, Value};

const STATION: &str = "QNAM_CTYXYZ_NUOCTHAI01";

fn limits_file() -> PathBuf {
    // The workspace copy the content engineer maintains; the test data copy is the same file.
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DEFAULT_LIMITS_FILE);
    if workspace.exists() {
        workspace
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/qcvn-thresholds.json")
    }
}

fn evaluator(standard: &str) -> Evaluator {
    let mut config = ThresholdsConfig {
        limits_file: limits_file(),
        ..Default::default()
    };
    config
        .stations
        .insert(STATION.into(), station_config(standard).unwrap());
    config.stations.insert(
        "QNAM_KK_TAMKY01".into(),
        station_config(r#"{"standard": {"qcvn": "05:2023", "period": "24h"}}"#).unwrap(),
    );
    assert!(config.validate("t").is_empty());
    Evaluator::load(config).unwrap()
}

/// The station tree of the reference sample file, as `lienthong_core::codec::station` decodes it.
fn sample_tree() -> Value {
    let text = include_str!("data/07_station_QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt");
    let observations: Vec<Value> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            json!({"parameter": f[0], "value": f[1].parse::<serde_json::Number>().unwrap(), "unit": f[2],
                   "measured_at": "2022-09-15T10:30:00+07:00", "status": f[4]})
        })
        .collect();
    json!({"file": "QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt", "province": "QNAM", "facility": "CTYXYZ",
           "station": "NUOCTHAI01", "station_code": STATION, "measured_at": "2022-09-15T10:30:00+07:00",
           "observations": observations})
}

fn obs<'a>(tree: &'a Value, p: &str) -> &'a Value {
    tree["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["parameter"] == p)
        .unwrap()
}

#[test]
fn sample_file_is_within_column_b() {
    let e = evaluator(r#"{"standard": {"qcvn": "40:2011", "column": "B"}}"#);
    let (tree, alerts) = e.enrich(&sample_tree());
    assert!(alerts.is_empty(), "{alerts:?}");
    let cod = obs(&tree, "COD");
    assert_eq!(
        cod["limit"],
        json!({"standard": "QCVN 40:2011/BTNMT", "column": "B", "max": 150, "kqKf": 1})
    );
    assert_eq!(cod["exceeded"], false);
    assert_eq!(
        cod["value"].to_string(),
        "42.5",
        "the reading keeps its exact text"
    );
    assert_eq!(
        obs(&tree, "pH")["limit"],
        json!({"standard": "QCVN 40:2011/BTNMT", "column": "B", "min": 5.5, "max": 9})
    );
    assert_eq!(
        obs(&tree, "NH4+")["limit"]["max"],
        10,
        "NH4+ is aliased to NH4_as_N"
    );
    assert_eq!(obs(&tree, "Temp")["limit"]["max"], 40);
    assert!(
        obs(&tree, "Flow_in").get("limit").is_none(),
        "no limit for flow"
    );
    let flow_out = obs(&tree, "Flow_out");
    assert_eq!(
        flow_out["calibrating"], true,
        "status 01 is forwarded and marked"
    );
    assert_eq!(obs(&tree, "COD")["calibrating"], false);
}

#[test]
fn exceedance_with_kq_kf_and_column_a() {
    // Column A, Kq 0.9, Kf 1.1: COD Cmax = 75 × 0.99 = 74.25; TSS 50 × 0.99 = 49.5; pH range not scaled.
    let e = evaluator(
        r#"{"standard": {"qcvn": "40:2011", "column": "A", "kq": 0.9, "kf": 1.1}, "aliases": {"Flow_out": "Flow"}}"#,
    );
    let mut tree = sample_tree();
    tree["observations"][1]["value"] = json!(80.1);
    let (tree, alerts) = e.enrich(&tree);
    let cod = obs(&tree, "COD");
    assert_eq!(cod["exceeded"], true);
    assert_eq!(cod["limit"]["max"].to_string(), "74.25");
    assert_eq!(cod["limit"]["kqKf"].to_string(), "0.99");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::Exceedance);
    assert_eq!(alerts[0].parameter.as_deref(), Some("COD"));
    assert_eq!(alerts[0].value.as_deref(), Some("80.1"));
    assert!(alerts[0].message.contains("74.25"), "{}", alerts[0].message);
    assert!(obs(&tree, "pH")["limit"].get("kqKf").is_none());
}

#[test]
fn ph_outside_the_range_alerts_both_ways() {
    let e = evaluator(r#"{"standard": {"qcvn": "40:2011", "column": "B"}}"#);
    for (v, exceeded) in [
        ("5.4", true),
        ("5.5", false),
        ("9.0", false),
        ("9.01", true),
    ] {
        let mut tree = sample_tree();
        tree["observations"][0]["value"] = serde_json::from_str(v).unwrap();
        let (tree, alerts) = e.enrich(&tree);
        assert_eq!(obs(&tree, "pH")["exceeded"], exceeded, "pH {v}");
        assert_eq!(alerts.len(), usize::from(exceeded), "pH {v}");
    }
}

#[test]
fn calibration_never_alerts_and_fault_always_does() {
    let e = evaluator(r#"{"standard": {"qcvn": "40:2011", "column": "B"}}"#);
    let mut tree = sample_tree();
    tree["observations"][1]["value"] = json!(900);
    tree["observations"][1]["status"] = json!("01");
    let (out, alerts) = e.enrich(&tree);
    assert!(alerts.is_empty(), "calibrating: {alerts:?}");
    assert_eq!(obs(&out, "COD")["exceeded"], false);
    assert_eq!(obs(&out, "COD")["calibrating"], true);

    tree["observations"][1]["value"] = json!(40);
    tree["observations"][1]["status"] = json!("02");
    let (_, alerts) = e.enrich(&tree);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::DeviceFault);
    assert!(alerts[0].message.contains("báo lỗi"));
}

#[test]
fn ambient_air_uses_the_period_and_the_dated_limit() {
    let e = evaluator(r#"{"standard": {"qcvn": "40:2011", "column": "B"}}"#);
    let tree = |value: f64, at: &str| {
        json!({"station_code": "QNAM_KK_TAMKY01", "measured_at": at,
               "observations": [{"parameter": "PM2.5", "value": value, "unit": "ug/Nm3", "measured_at": at, "status": "00"},
                                {"parameter": "PM10", "value": 0.058, "unit": "mg/Nm3", "measured_at": at, "status": "00"}]})
    };
    let (t, alerts) = e.enrich(&tree(48.0, "2025-06-01T00:00:00+07:00"));
    assert!(alerts.is_empty());
    assert_eq!(
        t["observations"][0]["limit"],
        json!({"standard": "QCVN 05:2023/BTNMT", "period": "24h", "max": 50})
    );
    assert_eq!(
        t["observations"][1]["exceeded"], false,
        "58 µg/Nm³ after mg→µg conversion, limit 100"
    );
    let (t, alerts) = e.enrich(&tree(48.0, "2026-03-01T00:00:00+07:00"));
    assert_eq!(
        t["observations"][0]["limit"]["max"], 45,
        "stricter PM2.5 limit from 2026-01-01"
    );
    assert_eq!(alerts.len(), 1);
}

#[test]
fn missing_limits_file_is_explained() {
    let config = ThresholdsConfig {
        limits_file: "/nonexistent/qcvn.json".into(),
        ..Default::default()
    };
    let e = Evaluator::load(config).err().unwrap();
    assert!(
        e.to_string().contains("/nonexistent/qcvn.json") && e.to_string().contains("limits_file")
    );
    let bad = station_config(r#"{"standard": {"qcvn": "40:2011", "column": "C"}}"#).unwrap();
    let mut c = ThresholdsConfig::default();
    c.stations.insert("X".into(), bad);
    assert!(c.validate("f").to_string().contains("must be A or B"));
}

type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn submitter(calls: Calls) -> Submit {
    Arc::new(move |name: String, bytes: Vec<u8>| {
        let calls = Arc::clone(&calls);
        Box::pin(async move {
            calls.lock().unwrap().push((name.clone(), bytes.clone()));
            let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
            if text.lines().all(|l| l.split('\t').count() == 5) {
                Ok(format!("msg-{name}"))
            } else {
                Err("line 1: expected 5 TAB-separated fields".to_string())
            }
        })
    })
}

#[tokio::test]
async fn drop_folder_waits_for_settled_files_and_sorts_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let calls: Calls = Arc::default();
    let mut cfg = DropFolderConfig::new(dir.path());
    cfg.settle = Duration::from_millis(150);
    let mut folder = DropFolder::new(cfg, submitter(Arc::clone(&calls))).unwrap();
    let good = include_bytes!("data/07_station_QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt");
    std::fs::write(
        dir.path().join("QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt"),
        good,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("QNAM_CTYXYZ_NUOCTHAI01_20220915103500.txt"),
        "pH 7,2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path()
            .join("QNAM_CTYXYZ_NUOCTHAI01_20220915104000.txt.part"),
        "pH\t7.2",
    )
    .unwrap();
    // A file still being written: it grows between scans.
    let growing = dir.path().join("QNAM_CTYXYZ_NUOCTHAI01_20220915104500.txt");
    std::fs::write(&growing, "pH\t7.1\t-\t20220915104500\t00\n").unwrap();

    let first = folder.scan().await.unwrap();
    assert!(
        first.processed.is_empty() && first.rejected.is_empty(),
        "nothing is read on first sight: {first:?}"
    );
    assert_eq!(first.waiting.len(), 3, "{first:?}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(
        &growing,
        "pH\t7.1\t-\t20220915104500\t00\nCOD\t40\tmg/L\t20220915104500\t00\n",
    )
    .unwrap();
    let second = folder.scan().await.unwrap();
    assert_eq!(
        second.processed,
        vec![(
            "QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt".to_string(),
            "msg-QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt".to_string()
        )]
    );
    assert_eq!(second.rejected.len(), 1);
    assert_eq!(
        second.waiting,
        vec!["QNAM_CTYXYZ_NUOCTHAI01_20220915104500.txt".to_string()],
        "the growing file waits"
    );
    assert!(dir
        .path()
        .join("processed/QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt")
        .exists());
    let reason = std::fs::read_to_string(
        dir.path()
            .join("rejected/QNAM_CTYXYZ_NUOCTHAI01_20220915103500.txt.reason"),
    )
    .unwrap();
    assert!(reason.contains("5 TAB-separated"));
    assert!(
        dir.path()
            .join("QNAM_CTYXYZ_NUOCTHAI01_20220915104000.txt.part")
            .exists(),
        "temp names are left alone"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = folder.scan().await.unwrap();
    assert_eq!(third.processed.len(), 1, "settled now: {third:?}");
    let submitted = calls.lock().unwrap().clone();
    let last = &submitted.last().unwrap().1;
    assert!(
        String::from_utf8_lossy(last).contains("COD"),
        "the complete file was submitted, not the half-written one"
    );
    assert_eq!(submitted.len(), 3, "each file submitted exactly once");
    // The same name arriving again does not overwrite the processed copy.
    std::fs::write(
        dir.path().join("QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt"),
        good,
    )
    .unwrap();
    folder.scan().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    folder.scan().await.unwrap();
    let processed = std::fs::read_dir(dir.path().join("processed"))
        .unwrap()
        .count();
    assert_eq!(processed, 3);
}
