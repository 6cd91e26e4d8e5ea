//! The web console driven by a real browser: headless Chromium over WebDriver
//! (chromedriver), against the console and the mapping API served over real
//! HTTP on loopback, on a real SQLite store with the repository's mappings,
//! schemas and routes.
//!
//! Steps: sign in; break a mapping and see the error inline with line:column;
//! fix it and see the live preview; activate it and see version 2 in the
//! history; search a dossier, open a message and run a replay dry run, then
//! press the replay button and see the new delivery and its trail event; on the
//! dead-letters page filter by error text, bulk-replay all matching (count, confirm,
//! per-item result), then replay a ticked one. Screenshots go to
//! `target/test-artifacts/console/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`:
//! `apt-get install -y chromium chromium-driver`.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod fs_support;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use fs_support::{copy_dir, repo};
use router::admin::access::{Principal, Role, StaticTokens};
use router::admin::api::AdminState;
use router::admin::{AdminOptions, MappingAdmin};
use router::audit::replay::{ReplayContext, VersionedMappings};
use router::console::ConsoleState;
use router::schema::SchemaRegistry;
use router::store::{NewDelivery, NewMessage, SettleOutcome, Settlement, Store, StoreOptions};
use serde_json::{json, Value};
use sqlx::Row;

const ID: &str = "province-portal/dossier-filed.to-lis";
const DOSSIER: &str = "000.00.32.H47-220915-0001";
const ADMIN_TOKEN: &str = "admin-token-7f3a9c0e5b";
const DEAD_503: &str = "000.00.32.H47-220915-0503";
const DEAD_400: &str = "000.00.32.H47-220915-0400";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills chromedriver (and so its Chromium) when the test ends, pass or fail.
struct Driver(Child);
impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_chromedriver() -> PathBuf {
    for p in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("chromedriver not found: install it with `apt-get update && apt-get install -y chromium chromium-driver`");
}

async fn start_driver() -> (Driver, u16) {
    let bin = find_chromedriver();
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}; install `chromium-driver`",
                bin.display()
            )
        });
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn browser(driver_port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let mut opts = json!({
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1600",
            format!("--user-data-dir={}", profile.display()),
        ]
    });
    match chromium {
        Some(b) => opts["binary"] = Value::from(b),
        None => panic!(
            "chromium not found: install it with `apt-get install -y chromium chromium-driver`"
        ),
    }
    caps.insert("goog:chromeOptions".into(), opts);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session with headless Chromium")
}

async fn shot(c: &Client, name: &str) {
    let dir = repo().join("target/test-artifacts/console");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The text of the first element matching `css`, waiting (up to 10 s) for it to appear.
/// After a click the browser may still be on the old page, or swap it while we read
/// (a stale element): both are retried until the deadline, then the last error fails the test.
async fn text_of(c: &Client, css: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let el = c
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await?;
            el.text().await
        };
        match attempt.await {
            Ok(text) => return text,
            Err(e) if std::time::Instant::now() >= deadline => {
                let url = c
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let page = c.source().await.unwrap_or_default();
                panic!("element {css}: {e}\nat {url}:\n{page}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Clicks the element matching `css`, retrying (up to 10 s) while the page is being
/// swapped under us (not found yet, or stale between find and click).
async fn click(c: &Client, css: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let el = c
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await?;
            el.click().await
        };
        match attempt.await {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() >= deadline => panic!("click {css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits (up to 10 s) until the text of `css` satisfies `ok`; returns it (fails with the last text).
async fn text_until(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = text_of(c, css).await;
        if ok(&t) {
            return t;
        }
        if std::time::Instant::now() >= deadline {
            panic!("{css} never showed what was expected; last text: {t}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set_value(c: &Client, id: &str, value: &str) {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1];",
        vec![json!(id), json!(value)],
    )
    .await
    .unwrap();
}

/// One accepted dossier with its LIS delivery mapped by the active version, as intake stores it.
async fn seed_message(
    store: &Store,
    admin: &MappingAdmin,
    schemas: &SchemaRegistry,
    dossier: &str,
) -> String {
    let p = repo().join(
        "tests/fixtures/inbound/province-portal/dossier.filed/01-tam-ky-an-my-chuyen-nhuong.json",
    );
    let raw = std::fs::read(p).unwrap();
    let mut tree: Value = serde_json::from_slice(&raw).unwrap();
    tree["TenTTHC"] = Value::from("  Đăng ký biến động  ");
    tree["MaHoSo"] = Value::from(dossier);
    let set = admin.active().load();
    let m = set.mappings.get(ID).unwrap();
    let out = m.apply(&tree).unwrap();
    let body = schemas.get(&m.target.schema).unwrap().encode(&out).unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let msg = NewMessage {
        id: id.clone(),
        received_at: router::store::now_ms(),
        source_system: "province-portal".into(),
        message_type: "dossier.filed".into(),
        correlation_id: dossier.into(),
        idempotency_key: Some(id.clone()),
        partner_message_id: None,
        content_type: "application/json".into(),
        raw: serde_json::to_vec(&tree).unwrap().into(),
        parsed: serde_json::to_string(&tree).unwrap(),
        deliveries: vec![NewDelivery {
            id: uuid::Uuid::now_v7().to_string(),
            destination: "lis".into(),
            message_type: m.target.message_type.clone(),
            route_id: "dossier-filed".into(),
            mapping_id: m.id.clone(),
            mapping_version: i64::from(m.version),
            body: body.into(),
            content_type: "application/xml; charset=utf-8".into(),
        }],
        trail: vec![],
    };
    store.accept(msg).await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_edit_validate_preview_activate_search_and_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("mappings"), &tmp.path().join("mappings"));
    copy_dir(
        &repo().join("tests/fixtures"),
        &tmp.path().join("tests/fixtures"),
    );
    let mappings = tmp.path().join("mappings");
    let store = Store::open_sqlite_dir(&tmp.path().join("data"), StoreOptions::default())
        .await
        .unwrap();
    // The test's own connections, to read rows as stored.
    let raw = sqlx::AnyPool::connect(&format!(
        "sqlite://{}",
        tmp.path().join("data/lienthong.db").display()
    ))
    .await
    .unwrap();
    let schemas = Arc::new(SchemaRegistry::load(&repo().join("schemas")).unwrap());
    let admin = MappingAdmin::bootstrap(
        &store,
        schemas.clone(),
        &mappings,
        &mappings.join("routes.yaml"),
        AdminOptions::default(),
    )
    .await
    .unwrap();
    // Two dossiers whose LIS delivery died: leased and settled dead by the store's own
    // path (as the delivery layer does after the last attempt), trail events included.
    let mut dead = Vec::new();
    for (dossier, error) in [
        (DEAD_503, "http-503: LIS đang bảo trì"),
        (DEAD_400, "http-400: sai mã đơn vị"),
    ] {
        let mid = seed_message(&store, &admin, &schemas, dossier).await;
        dead.push((mid, error));
    }
    let leased = store
        .lease("lis", 10, router::store::now_ms() + 60_000)
        .await
        .unwrap();
    assert_eq!(leased.len(), 2, "both dead-letter deliveries leased");
    for l in leased {
        let (_, error) = dead
            .iter()
            .find(|(m, _)| *m == l.message_id)
            .expect("a seeded message");
        store
            .settle(Settlement {
                delivery_id: l.id.clone(),
                message_id: l.message_id.clone(),
                destination: "lis".into(),
                attempt: 1,
                started_at: router::store::now_ms(),
                latency_ms: 12,
                request_excerpt: String::new(),
                status: Some(error[5..8].parse().unwrap()),
                response_excerpt: String::new(),
                error: Some(error.to_string()),
                error_class: Some("exhausted".into()),
                partner_reference: None,
                outcome: SettleOutcome::Dead,
            })
            .await
            .unwrap();
    }
    let message_id = seed_message(&store, &admin, &schemas, DOSSIER).await;
    let auth = Arc::new(StaticTokens::new([(
        ADMIN_TOKEN.to_string(),
        Principal {
            name: "thu".into(),
            role: Role::Admin,
        },
    )]));
    let state = AdminState {
        admin: admin.clone(),
        auth,
    };
    let replay = ReplayContext {
        store: store.clone(),
        mappings: Arc::new(VersionedMappings {
            admin: admin.clone(),
            mappings_dir: mappings.clone(),
        }),
        schemas: schemas.clone(),
        queue: None,
    };
    let sessions = Arc::new(router::console::sessions::Sessions {
        store: store.clone(),
        auth: state.auth.clone(),
        edge: router::config::EdgeTrust::default(),
    });
    let guards = router::console::guards(state.auth.clone(), Some(sessions.clone()));
    let (app, _) = router::console::routes(
        ConsoleState {
            admin: state.clone(),
            store: store.clone(),
            replay,
            sessions,
            unconfigured: Arc::default(),
        },
        guards.clone(),
    )
    .merge(router::admin::api::routes(state, guards))
    .into_parts();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (_driver, port) = start_driver().await;
    let profile = tmp.path().join("chromium-profile");
    let c = browser(port, &profile).await;
    let result = steps(&c, &base, &message_id).await;
    if result.is_err() {
        shot(&c, "failure").await;
    }
    let _ = c.close().await;
    if let Err(e) = result {
        panic!("{e}");
    }
    // The activation is real: the store and the running set have version 2.
    assert_eq!(admin.active().load().mappings.get(ID).unwrap().version, 2);
    // The replays are real: one from the message page, two from the dead letters, each a
    // new pending delivery pointing at its original, each with a `replayed` trail event.
    let rows = sqlx::query(
        "SELECT d.state, d.mapping_version, o.state AS original_state FROM deliveries d \
         JOIN deliveries o ON o.id = d.replay_of ORDER BY d.seq",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    let got: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get("state"),
                r.get("mapping_version"),
                r.get("original_state"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("pending".to_string(), 2, "pending".to_string()),
            ("pending".to_string(), 1, "dead".to_string()),
            ("pending".to_string(), 1, "dead".to_string()),
        ],
        "remapped with v2 from the message page; dead letters re-sent as sent (v1)"
    );
    let replayed_events: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM trail WHERE kind = 'replayed' AND actor = 'admin:thu'",
    )
    .fetch_one(&raw)
    .await
    .unwrap()
    .get("n");
    assert_eq!(replayed_events, 3);
}

async fn steps(c: &Client, base: &str, message_id: &str) -> Result<(), String> {
    // Sign in (Vietnamese by default; a wrong token is refused first).
    c.goto(&format!("{base}/console"))
        .await
        .map_err(|e| e.to_string())?;
    let url = c.current_url().await.unwrap();
    assert!(
        url.path().ends_with("/console/login"),
        "unauthenticated → sign-in form, got {url}"
    );
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys("wrong")
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(c, "#login-error").await.contains("không đúng"));
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // A click does not wait for the next page: wait for its heading.
    text_until(c, "h1", |t| t == "Tổng quan").await;
    shot(c, "01-dashboard-vi").await;
    // The token cookie is HttpOnly: page scripts cannot read it.
    let cookies = c.execute("return document.cookie;", vec![]).await.unwrap();
    assert!(
        !cookies.as_str().unwrap_or("").contains("lt_token"),
        "HttpOnly cookie visible to JS: {cookies}"
    );
    c.goto(&format!("{base}/console?lang=en")).await.unwrap();
    assert_eq!(text_of(c, "h1").await, "Dashboard");
    shot(c, "02-dashboard-en").await;

    // Break the mapping: the error is shown inline with line:column, nothing activated.
    c.goto(&format!("{base}/console/mappings/{ID}"))
        .await
        .unwrap();
    assert_eq!(text_of(c, "#active-version").await, "v1");
    let original = c
        .find(Locator::Id("content"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let broken = original.replace(
        "- { target: maThuTucHanhChinh, source: MaTTHC,",
        "- { target: maThuTucHanhChinh, source: MaTTHCC,",
    );
    assert_ne!(broken, original);
    let line = original
        .lines()
        .position(|l| l.contains("target: maThuTucHanhChinh"))
        .unwrap()
        + 1;
    set_value(c, "content", &broken).await;
    c.find(Locator::Id("validate"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let errors = text_of(c, "#errors").await;
    assert!(
        errors.contains(&format!("{line}:")) && errors.contains("MaTTHCC"),
        "inline error at line {line}: {errors}"
    );
    assert!(text_of(c, "#step-schema").await.contains("schema"));
    shot(c, "03-inline-error").await;

    // Fix it (a real change: the procedure name is no longer trimmed) and preview.
    let fixed = original.replace(
        "- { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [trim, nfc] }",
        "- { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [nfc] }",
    );
    set_value(c, "content", &fixed).await;
    set_value(c, "sample", message_id).await;
    c.find(Locator::Id("preview-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let preview = text_of(c, "#preview").await;
    assert!(
        preview.contains("\"tenThuTucHanhChinh\": \"  Đăng ký biến động  \"")
            && preview.contains(DOSSIER),
        "{preview}"
    );
    shot(c, "04-preview").await;

    // Validate shows the dry run against the stored message, then activate.
    c.find(Locator::Id("validate"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let dry = text_of(c, "#dry-run").await;
    assert!(
        dry.contains("3 changed") || dry.contains("3 thay đổi"),
        "{dry}"
    );
    set_value(c, "comment", "bỏ trim tên thủ tục").await;
    c.find(Locator::Id("activate"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(c, "#flash").await.contains("v2"));
    assert_eq!(text_of(c, "#active-version").await, "v2");
    let history = text_of(c, "#history").await;
    assert!(
        history.contains("v2")
            && history.contains("bỏ trim tên thủ tục")
            && history.contains("admin:thu"),
        "{history}"
    );
    shot(c, "05-activated-history").await;

    // Search the dossier, open the message, run the replay dry run.
    c.goto(&format!("{base}/console/messages")).await.unwrap();
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(DOSSIER)
        .await
        .unwrap();
    c.find(Locator::Id("search"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let results = text_of(c, "#results").await;
    assert!(results.contains(DOSSIER), "{results}");
    c.find(Locator::Css("#results a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(c, "h1", |t| t.contains(message_id)).await;
    c.find(Locator::Id("dry-run-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let dry = text_of(c, "#dry-run-result").await;
    assert!(
        dry.contains("v2") && dry.contains("Đăng ký biến động"),
        "the dry run diffs what was sent (v1) with v2: {dry}"
    );
    shot(c, "06-message-dry-run").await;

    // The confirm step is under the dry run. LIS has not received this message yet
    // (its delivery is pending), so it is ticked (a delivered one is not, see
    // tests/edge_console.rs): give a reason and press Replay (remap = what the dry run
    // showed). The page comes back with the new delivery and its trail event.
    let lis = c.find(Locator::Id("target-lis")).await.unwrap();
    assert!(
        lis.is_selected().await.unwrap(),
        "LIS has not got it: ticked"
    );
    set_value(
        c,
        "replay-reason",
        "tên thủ tục không còn bị cắt khoảng trắng",
    )
    .await;
    click(c, "#replay-button").await;
    let outcome = text_until(c, "#replay-outcome", |t| t.contains("lis")).await;
    assert!(
        outcome.contains("pending") && outcome.contains("trail"),
        "the outcome names the new delivery, its state and its trail event: {outcome}"
    );
    let replay_box = text_of(c, ".delivery:last-of-type").await;
    assert!(
        replay_box.contains("replay of") && replay_box.contains("v2"),
        "the new delivery is listed, mapped with v2: {replay_box}"
    );
    let trail = text_of(c, "#trail").await;
    assert!(
        trail.contains("replay.requested")
            && trail.contains("replayed")
            && trail.contains("admin:thu"),
        "{trail}"
    );
    shot(c, "07-message-replayed").await;
    // Asking again warns that it was replayed before.
    click(c, "#dry-run-button").await;
    let warning = text_until(c, "#already-replayed", |t| t.contains("lis")).await;
    assert!(warning.contains("1"), "{warning}");

    // Dead letters: filter by error text, then bulk-replay all matching (count, confirm).
    c.goto(&format!("{base}/console/dead")).await.unwrap();
    assert_eq!(text_of(c, "#dead-count").await, "2");
    // A date range they did not die in matches nothing.
    set_value(c, "f-from", "2020-01-01").await;
    set_value(c, "f-to", "2020-01-31").await;
    click(c, "#filter").await;
    text_until(c, "#dead-count", |t| t == "0").await;
    c.goto(&format!("{base}/console/dead")).await.unwrap();
    text_until(c, "#dead-count", |t| t == "2").await;
    set_value(c, "f-error", "503").await;
    click(c, "#filter").await;
    text_until(c, "#dead-count", |t| t == "1").await;
    let table = text_of(c, "#dead").await;
    assert!(
        table.contains(DEAD_503) && !table.contains(DEAD_400),
        "{table}"
    );
    shot(c, "08-dead-letters-filtered").await;
    set_value(c, "bulk-reason", "LIS hoạt động lại").await;
    click(c, "#bulk-all").await;
    assert_eq!(text_of(c, "#bulk-count").await, "1");
    let preview = text_of(c, "#bulk-preview").await;
    assert!(preview.contains("503"), "{preview}");
    shot(c, "09-bulk-replay-confirm").await;
    click(c, "#bulk-confirm").await;
    let done = text_of(c, "#bulk-outcome").await;
    assert!(done.contains("1 / 1"), "{done}");
    let results = text_of(c, "#bulk-results").await;
    assert!(results.contains("replayed as delivery"), "{results}");
    shot(c, "10-bulk-replayed").await;

    // Back to the unfiltered list: the replayed one is no longer offered; tick the other.
    c.goto(&format!("{base}/console/dead")).await.unwrap();
    text_until(c, "#dead-count", |t| t == "1").await;
    let table = text_of(c, "#dead").await;
    assert!(
        table.contains(DEAD_400) && !table.contains(DEAD_503),
        "{table}"
    );
    click(c, "#dead input.sel").await;
    set_value(c, "bulk-reason", "đã sửa mã đơn vị").await;
    click(c, "#bulk-selected").await;
    assert_eq!(text_of(c, "#bulk-count").await, "1");
    click(c, "#bulk-confirm").await;
    let done = text_of(c, "#bulk-outcome").await;
    assert!(done.contains("1 / 1"), "{done}");
    shot(c, "11-selected-replayed").await;
    c.goto(&format!("{base}/console/dead")).await.unwrap();
    assert_eq!(text_of(c, "#dead-count").await, "0");
    Ok(())
}
