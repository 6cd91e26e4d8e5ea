//! Black-box load test: PostgreSQL restarted mid-load under a hub on PostgreSQL +
//! RabbitMQ. Written from the public behaviour only (README, docs/SCALE-OUT.md,
//! the example config and the intake HTTP API): intake and delivery must resume
//! by themselves, with no loss and per-dossier order kept.
//!
//! Written by a separate session that saw only those documents and issue 21,
//! not the hub's code or its other fault tests (`tests/scale_faults.rs`): the
//! issue asks for "a load test written by someone else". It holds the
//! PostgreSQL test lock exclusively (`pg::PgOutage`), like the other fault tests.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

#[path = "../router/tests/support/pg.rs"]
mod pg;
#[path = "../router/tests/support/rabbit.rs"]
mod rabbit;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

const CLIENTS: usize = 6;
const DOSSIERS_PER_CLIENT: usize = 2;
const LOAD: Duration = Duration::from_secs(15);
const RESTART_AT: Duration = Duration::from_secs(4);
const PACE: Duration = Duration::from_millis(20);

fn say(msg: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "[pg_restart_blackbox] {}", msg.as_ref());
}

/// One request the sink got, in arrival order.
struct Arrival {
    at: Instant,
    idempotency_key: Option<String>,
    body: serde_json::Value,
}

type Arrivals = Arc<Mutex<Vec<Arrival>>>;

async fn start_sink() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let rec = arrivals.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let rec = rec.clone();
        async move {
            let body = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into())
            });
            let idempotency_key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            rec.lock().unwrap().push(Arrival {
                at: Instant::now(),
                idempotency_key,
                body,
            });
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/sink"), arrivals)
}

/// The hub process; killed (and reaped) when dropped.
struct Hub {
    child: Child,
    stderr: PathBuf,
}

impl Hub {
    fn stderr_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "{msg}\n--- hub stderr (last 80 lines) ---\n{}",
            self.stderr_tail(80)
        );
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, port: u16, store_url: &str, amqp_url: &str, sink_url: &str) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub");
    let yaml = format!(
        r#"server:
  listen: 127.0.0.1:{port}
  drain_deadline: 2s
store:
  data_dir: {data}
  url: "{store_url}"
queue:
  backend: rabbitmq
  rabbitmq:
    url: "{amqp_url}"
    queue_type: classic
paths:
  mappings: {mappings}
  schemas: {schemas}
  routes: {routes}
intake:
  allow_unauthenticated: true
  rate_limit: {{ per_second: 100000, burst: 100000 }}
destinations:
  sink:
    url: "{sink_url}"
    timeout: 5s
    # The sink is ours and fast: lift the default partner throttle (50/s) so
    # the backlog drains in seconds rather than a minute.
    rate_limit: {{ per_second: 5000, burst: 5000 }}
    concurrency: 32
    max_attempts: 1000
    backoff: {{ initial: 100ms, max: 1s }}
logging:
  level: info
"#,
        data = dir.join("data").display(),
        mappings = fixtures.join("mappings").display(),
        schemas = fixtures.join("schemas").display(),
        routes = fixtures.join("mappings/routes.yaml").display(),
    );
    let path = dir.join("lienthong.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    /// (msg_id, code, seq, when the 202 arrived, when the accepted attempt was sent)
    accepted: Vec<(String, String, u64, Instant, Instant)>,
    /// (status or "conn error", when)
    refused: Vec<(String, Instant)>,
}

async fn client(
    n: usize,
    base: String,
    http: reqwest::Client,
    start: Instant,
    run_id: String,
) -> Result<ClientReport, String> {
    let mut report = ClientReport::default();
    let codes: Vec<String> = (0..DOSSIERS_PER_CLIENT)
        .map(|d| format!("BB-{run_id}-{n}-{d}"))
        .collect();
    let mut seqs = [0u64; DOSSIERS_PER_CLIENT];
    let url = format!("{base}/inbound/portal/dossier.event");
    let mut i = 0usize;
    while start.elapsed() < LOAD {
        let d = i % DOSSIERS_PER_CLIENT;
        i += 1;
        let code = &codes[d];
        let seq = seqs[d];
        let msg_id = format!("{code}-{seq}");
        let body =
            serde_json::json!({ "code": code, "seq": seq, "msg_id": msg_id, "note": "blackbox" });
        // Retry the same message, same key, until accepted (bounded well past the load).
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let sent = Instant::now();
            let res = http
                .post(&url)
                .header("Idempotency-Key", &msg_id)
                .json(&body)
                .send()
                .await;
            match res {
                Ok(r) if r.status() == StatusCode::ACCEPTED => {
                    report
                        .accepted
                        .push((msg_id.clone(), code.clone(), seq, Instant::now(), sent));
                    break;
                }
                Ok(r)
                    if r.status() == StatusCode::SERVICE_UNAVAILABLE
                        || r.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    let wait = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .map(Duration::from_secs_f64)
                        .unwrap_or(Duration::from_millis(500))
                        .min(Duration::from_secs(1));
                    report
                        .refused
                        .push((r.status().as_u16().to_string(), Instant::now()));
                    tokio::time::sleep(wait).await;
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(format!("client {n}: {msg_id} answered {status}: {text}"));
                }
                Err(e) => {
                    report
                        .refused
                        .push((format!("conn error: {e}"), Instant::now()));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            if Instant::now() > give_up {
                return Err(format!(
                    "client {n}: {msg_id} not accepted within 60 s of retries"
                ));
            }
        }
        seqs[d] += 1;
        tokio::time::sleep(PACE).await;
    }
    Ok(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_restart_mid_load_intake_and_delivery_resume() {
    let test_start = Instant::now();
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Declared first so it drops last: the server is running again when it goes.
    let outage = tokio::task::block_in_place(pg::PgOutage::begin);
    let schema = outage.schema("blackbox");
    let vhost = rabbit::Vhost::create("blackbox");

    let (sink_url, arrivals) = start_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &schema.url(), &vhost.url(), &sink_url);
    let stderr_path = dir.path().join("hub.stderr");
    let stdout_path = dir.path().join("hub.stdout");
    let child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawning the hub");
    let mut hub = Hub {
        child,
        stderr: stderr_path,
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Ready within 30 s.
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        if let Ok(Some(status)) = hub.child.try_wait() {
            hub.fail(&format!("the hub exited before it was ready: {status}"));
        }
        if Instant::now() > ready_deadline {
            hub.fail("the hub was not ready (GET /readyz 200) within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say(format!("hub ready after {:?}", test_start.elapsed()));

    // Load.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let load_start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                n,
                base.clone(),
                http.clone(),
                load_start,
                run_id.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(RESTART_AT).await;
    let restart_begin = Instant::now();
    tokio::task::block_in_place(|| outage.ctl("restart"));
    let restart_returned = Instant::now();
    tokio::task::block_in_place(|| outage.wait_ready(Duration::from_secs(30)));
    let pg_back = Instant::now();
    say(format!(
        "restart at {:?} into the load; pg_ctlcluster restart took {:?}; ready {:?} after it returned",
        restart_begin - load_start,
        restart_returned - restart_begin,
        pg_back - restart_returned
    ));

    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut client_errors = Vec::new();
    for c in clients {
        match c.await.expect("client task panicked") {
            Ok(r) => {
                accepted.extend(r.accepted);
                refused.extend(r.refused);
            }
            Err(e) => client_errors.push(e),
        }
    }
    let load_end = Instant::now();
    if !client_errors.is_empty() {
        hub.fail(&format!("clients failed: {client_errors:#?}"));
    }

    // (a) accepted within 5 s after PostgreSQL was back.
    let first_202_after = accepted
        .iter()
        .filter(|a| a.3 >= pg_back)
        .map(|a| a.3 - pg_back)
        .min();
    let first_202_sent_after = accepted
        .iter()
        .filter(|a| a.4 >= pg_back)
        .map(|a| a.3 - pg_back)
        .min();
    let refused_during: Vec<_> = refused
        .iter()
        .map(|r| r.1.saturating_duration_since(load_start))
        .collect();
    let mut refused_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, _) in &refused {
        let key = if kind.starts_with("conn error") {
            "conn error".to_string()
        } else {
            kind.clone()
        };
        *refused_kinds.entry(key).or_default() += 1;
    }
    say(format!(
        "accepted {} messages; {} refused attempts {:?}, first at {:?}, last at {:?} into the load",
        accepted.len(),
        refused.len(),
        refused_kinds,
        refused_during.iter().min(),
        refused_during.iter().max()
    ));
    if let Some((kind, _)) = refused.iter().find(|r| r.0.starts_with("conn error")) {
        say(format!("first connection error: {kind}"));
    }
    say(format!(
        "first 202 after PostgreSQL was back: {first_202_after:?} (of a request sent after it: {first_202_sent_after:?})"
    ));
    let slowest_202 = accepted.iter().map(|a| a.3 - a.4).max();
    let mut done: Vec<Instant> = accepted.iter().map(|a| a.3).collect();
    done.sort();
    let longest_gap = done
        .windows(2)
        .map(|w| (w[1] - w[0], w[0].saturating_duration_since(load_start)))
        .max();
    say(format!(
        "slowest accepted request: {slowest_202:?}; longest gap between 202s: {longest_gap:?} (gap, at into the load)"
    ));
    match first_202_after {
        Some(d) if d <= Duration::from_secs(5) => {}
        other => hub.fail(&format!(
            "no 202 within 5 s after PostgreSQL was back (first: {other:?})"
        )),
    }

    // (b) every accepted message reaches the sink.
    let wanted: HashSet<String> = accepted.iter().map(|a| a.0.clone()).collect();
    let msg_id_of = |a: &Arrival| {
        a.body
            .get("msg_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let delivery_deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let got: HashSet<String> = arrivals
            .lock()
            .unwrap()
            .iter()
            .filter_map(msg_id_of)
            .collect();
        let missing: Vec<String> = wanted.difference(&got).cloned().collect();
        if missing.is_empty() || Instant::now() > delivery_deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_delivered = Instant::now();
    let arrivals = std::mem::take(&mut *arrivals.lock().unwrap());
    let last_arrival = arrivals.iter().map(|a| a.at).max();
    let mut per_msg: HashMap<String, usize> = HashMap::new();
    for a in &arrivals {
        if let Some(id) = msg_id_of(a) {
            *per_msg.entry(id).or_default() += 1;
        }
    }
    let duplicates: usize = per_msg.values().map(|n| n - 1).sum();
    let keys: HashSet<&str> = arrivals
        .iter()
        .filter_map(|a| a.idempotency_key.as_deref())
        .collect();
    let no_key = arrivals
        .iter()
        .filter(|a| a.idempotency_key.is_none())
        .count();
    say(format!(
        "sink: {} requests, {} distinct messages, {} duplicates, {} distinct Idempotency-Keys, {} without one; \
         missing {}; last arrival {:?} after PostgreSQL was back, {:?} after the load ended; all checked {:?} after the load",
        arrivals.len(),
        per_msg.len(),
        duplicates,
        keys.len(),
        no_key,
        missing.len(),
        last_arrival.map(|t| t.saturating_duration_since(pg_back)),
        last_arrival.map(|t| t.saturating_duration_since(load_end)),
        all_delivered - load_end
    ));
    if !missing.is_empty() {
        let mut sample = missing.clone();
        sample.sort();
        sample.truncate(20);
        hub.fail(&format!(
            "{} of {} accepted messages never reached the sink within 90 s, e.g. {sample:?}",
            missing.len(),
            wanted.len()
        ));
    }
    let unexpected: Vec<&String> = per_msg.keys().filter(|k| !wanted.contains(*k)).collect();
    if !unexpected.is_empty() {
        // Possible only for a message whose 202 the client never saw; every
        // client retried until accepted, so this would be a surprise.
        say(format!(
            "sink got {} messages no client saw accepted: {:?}",
            unexpected.len(),
            &unexpected[..unexpected.len().min(10)]
        ));
    }

    // (c) per dossier, first arrivals in increasing sequence order.
    let mut first_seen: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    for a in &arrivals {
        let code = a.body.get("code").and_then(|v| v.as_str());
        let seq = a.body.get("seq").and_then(|v| v.as_u64());
        if let (Some(code), Some(seq)) = (code, seq) {
            if seen.insert((code.to_owned(), seq)) {
                first_seen.entry(code.to_owned()).or_default().push(seq);
            }
        }
    }
    let mut disorder = Vec::new();
    for (code, seqs) in &first_seen {
        if let Some(w) = seqs.windows(2).find(|w| w[0] >= w[1]) {
            disorder.push(format!("{code}: {} arrived after {}", w[1], w[0]));
        }
    }
    say(format!(
        "{} dossiers; order violations: {}",
        first_seen.len(),
        disorder.len()
    ));
    if !disorder.is_empty() {
        hub.fail(&format!("per-dossier order broken: {disorder:?}"));
    }
    let mut at: Vec<Instant> = arrivals.iter().map(|a| a.at).collect();
    at.sort();
    let longest_delivery_gap = at
        .windows(2)
        .filter(|w| w[1] <= load_end)
        .map(|w| (w[1] - w[0], w[0].saturating_duration_since(load_start)))
        .max();
    say(format!(
        "longest gap between sink arrivals during the load: {longest_delivery_gap:?} (gap, at into the load)"
    ));
    let log = std::fs::read_to_string(&hub.stderr).unwrap_or_default();
    let notable: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    say(format!("hub logged {} WARN/ERROR lines", notable.len()));
    for l in notable.iter().take(15) {
        say(format!(
            "  hub: {}",
            l.chars().take(400).collect::<String>()
        ));
    }
    say(format!("test took {:?}", test_start.elapsed()));

    drop(hub);
    drop(vhost);
    drop(schema);
    drop(outage);
}
