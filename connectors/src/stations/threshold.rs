//! Threshold evaluation against the QCVN limits file.
//!
//! ## The limits file
//! `mappings/lookups/qcvn-thresholds.json` (configurable): a section whose key
//! starts with `QCVN_40_2011` maps parameter → `{"A": max | [min, max], "B": …}`
//! (mg/L unless the name says otherwise); a section starting with `QCVN_05_2023`
//! maps parameter → `{period: value}` in µg/Nm³. Values there may be text with
//! notes; the leading number is the limit, and `"50 (45 from 2026-01-01)"` means 45
//! applies to measurements from that date. Entries flagged `CHECK` in the file (O3)
//! use their first number; a reviewer must confirm them. Keys starting with `_` are
//! comments.
//!
//! ## Per station
//! `standard: { qcvn: "40:2011", column: A|B, kq, kf }` — `Cmax = C × Kq × Kf`,
//! except for temperature, colour, pH and coliform, to which QCVN 40 does not apply
//! the factors — or `standard: { qcvn: "05:2023", period: 1h|8h|24h|year }`.
//! Stations label parameters freely (`NH4+`, `Temp`); aliases map labels to the
//! limits file's names: built-in ones, then the config's global `aliases`, then the
//! station's own. Air values reported in mg/Nm³ are converted to µg/Nm³.
//!
//! ## Status handling
//! `00` measuring: exceedance → `exceedance` alert. `01` calibrating: forwarded and
//! marked `calibrating: true`, `exceeded: false` (the value is a calibration
//! standard, not the effluent), never an alert. `02` device fault: a `device-fault`
//! alert (exceedance is still computed and reported, the value being unreliable).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use lienthong_core::{Diagnostic, Diagnostics};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::ConnectorError;

/// Default location of the limits file (copied there by the content engineer).
pub const DEFAULT_LIMITS_FILE: &str = "mappings/lookups/qcvn-thresholds.json";

pub const QCVN_40: &str = "QCVN 40:2011/BTNMT";
pub const QCVN_05: &str = "QCVN 05:2023/BTNMT";

/// Parameters to which QCVN 40's Kq·Kf factors do not apply.
const NO_FACTORS: [&str; 4] = ["Temperature_C", "Color_PtCo", "pH", "Coliform_MPN_100mL"];

const BUILTIN_ALIASES: [(&str, &str); 22] = [
    ("PH", "pH"),
    ("NH4+", "NH4_as_N"),
    ("NH4", "NH4_as_N"),
    ("N-NH4", "NH4_as_N"),
    ("NH4_N", "NH4_as_N"),
    ("Amoni", "NH4_as_N"),
    ("Temp", "Temperature_C"),
    ("Temperature", "Temperature_C"),
    ("Nhiệt độ", "Temperature_C"),
    ("Color", "Color_PtCo"),
    ("Độ màu", "Color_PtCo"),
    ("TN", "TotalN"),
    ("TP", "TotalP"),
    ("BOD", "BOD5"),
    ("SS", "TSS"),
    ("Coliform", "Coliform_MPN_100mL"),
    ("Cr6+", "Cr6"),
    ("PM2_5", "PM2.5"),
    ("Dust", "TSP"),
    ("Bụi", "TSP"),
    ("Oil", "MineralOil"),
    ("CN-", "CN"),
];

/// Which standard a station is held to, as written in the config:
/// `{qcvn: "40:2011", column, kq, kf}` or `{qcvn: "05:2023", period}`.
/// (A flat struct rather than a tagged enum: serde's tagged enums buffer their
/// content, which breaks numbers under serde_json's `arbitrary_precision`.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardSpec {
    pub qcvn: String,
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub kq: Option<f64>,
    #[serde(default)]
    pub kf: Option<f64>,
    #[serde(default)]
    pub period: Option<String>,
}

/// A validated standard.
#[derive(Debug, Clone, PartialEq)]
pub enum StandardConfig {
    /// Industrial wastewater.
    Wastewater { column: String, kq: f64, kf: f64 },
    /// Ambient air.
    AmbientAir { period: String },
}

impl StandardSpec {
    /// The standard, or what is wrong with the spec.
    pub fn resolve(&self) -> Result<StandardConfig, String> {
        match self.qcvn.as_str() {
            "40:2011" => {
                let column = self
                    .column
                    .clone()
                    .ok_or("QCVN 40:2011 needs `column: A` or `column: B`")?;
                if column != "A" && column != "B" {
                    return Err(format!("`{column}` must be A or B (QCVN 40:2011 columns)"));
                }
                if self.period.is_some() {
                    return Err("`period` belongs to QCVN 05:2023, not 40:2011".into());
                }
                let (kq, kf) = (self.kq.unwrap_or(1.0), self.kf.unwrap_or(1.0));
                if !(kq > 0.0 && kf > 0.0) {
                    return Err(
                        "kq and kf must be positive (see QCVN 40:2011 tables 2 and 3)".into(),
                    );
                }
                Ok(StandardConfig::Wastewater { column, kq, kf })
            }
            "05:2023" => {
                let period = self
                    .period
                    .clone()
                    .ok_or("QCVN 05:2023 needs `period: 1h|8h|24h|year`")?;
                if !matches!(period.as_str(), "1h" | "8h" | "24h" | "year") {
                    return Err(format!("`{period}` must be 1h, 8h, 24h or year"));
                }
                if self.column.is_some() || self.kq.is_some() || self.kf.is_some() {
                    return Err("column/kq/kf belong to QCVN 40:2011, not 05:2023".into());
                }
                Ok(StandardConfig::AmbientAir { period })
            }
            other => Err(format!(
                "`{other}` is not supported; use \"40:2011\" or \"05:2023\""
            )),
        }
    }
}

/// One station's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    pub standard: StandardSpec,
    /// Station label → limits-file parameter name.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

/// `stations:` settings for threshold evaluation and silence detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsConfig {
    #[serde(default = "default_limits_file")]
    pub limits_file: PathBuf,
    /// Label → parameter aliases for every station.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Station code → settings.
    #[serde(default)]
    pub stations: BTreeMap<String, StationConfig>,
    /// Settings for stations not listed (none: such stations are forwarded unevaluated).
    #[serde(default)]
    pub default_station: Option<StationConfig>,
    /// A station silent this long raises a `silent` alert.
    #[serde(default = "default_silent_after")]
    pub silent_after_secs: u64,
}

fn default_limits_file() -> PathBuf {
    PathBuf::from(DEFAULT_LIMITS_FILE)
}
fn default_silent_after() -> u64 {
    1800
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        ThresholdsConfig {
            limits_file: default_limits_file(),
            aliases: BTreeMap::new(),
            stations: BTreeMap::new(),
            default_station: None,
            silent_after_secs: default_silent_after(),
        }
    }
}

impl ThresholdsConfig {
    /// Pure validation.
    pub fn validate(&self, file: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        let mut push = |k: String, m: String| {
            d.push(Diagnostic {
                file: file.into(),
                line: 0,
                column: 0,
                context: k,
                message: m,
            })
        };
        let all = self
            .stations
            .iter()
            .map(|(k, v)| (format!("stations.{k}"), v))
            .chain(
                self.default_station
                    .iter()
                    .map(|v| ("default_station".to_string(), v)),
            );
        for (k, s) in all {
            if let Err(m) = s.standard.resolve() {
                push(format!("{k}.standard"), m);
            }
        }
        if self.silent_after_secs == 0 {
            push("silent_after_secs".into(), "must be greater than 0".into());
        }
        d
    }
}

/// A min/max range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// An air limit, with an optional stricter value from a date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AirLimit {
    pub max: f64,
    pub from: Option<(NaiveDate, f64)>,
}

/// The parsed limits file.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// parameter → column → range
    pub wastewater: HashMap<String, HashMap<String, Range>>,
    /// parameter → period → limit
    pub air: HashMap<String, HashMap<String, AirLimit>>,
}

fn leading_number(s: &str) -> Option<f64> {
    let t = s.trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    t[..end].parse().ok()
}

fn air_limit(v: &Value) -> Option<AirLimit> {
    match v {
        Value::Number(n) => n.as_f64().map(|max| AirLimit { max, from: None }),
        Value::String(s) => {
            let max = leading_number(s)?;
            // "50 (45 from 2026-01-01)"
            let from = s.find('(').and_then(|i| {
                let inner = s[i + 1..].trim_end_matches(')');
                let (value, date) = inner.split_once(" from ")?;
                Some((
                    NaiveDate::parse_from_str(date.trim().trim_end_matches(')'), "%Y-%m-%d")
                        .ok()?,
                    leading_number(value)?,
                ))
            });
            Some(AirLimit { max, from })
        }
        _ => None,
    }
}

impl Limits {
    /// Parses the limits file's JSON.
    pub fn parse(text: &str) -> Result<Limits, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let root = v.as_object().ok_or("the top level must be an object")?;
        let mut limits = Limits::default();
        for (section, params) in root {
            let Some(params) = params.as_object() else {
                continue;
            };
            let is_40 = section.starts_with("QCVN_40_2011");
            let is_05 = section.starts_with("QCVN_05_2023");
            for (param, cols) in params.iter().filter(|(k, _)| !k.starts_with('_')) {
                let Some(cols) = cols.as_object() else {
                    continue;
                };
                for (col, val) in cols {
                    if is_40 {
                        let range = match val {
                            Value::Number(n) => Range {
                                min: None,
                                max: n.as_f64(),
                            },
                            Value::Array(a) if a.len() == 2 => Range {
                                min: a[0].as_f64(),
                                max: a[1].as_f64(),
                            },
                            _ => {
                                return Err(format!(
                                    "{section}.{param}.{col}: expected a number or [min, max]"
                                ))
                            }
                        };
                        limits
                            .wastewater
                            .entry(param.clone())
                            .or_default()
                            .insert(col.clone(), range);
                    } else if is_05 {
                        let l = air_limit(val).ok_or_else(|| format!("{section}.{param}.{col}: expected a number or text starting with one"))?;
                        limits
                            .air
                            .entry(param.clone())
                            .or_default()
                            .insert(col.clone(), l);
                    }
                }
            }
        }
        if limits.wastewater.is_empty() && limits.air.is_empty() {
            return Err("no QCVN_40_2011… or QCVN_05_2023… section found".into());
        }
        Ok(limits)
    }
}

/// What kind of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    Exceedance,
    DeviceFault,
    Silent,
}

/// An alert for the IOC (the mapping turns it into the IOC's alert message).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub station_code: String,
    pub parameter: Option<String>,
    /// The reading's exact text.
    pub value: Option<String>,
    pub unit: Option<String>,
    pub measured_at: Option<String>,
    pub limit: Option<Value>,
    pub message: String,
}

/// The limit applied to one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub range: Range,
    pub limit: Value,
}

fn num(x: f64) -> Value {
    let rounded = (x * 1e6).round() / 1e6;
    let text = if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    };
    text.parse::<Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Evaluates readings against the limits.
pub struct Evaluator {
    config: ThresholdsConfig,
    limits: Limits,
}

impl Evaluator {
    /// Loads the limits file named in the config.
    pub fn load(config: ThresholdsConfig) -> Result<Self, ConnectorError> {
        let path = config.limits_file.clone();
        let text = std::fs::read_to_string(&path).map_err(|e| ConnectorError::File {
            context: format!("QCVN limits file {}", path.display()),
            message: format!(
                "{e}; copy codes/qcvn-thresholds.json there or set stations.limits_file"
            ),
            retryable: false,
        })?;
        let limits = Limits::parse(&text).map_err(|m| ConnectorError::File {
            context: format!("QCVN limits file {}", path.display()),
            message: format!("{m}; fix the file"),
            retryable: false,
        })?;
        Ok(Evaluator { config, limits })
    }

    pub fn with_limits(config: ThresholdsConfig, limits: Limits) -> Self {
        Evaluator { config, limits }
    }

    pub fn config(&self) -> &ThresholdsConfig {
        &self.config
    }

    fn station(&self, code: &str) -> Option<&StationConfig> {
        self.config
            .stations
            .get(code)
            .or(self.config.default_station.as_ref())
    }

    /// The limits-file name of a station's parameter label.
    pub fn canonical<'a>(&'a self, station: Option<&'a StationConfig>, label: &'a str) -> &'a str {
        let label = label.trim();
        if let Some(p) = station.and_then(|s| s.aliases.get(label)) {
            return p;
        }
        if let Some(p) = self.config.aliases.get(label) {
            return p;
        }
        BUILTIN_ALIASES
            .iter()
            .find(|(k, _)| *k == label)
            .map(|(_, v)| *v)
            .unwrap_or(label)
    }

    /// The limit for a reading, `None` when the standard has none for the parameter
    /// (flow, for instance) or the station is not configured. `value` is adjusted
    /// to the standard's unit in place.
    pub fn limit(
        &self,
        station_code: &str,
        label: &str,
        unit: &str,
        value: &mut f64,
        date: Option<NaiveDate>,
    ) -> Option<Applied> {
        let station = self.station(station_code)?;
        let param = self.canonical(Some(station), label);
        // An invalid spec is reported by `validate`; here it just means "no limit".
        match &station.standard.resolve().ok()? {
            StandardConfig::Wastewater { column, kq, kf } => {
                let base = *self.limits.wastewater.get(param)?.get(column)?;
                let factors = !NO_FACTORS.contains(&param);
                let k = if factors { kq * kf } else { 1.0 };
                let range = Range {
                    min: base.min,
                    max: base.max.map(|m| m * k),
                };
                let mut o = Map::new();
                o.insert("standard".into(), QCVN_40.into());
                o.insert("column".into(), column.clone().into());
                if let Some(m) = range.min {
                    o.insert("min".into(), num(m));
                }
                if let Some(m) = range.max {
                    o.insert("max".into(), num(m));
                }
                if factors {
                    o.insert("kqKf".into(), num(k));
                }
                Some(Applied {
                    range,
                    limit: Value::Object(o),
                })
            }
            StandardConfig::AmbientAir { period } => {
                let l = *self.limits.air.get(param)?.get(period)?;
                if unit.trim().to_ascii_lowercase().starts_with("mg") {
                    *value *= 1000.0;
                }
                let max = match (l.from, date) {
                    (Some((from, stricter)), Some(d)) if d >= from => stricter,
                    _ => l.max,
                };
                let mut o = Map::new();
                o.insert("standard".into(), QCVN_05.into());
                o.insert("period".into(), period.clone().into());
                o.insert("max".into(), num(max));
                Some(Applied {
                    range: Range {
                        min: None,
                        max: Some(max),
                    },
                    limit: Value::Object(o),
                })
            }
        }
    }

    /// Adds `limit`, `exceeded` and `calibrating` to each observation of a station
    /// tree and returns the alerts to raise. Observations whose value is not a number
    /// are left unmarked (the codec already refuses them).
    pub fn enrich(&self, tree: &Value) -> (Value, Vec<Alert>) {
        let mut out = tree.clone();
        let mut alerts = Vec::new();
        let station_code = tree
            .get("station_code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let file_time = tree
            .get("measured_at")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(observations) = out.get_mut("observations").and_then(Value::as_array_mut) else {
            return (out, alerts);
        };
        for obs in observations.iter_mut() {
            let Some(o) = obs.as_object_mut() else {
                continue;
            };
            let label = o
                .get("parameter")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let unit = o
                .get("unit")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let status = o
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("00")
                .to_string();
            let measured_at = o
                .get("measured_at")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| file_time.clone());
            let raw = match o.get("value") {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) => Some(s.trim().to_string()),
                _ => None,
            };
            let date = measured_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.date_naive());
            let mut value = raw.as_deref().and_then(|r| r.parse::<f64>().ok());
            let applied = match value.as_mut() {
                Some(v) => self.limit(&station_code, &label, &unit, v, date),
                None => None,
            };
            let calibrating = status == "01";
            let out_of_range = match (&applied, value) {
                (Some(a), Some(v)) => {
                    a.range.min.is_some_and(|m| v < m) || a.range.max.is_some_and(|m| v > m)
                }
                _ => false,
            };
            let exceeded = out_of_range && !calibrating;
            if let Some(a) = &applied {
                o.insert("limit".into(), a.limit.clone());
            }
            o.insert("exceeded".into(), Value::Bool(exceeded));
            o.insert("calibrating".into(), Value::Bool(calibrating));
            let alert = |kind: AlertKind, message: String| Alert {
                kind,
                station_code: station_code.clone(),
                parameter: Some(label.clone()),
                value: raw.clone(),
                unit: Some(unit.clone()),
                measured_at: measured_at.clone(),
                limit: applied.as_ref().map(|a| a.limit.clone()),
                message,
            };
            if status == "02" {
                alerts.push(alert(
                    AlertKind::DeviceFault,
                    format!(
                        "Trạm {station_code}: thiết bị đo {label} báo lỗi (trạng thái 02){}",
                        if exceeded {
                            ", giá trị vượt ngưỡng"
                        } else {
                            ""
                        }
                    ),
                ));
            } else if exceeded {
                alerts.push(alert(
                    AlertKind::Exceedance,
                    format!(
                        "Trạm {station_code}: {label} = {} {unit} vượt ngưỡng {}",
                        raw.clone().unwrap_or_default(),
                        describe(applied.as_ref())
                    ),
                ));
            }
        }
        (out, alerts)
    }
}

fn describe(a: Option<&Applied>) -> String {
    let Some(a) = a else { return String::new() };
    let std = a
        .limit
        .get("standard")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (a.range.min, a.range.max) {
        (Some(lo), Some(hi)) => format!("[{lo}; {hi}] ({std})"),
        (None, Some(hi)) => format!("{hi} ({std})"),
        (Some(lo), None) => format!("≥ {lo} ({std})"),
        (None, None) => std.to_string(),
    }
}

/// Parses a station's QCVN settings from config text (tests and tools).
pub fn station_config(json: &str) -> Result<StationConfig, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}
