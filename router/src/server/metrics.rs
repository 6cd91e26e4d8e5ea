//! The Prometheus recorder (metrics + metrics-exporter-prometheus).
//!
//! Installed once per process, the first time a hub starts; later hubs in the
//! same process (tests, the demo) share it. Metric names:
//!
//! | name | type | labels |
//! |---|---|---|
//! | `lienthong_received_total` | counter | system |
//! | `lienthong_rejected_total` | counter | system, status |
//! | `lienthong_throttled_total` | counter | system |
//! | `lienthong_delivered_total`, `_retried_total`, `_dead_total` | counter | destination |
//! | `lienthong_queue_depth` | gauge (refreshed on scrape; 0 once nothing waits) | destination |
//! | `lienthong_destination_unconfigured` | gauge (1 from start-up) | destination: a route target with no URL and no connector, whose deliveries wait |
//! | `lienthong_accept_latency_seconds` | histogram | system |
//! | `lienthong_delivery_latency_seconds` (accepted → delivered) | histogram | destination |
//! | `lienthong_attempt_latency_seconds` | histogram | destination |
//! | `lienthong_store_batch_size` | histogram | - |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The process's Prometheus handle; `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("lienthong_store_batch_size".into()), &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]));
            match builder.map(|b| b.install_recorder()) {
                Ok(Ok(h)) => Some(h),
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, "Prometheus recorder not installed; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}
