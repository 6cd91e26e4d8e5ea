//! The mapping gate and the versioned store against a real SQLite store, the
//! real mappings, schemas and routes of the repository, and stored traffic.
//!
//! Each test copies `mappings/` and the fixtures it references into a temp
//! directory, so edits (and the file watcher) never touch the working tree.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod fs_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fs_support::copy_dir;
use router::admin::service::Proposal;
use router::admin::{AdminError, AdminOptions, MappingAdmin, Origin};
use router::audit::chain::{event_hash, event_object};
use router::schema::SchemaRegistry;
use router::store::{NewMessage, Store, StoreOptions};
use sqlx::Row;

const ID: &str = "province-portal/dossier-filed.to-lis";

fn repo() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if dir.join("mappings").is_dir() {
        dir
    } else {
        dir.parent().expect("workspace root").to_path_buf()
    }
}

struct Env {
    _tmp: tempfile::TempDir,
    /// Its own connections to the store's database, to read rows as stored.
    raw: sqlx::AnyPool,
    mappings: PathBuf,
    store: Store,
    admin: Arc<MappingAdmin>,
}

fn schemas() -> Arc<SchemaRegistry> {
    Arc::new(SchemaRegistry::load(&repo().join("schemas")).expect("repository schemas load"))
}

async fn env_with(options: AdminOptions) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("mappings"), &tmp.path().join("mappings"));
    copy_dir(
        &repo().join("tests/fixtures"),
        &tmp.path().join("tests/fixtures"),
    );
    let store = Store::open_sqlite_dir(&tmp.path().join("data"), StoreOptions::default())
        .await
        .unwrap();
    let raw = raw_pool(&tmp.path().join("data")).await;
    let mappings = tmp.path().join("mappings");
    let admin = MappingAdmin::bootstrap(
        &store,
        schemas(),
        &mappings,
        &mappings.join("routes.yaml"),
        options,
    )
    .await
    .expect("bootstrap from the repository's mappings");
    Env {
        raw,
        _tmp: tmp,
        mappings,
        store,
        admin,
    }
}

async fn env() -> Env {
    env_with(AdminOptions::default()).await
}

fn fixture() -> serde_json::Value {
    let p = repo().join(
        "tests/fixtures/inbound/province-portal/dossier.filed/01-tam-ky-an-my-chuyen-nhuong.json",
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Stores an accepted dossier.filed message whose parsed tree is `tree` (what the dry run reads).
async fn store_message(store: &Store, tree: &serde_json::Value) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let raw = serde_json::to_vec(tree).unwrap();
    let msg = NewMessage {
        id: id.clone(),
        received_at: router::store::now_ms(),
        source_system: "province-portal".into(),
        message_type: "dossier.filed".into(),
        correlation_id: tree["MaHoSo"].as_str().unwrap().into(),
        idempotency_key: Some(id.clone()),
        partner_message_id: None,
        content_type: "application/json".into(),
        raw: raw.clone().into(),
        parsed: String::from_utf8(raw).unwrap(),
        deliveries: vec![],
        trail: vec![],
    };
    store.accept(msg).await.unwrap();
    id
}

fn active_text(env: &Env) -> String {
    std::fs::read_to_string(env.mappings.join(format!("{ID}.yaml"))).unwrap()
}

fn proposal(content: String, expected: Option<i64>) -> Proposal {
    Proposal {
        mapping_id: ID.into(),
        content,
        expected,
        author: "admin:test".into(),
        comment: "test change".into(),
        origin: Origin::Api,
        allow_regressions: false,
    }
}

/// Connections of the test's own to the SQLite store in `dir`.
async fn raw_pool(dir: &std::path::Path) -> sqlx::AnyPool {
    sqlx::AnyPool::connect(&format!("sqlite://{}", dir.join("lienthong.db").display()))
        .await
        .unwrap()
}

/// Recomputes every trail hash; returns the kinds of the rows about mapping `ID`, in order.
async fn verify_chain(raw: &sqlx::AnyPool) -> Vec<String> {
    let rows = sqlx::query("SELECT seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash FROM trail ORDER BY seq")
        .fetch_all(raw)
        .await
        .unwrap();
    let mut prev = router::audit::GENESIS_HASH.to_string();
    let mut kinds = Vec::new();
    for r in rows {
        let detail: serde_json::Value =
            serde_json::from_str(&r.get::<String, _>("detail")).unwrap();
        let kind: String = r.get("kind");
        let obj = event_object(
            r.get("seq"),
            r.get("at"),
            r.get::<Option<String>, _>("message_id").as_deref(),
            r.get::<Option<String>, _>("delivery_id").as_deref(),
            &kind,
            &r.get::<String, _>("actor"),
            &detail,
        );
        assert_eq!(
            r.get::<String, _>("prev_hash"),
            prev,
            "trail row {} does not follow its predecessor",
            r.get::<i64, _>("seq")
        );
        let h = event_hash(&prev, &obj);
        assert_eq!(
            h,
            r.get::<String, _>("hash"),
            "trail row {} hash mismatch",
            r.get::<i64, _>("seq")
        );
        prev = h;
        if detail["mapping_id"] == ID {
            kinds.push(kind);
        }
    }
    kinds
}

#[tokio::test]
async fn import_then_every_step_of_the_gate_refuses_what_it_should() {
    let env = env().await;
    let set = env.admin.active().load();
    assert!(
        set.mappings.len() >= 20,
        "all repository mappings imported, got {}",
        set.mappings.len()
    );
    assert_eq!(set.mappings.get(ID).unwrap().version, 1);
    let original = active_text(&env);

    // (a) a YAML syntax error: refused with line and column, nothing changes.
    let broken = original.replace(
        "- { target: loaiBienDong, const: CHUYEN_NHUONG }",
        "- { target: loaiBienDong, const: CHUYEN_NHUONG",
    );
    let Err(AdminError::Rejected(r)) = env.admin.propose(proposal(broken, Some(1))).await else {
        panic!("a syntax error must be refused")
    };
    assert_eq!(r.failed_step(), Some("compile"));
    let d = &r.steps[0].diagnostics[0];
    assert!(d.line > 0 && d.column > 0, "position given: {d}");
    assert!(d.file.ends_with("dossier-filed.to-lis.yaml"), "{d}");

    // (b) a source path the schema does not have.
    let bad_path = original.replace("source: MaTTHC,", "source: MaThuTucHC,");
    assert_ne!(bad_path, original);
    let Err(AdminError::Rejected(r)) = env.admin.propose(proposal(bad_path, Some(1))).await else {
        panic!("an unknown source path must be refused")
    };
    assert_eq!(r.failed_step(), Some("schema"), "{}", r.summary());
    assert!(
        r.steps[1]
            .diagnostics
            .iter()
            .any(|d| d.message.contains("MaThuTucHC") && d.line > 0),
        "{:?}",
        r.steps[1]
    );

    // (c) a change that breaks the mapping's own tests.
    let wrong = original.replace(
        "- { target: loaiBienDong, const: CHUYEN_NHUONG }",
        "- { target: loaiBienDong, const: TANG_CHO }",
    );
    let Err(AdminError::Rejected(r)) = env.admin.propose(proposal(wrong, Some(1))).await else {
        panic!("failing tests must be refused")
    };
    assert_eq!(r.failed_step(), Some("tests"));
    assert!(
        r.test_failures[0].detail.contains("TANG_CHO"),
        "{}",
        r.test_failures[0].detail
    );

    // Nothing was recorded: still version 1 only, no admin trail event.
    assert_eq!(env.admin.versions().history(ID).await.unwrap().len(), 1);
    assert_eq!(
        env.admin.active().load().mappings.get(ID).unwrap().version,
        1
    );
    assert_eq!(
        verify_chain(&env.raw).await,
        vec!["mapping.activated"],
        "only the import is in the trail"
    );
}

#[tokio::test]
async fn dry_run_reports_changes_and_blocks_regressions_then_activation_rollback_and_diff() {
    let env = env().await;
    let original = active_text(&env);
    let base = fixture();
    let m1 = store_message(&env.store, &base).await;
    let mut padded = base.clone();
    padded["TenTTHC"] = serde_json::Value::from("  Đăng ký biến động  ");
    let m2 = store_message(&env.store, &padded).await;
    let mut no_deadline = base.clone();
    no_deadline
        .as_object_mut()
        .unwrap()
        .shift_remove("NgayHenTra");
    let m3 = store_message(&env.store, &no_deadline).await;
    let mut other_status = base.clone();
    other_status["TrangThaiHoSo"] = serde_json::Value::from("4");
    store_message(&env.store, &other_status).await;

    // A regression: the deadline becomes required; m3 mapped before and would fail now.
    let regress = original.replace(
        "  - target: thoiDiemHenTra\n    source: NgayHenTra\n",
        "  - target: thoiDiemHenTra\n    source: NgayHenTra\n    required: true\n",
    );
    assert_ne!(regress, original);
    let Err(AdminError::Rejected(r)) = env.admin.propose(proposal(regress.clone(), Some(1))).await
    else {
        panic!("a regression on stored traffic must block activation")
    };
    assert_eq!(r.failed_step(), Some("dry_run"), "{}", r.summary());
    let dr = r.dry_run.as_ref().unwrap();
    assert_eq!(
        (dr.sampled, dr.not_routed, dr.now_failing, dr.unchanged),
        (4, 1, 1, 2),
        "{dr:?}"
    );
    assert_eq!(dr.examples[0].message_id, m3);
    assert!(
        dr.examples[0]
            .error
            .as_deref()
            .unwrap()
            .contains("NgayHenTra"),
        "{dr:?}"
    );

    // Validate only: the same report, nothing activated.
    let report = env.admin.validate(ID, &regress, false).await.unwrap();
    assert!(!report.passed);

    // A real change: the name is no longer trimmed. Tests pass (their input is clean);
    // the dry run shows that m2's output changes, with a diff.
    let untrimmed = original.replace(
        "- { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [trim, nfc] }",
        "- { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [nfc] }",
    );
    assert_ne!(untrimmed, original);
    let (report, act) = env
        .admin
        .propose(proposal(untrimmed.clone(), Some(1)))
        .await
        .expect("a good change is activated");
    let dr = report.dry_run.as_ref().unwrap();
    assert_eq!(
        (dr.changed, dr.unchanged, dr.now_failing),
        (1, 2, 0),
        "{dr:?}"
    );
    assert_eq!(dr.examples[0].message_id, m2);
    let diff = dr.examples[0].diff.as_deref().unwrap();
    assert!(
        diff.contains("-  \"tenThuTucHanhChinh\": \"Đăng ký biến động\"")
            && diff.contains("+  \"tenThuTucHanhChinh\": \"  Đăng ký biến động  \""),
        "{diff}"
    );
    assert_eq!((act.from_version, act.to_version), (Some(1), 2));
    let set = env.admin.active().load();
    assert_eq!(
        set.mappings.get(ID).unwrap().version,
        2,
        "the running set uses the store version"
    );
    let routed = set
        .routes
        .resolve("province-portal", "dossier.filed", &base);
    assert!(
        routed
            .iter()
            .any(|t| t.mapping.id == ID && t.mapping.version == 2),
        "routes point at the new version"
    );
    let _ = m1;

    // A stale precondition: 409-equivalent, nothing overwritten.
    let Err(AdminError::Conflict { current, .. }) =
        env.admin.propose(proposal(original.clone(), Some(1))).await
    else {
        panic!("a stale If-Match must conflict")
    };
    assert_eq!(current, Some(2));
    assert_eq!(env.admin.versions().history(ID).await.unwrap().len(), 2);

    // Diff of the two versions.
    let v1 = env.admin.versions().get(ID, 1).await.unwrap().unwrap();
    let v2 = env.admin.versions().get(ID, 2).await.unwrap().unwrap();
    let d = router::admin::versions::unified_diff(ID, &v1, &v2);
    assert!(
        d.contains("--- province-portal/dossier-filed.to-lis@v1")
            && d.contains("+  - { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [nfc] }"),
        "{d}"
    );

    // Rollback to 1.
    let (_, act) = env
        .admin
        .rollback(ID, 1, 2, "admin:test", "back")
        .await
        .unwrap();
    assert_eq!((act.from_version, act.to_version), (Some(2), 1));
    assert_eq!(
        env.admin.active().load().mappings.get(ID).unwrap().version,
        1
    );
    let hist = env.admin.versions().history(ID).await.unwrap();
    assert_eq!(
        hist.iter()
            .map(|v| (v.version, v.active))
            .collect::<Vec<_>>(),
        vec![(2, false), (1, true)]
    );

    // The trail has both events, chained, with actor, versions and hashes.
    let kinds = verify_chain(&env.raw).await;
    assert_eq!(
        kinds,
        vec![
            "mapping.activated",
            "mapping.activated",
            "mapping.rolled_back"
        ],
        "import, change, rollback"
    );
    let row = sqlx::query("SELECT actor, detail FROM trail WHERE kind = 'mapping.rolled_back'")
        .fetch_one(&env.raw)
        .await
        .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&row.get::<String, _>("detail")).unwrap();
    assert_eq!(row.get::<String, _>("actor"), "admin:test");
    assert_eq!(
        (
            detail["from_version"].as_i64(),
            detail["to_version"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(detail["to_hash"], v1.meta.content_hash.as_str());
    assert_eq!(detail["from_hash"], v2.meta.content_hash.as_str());
}

#[tokio::test]
async fn hostile_uploads_get_a_clear_error_and_nothing_else() {
    let env = env().await;
    let bomb = "id: province-portal/dossier-filed.to-lis\nversion: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n".to_string();
    let deep = format!(
        "id: {ID}\nversion: 1\nx: {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let huge = format!(
        "id: {ID}\nversion: 1\ndescription: \"{}\"\n",
        "a".repeat(2 * 1024 * 1024)
    );
    for (name, text) in [("alias bomb", bomb), ("deep nesting", deep), ("huge", huge)] {
        let t = std::time::Instant::now();
        let Err(AdminError::Rejected(r)) = env.admin.propose(proposal(text, Some(1))).await else {
            panic!("{name} must be refused")
        };
        assert_eq!(r.failed_step(), Some("compile"), "{name}");
        let msg = r.summary();
        assert!(
            !msg.is_empty() && msg.len() < 2000,
            "{name}: a short, clear message: {msg}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{name} took {:?}",
            t.elapsed()
        );
        eprintln!("{name}: {msg}");
    }
    assert_eq!(env.admin.versions().history(ID).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_file_edit_goes_through_the_gate_and_a_restart_keeps_the_store_version() {
    let options = AdminOptions {
        debounce: Duration::from_millis(200),
        ..AdminOptions::default()
    };
    let env = env_with(options.clone()).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _w =
        router::admin::watch::spawn(env.admin.clone(), &env.mappings, shutdown.clone()).unwrap();
    let path = env.mappings.join(format!("{ID}.yaml"));
    let original = std::fs::read_to_string(&path).unwrap();
    let mut rx = env.admin.active().subscribe();

    // A broken edit: refused, the active version stays, the report is kept for the console.
    std::fs::write(&path, original.replace("rules:", "rulez:")).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        env.admin.active().load().mappings.get(ID).unwrap().version,
        1
    );
    let reports = env.admin.file_reports();
    assert_eq!(
        reports.first().map(|r| r.failed_step()),
        Some(Some("compile")),
        "{reports:?}"
    );

    // A good edit: activated as version 2 (author `file`).
    let good = original.replace("description: >-\n", "description: >-\n  Đã sửa qua tệp.\n");
    std::fs::write(&path, &good).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            rx.changed().await.unwrap();
            if env.admin.active().load().mappings.get(ID).unwrap().version == 2 {
                break;
            }
        }
    })
    .await
    .expect("the file edit is activated within 10 s");
    let hist = env.admin.versions().history(ID).await.unwrap();
    assert_eq!(
        (
            hist[0].version,
            hist[0].origin.as_str(),
            hist[0].author.as_str()
        ),
        (2, "file", "file")
    );

    // Roll back through the store, then restart: the file (version 2's content) is
    // known, so the store's active version 1 stays.
    env.admin
        .rollback(ID, 1, 2, "admin:test", "")
        .await
        .unwrap();
    shutdown.cancel();
    let again = MappingAdmin::bootstrap(
        &env.store,
        schemas(),
        &env.mappings,
        &env.mappings.join("routes.yaml"),
        options,
    )
    .await
    .unwrap();
    assert_eq!(again.active().load().mappings.get(ID).unwrap().version, 1);
    assert_eq!(again.versions().history(ID).await.unwrap().len(), 2);
}

/// Waits (up to 10 s) until `cond` holds on the running set.
async fn wait_for(admin: &MappingAdmin, what: &str, cond: impl Fn(&MappingAdmin) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond(admin) {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deleting_a_mapping_file_deactivates_it_unless_a_route_still_uses_it() {
    let env = env_with(AdminOptions {
        debounce: Duration::from_millis(200),
        ..AdminOptions::default()
    })
    .await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _w =
        router::admin::watch::spawn(env.admin.clone(), &env.mappings, shutdown.clone()).unwrap();

    // A new mapping no route uses (declaring `version: 7`): imported through the gate as
    // store version 1, and the history keeps the file's own label next to it.
    const EXTRA: &str = "province-portal/dossier-filed.to-lis-copy";
    let original = std::fs::read_to_string(env.mappings.join(format!("{ID}.yaml"))).unwrap();
    let extra = original
        .replace(&format!("id: {ID}\n"), &format!("id: {EXTRA}\n"))
        .replace("\nversion: 1\n", "\nversion: 7\n");
    assert!(extra.contains(EXTRA) && extra.contains("version: 7"));
    let extra_path = env.mappings.join(format!("{EXTRA}.yaml"));
    std::fs::write(&extra_path, &extra).unwrap();
    wait_for(&env.admin, "the new file is activated", |a| {
        a.active().load().mappings.get(EXTRA).is_some()
    })
    .await;
    let hist = env.admin.versions().history(EXTRA).await.unwrap();
    assert_eq!((hist[0].version, hist[0].file_version), (1, Some(7)));

    // Deleted, unused: deactivated in the store and the running set, with a chained event.
    std::fs::remove_file(&extra_path).unwrap();
    wait_for(&env.admin, "the deleted mapping is deactivated", |a| {
        a.active().load().mappings.get(EXTRA).is_none()
    })
    .await;
    assert_eq!(env.admin.versions().active(EXTRA).await.unwrap(), None);
    assert_eq!(
        env.admin.versions().history(EXTRA).await.unwrap().len(),
        1,
        "versions are kept: deliveries still name their text"
    );
    let row = sqlx::query(
        "SELECT actor, detail FROM trail WHERE kind = 'mapping.deactivated' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&env.raw)
    .await
    .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&row.get::<String, _>("detail")).unwrap();
    assert_eq!(
        (
            row.get::<String, _>("actor").as_str(),
            &detail["mapping_id"],
            &detail["from_version"]
        ),
        ("file", &serde_json::json!(EXTRA), &serde_json::json!(1))
    );
    verify_chain(&env.raw).await;

    // Deleted while route `dossier-filed` sends through it: refused, the version stays,
    // the reason names the route and is kept for the dashboard; nothing is recorded.
    let generation = env.admin.versions().generation().await.unwrap();
    std::fs::remove_file(env.mappings.join(format!("{ID}.yaml"))).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        if let Some(r) = env
            .admin
            .file_reports()
            .into_iter()
            .find(|r| r.mapping_id == ID)
        {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal reported within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(report.failed_step(), Some("routes"), "{report:?}");
    assert!(
        report.summary().contains("dossier-filed"),
        "{}",
        report.summary()
    );
    assert_eq!(
        env.admin.active().load().mappings.get(ID).unwrap().version,
        1
    );
    assert_eq!(
        env.admin
            .versions()
            .active(ID)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(env.admin.versions().generation().await.unwrap(), generation);
    shutdown.cancel();
}
