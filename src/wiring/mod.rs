//! Wiring: from the config to the partner-facing parts of a running hub.
//!
//! The router knows nothing about partners; it offers plug-in points
//! ([`HubOptions`]: transports by destination, enrichers by message type, extra
//! routes). This module fills them from the config's `connectors:` section, and
//! starts the tasks that live beside the hub:
//!
//! * [`settings`]: splits `connectors:` into the partner connectors and
//!   `connectors.stations`, and validates both, every problem at once;
//! * the transports: [`connectors::registry::register_all`] builds each configured
//!   connector (reading its secret from the env var or file it names);
//! * [`enricher`]: QCVN threshold evaluation for station files and lab results;
//! * [`dropfolders`]: one watcher per facility FTP folder, submitting in process;
//! * [`silence`]: the silent-station detector.
//!
//! Station files over HTTP need nothing extra: the generic intake serves
//! `POST /inbound/stations/observation.file` and passes the `X-File-Name` header to
//! the station codec (the file name carries the station and the time).
//!
//! Use: [`build`] (inside the Tokio runtime: the IOC connector spawns its batcher),
//! `Hub::start(config, wiring.options)`, then [`Stations::start`] with the running
//! hub, and at the end [`Background::shutdown`] before `RunningHub::shutdown`, so
//! that no drop-folder file is half-handled when intake closes.

pub mod dropfolders;
pub mod enricher;
pub mod settings;
pub mod silence;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use connectors::stations::silence::SilenceWatch;
use connectors::stations::Evaluator;
use router::config::Config;
use router::server::{HubOptions, RunningHub};
use tokio_util::sync::CancellationToken;

use enricher::{StationEnricher, LAB_RESULT, OBSERVATION_FILE};
use settings::StationsSettings;

/// What [`build`] produced: the hub's plug-ins, and the station tasks to start once it runs.
pub struct Wiring {
    pub options: HubOptions,
    pub stations: Stations,
}

/// Station handling waiting for a running hub (nothing when `connectors.stations` is absent).
pub struct Stations {
    settings: Option<StationsSettings>,
    watch: Arc<Mutex<SilenceWatch>>,
}

/// The tasks started beside the hub.
pub struct Background {
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Parses `connectors:`, builds every configured connector and the station enricher.
pub fn build(config: &Config) -> anyhow::Result<Wiring> {
    let parsed = settings::parse(config)?;
    let mut options = HubOptions::default();
    connectors::registry::register_all(&parsed.partners, &mut options.transports)
        .context("building the partner connectors (connectors:)")?;
    let after = parsed
        .stations
        .as_ref()
        .map_or(1800, |s| s.thresholds.silent_after_secs);
    let watch = Arc::new(Mutex::new(SilenceWatch::new(Duration::from_secs(after))));
    if let Some(s) = &parsed.stations {
        let evaluator = Evaluator::load(s.thresholds.clone())
            .context("loading the QCVN limits (connectors.stations.thresholds.limits_file)")?;
        let enricher = Arc::new(StationEnricher::new(evaluator, Arc::clone(&watch)));
        options
            .enrichers
            .register("stations", OBSERVATION_FILE, enricher.clone());
        options.enrichers.register("stations", LAB_RESULT, enricher);
    }
    Ok(Wiring {
        options,
        stations: Stations {
            settings: parsed.stations,
            watch,
        },
    })
}

impl Stations {
    /// Starts the drop-folder watchers and the silent-station detector against `hub`.
    pub fn start(self, hub: &RunningHub) -> anyhow::Result<Background> {
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        if let Some(s) = &self.settings {
            tasks = dropfolders::spawn_all(&s.drop_folders, &hub.intake, &cancel)?;
            let now = chrono::Utc::now();
            {
                let mut w = self.watch.lock().expect("silence watch poisoned");
                for code in s.thresholds.stations.keys() {
                    w.expect(code, now);
                }
            }
            tasks.extend(silence::spawn(
                self.watch,
                Duration::from_secs(s.silence_check_secs),
                Arc::clone(&hub.intake),
                &cancel,
            ));
        }
        Ok(Background { cancel, tasks })
    }
}

impl Background {
    /// Stops the watchers: a file being submitted gets a moment to finish, then is left in place.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for mut t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}
