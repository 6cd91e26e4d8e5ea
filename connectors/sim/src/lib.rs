//! In-process partner simulators, for `lienthong demo` and the tests.
//!
//! Each simulator is an axum server on `127.0.0.1:0` that speaks its partner's
//! protocol closely enough that the real connector cannot tell: it issues and checks
//! tokens / sessions, verifies WS-Security digests and refuses replayed nonces,
//! unpacks the GIP CDATA, checks the IOC API key, and rejects malformed messages the
//! way the partner would (an LGSP `errorCode`, a DVCQG `error_code`, a SOAP `Client`
//! fault, a GIP `ERROR_CODE`).
//!
//! What every simulator shares lives here ([`SimCore`]):
//! * an inspectable, cloneable log of what it received, in order, with headers
//!   (credentials shown as `***`) and idempotency keys; a repeated idempotency key is
//!   counted as a duplicate and not applied again;
//! * fault injection, for the next N requests or with a probability: latency, a hang
//!   past the client's timeout, an HTTP status (e.g. 503, or 429 with `Retry-After`),
//!   token/session expiry, a business error code, a SOAP fault. Faults apply to the
//!   business endpoint, not to token/login endpoints. Drive them from Rust
//!   ([`SimCore::inject`]) or over HTTP (`POST /_sim/faults` with a [`FaultRule`],
//!   `DELETE /_sim/faults`, `GET /_sim/log`, `GET /_sim/stats`);
//! * per-message-type validators ([`SimCore::set_validator`]): the demo plugs the
//!   hub's JSON Schemas in; without one, each simulator applies its own structural
//!   checks.

pub mod ioc;
pub mod lis;
pub mod national_portal;
pub mod partners;
pub mod province_portal;
pub mod tax;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use lienthong_core::schema::{MessageSchema, SchemaRegistry};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use connectors::error::ConnectorError;

/// Validates a business payload (JSON bytes, or the XML document) of one message type.
pub type Validator = Arc<dyn Fn(&[u8]) -> Result<(), Vec<String>> + Send + Sync>;

/// A validator backed by the hub's own schema for a message type: decode the
/// payload with the schema's codec (JSON, XML, tax GIP), then validate the tree.
/// The simulators thereby hold the hub to the same contract the hub holds itself to.
pub fn schema_validator(schema: Arc<MessageSchema>) -> Validator {
    Arc::new(move |payload: &[u8]| {
        let tree = schema.decode(payload).map_err(|e| vec![e.to_string()])?;
        schema.validate(&tree).map_err(|e| match e {
            lienthong_core::Error::Schema { violations, .. } => violations,
            other => vec![other.to_string()],
        })
    })
}

/// One request the simulator received.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub endpoint: String,
    pub message_type: String,
    pub idempotency_key: Option<String>,
    /// Request headers, credentials replaced by `***`.
    pub headers: BTreeMap<String, String>,
    /// The request body as received.
    pub body: String,
    /// Same idempotency key seen before: acknowledged, not applied again.
    pub duplicate: bool,
    /// `accepted`, `rejected: …` or `fault: …`.
    pub outcome: String,
}

/// A fault to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Answer normally, `ms` later.
    Latency { ms: u64 },
    /// Never answer (until the simulator shuts down): the client times out.
    Hang,
    /// Answer this HTTP status (with `Retry-After` when given).
    Status {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Invalidate every token/session issued so far, then handle the request.
    ExpireAuth,
    /// A business rejection in the partner's own terms (`errorCode`, `error_code`, `ERROR_CODE`, SOAP Client fault).
    BusinessError {
        code: String,
        #[serde(default)]
        message: String,
    },
    /// A SOAP fault (`Client` or `Server`) — SOAP partners only; others answer 500.
    SoapFault {
        code: String,
        #[serde(default)]
        message: String,
    },
}

/// When a fault applies: the next `count` requests, or each request with `probability`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub fault: Fault,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub probability: Option<f64>,
}

/// State shared by every simulator.
pub struct SimCore {
    pub system: &'static str,
    log: Mutex<Vec<Received>>,
    faults: Mutex<Vec<FaultRule>>,
    keys: Mutex<HashSet<String>>,
    duplicates: AtomicU64,
    seq: AtomicU64,
    validators: RwLock<HashMap<String, Validator>>,
    secret_headers: Vec<String>,
    shutdown: CancellationToken,
}

/// Counters exposed at `GET /_sim/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub received: usize,
    pub accepted: usize,
    pub duplicates: u64,
    pub pending_faults: usize,
}

impl SimCore {
    pub fn new(system: &'static str, secret_headers: &[&str]) -> Arc<Self> {
        let mut secret_headers: Vec<String> = secret_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        secret_headers.push("authorization".into());
        Arc::new(SimCore {
            system,
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            keys: Mutex::new(HashSet::new()),
            duplicates: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            validators: RwLock::new(HashMap::new()),
            secret_headers,
            shutdown: CancellationToken::new(),
        })
    }

    /// Adds a fault rule (rules are tried in the order added).
    pub fn inject(&self, rule: FaultRule) {
        self.faults.lock().expect("faults poisoned").push(rule);
    }

    /// `fault` for the next `count` requests.
    pub fn inject_next(&self, fault: Fault, count: u32) {
        self.inject(FaultRule {
            fault,
            count: Some(count),
            probability: None,
        });
    }

    /// `fault` on each request with probability `p`.
    pub fn inject_probability(&self, fault: Fault, p: f64) {
        self.inject(FaultRule {
            fault,
            count: None,
            probability: Some(p),
        });
    }

    pub fn clear_faults(&self) {
        self.faults.lock().expect("faults poisoned").clear();
    }

    /// The fault for this request, if any (consumes one count).
    pub fn next_fault(&self) -> Option<Fault> {
        let mut faults = self.faults.lock().expect("faults poisoned");
        let mut rng = rand::rng();
        let mut hit = None;
        for (i, rule) in faults.iter_mut().enumerate() {
            if let Some(p) = rule.probability {
                if rng.random_bool(p.clamp(0.0, 1.0)) {
                    return Some(rule.fault.clone());
                }
                continue;
            }
            match rule.count {
                Some(0) => continue,
                Some(n) => {
                    rule.count = Some(n - 1);
                    hit = Some((i, n - 1 == 0, rule.fault.clone()));
                    break;
                }
                None => return Some(rule.fault.clone()),
            }
        }
        let (i, exhausted, fault) = hit?;
        if exhausted {
            faults.remove(i);
        }
        Some(fault)
    }

    pub fn set_validator(&self, message_type: impl Into<String>, v: Validator) {
        self.validators
            .write()
            .expect("validators poisoned")
            .insert(message_type.into(), v);
    }

    /// Plugs in the hub's schema for every message type of this simulator's system;
    /// returns how many were plugged in.
    pub fn use_schemas(&self, registry: &SchemaRegistry) -> usize {
        let mut n = 0;
        for schema in registry.iter().filter(|s| s.system == self.system) {
            self.set_validator(
                schema.message_type.clone(),
                schema_validator(Arc::clone(schema)),
            );
            n += 1;
        }
        n
    }

    /// The plugged-in validator's verdict, or `None` when there is none for the type.
    pub fn validate(&self, message_type: &str, payload: &[u8]) -> Option<Result<(), Vec<String>>> {
        let v = self
            .validators
            .read()
            .expect("validators poisoned")
            .get(message_type)
            .cloned()?;
        Some(v(payload))
    }

    /// Registers an idempotency key; `true` when it was seen before.
    pub fn seen_before(&self, key: Option<&str>) -> bool {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return false;
        };
        let dup = !self
            .keys
            .lock()
            .expect("keys poisoned")
            .insert(key.to_string());
        if dup {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        dup
    }

    /// Appends to the log.
    pub fn record(
        &self,
        endpoint: &str,
        message_type: &str,
        headers: &HeaderMap,
        body: &[u8],
        duplicate: bool,
        outcome: impl Into<String>,
    ) {
        let shown: BTreeMap<String, String> = headers
            .iter()
            .map(|(k, v)| {
                let name = k.as_str().to_string();
                let value = if self.secret_headers.contains(&name) {
                    "***".to_string()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (name, value)
            })
            .collect();
        let entry = Received {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at: Utc::now(),
            endpoint: endpoint.to_string(),
            message_type: message_type.to_string(),
            idempotency_key: header(headers, "idempotency-key"),
            headers: shown,
            body: String::from_utf8_lossy(body).into_owned(),
            duplicate,
            outcome: outcome.into(),
        };
        self.log.lock().expect("log poisoned").push(entry);
    }

    /// Everything received, in order.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log poisoned").clone()
    }

    /// Accepted, non-duplicate messages, in order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.outcome == "accepted" && !r.duplicate)
            .collect()
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// The counters. Each lock is taken on its own and released before the next
    /// (`std::sync::Mutex` is not re-entrant: holding the log lock while calling
    /// [`Self::accepted`], which locks it again, deadlocked `GET /_sim/stats`).
    pub fn stats(&self) -> Stats {
        let (received, accepted) = {
            let log = self.log.lock().expect("log poisoned");
            let accepted = log
                .iter()
                .filter(|r| r.outcome == "accepted" && !r.duplicate)
                .count();
            (log.len(), accepted)
        };
        let pending_faults = self.faults.lock().expect("faults poisoned").len();
        Stats {
            received,
            accepted,
            duplicates: self.duplicates(),
            pending_faults,
        }
    }

    /// Applies the transport-level part of the next fault. `Ok(None)`: go on
    /// normally; `Ok(Some(fault))`: a protocol fault for the simulator to apply;
    /// `Err(response)`: answer this now.
    pub async fn apply_fault(&self) -> Result<Option<Fault>, Response> {
        match self.next_fault() {
            None => Ok(None),
            Some(Fault::Latency { ms }) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(None)
            }
            Some(Fault::Hang) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = self.shutdown.cancelled() => {}
                }
                Err(StatusCode::GATEWAY_TIMEOUT.into_response())
            }
            Some(Fault::Status {
                status,
                retry_after_secs,
            }) => {
                let code =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut r = (code, format!("simulated HTTP {status}")).into_response();
                if let Some(s) = retry_after_secs {
                    r.headers_mut().insert("retry-after", s.into());
                }
                Err(r)
            }
            Some(other) => Ok(Some(other)),
        }
    }
}

/// A header as text.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A running simulator.
pub struct SimServer {
    url: String,
    core: Arc<SimCore>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn core(&self) -> &Arc<SimCore> {
        &self.core
    }

    /// Stops accepting, ends hanging requests, waits for the server task.
    pub async fn shutdown(mut self) {
        self.core.shutdown.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.core.shutdown.cancel();
    }
}

async fn post_fault(State(core): State<Arc<SimCore>>, Json(rule): Json<FaultRule>) -> StatusCode {
    core.inject(rule);
    StatusCode::NO_CONTENT
}

async fn delete_faults(State(core): State<Arc<SimCore>>) -> StatusCode {
    core.clear_faults();
    StatusCode::NO_CONTENT
}

async fn get_log(State(core): State<Arc<SimCore>>) -> Json<Vec<Received>> {
    Json(core.received())
}

async fn get_stats(State(core): State<Arc<SimCore>>) -> Json<Stats> {
    Json(core.stats())
}

/// Binds `127.0.0.1:0`, adds the control API, and serves until shut down.
pub(crate) async fn serve(app: Router, core: Arc<SimCore>) -> Result<SimServer, ConnectorError> {
    let control = Router::new()
        .route(
            "/_sim/faults",
            axum::routing::post(post_fault).delete(delete_faults),
        )
        .route("/_sim/log", get(get_log))
        .route("/_sim/stats", get(get_stats))
        .with_state(Arc::clone(&core));
    let app = control
        .merge(app)
        .layer(axum::extract::DefaultBodyLimit::max(8 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| {
            ConnectorError::io(format!("simulator {}: binding 127.0.0.1:0", core.system), e)
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConnectorError::io("simulator local address", e))?;
    let token = core.shutdown.clone();
    let system = core.system;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
        {
            tracing::warn!(simulator = system, error = %e, "simulator stopped with an error");
        }
    });
    tracing::info!(simulator = system, %addr, "simulator listening");
    Ok(SimServer {
        url: format!("http://{addr}"),
        core,
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_and_probability_zero_never_fires() {
        let core = SimCore::new("t", &[]);
        core.inject_probability(Fault::Hang, 0.0);
        core.inject_next(
            Fault::Status {
                status: 503,
                retry_after_secs: None,
            },
            2,
        );
        assert!(matches!(core.next_fault(), Some(Fault::Status { .. })));
        assert!(matches!(core.next_fault(), Some(Fault::Status { .. })));
        assert_eq!(core.next_fault(), None);
        core.inject_probability(Fault::ExpireAuth, 1.0);
        assert_eq!(core.next_fault(), Some(Fault::ExpireAuth));
    }

    /// `stats()` once deadlocked (log lock held while `accepted()` took it again).
    /// It runs on a plain thread with a deadline, so a regression fails instead of hanging.
    #[test]
    fn stats_counts_without_deadlocking() {
        let core = SimCore::new("t", &[]);
        let h = HeaderMap::new();
        core.record("/x", "t", &h, b"{}", false, "accepted");
        core.record("/x", "t", &h, b"{}", true, "accepted");
        core.record("/x", "t", &h, b"{}", false, "rejected: bad");
        core.inject_next(Fault::Hang, 1);
        assert!(core.seen_before(Some("k")) || core.seen_before(Some("k")));
        let (tx, rx) = std::sync::mpsc::channel();
        let c = Arc::clone(&core);
        std::thread::spawn(move || {
            let _ = tx.send(c.stats());
        });
        let s = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("SimCore::stats() did not return within 5 s: a lock is taken twice");
        assert_eq!(
            (s.received, s.accepted, s.duplicates, s.pending_faults),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn duplicates_and_redacted_headers() {
        let core = SimCore::new("t", &["x-api-key"]);
        assert!(!core.seen_before(Some("k1")));
        assert!(core.seen_before(Some("k1")));
        assert!(!core.seen_before(None));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "topsecret".parse().unwrap());
        h.insert("idempotency-key", "k1".parse().unwrap());
        core.record("/x", "t", &h, b"{}", true, "accepted");
        let r = &core.received()[0];
        assert_eq!(r.headers["x-api-key"], "***");
        assert_eq!(r.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(core.duplicates(), 1);
        assert!(core.accepted().is_empty());
    }
}
