//! The `connectors:` section of the config, split into partner connectors and station handling.
//!
//! The router keeps `connectors:` opaque (a map of JSON values) so that it does
//! not depend on the `connectors` crate. Every key but one names a partner
//! connector and is validated by [`connectors::registry::ConnectorsConfig`]; the
//! `stations` key holds what the hub does with monitoring-station data: the QCVN
//! threshold settings, the facilities' FTP drop folders and how often to look for
//! silent stations. Keeping station settings under `connectors:` means no change to
//! the router's config model, and one place for everything partner-specific.
//!
//! Secrets never appear here: connectors name an environment variable or a file
//! (`*_env` / `*_file`), read when the connector is built.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use connectors::registry::ConnectorsConfig;
use connectors::stations::ThresholdsConfig;
use router::config::Config;
use router::{Diagnostic, Diagnostics};
use serde::Deserialize;

/// The key under `connectors:` that holds the station settings.
pub const STATIONS_KEY: &str = "stations";

/// One facility's FTP drop folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFolderSettings {
    /// Facility name, for logs (e.g. `CTYXYZ`).
    pub facility: String,
    /// The folder the FTP server writes into; `processed/` and `rejected/` are created inside.
    pub path: PathBuf,
    /// A file is submitted once its size and mtime have not changed for this long.
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    /// Time between scans.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Larger files are rejected unread.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

fn default_settle_ms() -> u64 {
    10_000
}
fn default_poll_ms() -> u64 {
    5_000
}
fn default_max_file_bytes() -> u64 {
    1024 * 1024
}
fn default_silence_check_secs() -> u64 {
    60
}

/// `connectors.stations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationsSettings {
    /// QCVN limits file, per-station standard, aliases, `silent_after_secs`.
    #[serde(default)]
    pub thresholds: ThresholdsConfig,
    /// One entry per facility.
    #[serde(default)]
    pub drop_folders: Vec<DropFolderSettings>,
    /// How often the silent-station detector looks (stations listed under
    /// `thresholds.stations` are expected to send).
    #[serde(default = "default_silence_check_secs")]
    pub silence_check_secs: u64,
}

/// The parsed and validated `connectors:` section.
#[derive(Debug, Clone, Default)]
pub struct WiringSettings {
    pub partners: ConnectorsConfig,
    pub stations: Option<StationsSettings>,
}

fn diag(file: &str, context: String, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 0,
        column: 0,
        context,
        message,
    }
}

impl StationsSettings {
    /// Pure validation; `file` names the config file.
    pub fn validate(&self, file: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        for x in self.thresholds.validate(file).0 {
            d.push(Diagnostic {
                context: format!("connectors.stations.thresholds.{}", x.context),
                ..x
            });
        }
        if self.silence_check_secs == 0 {
            d.push(diag(
                file,
                "connectors.stations.silence_check_secs".into(),
                "must be greater than 0".into(),
            ));
        }
        let mut facilities = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for (i, f) in self.drop_folders.iter().enumerate() {
            let key = |k: &str| format!("connectors.stations.drop_folders[{i}].{k}");
            if f.facility.trim().is_empty() {
                d.push(diag(
                    file,
                    key("facility"),
                    "empty; name the facility (used in logs)".into(),
                ));
            } else if !facilities.insert(f.facility.clone()) {
                d.push(diag(
                    file,
                    key("facility"),
                    format!(
                        "facility `{}` is listed twice; give each drop folder its own entry",
                        f.facility
                    ),
                ));
            }
            if !paths.insert(f.path.clone()) {
                d.push(diag(
                    file,
                    key("path"),
                    format!(
                        "{} is watched twice; two watchers would race for the same files",
                        f.path.display()
                    ),
                ));
            }
            if f.poll_ms == 0 {
                d.push(diag(file, key("poll_ms"), "must be greater than 0".into()));
            }
            if f.max_file_bytes == 0 {
                d.push(diag(
                    file,
                    key("max_file_bytes"),
                    "must be greater than 0".into(),
                ));
            }
        }
        d
    }
}

/// Splits and validates `connectors:`, reporting every problem at once.
pub fn parse(config: &Config) -> anyhow::Result<WiringSettings> {
    let file = config.source_name();
    let mut section = config.connectors.clone();
    let stations = match section.remove(STATIONS_KEY) {
        None => None,
        Some(v) => Some(serde_json::from_value::<StationsSettings>(v).with_context(|| {
            format!("{file}: connectors.stations is invalid; see deploy/lienthong.example.yaml for its keys")
        })?),
    };
    let partners: ConnectorsConfig = serde_json::from_value(serde_json::Value::Object(section.into_iter().collect()))
        .with_context(|| format!("{file}: the `connectors:` section is invalid; known partners are province-portal, national-portal, lis, tax, ioc (and stations)"))?;
    let mut diags = partners.validate(&file);
    if let Some(s) = &stations {
        diags.extend(s.validate(&file));
    }
    if !diags.is_empty() {
        anyhow::bail!("the `connectors:` section is invalid:\n{diags}");
    }
    Ok(WiringSettings { partners, stations })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(connectors: serde_json::Value) -> Config {
        let mut c =
            Config::load_with_env(None, Vec::<(String, String)>::new()).expect("embedded default");
        c.connectors = connectors
            .as_object()
            .expect("object")
            .clone()
            .into_iter()
            .collect();
        c
    }

    #[test]
    fn stations_key_is_split_from_partners() {
        let c = config(serde_json::json!({
            "lis": {"url": "http://127.0.0.1:1/lis/ws", "username": "HUB", "password_env": "LIS_PW"},
            "stations": {"drop_folders": [{"facility": "XYZ", "path": "/tmp/x"}]}
        }));
        let w = parse(&c).expect("valid");
        assert!(w.partners.lis.is_some());
        let s = w.stations.expect("stations");
        assert_eq!(s.drop_folders[0].settle_ms, 10_000);
        assert_eq!(s.silence_check_secs, 60);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let c = config(serde_json::json!({
            "stations": {
                "silence_check_secs": 0,
                "drop_folders": [{"facility": "A", "path": "/tmp/a", "poll_ms": 0}, {"facility": "A", "path": "/tmp/a"}],
                "thresholds": {"stations": {"S_X_Y": {"standard": {"qcvn": "40:2011", "column": "C"}}}}
            }
        }));
        let e = format!("{:#}", parse(&c).expect_err("invalid"));
        for key in [
            "connectors.stations.silence_check_secs",
            "drop_folders[0].poll_ms",
            "drop_folders[1].facility",
            "drop_folders[1].path",
            "connectors.stations.thresholds.stations.S_X_Y.standard",
        ] {
            assert!(e.contains(key), "{key} missing from:\n{e}");
        }
        let typo = config(serde_json::json!({"stations": {"drop_folder": []}}));
        assert!(format!("{:#}", parse(&typo).expect_err("unknown key")).contains("drop_folder"));
    }
}
