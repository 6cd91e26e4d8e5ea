//! The silent-station detector: a station that stops sending becomes an IOC alert.
//!
//! [`connectors::stations::silence`] decides who is silent (stations listed under
//! `connectors.stations.thresholds.stations` are expected from the start; the
//! enricher records every file and lab result) and reports each silence episode
//! once. This task takes those reports from a bounded channel and submits each to
//! the hub's own intake as a `stations/station.silent` message
//! (`schemas/stations/station.silent.schema.json`), exactly as a drop-folder file is
//! submitted. Why through intake rather than straight to the IOC connector: the
//! alert then gets what every other message gets — it is stored before anything is
//! sent, trailed, routed by `mappings/routes.yaml` (`station-silent`), mapped by
//! `mappings/stations/station-silent.to-ioc-alert.yaml` into the IOC's alert shape,
//! delivered with the delivery layer's retries and ordering, and acknowledged only
//! after delivery. The schema's dedupe key (station + last-seen time) makes a
//! re-submitted episode a duplicate, so the IOC gets one alert per episode.
//!
//! Each report is also logged at WARN, which is what operators' log alerting can
//! pick up if the IOC is unreachable for long.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use connectors::stations::silence::{self, Silence, SilenceWatch};
use router::intake::{InboundRequest, Intake};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The message type silent-station reports are submitted as (system `stations`).
pub const SILENT: &str = "station.silent";

/// Reports waiting to be handed over; the detector waits when it is full.
const CHANNEL: usize = 64;

/// Starts the detector and the task that submits its reports.
pub fn spawn(
    watch: Arc<Mutex<SilenceWatch>>,
    every: Duration,
    intake: Arc<Intake>,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = mpsc::channel::<Silence>(CHANNEL);
    let detector = silence::spawn(watch, every, tx, cancel.clone());
    if intake.schemas.find("stations", SILENT).is_none() {
        tracing::error!(
            "schemas/stations/{SILENT}.schema.json is missing: silent stations will be refused by intake \
             and only logged; restore the schema and its route (mappings/routes.yaml, station-silent)"
        );
    }
    let stop = cancel.clone();
    let forwarder = tokio::spawn(async move {
        loop {
            let report = tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => return },
                _ = stop.cancelled() => return,
            };
            tracing::warn!(station = %report.station_code, last_seen = %report.last_seen_at,
                silent_for_secs = report.silent_for_secs, "{}", report.message());
            submit(&intake, &report).await;
        }
    });
    vec![detector, forwarder]
}

/// Hands one report to intake; what intake answers is logged (a refusal names the
/// schema to look at, since the body is built here).
async fn submit(intake: &Intake, report: &Silence) {
    let body = match serde_json::to_vec(report) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::error!(station = %report.station_code, error = %e, "a silent-station report could not be serialised");
            return;
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let resp = intake
        .handle(InboundRequest {
            system: "stations".into(),
            message_type: SILENT.into(),
            headers,
            body,
        })
        .await;
    if resp.status == StatusCode::ACCEPTED {
        tracing::info!(station = %report.station_code, id = %resp.body["id"], duplicate = %resp.body["duplicate"],
            "silent-station alert accepted");
    } else {
        tracing::error!(station = %report.station_code, status = resp.status.as_u16(), reasons = %resp.body["reasons"],
            "the hub refused a silent-station alert; check schemas/stations/{SILENT}.schema.json against connectors::stations::silence::Silence");
    }
}
