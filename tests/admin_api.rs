//! `/api/v1/mappings` over real HTTP on loopback: roles, the If-Match
//! precondition (428 missing, 409 stale and nothing overwritten), gate refusals
//! with positions (422), versions, diff, validate, rollback and hostile bodies.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::sync::Arc;

use hub_support::{copy_dir, repo};
use reqwest::StatusCode;
use router::admin::access::{Principal, Role, StaticTokens};
use router::admin::api::AdminState;
use router::admin::{AdminOptions, MappingAdmin};
use router::schema::SchemaRegistry;
use router::store::{Store, StoreOptions};
use serde_json::{json, Value};

const ID: &str = "province-portal/dossier-filed.to-lis";
const ADMIN: &str = "adm-6b1f0c2d9e";
const AUDITOR: &str = "aud-3c9e7a1b5f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_api_end_to_end() {
    // reqwest is built without a default TLS provider; the binary installs ring the same way.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
        schemas,
        &mappings,
        &mappings.join("routes.yaml"),
        AdminOptions::default(),
    )
    .await
    .unwrap();
    let auth = Arc::new(StaticTokens::new([
        (
            ADMIN.to_string(),
            Principal {
                name: "thu".into(),
                role: Role::Admin,
            },
        ),
        (
            AUDITOR.to_string(),
            Principal {
                name: "kiem".into(),
                role: Role::Auditor,
            },
        ),
    ]));
    let guards = router::console::guards(auth.clone(), None);
    let (app, _) = router::admin::api::routes(
        AdminState {
            admin: admin.clone(),
            auth,
        },
        guards,
    )
    .into_parts();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}/api/v1/mappings");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let url = format!("{base}/{ID}");

    // Reading: auditor yes, nobody without a token.
    assert_eq!(
        http.get(&base).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let list: Value = http
        .get(&base)
        .bearer_auth(AUDITOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = list["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == ID)
        .unwrap()
        .clone();
    assert_eq!(item["active_version"], 1);
    assert_eq!(item["target"], "lis/dossier.register");
    let r = http.get(&url).bearer_auth(AUDITOR).send().await.unwrap();
    assert_eq!(r.headers()["etag"], "\"1\"");
    let v1: Value = r.json().await.unwrap();
    let original = v1["content"].as_str().unwrap().to_string();
    // The same mapping with its slash percent-encoded.
    let enc = format!("{base}/{}", ID.replace('/', "%2F"));
    assert_eq!(
        http.get(&enc)
            .bearer_auth(AUDITOR)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Changing: auditors may not; a missing precondition is 428.
    let changed = original.replace(
        "- { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [trim, nfc] }",
        "- { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [nfc] }",
    );
    let put = |token: &'static str, body: String, if_match: Option<&'static str>| {
        let mut rb = http
            .put(format!("{url}?comment=api%20change"))
            .bearer_auth(token)
            .header("content-type", "application/yaml")
            .body(body);
        if let Some(v) = if_match {
            rb = rb.header("if-match", v);
        }
        rb.send()
    };
    assert_eq!(
        put(AUDITOR, changed.clone(), Some("\"1\""))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(ADMIN, changed.clone(), None).await.unwrap().status(),
        StatusCode::PRECONDITION_REQUIRED
    );

    // A broken upload: 422 with the gate report and positions.
    let broken = original.replace("rules:\n", "rules:\n  - { target: x, source: [\n");
    let r = put(ADMIN, broken, Some("\"1\"")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    let d = &body["report"]["steps"][0]["diagnostics"][0];
    assert!(
        d["line"].as_u64().unwrap() > 0 && d["column"].as_u64().unwrap() > 0,
        "{body}"
    );

    // A good change: 200, ETag 2.
    let r = put(ADMIN, changed.clone(), Some("\"1\"")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["activation"]["to_version"], 2);
    assert_eq!(body["report"]["passed"], true);

    // A stale precondition: 409 and nothing overwritten.
    let r = put(ADMIN, original.clone(), Some("\"1\"")).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active_version"], 2);
    let now: Value = http
        .get(&url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["content"].as_str().unwrap(), changed);

    // History, one version, diff.
    let h: Value = http
        .get(format!("{url}/versions"))
        .bearer_auth(AUDITOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions: Vec<(i64, bool)> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, vec![(2, true), (1, false)]);
    assert_eq!(h["versions"][0]["author"], "admin:thu");
    assert_eq!(h["versions"][0]["comment"], "api change");
    let one: Value = http
        .get(format!("{url}/versions/1"))
        .bearer_auth(AUDITOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["content"].as_str().unwrap(), original);
    let diff = http
        .get(format!("{url}/diff?from=1&to=2"))
        .bearer_auth(AUDITOR)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        diff.contains("@@")
            && diff.contains("+  - { target: tenThuTucHanhChinh, source: TenTTHC, pipe: [nfc] }"),
        "{diff}"
    );
    assert_eq!(
        http.get(format!("{url}/versions/9"))
            .bearer_auth(AUDITOR)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Validate without activating (JSON body form).
    let r = http
        .post(format!("{url}/validate"))
        .bearer_auth(AUDITOR)
        .json(&json!({"content": original.replace("const: CHUYEN_NHUONG", "const: TANG_CHO")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["report"]["steps"][2]["name"], "tests");
    assert_eq!(body["report"]["steps"][2]["status"], "failed");

    // Preview a draft on an input.
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/inbound/province-portal/dossier.filed/01-tam-ky-an-my-chuyen-nhuong.json")).unwrap(),
    )
    .unwrap();
    let r: Value = http
        .post(format!("{url}/preview"))
        .bearer_auth(AUDITOR)
        .json(&json!({"content": changed, "input": fixture}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["output"]["hoSoTiepNhanId"], "000.00.32.H47-220915-0001");

    // Rollback with its own precondition.
    let r = http
        .post(format!("{url}/rollback"))
        .bearer_auth(ADMIN)
        .header("if-match", "2")
        .json(&json!({"to_version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"1\"");
    assert_eq!(admin.active().load().mappings.get(ID).unwrap().version, 1);

    // Hostile bodies: too large (413 before anything runs) and an alias bomb (422, clear message).
    let huge = format!(
        "id: {ID}\nversion: 1\ndescription: \"{}\"\n",
        "a".repeat(3 * 1024 * 1024)
    );
    // Over a raw socket: the API answers 413 and closes while a client may still be
    // writing, which an HTTP client library can report as a broken pipe instead.
    let (status, answer) = hub_support::send_oversize(
        &format!("http://{addr}"),
        "PUT",
        &format!("/api/v1/mappings/{ID}?comment=api%20change"),
        "application/yaml",
        huge.into_bytes(),
        &[
            ("authorization", format!("Bearer {ADMIN}")),
            ("if-match", "\"1\"".to_string()),
        ],
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    let mut bomb = format!("id: {ID}\nversion: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    let r = put(ADMIN, bomb, Some("\"1\"")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    eprintln!("alias bomb: {}", body["error"]);
    assert!(
        body["error"].as_str().unwrap().contains("compile"),
        "{body}"
    );
    assert_eq!(
        admin.versions().history(ID).await.unwrap().len(),
        2,
        "hostile uploads recorded nothing"
    );
}
