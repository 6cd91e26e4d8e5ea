//! Shared harness of the end-to-end scenario tests.
//!
//! A scenario runs the real thing: the five partner simulators
//! (`sim`) in the test process, and the built `lienthong serve` binary
//! as a child process, with a temporary config that points every connector at a
//! simulator, reads every secret from a file, keeps its data in a temporary
//! directory and uses short retry settings. The test talks to the hub over HTTP on
//! loopback, exactly as a partner would, and asserts on what the simulators
//! received.
//!
//! Backends: [`Backend::Embedded`] (SQLite store and queue, always available) and
//! [`Backend::RabbitPg`] (PostgreSQL store + RabbitMQ queue, in a schema and a
//! queue prefix of its own, removed at the end).
#![allow(dead_code)]

pub mod flows;
pub mod partners;
/// The PostgreSQL test lock (held shared while a scenario's schema exists).
#[path = "../../router/tests/support/pg.rs"]
mod pg;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use partners::Partners;

/// The repository root (mappings/, schemas/, tests/fixtures/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `tests/fixtures/inbound/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures/inbound").join(rel)
}

/// Which store and queue the hub runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    /// PostgreSQL schema and RabbitMQ queue prefix (both unique per test).
    RabbitPg {
        schema: String,
        /// Keeps the PostgreSQL fault tests from restarting the server meanwhile.
        lock: PgLock,
    },
}

/// The shared PostgreSQL test lock, held while any clone of the backend lives.
#[derive(Debug, Clone)]
pub struct PgLock(#[allow(dead_code)] std::sync::Arc<std::fs::File>);

impl Backend {
    /// A RabbitMQ + PostgreSQL backend with a fresh schema, or a panic saying how to start the services.
    pub async fn rabbit_pg(test: &str) -> Backend {
        use sqlx::Connection;
        let lock = PgLock(std::sync::Arc::new(pg::shared_lock()));
        let schema = format!(
            "lt_{test}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {PG_ADMIN} ({e}); start it (e.g. `service postgresql start`) with trust auth for user postgres and a database `test`")
        });
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .expect("creating the test schema");
        if let Err(e) =
            lapin::Connection::connect(RABBIT, lapin::ConnectionProperties::default()).await
        {
            panic!("RabbitMQ is not reachable at {RABBIT} ({e}); start it (e.g. `service rabbitmq-server start`)");
        }
        Backend::RabbitPg { schema, lock }
    }

    fn yaml(&self, dir: &Path) -> String {
        match self {
            Backend::Embedded => format!("store:\n  url: sqlite://{}/hub.db?mode=rwc\n  data_dir: {}\n", dir.display(), dir.display()),
            Backend::RabbitPg { schema, .. } => format!(
                "store:\n  url: {PG_ADMIN}?options=-c%20search_path%3D{schema}\n  data_dir: {}\nqueue:\n  backend: rabbitmq\n  rabbitmq:\n    url: {RABBIT}\n    prefix: {schema}\n",
                dir.display()
            ),
        }
    }

    /// Drops the schema and deletes the queues and exchanges named with the test's prefix.
    pub async fn cleanup(&self) {
        use sqlx::Connection;
        let Backend::RabbitPg { schema, .. } = self else {
            return;
        };
        if let Ok(mut conn) = sqlx::PgConnection::connect(PG_ADMIN).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut conn)
                .await;
        }
        let names = |what: &str| -> Vec<String> {
            std::process::Command::new("rabbitmqctl")
                .args([what, "--quiet", "--no-table-headers", "name"])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::trim)
                        .filter(|n| n.starts_with(schema.as_str()))
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let Ok(conn) =
            lapin::Connection::connect(RABBIT, lapin::ConnectionProperties::default()).await
        else {
            return;
        };
        let Ok(ch) = conn.create_channel().await else {
            return;
        };
        for q in names("list_queues") {
            let _ = ch
                .queue_delete(
                    q.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
        for x in names("list_exchanges") {
            let _ = ch
                .exchange_delete(
                    x.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
        }
    }
}

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const RABBIT: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A running `lienthong serve`, killed when dropped.
pub struct Hub {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    client: reqwest::Client,
}

/// What the hub answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// An auditor token every test hub accepts: reading messages needs one.
pub const AUDIT_TOKEN: &str = "test-auditor-read-token";
/// `tokens:` with [`AUDIT_TOKEN`] (its SHA-256), added unless a test configures its own.
pub const AUDIT_TOKENS_YAML: &str = "tokens:\n  - { name: test-auditor, role: auditor, sha256: fae9a907ebbd0dd69adcf6d3446a8fd891cb2df385629d2dc290280198e9685c }\n";

impl Hub {
    /// Writes the config (backend + `connectors:` from the partners + `extra` YAML) and starts the hub.
    pub async fn start(dir: &Path, backend: &Backend, connectors_yaml: &str, extra: &str) -> Hub {
        let root = root();
        let config = format!(
            "server:\n  listen: 127.0.0.1:0\n  drain_deadline: 2s\n{backend}paths:\n  mappings: {m}\n  schemas: {s}\n\
             intake:\n  allow_unauthenticated: true\n  rate_limit: {{ per_second: 5000, burst: 5000 }}\n\
             destination_defaults:\n  timeout: 5s\n  max_attempts: 100\n  backoff: {{ initial: 50ms, max: 400ms, multiplier: 2.0, jitter: 0.1 }}\n\
             {extra}{tokens}connectors:\n{connectors_yaml}logging:\n  level: info\n",
            tokens = if extra.contains("tokens:") { "" } else { AUDIT_TOKENS_YAML },
            backend = backend.yaml(dir),
            m = root.join("mappings").display(),
            s = root.join("schemas").display(),
        );
        let path = dir.join("lienthong.yaml");
        std::fs::write(&path, &config).expect("writing the test config");
        let log = dir.join("hub.log");
        let stderr = std::fs::File::create(&log).expect("creating the hub log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .args(["serve", "--config"])
            .arg(&path)
            .current_dir(&root)
            .env("RUST_LOG", "info")
            .env_remove("LIENTHONG_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .expect("starting the lienthong binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(a) = line.strip_prefix("lienthong listening on ") {
                    return Some(a.trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(base) = addr else {
            let _ = child.kill().await;
            panic!(
                "the hub did not start; its log:\n{}\nconfig:\n{config}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Hub {
            child,
            base,
            log,
            client: reqwest::Client::new(),
        }
    }

    /// The hub's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `POST /inbound/{system}/{message_type}`.
    pub async fn post(
        &self,
        system: &str,
        message_type: &str,
        content_type: &str,
        file_name: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        self.post_with(system, message_type, content_type, file_name, None, body)
            .await
    }

    async fn post_with(
        &self,
        system: &str,
        message_type: &str,
        content_type: &str,
        file_name: Option<&str>,
        key: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}/inbound/{system}/{message_type}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(f) = file_name {
            req = req.header("x-file-name", f);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.expect("the hub answers");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// Posts a fixture file as its partner would (content type from the extension, file name header).
    pub async fn post_fixture(&self, system: &str, message_type: &str, path: &Path) -> Answer {
        self.post_fixture_keyed(system, message_type, path, None)
            .await
    }

    /// [`Hub::post_fixture`] with an `Idempotency-Key` header.
    pub async fn post_fixture_keyed(
        &self,
        system: &str,
        message_type: &str,
        path: &Path,
        key: Option<&str>,
    ) -> Answer {
        let ct = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => "application/json",
            Some("xml") => "text/xml; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        let name = path.file_name().and_then(|n| n.to_str());
        let body = std::fs::read(path)
            .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()));
        self.post_with(system, message_type, ct, name, key, body)
            .await
    }

    /// Like [`Hub::post_fixture`], asserting 202.
    pub async fn accept(&self, system: &str, message_type: &str, rel: &str) -> String {
        let a = self.post_fixture(system, message_type, &fixture(rel)).await;
        assert_eq!(a.status, 202, "{rel} was not accepted: {}", a.body);
        a.body["id"].as_str().expect("id").to_string()
    }

    /// `GET /api/messages/{id}/trail`.
    pub async fn trail(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/api/messages/{id}/trail", self.base))
            .bearer_auth(AUDIT_TOKEN)
            .send()
            .await
            .expect("trail")
            .json()
            .await
            .expect("trail JSON")
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// Polls `check` until it returns `Ok`, or panics after `timeout` with its last `Err` and the hub log tail.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    hub: Option<&Hub>,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let t0 = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(why) if t0.elapsed() > timeout => {
                let log = hub.map(|h| h.log_text()).unwrap_or_default();
                let tail: Vec<&str> = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!("timed out after {timeout:?} waiting for {what}: {why}\n--- hub log (tail) ---\n{}", tail.join("\n"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// [`wait_for`] with an async check (e.g. one that asks the hub over HTTP).
pub async fn wait_for_async<T, F, Fut>(what: &str, timeout: Duration, hub: &Hub, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let t0 = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) if t0.elapsed() > timeout => {
                panic!(
                    "timed out after {timeout:?} waiting for {what}: {why}\n--- hub log ---\n{}",
                    hub.log_text()
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Installs the TLS provider reqwest needs (idempotent).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
