//! A day of automatic monitoring (15/09/2022, every 5 minutes, three stations) end
//! to end: the built hub with its station wiring (QCVN threshold enrichment, FTP
//! drop folders), the IOC simulator on the other side.
//!
//! What goes in, and how (864 files in all, each once):
//! * the two wastewater facilities' 288 files each are dropped into their own FTP
//!   drop folder (`QNAM_CTYXYZ_NUOCTHAI01`, `QNAM_CTYABC_NUOCTHAI01` with CRLF);
//! * the ambient-air station's 288 files (`QNAM_KK_TAMKY01`) are posted over HTTP
//!   to `/inbound/stations/observation.file` with `X-File-Name`;
//! * the malformed file (`bad/`) both ways: dropped after its good namesake was
//!   processed (→ `rejected/` + `.reason`), and posted (→ 400 with the reason).
//!
//! What must come out at the IOC: one observation record per file (864), flagged
//! against the limits; exactly one alert for every file with an exceedance (COD at
//! XYZ 14:00–14:30 > 150 column B, NH4+ at ABC 20:00–20:20 > 5 column A, SO2 at the
//! air station 17:00–17:25 > 350 µg/Nm³ 1 h) or a device fault (TSS at ABC
//! 03:00–03:40, O3 at the air station 12:00–12:30), and none for calibrations (pH at
//! XYZ 09:00–09:15, CO at the air station 00:00–00:10), which are forwarded marked
//! `calibrating`. The expected alerts are computed here from the raw files and the
//! published limits, independently of the hub.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{Backend, Hub, Partners};

const XYZ: &str = "QNAM_CTYXYZ_NUOCTHAI01";
const ABC: &str = "QNAM_CTYABC_NUOCTHAI01";
const KK: &str = "QNAM_KK_TAMKY01";

fn day_files(station: &str) -> Vec<PathBuf> {
    let dir = support::fixture(&format!("stations/observation.file/{station}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 288, "{}", dir.display());
    files
}

/// Files that must raise an alert (and its kind), from the raw lines and the limits.
fn expected_alerts() -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    for (station, parameter, max) in [(XYZ, "COD", 150.0), (ABC, "NH4+", 5.0), (KK, "SO2", 350.0)] {
        for f in day_files(station) {
            let text = std::fs::read_to_string(&f).expect("station file");
            let mut fault = false;
            let mut exceeded = false;
            for line in text.lines() {
                let cols: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
                fault |= cols[4] == "02";
                exceeded |= cols[0] == parameter
                    && cols[4] == "00"
                    && cols[1].parse::<f64>().expect("value") > max;
            }
            let kind = match (exceeded, fault) {
                (true, true) => "VUOT_NGUONG+LOI_THIET_BI",
                (true, false) => "VUOT_NGUONG",
                (false, true) => "LOI_THIET_BI",
                (false, false) => continue,
            };
            let stem = f.file_stem().and_then(|s| s.to_str()).expect("name");
            out.insert(format!("{stem}_CANH_BAO"), kind);
        }
    }
    out
}

fn stations_yaml(ftp: &Path) -> String {
    let limits = support::root().join("mappings/lookups/qcvn-thresholds.json");
    format!(
        "  stations:\n    thresholds:\n      limits_file: {}\n      silent_after_secs: 3600\n      stations:\n\
         \x20       {XYZ}: {{ standard: {{ qcvn: \"40:2011\", column: B }} }}\n\
         \x20       {ABC}: {{ standard: {{ qcvn: \"40:2011\", column: A }} }}\n\
         \x20       {KK}: {{ standard: {{ qcvn: \"05:2023\", period: 1h }} }}\n\
         \x20   drop_folders:\n\
         \x20     - {{ facility: CTYXYZ, path: {}, settle_ms: 150, poll_ms: 100 }}\n\
         \x20     - {{ facility: CTYABC, path: {}, settle_ms: 150, poll_ms: 100 }}\n",
        limits.display(),
        ftp.join("ctyxyz").display(),
        ftp.join("ctyabc").display(),
    )
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Observation records at the IOC by `stationCode/measuredAt`.
fn ioc_records(p: &Partners) -> BTreeMap<String, Value> {
    p.ioc
        .observations()
        .into_iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["stationCode"].as_str().unwrap_or_default(),
                    o["measuredAt"].as_str().unwrap_or_default()
                ),
                o,
            )
        })
        .collect()
}

fn parameter<'a>(record: &'a Value, code: &str) -> &'a Value {
    record["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["label"] == code))
        .unwrap_or_else(|| panic!("no {code} in {record}"))
}

async fn a_day_of_stations(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ftp = dir.path().join("ftp");
    let p = Partners::start(Duration::from_secs(3600), Duration::from_secs(3600)).await;
    let connectors = format!(
        "{}{}",
        p.connectors_yaml(dir.path(), 2000, 20),
        stations_yaml(&ftp)
    );
    let hub = Hub::start(
        dir.path(),
        &backend,
        &connectors,
        "destinations:\n  ioc:\n    concurrency: 16\n",
    )
    .await;
    let expected = expected_alerts();
    assert_eq!(
        expected.len(),
        7 + 9 + 5 + 7 + 6,
        "the scripted events of gen_station_day.py"
    );

    // Drop folders: the FTP server writes the two facilities' files.
    for (station, folder) in [(XYZ, "ctyxyz"), (ABC, "ctyabc")] {
        for f in day_files(station) {
            std::fs::copy(&f, ftp.join(folder).join(f.file_name().expect("name")))
                .expect("copying into the drop folder");
        }
    }
    // HTTP: the air station posts its files itself.
    for f in day_files(KK) {
        let a = hub.post_fixture("stations", "observation.file", &f).await;
        assert_eq!(a.status, 202, "{}: {}", f.display(), a.body);
    }
    let bad = support::fixture(&format!(
        "stations/observation.file/bad/{XYZ}_20220915103500.txt"
    ));
    let a = hub.post_fixture("stations", "observation.file", &bad).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body["reasons"].to_string().contains("N/A"),
        "the reason names the bad value: {}",
        a.body
    );

    support::wait_for(
        "both drop folders processed",
        Duration::from_secs(40),
        Some(&hub),
        || {
            let n: Vec<usize> = ["ctyxyz", "ctyabc"]
                .iter()
                .map(|f| files_in(&ftp.join(f).join("processed")).len())
                .collect();
            if n == [288, 288] {
                Ok(())
            } else {
                Err(format!("processed {n:?}"))
            }
        },
    )
    .await;
    // The malformed file arrives after its good namesake was processed.
    std::fs::copy(
        &bad,
        ftp.join("ctyxyz").join(bad.file_name().expect("name")),
    )
    .expect("dropping the bad file");
    let reason_file = ftp
        .join("ctyxyz/rejected")
        .join(format!("{XYZ}_20220915103500.txt.reason"));
    support::wait_for(
        "the malformed file rejected with its reason",
        Duration::from_secs(10),
        Some(&hub),
        || std::fs::read_to_string(&reason_file).map_err(|e| e.to_string()),
    )
    .await;
    let reason = std::fs::read_to_string(&reason_file).expect("reason");
    assert!(
        reason.starts_with("HTTP 400") && reason.contains("N/A"),
        "{reason}"
    );
    assert!(
        ftp.join("ctyxyz/rejected")
            .join(format!("{XYZ}_20220915103500.txt"))
            .is_file(),
        "the file itself is kept in rejected/"
    );
    assert!(
        files_in(&ftp.join("ctyxyz")).is_empty() && files_in(&ftp.join("ctyabc")).is_empty(),
        "nothing left behind"
    );

    support::wait_for(
        "every observation at the IOC",
        Duration::from_secs(120),
        Some(&hub),
        || {
            let n = ioc_records(&p).len();
            if n == 864 {
                Ok(())
            } else {
                Err(format!("{n} of 864 observation records"))
            }
        },
    )
    .await;
    support::wait_for(
        "every alert at the IOC",
        Duration::from_secs(20),
        Some(&hub),
        || {
            let n = p.ioc.alerts().len();
            if n >= expected.len() {
                Ok(())
            } else {
                Err(format!("{n} of {} alerts", expected.len()))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let alerts: BTreeMap<String, String> = p
        .ioc
        .alerts()
        .iter()
        .map(|a| {
            (
                a["alertId"].as_str().unwrap_or_default().to_string(),
                a["alertType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        p.ioc.alerts().len(),
        alerts.len(),
        "one alert per file, none twice"
    );
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    assert_eq!(
        alerts, want,
        "alerts at the IOC vs the exceedances and faults in the files"
    );

    let records = ioc_records(&p);
    let cod = parameter(&records[&format!("{XYZ}/2022-09-15T14:10:00+07:00")], "COD");
    assert_eq!(
        (
            cod["exceeded"].as_bool(),
            cod["limit"]["max"].as_u64(),
            cod["limit"]["column"].as_str()
        ),
        (Some(true), Some(150), Some("B")),
        "{cod}"
    );
    let nh4 = parameter(
        &records[&format!("{ABC}/2022-09-15T20:10:00+07:00")],
        "NH4+",
    );
    assert_eq!(
        (nh4["exceeded"].as_bool(), nh4["limit"]["max"].as_u64()),
        (Some(true), Some(5)),
        "{nh4}"
    );
    let ph = parameter(&records[&format!("{XYZ}/2022-09-15T09:05:00+07:00")], "pH");
    assert_eq!(
        (
            ph["calibrating"].as_bool(),
            ph["exceeded"].as_bool(),
            ph["deviceStatus"].as_str()
        ),
        (Some(true), Some(false), Some("01")),
        "{ph}"
    );
    let co = parameter(&records[&format!("{KK}/2022-09-15T00:05:00+07:00")], "CO");
    assert_eq!(
        (co["calibrating"].as_bool(), co["exceeded"].as_bool()),
        (Some(true), Some(false)),
        "{co}"
    );
    let so2 = parameter(&records[&format!("{KK}/2022-09-15T17:10:00+07:00")], "SO2");
    assert_eq!(
        (so2["exceeded"].as_bool(), so2["limit"]["period"].as_str()),
        (Some(true), Some("1h")),
        "{so2}"
    );
    let fine = parameter(&records[&format!("{ABC}/2022-09-15T12:00:00+07:00")], "COD");
    assert_eq!(
        (fine["exceeded"].as_bool(), fine["limit"]["max"].as_u64()),
        (Some(false), Some(75)),
        "column A applies to ABC: {fine}"
    );
    let observations: usize = records
        .values()
        .map(|r| r["parameters"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        observations,
        288 * 7 * 3,
        "every parameter line of every file"
    );
    let log = p.ioc.core().received();
    assert!(
        log.iter()
            .all(|r| r.headers.get("x-api-key").map(String::as_str) == Some("***")),
        "the API key was sent (and is redacted in the log)"
    );
    p.assert_nothing_rejected();

    hub.stop().await;
    p.shutdown().await;
    backend.cleanup().await;
}

/// Silent-station alerts as the IOC sees them, in order.
fn silent_alerts(p: &Partners) -> Vec<Value> {
    p.ioc
        .alerts()
        .into_iter()
        .filter(|a| a["alertType"] == "MAT_KET_NOI")
        .collect()
}

/// A station that sends and then stops: after `silent_after_secs` (2 s here) the
/// hub's silence detector submits one `stations/station.silent` message, which goes
/// through intake, the `station-silent` route and its mapping, and reaches the IOC
/// as exactly one `MAT_KET_NOI` alert however many checks (every second) follow.
/// When the station sends again and falls silent again, that is a new episode and
/// a second alert.
async fn a_silent_station(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Partners::start(Duration::from_secs(3600), Duration::from_secs(3600)).await;
    let limits = support::root().join("mappings/lookups/qcvn-thresholds.json");
    let stations = format!(
        "  stations:\n    thresholds:\n      limits_file: {}\n      silent_after_secs: 2\n    silence_check_secs: 1\n",
        limits.display()
    );
    let connectors = format!("{}{stations}", p.connectors_yaml(dir.path(), 2000, 20));
    let hub = Hub::start(dir.path(), &backend, &connectors, "").await;
    let files = day_files(KK);
    // 06:00 and 06:05: no exceedance, fault or calibration, so no other alert.
    let (first, second) = (&files[72], &files[73]);

    let a = hub
        .post_fixture("stations", "observation.file", first)
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let sent_at = chrono::Utc::now();
    let alert = support::wait_for(
        "a silent-station alert at the IOC",
        Duration::from_secs(30),
        Some(&hub),
        || match silent_alerts(&p).as_slice() {
            [a] => Ok(a.clone()),
            other => Err(format!("{} silent alerts", other.len())),
        },
    )
    .await;
    assert_eq!(alert["stationCode"], KK, "{alert}");
    assert_eq!(alert["source"], "HUB-STNMT-QNAM");
    assert_eq!(alert["area"]["maXa"], "20341", "{alert}");
    let silent_for = alert["silentForSecs"].as_u64().expect("silentForSecs");
    assert!((2..=10).contains(&silent_for), "{alert}");
    let last_seen =
        chrono::DateTime::parse_from_rfc3339(alert["lastSeenAt"].as_str().expect("lastSeenAt"))
            .expect("lastSeenAt is RFC 3339");
    assert!(
        (last_seen.with_timezone(&chrono::Utc) - sent_at)
            .num_seconds()
            .abs()
            <= 5,
        "last seen when the file arrived: {alert}"
    );
    assert!(
        alert["alertId"]
            .as_str()
            .expect("alertId")
            .ends_with("_MAT_KET_NOI"),
        "{alert}"
    );
    assert!(alert.get("parameters").is_none(), "{alert}");

    // Three more checks: still one alert for this episode.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        silent_alerts(&p).len(),
        1,
        "one alert per silence: {:?}",
        silent_alerts(&p)
    );

    // Data again, then silence again: a second episode, a second alert.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a = hub
        .post_fixture("stations", "observation.file", second)
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let again = support::wait_for(
        "a second silent-station alert after the station came back",
        Duration::from_secs(30),
        Some(&hub),
        || match silent_alerts(&p).as_slice() {
            [_, b] => Ok(b.clone()),
            other => Err(format!("{} silent alerts", other.len())),
        },
    )
    .await;
    assert_ne!(
        again["alertId"], alert["alertId"],
        "a new episode has its own id"
    );
    assert!(
        again["lastSeenAt"].as_str() > alert["lastSeenAt"].as_str(),
        "{again} vs {alert}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(silent_alerts(&p).len(), 2, "{:?}", silent_alerts(&p));
    assert_eq!(
        p.ioc.alerts().len(),
        2,
        "no other alert: {:?}",
        p.ioc.alerts()
    );
    assert_eq!(
        ioc_records(&p).len(),
        2,
        "both files' observations delivered"
    );
    p.assert_nothing_rejected();

    hub.stop().await;
    p.shutdown().await;
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_station_alerts_once_per_episode_embedded() {
    a_silent_station(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_three_stations_embedded() {
    a_day_of_stations(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_three_stations_rabbitmq_postgres() {
    a_day_of_stations(Backend::rabbit_pg("a_day_of_thr").await).await;
}
