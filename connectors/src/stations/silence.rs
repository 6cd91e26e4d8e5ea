//! Silent-station detection.
//!
//! A station that stops sending is as important as one that exceeds a limit: the
//! datalogger may be off to hide a discharge. [`SilenceWatch`] is a pure function
//! over last-seen times (easy to test with any clock); [`spawn`] drives it from a
//! Tokio task at a fixed interval and pushes each [`Silence`] into a bounded
//! channel. One report per silence episode: a station is reported once, and
//! re-armed when data returns; the episode is identified by the station and the
//! time it was last seen ([`Silence::episode`]), which is what the hub dedupes on.
//! The hub turns a report into a `stations/station.silent` message
//! (`src/wiring/silence.rs`) that the mappings make into the IOC's alert.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::threshold::AlertKind;

/// A station silent longer than the threshold: the body of a
/// `stations/station.silent` message (`schemas/stations/station.silent.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Always [`AlertKind::Silent`], so the message reads like the other alerts.
    pub kind: AlertKind,
    pub station_code: String,
    /// When data from the station last arrived (or when watching began, for a
    /// station that never sent), RFC 3339 in Asia/Ho_Chi_Minh.
    pub last_seen_at: String,
    /// When the silence was noticed, RFC 3339 in Asia/Ho_Chi_Minh.
    pub detected_at: String,
    /// `detected_at - last_seen_at`, whole seconds.
    pub silent_for_secs: u64,
    /// The configured threshold (`thresholds.silent_after_secs`).
    pub silent_after_secs: u64,
}

impl Silence {
    /// One id per silence episode: the station and the time it was last seen.
    pub fn episode(&self) -> String {
        format!("{}@{}", self.station_code, self.last_seen_at)
    }

    /// A line for the operators' log.
    pub fn message(&self) -> String {
        format!(
            "Trạm {} không gửi dữ liệu {} phút (lần cuối {})",
            self.station_code,
            self.silent_for_secs / 60,
            self.last_seen_at
        )
    }
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Ho_Chi_Minh)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Last-seen times and the stations already reported.
#[derive(Debug, Clone)]
pub struct SilenceWatch {
    after: chrono::Duration,
    last_seen: BTreeMap<String, DateTime<Utc>>,
    alerted: BTreeSet<String>,
}

impl SilenceWatch {
    pub fn new(after: Duration) -> Self {
        SilenceWatch {
            after: chrono::Duration::from_std(after).unwrap_or(chrono::Duration::minutes(30)),
            last_seen: BTreeMap::new(),
            alerted: BTreeSet::new(),
        }
    }

    /// Starts watching a station that has not sent anything yet (counts from `since`).
    pub fn expect(&mut self, station: &str, since: DateTime<Utc>) {
        self.last_seen.entry(station.to_string()).or_insert(since);
    }

    /// Records data from a station.
    pub fn observe(&mut self, station: &str, at: DateTime<Utc>) {
        let e = self.last_seen.entry(station.to_string()).or_insert(at);
        if at > *e {
            *e = at;
        }
        self.alerted.remove(station);
    }

    /// Stations silent longer than the threshold at `now`, once per silence.
    pub fn check(&mut self, now: DateTime<Utc>) -> Vec<Silence> {
        let mut out = Vec::new();
        for (station, seen) in &self.last_seen {
            if now - *seen > self.after && self.alerted.insert(station.clone()) {
                out.push(Silence {
                    kind: AlertKind::Silent,
                    station_code: station.clone(),
                    last_seen_at: local(*seen),
                    detected_at: local(now),
                    silent_for_secs: (now - *seen).num_seconds().max(0) as u64,
                    silent_after_secs: self.after.num_seconds().max(0) as u64,
                });
            }
        }
        out
    }
}

/// Checks every `every` and sends each new silence to `sink` until `cancel` fires
/// or the receiver is dropped. A full sink makes the task wait (bounded channel).
pub fn spawn(
    watch: Arc<Mutex<SilenceWatch>>,
    every: Duration,
    sink: mpsc::Sender<Silence>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let alerts = watch
                .lock()
                .expect("silence watch poisoned")
                .check(Utc::now());
            for a in alerts {
                tracing::debug!(station = %a.station_code, "station silent");
                if sink.send(a).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_once_and_rearms() {
        let t0 = Utc::now();
        let mut w = SilenceWatch::new(Duration::from_secs(600));
        w.observe("A", t0);
        w.expect("B", t0);
        assert!(w.check(t0 + chrono::Duration::minutes(5)).is_empty());
        let a = w.check(t0 + chrono::Duration::minutes(11));
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].kind, AlertKind::Silent);
        assert_eq!((a[0].silent_for_secs, a[0].silent_after_secs), (660, 600));
        assert_eq!(a[0].last_seen_at, local(t0));
        assert!(
            a[0].last_seen_at.ends_with("+07:00"),
            "{}",
            a[0].last_seen_at
        );
        assert!(
            w.check(t0 + chrono::Duration::minutes(20)).is_empty(),
            "once per silence"
        );
        w.observe("A", t0 + chrono::Duration::minutes(21));
        assert!(w.check(t0 + chrono::Duration::minutes(25)).is_empty());
        let again = w.check(t0 + chrono::Duration::minutes(40));
        assert_eq!(again.len(), 1, "re-armed after data returned");
        assert_ne!(
            again[0].episode(),
            a[0].episode(),
            "a new episode, so a new alert"
        );
    }

    #[tokio::test]
    async fn driver_task_sends_and_stops() {
        let mut w = SilenceWatch::new(Duration::from_millis(50));
        w.observe("A", Utc::now());
        let watch = Arc::new(Mutex::new(w));
        let (tx, mut rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let task = spawn(
            Arc::clone(&watch),
            Duration::from_millis(20),
            tx,
            cancel.clone(),
        );
        let alert = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alert.station_code, "A");
        cancel.cancel();
        task.await.unwrap();
    }
}
