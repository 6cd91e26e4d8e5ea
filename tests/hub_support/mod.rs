//! Shared helpers of the hub end-to-end tests: a recording HTTP sink, and
//! spawning the built `lienthong` binary with a temporary config.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub idempotency_key: String,
    pub correlation_id: String,
    pub body: Value,
    pub status: u16,
}

/// Decides the sink's answer for a request body; `None` = 200.
pub type Fault = Arc<dyn Fn(&Value) -> Option<StatusCode> + Send + Sync>;

/// The sink's shared state: what it received, and how it answers.
type SinkState = (Arc<Mutex<Vec<Hit>>>, Option<Fault>);

#[derive(Clone)]
pub struct Sink {
    pub url: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
}

/// Installs the TLS provider reqwest needs (the binary does the same in main).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Sink {
    pub async fn start(fault: Option<Fault>) -> Sink {
        init();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let state = (hits.clone(), fault);
        let app =
            axum::Router::new()
                .route(
                    "/sink",
                    post(
                        |State((hits, fault)): State<SinkState>,
                         headers: HeaderMap,
                         body: String| async move {
                            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                            let status = fault
                                .as_ref()
                                .and_then(|f| f(&body))
                                .unwrap_or(StatusCode::OK);
                            let h = |n: &str| {
                                headers
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string()
                            };
                            hits.lock().unwrap().push(Hit {
                                at: Instant::now(),
                                idempotency_key: h("idempotency-key"),
                                correlation_id: h("x-correlation-id"),
                                body,
                                status: status.as_u16(),
                            });
                            (status, "{\"ok\":true}")
                        },
                    ),
                )
                .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink {
            url: format!("http://{addr}/sink"),
            hits,
        }
    }

    /// Successful (2xx) hits.
    pub fn delivered(&self) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.status < 300)
            .cloned()
            .collect()
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[path = "../fs_support/mod.rs"]
mod fs_support;
#[allow(unused_imports)] // each test crate uses some of them
pub use fs_support::{copy_dir, repo};

/// `intake:` section for tests that do not exercise authentication or rate limits.
pub const OPEN_INTAKE: &str =
    "intake:\n  allow_unauthenticated: true\n  rate_limit: { per_second: 100000, burst: 100000 }\n";

/// An auditor token every test hub accepts: reading messages needs one.
pub const AUDIT_TOKEN: &str = "test-auditor-read-token";
/// `tokens:` with [`AUDIT_TOKEN`] (its SHA-256), added unless a test configures its own.
pub const AUDIT_TOKENS_YAML: &str = "tokens:\n  - { name: test-auditor, role: auditor, sha256: fae9a907ebbd0dd69adcf6d3446a8fd891cb2df385629d2dc290280198e9685c }\n";

/// Writes a config for the hub fixtures (`tests/fixtures/hub`) into `dir`.
pub fn write_config(dir: &Path, port: u16, sink_url: &str, extra: &str) -> PathBuf {
    let fx = repo().join("tests/fixtures/hub");
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:{port}\n  drain_deadline: 2s\nstore:\n  data_dir: {data}\npaths:\n  mappings: {m}\n  schemas: {s}\n\
         destinations:\n  sink:\n    url: \"{sink_url}\"\n    timeout: 2s\n    rate_limit: {{ per_second: 5000, burst: 5000 }}\n    concurrency: 32\n    max_attempts: 20\n    backoff: {{ initial: 100ms, max: 400ms, multiplier: 2.0, jitter: 0.0 }}\n{extra}{tokens}",
        tokens = if extra.contains("tokens:") { "" } else { AUDIT_TOKENS_YAML },
        data = dir.join("data").display(),
        m = fx.join("mappings").display(),
        s = fx.join("schemas").display(),
    );
    let path = dir.join("lienthong.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A running `lienthong serve`; killed (SIGKILL) when dropped.
pub struct HubProcess {
    pub child: Child,
    pub base: String,
}

impl HubProcess {
    pub async fn spawn(config: &Path, port: u16, envs: &[(&str, &str)]) -> HubProcess {
        init();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lienthong"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawning the lienthong binary");
        let hub = HubProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", hub.base)).send().await {
                if r.status().is_success() {
                    return hub;
                }
            }
            assert!(
                Instant::now() < deadline,
                "lienthong did not become ready on port {port} within 20s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub async fn post_json(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut rb = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("request to the hub");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// Sends a body the hub will refuse before reading it all. The hub answers 413 and
/// closes the connection while the client may still be writing, so an HTTP client
/// library can report a broken pipe instead of the answer: write with a raw socket,
/// ignore write errors, and read whatever the hub answered.
pub async fn send_oversize(
    base: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let _ = conn.write_all(&body).await; // may fail once the hub has answered and closed
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to an oversize body: {answer:?}"));
    (status, answer)
}

/// `GET base+path` with the auditor token; the answer must be 200.
pub async fn api_get(base: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(AUDIT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// The states of message `id`'s deliveries, in order, as the audit API gives them.
pub async fn delivery_states(base: &str, id: &str) -> Vec<String> {
    api_get(base, &format!("/api/v1/messages/{id}")).await["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["state"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (20 s at most) until message `id`'s deliveries are in the states `want`.
pub async fn until_states(base: &str, id: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = delivery_states(base, id).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "message {id}: deliveries are {now:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in to the console with the auditor token: the `lt_session=…` pair to send back.
pub async fn console_session(base: &str) -> String {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={AUDIT_TOKEN}&lang=en"))
        .send()
        .await
        .unwrap();
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .find(|c| c.starts_with("lt_session=") && c.len() > "lt_session=".len())
        .expect("signing in sets a session cookie")
}
