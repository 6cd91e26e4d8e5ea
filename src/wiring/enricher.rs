//! The station enricher: QCVN threshold evaluation between validation and routing.
//!
//! Station files and lab results carry only measurements. Whether a value breaks
//! the law depends on the station's permit (QCVN 40 column A or B, Kq·Kf) or the
//! air standard's averaging period, which is configuration, not mapping logic. So
//! the hub runs [`connectors::stations::Evaluator`] on the validated tree and adds,
//! per observation, `limit`, `exceeded` and `calibrating`; the mappings carry them
//! to the IOC, and the `station-file-alert` / `lab-result-alert` routes (conditions
//! on those flags, `mappings/routes.yaml`) raise the IOC alert.
//!
//! Why no [`ExtraMessage`](router::intake::ExtraMessage) per alert: the alert route
//! already turns a file with exceedances or device faults into exactly one IOC alert
//! listing every offending parameter, with a deterministic `alertId`. Raising extra
//! messages as well would alert twice. The evaluator's alert texts are logged, and
//! every evaluated station is reported to the silent-station watch.

use std::sync::{Arc, Mutex};

use chrono::{NaiveDateTime, TimeZone, Utc};
use connectors::stations::silence::SilenceWatch;
use connectors::stations::Evaluator;
use router::intake::{Enriched, Enricher};
use serde_json::{json, Value};

/// The station message types the enricher handles.
pub const OBSERVATION_FILE: &str = "observation.file";
pub const LAB_RESULT: &str = "lab-result";

/// Evaluates station data against the limits and records who sent data.
pub struct StationEnricher {
    evaluator: Evaluator,
    watch: Arc<Mutex<SilenceWatch>>,
}

impl StationEnricher {
    pub fn new(evaluator: Evaluator, watch: Arc<Mutex<SilenceWatch>>) -> Self {
        StationEnricher { evaluator, watch }
    }

    fn seen(&self, tree: &Value, pointer: &str) {
        if let Some(code) = tree.pointer(pointer).and_then(Value::as_str) {
            self.watch
                .lock()
                .expect("silence watch poisoned")
                .observe(code, Utc::now());
        }
    }

    fn observation_file(&self, tree: Value) -> Value {
        self.seen(&tree, "/station_code");
        let (out, alerts) = self.evaluator.enrich(&tree);
        for a in &alerts {
            tracing::info!(station = %a.station_code, kind = ?a.kind, file = tree["file"].as_str().unwrap_or_default(), "{}", a.message);
        }
        out
    }

    /// Lab results are evaluated as a one-time "file": the results become
    /// observations (status 00: a lab value is never a calibration), then each
    /// result gets its `limit` and `exceeded` back.
    fn lab_result(&self, mut tree: Value) -> Value {
        self.seen(&tree, "/stationCode");
        let Some(results) = tree.get("results").and_then(Value::as_array) else {
            return tree;
        };
        let measured_at = tree
            .get("sampledAt")
            .and_then(Value::as_str)
            .and_then(local_rfc3339);
        let observations: Vec<Value> = results
            .iter()
            .map(|r| json!({ "parameter": r["parameter"], "value": r["value"], "unit": r["unit"], "status": "00", "measured_at": measured_at }))
            .collect();
        let as_file = json!({ "station_code": tree["stationCode"], "measured_at": measured_at, "observations": observations });
        let (evaluated, alerts) = self.evaluator.enrich(&as_file);
        for a in &alerts {
            tracing::info!(station = %a.station_code, sample = tree["sampleId"].as_str().unwrap_or_default(), "{}", a.message);
        }
        let evaluated = evaluated["observations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(results) = tree.get_mut("results").and_then(Value::as_array_mut) {
            for (r, e) in results.iter_mut().zip(evaluated) {
                let Some(r) = r.as_object_mut() else { continue };
                if let Some(limit) = e.get("limit") {
                    r.insert("limit".into(), limit.clone());
                }
                if let Some(x) = e.get("exceeded") {
                    r.insert("exceeded".into(), x.clone());
                }
            }
        }
        tree
    }
}

/// `yyyyMMddHHmmss` local time (Asia/Ho_Chi_Minh, UTC+7 without DST) as RFC 3339.
fn local_rfc3339(s: &str) -> Option<String> {
    let t = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()?;
    let tz = chrono::FixedOffset::east_opt(7 * 3600)?;
    Some(tz.from_local_datetime(&t).single()?.to_rfc3339())
}

impl Enricher for StationEnricher {
    fn enrich(&self, _system: &str, message_type: &str, tree: Value) -> router::Result<Enriched> {
        let tree = match message_type {
            OBSERVATION_FILE => self.observation_file(tree),
            LAB_RESULT => self.lab_result(tree),
            _ => tree,
        };
        Ok(Enriched {
            tree,
            extra: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connectors::stations::threshold::{station_config, Limits};
    use connectors::stations::ThresholdsConfig;

    fn enricher() -> StationEnricher {
        let limits = Limits::parse(
            r#"{"QCVN_40_2011_BTNMT": {"COD": {"A": 75, "B": 150}, "BOD5": {"A": 30, "B": 50}}}"#,
        )
        .expect("limits");
        let mut cfg = ThresholdsConfig::default();
        cfg.stations.insert(
            "QNAM_CTYXYZ_NUOCTHAI01".into(),
            station_config(r#"{"standard": {"qcvn": "40:2011", "column": "B"}}"#).expect("station"),
        );
        let watch = Arc::new(Mutex::new(SilenceWatch::new(
            std::time::Duration::from_secs(60),
        )));
        StationEnricher::new(Evaluator::with_limits(cfg, limits), watch)
    }

    #[test]
    fn observation_file_is_flagged() {
        let tree = json!({"file": "f.txt", "station_code": "QNAM_CTYXYZ_NUOCTHAI01", "measured_at": "2022-09-15T14:10:00+07:00",
            "observations": [{"parameter": "COD", "value": 172.4, "unit": "mg/L", "status": "00"},
                             {"parameter": "COD", "value": 172.4, "unit": "mg/L", "status": "01"}]});
        let out = enricher()
            .enrich("stations", OBSERVATION_FILE, tree)
            .expect("enriched")
            .tree;
        assert_eq!(out["observations"][0]["exceeded"], true);
        assert_eq!(out["observations"][0]["limit"]["column"], "B");
        assert_eq!(
            out["observations"][1]["exceeded"], false,
            "a calibration value is never an exceedance"
        );
        assert_eq!(out["observations"][1]["calibrating"], true);
    }

    #[test]
    fn lab_results_get_limit_and_exceeded_only() {
        let tree = json!({"sampleId": "S-1", "stationCode": "QNAM_CTYXYZ_NUOCTHAI01", "sampledAt": "20220913090000",
            "results": [{"parameter": "BOD5", "value": 61.0, "unit": "mg/L"}, {"parameter": "Flow", "value": 3, "unit": "m3/h"}]});
        let out = enricher()
            .enrich("stations", LAB_RESULT, tree)
            .expect("enriched")
            .tree;
        assert_eq!(out["results"][0]["exceeded"], true);
        assert_eq!(out["results"][0]["limit"]["max"], 50);
        assert_eq!(out["results"][1]["exceeded"], false);
        assert!(
            out["results"][1].get("limit").is_none(),
            "no limit for flow"
        );
        assert!(out["results"][0].get("calibrating").is_none());
        assert!(
            out.get("observations").is_none(),
            "the lab result keeps its own shape"
        );
    }

    #[test]
    fn local_time_is_utc_plus_7() {
        assert_eq!(
            local_rfc3339("20220913090000").as_deref(),
            Some("2022-09-13T09:00:00+07:00")
        );
        assert_eq!(local_rfc3339("2022-09-13"), None);
    }
}
