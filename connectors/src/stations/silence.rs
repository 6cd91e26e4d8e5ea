//! Silent-station detection.
//!
//! A station that stops sending is as important as one that exceeds a limit: the
//! datalogger may be off to hide a discharge. [`SilenceWatch`] is a pure function
//! over last-seen times (easy to test with any clock); [`spawn`] drives it from a
//! Tokio task at a fixed interval and pushes alerts into a bounded channel. One
//! alert per silence: a station is alerted once, and re-armed when data returns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::threshold::{Alert, AlertKind};

/// Last-seen times and the stations already alerted.
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

    /// Alerts for stations silent longer than the threshold at `now`, once each.
    pub fn check(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (station, seen) in &self.last_seen {
            if now - *seen > self.after && self.alerted.insert(station.clone()) {
                let minutes = (now - *seen).num_minutes();
                alerts.push(Alert {
                    kind: AlertKind::Silent,
                    station_code: station.clone(),
                    parameter: None,
                    value: None,
                    unit: None,
                    measured_at: Some(seen.to_rfc3339()),
                    limit: None,
                    message: format!(
                        "Trạm {station} không gửi dữ liệu {minutes} phút (lần cuối {})",
                        seen.to_rfc3339()
                    ),
                });
            }
        }
        alerts
    }
}

/// Checks every `every` and sends alerts to `sink` until `cancel` fires or the
/// receiver is dropped. A full sink makes the task wait (bounded channel).
pub fn spawn(
    watch: Arc<Mutex<SilenceWatch>>,
    every: Duration,
    sink: mpsc::Sender<Alert>,
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
                tracing::warn!(station = %a.station_code, "station silent");
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
        assert!(
            w.check(t0 + chrono::Duration::minutes(20)).is_empty(),
            "once per silence"
        );
        w.observe("A", t0 + chrono::Duration::minutes(21));
        assert!(w.check(t0 + chrono::Duration::minutes(25)).is_empty());
        assert_eq!(
            w.check(t0 + chrono::Duration::minutes(40)).len(),
            1,
            "re-armed after data returned"
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
