//! The silent-station detector: a station that stops sending is reported.
//!
//! [`connectors::stations::silence`] decides who is silent (stations listed under
//! `connectors.stations.thresholds.stations` are expected from the start; the
//! enricher records every file). This task takes its alerts from a bounded channel
//! and hands each to the hub's intake as a `stations/station.silent` message when
//! that message type is defined (schema + route to an IOC mapping), so it is stored,
//! trailed and delivered like everything else. Until a schema exists for it, the
//! IOC alert vocabulary has no "silent" kind (`schemas/ioc/alert.schema.json`), and
//! the alert is logged at WARN with the station and the minutes of silence, which
//! is what operators' log alerting picks up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use connectors::stations::silence::{self, SilenceWatch};
use connectors::stations::Alert;
use router::intake::{InboundRequest, Intake};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Message type silent-station alerts are submitted as, when its schema exists.
pub const SILENT: &str = "station.silent";

/// Alerts waiting to be handed over; the detector waits when it is full.
const CHANNEL: usize = 64;

/// Starts the detector and the task that forwards its alerts.
pub fn spawn(
    watch: Arc<Mutex<SilenceWatch>>,
    every: Duration,
    intake: Arc<Intake>,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = mpsc::channel::<Alert>(CHANNEL);
    let detector = silence::spawn(watch, every, tx, cancel.clone());
    let routable = intake.schemas.find("stations", SILENT).is_some();
    if !routable {
        tracing::info!("no schema stations/{SILENT}: silent stations are reported in the log only");
    }
    let stop = cancel.clone();
    let forwarder = tokio::spawn(async move {
        loop {
            let alert = tokio::select! {
                a = rx.recv() => match a { Some(a) => a, None => return },
                _ = stop.cancelled() => return,
            };
            tracing::warn!(station = %alert.station_code, last_seen = alert.measured_at.as_deref().unwrap_or("-"), "{}", alert.message);
            if routable {
                submit(&intake, &alert).await;
            }
        }
    });
    vec![detector, forwarder]
}

async fn submit(intake: &Intake, alert: &Alert) {
    let body = match serde_json::to_vec(alert) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::error!(station = %alert.station_code, error = %e, "a silent-station alert could not be serialised");
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
    if resp.status != StatusCode::ACCEPTED {
        tracing::error!(station = %alert.station_code, status = resp.status.as_u16(), reasons = %resp.body["reasons"],
            "the hub refused a silent-station alert; check schemas/stations/{SILENT}.schema.json against connectors::stations::Alert");
    }
}
