//! Shared helpers for the audit tests: fresh stores on SQLite and PostgreSQL,
//! direct SQL access for tampering, and a seeded history that looks like intake's.
#![allow(dead_code)]

use router::audit::TrailEvent;
use router::store::{
    now_ms, NewDelivery, NewMessage, RejectedMessage, SettleOutcome, Settlement, Store,
    StoreOptions,
};
use serde_json::json;
use sqlx::AnyPool;

/// The PostgreSQL test schema shared with the store and queue contract suites.
#[path = "../../router/tests/support/pg.rs"]
mod pg;
use pg::PgSchema;

/// A store plus what keeps it alive and a raw pool for tampering.
pub struct Db {
    pub store: Store,
    pub url: String,
    pub raw: AnyPool,
    _dir: Option<tempfile::TempDir>,
    /// Dropped (with the schema) after `store` and `raw`, which are declared first.
    _schema: Option<PgSchema>,
}

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("lienthong.db").display()
        );
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        let raw = AnyPool::connect(&url).await.unwrap();
        Db {
            store,
            url,
            raw,
            _dir: Some(dir),
            _schema: None,
        }
    }

    pub async fn postgres() -> Db {
        let schema = PgSchema::create("audit");
        let url = schema.url();
        let store = Store::open(&url, StoreOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}\nIs PostgreSQL running? Start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`"));
        let raw = AnyPool::connect(&url).await.unwrap();
        Db {
            store,
            url,
            raw,
            _dir: None,
            _schema: Some(schema),
        }
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::query(sql)
            .execute(&self.raw)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Reads one BLOB/BYTEA or TEXT column as bytes.
    pub async fn bytes(&self, sql: &str) -> Vec<u8> {
        use sqlx::Row;
        let row = sqlx::query(sql)
            .fetch_one(&self.raw)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.try_get::<Vec<u8>, _>(0)
            .or_else(|_| row.try_get::<String, _>(0).map(String::into_bytes))
            .unwrap()
    }

    pub async fn text(&self, sql: &str) -> String {
        use sqlx::Row;
        let row = sqlx::query(sql)
            .fetch_one(&self.raw)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.try_get::<String, _>(0).unwrap()
    }

    pub async fn set_bytes(&self, sql: &str, v: Vec<u8>) {
        sqlx::query(sql)
            .bind(v)
            .execute(&self.raw)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn set_text(&self, sql: &str, v: String) {
        sqlx::query(sql)
            .bind(v)
            .execute(&self.raw)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Flips the lowest bit of the byte in the middle.
pub fn flip(mut b: Vec<u8>) -> Vec<u8> {
    let i = b.len() / 2;
    b[i] ^= 1;
    b
}

/// An accepted message with events shaped like intake's (received, routed, mapped).
pub fn message(id: &str, dossier: &str, at: i64, destinations: &[&str]) -> NewMessage {
    let raw = format!(r#"{{"MaHoSo":"{dossier}","TrangThaiHoSo":"2","ChuHoSo":"Nguyễn Văn A"}}"#);
    let deliveries: Vec<NewDelivery> = destinations
        .iter()
        .map(|d| NewDelivery {
            id: format!("{id}-{d}"),
            destination: d.to_string(),
            message_type: "dossier.register".into(),
            route_id: "dossier-filed".into(),
            mapping_id: format!("province-portal/dossier-filed.to-{d}"),
            mapping_version: 1,
            body: format!(r#"<DangKyHoSo><MaHoSo>{dossier}</MaHoSo><Dich>{d}</Dich></DangKyHoSo>"#)
                .into_bytes()
                .into(),
            content_type: "application/xml".into(),
        })
        .collect();
    let mut trail = vec![
        TrailEvent {
            at,
            message_id: Some(id.into()),
            delivery_id: None,
            kind: "received",
            actor: "intake".into(),
            detail: json!({"system": "province-portal", "bytes": raw.len()}),
        },
        TrailEvent {
            at,
            message_id: Some(id.into()),
            delivery_id: None,
            kind: "routed",
            actor: "intake".into(),
            detail: json!({"targets": destinations}),
        },
    ];
    for d in &deliveries {
        trail.push(TrailEvent {
            at,
            message_id: Some(id.into()),
            delivery_id: Some(d.id.clone()),
            kind: "mapped",
            actor: "intake".into(),
            detail: json!({"destination": d.destination}),
        });
    }
    NewMessage {
        id: id.into(),
        received_at: at,
        source_system: "province-portal".into(),
        message_type: "dossier.filed".into(),
        correlation_id: dossier.into(),
        idempotency_key: None,
        partner_message_id: None,
        content_type: "application/json".into(),
        parsed: raw.clone(),
        raw: raw.into_bytes().into(),
        deliveries,
        trail,
    }
}

pub fn settlement(
    delivery_id: &str,
    message_id: &str,
    destination: &str,
    n: u32,
    outcome: SettleOutcome,
    status: u16,
) -> Settlement {
    let failed = outcome != SettleOutcome::Delivered;
    Settlement {
        delivery_id: delivery_id.into(),
        message_id: message_id.into(),
        destination: destination.into(),
        attempt: n,
        started_at: now_ms(),
        latency_ms: 12,
        request_excerpt: format!("<DangKyHoSo attempt=\"{n}\"/>"),
        status: Some(status),
        response_excerpt: format!("{{\"ketQua\":{status}}}"),
        error: failed.then(|| format!("http-{status}: partner said no")),
        error_class: failed.then(|| {
            if matches!(outcome, SettleOutcome::Dead) {
                "exhausted".to_string()
            } else {
                "transient".to_string()
            }
        }),
        partner_reference: None,
        outcome,
    }
}

/// Three dossiers; H1 delivered to lis after a retry, H1's national-portal delivery dead,
/// H2 delivered, H3 pending; one rejected message.
pub async fn seed(store: &Store) {
    let t = now_ms() - 60_000;
    store
        .accept(message("m1", "H1", t, &["lis", "national-portal"]))
        .await
        .unwrap();
    store
        .accept(message("m2", "H2", t + 1, &["lis"]))
        .await
        .unwrap();
    store
        .accept(message("m3", "H3", t + 2, &["lis"]))
        .await
        .unwrap();
    store
        .reject(RejectedMessage {
            id: "r1".into(),
            received_at: t + 3,
            source_system: "tax".into(),
            message_type: "payment.notice".into(),
            correlation_id: Some("H1".into()),
            content_type: "application/xml".into(),
            raw: b"<DATA><broken".to_vec().into(),
            parsed: None,
            status: 400,
            reasons: vec!["malformed XML at 1:14".into()],
        })
        .await
        .unwrap();
    store
        .settle(settlement(
            "m1-lis",
            "m1",
            "lis",
            1,
            SettleOutcome::Retry { at: t + 10 },
            503,
        ))
        .await
        .unwrap();
    store
        .settle(settlement(
            "m1-lis",
            "m1",
            "lis",
            2,
            SettleOutcome::Delivered,
            200,
        ))
        .await
        .unwrap();
    store
        .settle(settlement(
            "m1-national-portal",
            "m1",
            "national-portal",
            1,
            SettleOutcome::Dead,
            500,
        ))
        .await
        .unwrap();
    store
        .settle(settlement(
            "m2-lis",
            "m2",
            "lis",
            1,
            SettleOutcome::Delivered,
            200,
        ))
        .await
        .unwrap();
    store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: None,
            delivery_id: None,
            kind: "audit.search",
            actor: "auditor:test".into(),
            detail: json!({"filters": {}}),
        }])
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// A real hub (the built binary) and a real HTTP sink on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP partner on loopback that answers 503 until it "recovers".
/// The sink's state: healthy?, bodies received.
type SinkState = (Arc<AtomicBool>, Arc<Mutex<Vec<String>>>);

pub struct Sink {
    pub url: String,
    pub healthy: Arc<AtomicBool>,
    pub received: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    pub async fn start(healthy: bool) -> Sink {
        // reqwest is built without a default TLS provider; the binary installs ring, so do the tests.
        let _ = rustls::crypto::ring::default_provider().install_default();
        use axum::routing::post;
        let state = (
            Arc::new(AtomicBool::new(healthy)),
            Arc::new(Mutex::new(Vec::<String>::new())),
        );
        let app = axum::Router::new()
            .route(
                "/",
                post(
                    |axum::extract::State((ok, got)): axum::extract::State<SinkState>,
                     body: String| async move {
                        if ok.load(Ordering::SeqCst) {
                            got.lock().unwrap().push(body);
                            (axum::http::StatusCode::OK, "{\"ok\":true}")
                        } else {
                            (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                "{\"error\":\"down for maintenance\"}",
                            )
                        }
                    },
                ),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink {
            url,
            healthy: state.0,
            received: state.1,
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sha256_hex(s: &str) -> String {
    router::audit::digest::sha256_hex(s.as_bytes())
}

pub const ADMIN: &str = "admin-token-0123456789";
pub const AUDITOR: &str = "auditor-token-0123456789";
pub const PARTNER: &str = "partner-token-0123456789";
pub const EXPIRED: &str = "expired-token-0123456789";
pub const REVOKED: &str = "revoked-token-0123456789";

/// `tokens:` for the config: admin, auditor, partner:portal, an expired and a revoked auditor.
pub fn tokens_yaml() -> String {
    format!(
        "tokens:\n  - {{ name: root, role: admin, sha256: {} }}\n  - {{ name: thanh-tra, role: auditor, sha256: {} }}\n  \
         - {{ name: portal, role: \"partner:portal\", sha256: {} }}\n  - {{ name: old, role: auditor, sha256: {}, expires_at: \"2020-01-01T00:00:00+07:00\" }}\n  \
         - {{ name: gone, role: auditor, sha256: {}, revoked: true }}\n",
        sha256_hex(ADMIN),
        sha256_hex(AUDITOR),
        sha256_hex(PARTNER),
        sha256_hex(EXPIRED),
        sha256_hex(REVOKED)
    )
}

/// A config over a copy of tests/fixtures/hub (so a test may edit the mapping).
pub fn write_config(dir: &Path, port: u16, sink_url: &str) -> PathBuf {
    let fx = dir.join("fixtures");
    copy_dir(&repo().join("tests/fixtures/hub"), &fx);
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:{port}\n  drain_deadline: 2s\nstore:\n  data_dir: {data}\npaths:\n  mappings: {m}\n  schemas: {s}\n\
         destinations:\n  sink:\n    url: \"{sink_url}\"\n    timeout: 2s\n    max_attempts: 2\n    backoff: {{ initial: 100ms, max: 200ms, multiplier: 2.0, jitter: 0.0 }}\n{tokens}",
        data = dir.join("data").display(),
        m = fx.join("mappings").display(),
        s = fx.join("schemas").display(),
        tokens = tokens_yaml(),
    );
    let path = dir.join("lienthong.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A running `lienthong serve`; killed when dropped.
pub struct Hub {
    pub child: Child,
    pub base: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Hub {
    pub async fn spawn(config: &Path, port: u16) -> Hub {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the lienthong binary");
        let hub = Hub {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", hub.base)).send().await {
                if r.status().is_success() {
                    return hub;
                }
            }
            assert!(
                Instant::now() < deadline,
                "lienthong did not become ready on port {port} within 30s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

pub async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
