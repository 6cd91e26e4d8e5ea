//! The web console driven by a real browser: headless Chromium over WebDriver
//! (chromedriver), against the console and the mapping API served over real
//! HTTP on loopback, on a real SQLite store with the repository's mappings,
//! schemas and routes.
//!
//! Steps: sign in; break a mapping and see the error inline with line:column;
//! fix it and see the live preview; activate it and see version 2 in the
//! history; search a dossier, open a message and run a replay dry run.
//! Screenshots go to `target/test-artifacts/console/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`:
//! `apt-get install -y chromium chromium-driver`.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use router::admin::access::{Principal, Role, StaticTokens};
use router::admin::api::AdminState;
use router::admin::{AdminOptions, MappingAdmin};
use router::audit::replay::{ReplayContext, VersionedMappings};
use router::console::ConsoleState;
use router::schema::SchemaRegistry;
use router::store::{NewDelivery, NewMessage, Store, StoreOptions};
use serde_json::{json, Value};

const ID: &str = "province-portal/dossier-filed.to-lis";
const DOSSIER: &str = "000.00.32.H47-220915-0001";
const ADMIN_TOKEN: &str = "admin-token-7f3a9c0e5b";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

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
            Err(e) if std::time::Instant::now() >= deadline => panic!("element {css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
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
async fn seed_message(store: &Store, admin: &MappingAdmin, schemas: &SchemaRegistry) -> String {
    let p = repo().join(
        "tests/fixtures/inbound/province-portal/dossier.filed/01-tam-ky-an-my-chuyen-nhuong.json",
    );
    let raw = std::fs::read(p).unwrap();
    let mut tree: Value = serde_json::from_slice(&raw).unwrap();
    tree["TenTTHC"] = Value::from("  Đăng ký biến động  ");
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
        correlation_id: DOSSIER.into(),
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
    let message_id = seed_message(&store, &admin, &schemas).await;
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
    let app = router::console::routes(ConsoleState {
        admin: state.clone(),
        store: store.clone(),
        replay,
    })
    .merge(router::admin::api::routes(state));
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
    assert_eq!(text_of(c, "h1").await, "Tổng quan");
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
        dry.contains("1 changed") || dry.contains("1 thay đổi"),
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
    assert!(text_of(c, "h1").await.contains(message_id));
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
    Ok(())
}
