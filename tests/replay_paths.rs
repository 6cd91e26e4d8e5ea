//! One replay path (issue 14, defect 7): the CLI's re-mapped replay maps with
//! the version the hub has active, as the API and the console do.
//!
//! On the main of 2026-12-04, after a mapping was rolled back from v2 to v1
//! through the API (to stop an incident), `lienthong replay message … --mode
//! remap` mapped with the file on disk (still v2) and would have delivered
//! that; the API's dry run for the same message said v1. Here the store holds
//! v1 → v2 → rollback to v1 while the file on disk says v2, and the CLI must
//! map with v1.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod fs_support;

use std::process::Command;
use std::sync::Arc;

use fs_support::{copy_dir, repo};
use router::admin::service::Proposal;
use router::admin::versions::Origin;
use router::admin::{AdminOptions, MappingAdmin};
use router::schema::SchemaRegistry;
use router::store::{NewDelivery, NewMessage, Store, StoreOptions};
use serde_json::json;

const ID: &str = "portal/dossier-event.to-sink";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_remap_uses_the_version_the_hub_has_active_after_a_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = repo().join("tests/fixtures/hub");
    let mappings = tmp.path().join("mappings");
    copy_dir(&fx.join("mappings"), &mappings);
    let data = tmp.path().join("data");
    let store = Store::open_sqlite_dir(&data, StoreOptions::default())
        .await
        .unwrap();
    let schemas = Arc::new(SchemaRegistry::load(&fx.join("schemas")).unwrap());
    let admin = MappingAdmin::bootstrap(
        &store,
        schemas.clone(),
        &mappings,
        &mappings.join("routes.yaml"),
        AdminOptions::default(),
    )
    .await
    .unwrap();

    // A message delivered with v1.
    let tree = json!({"code": "RB-1", "seq": 1, "msg_id": "gốc"});
    let m = admin.active().load().mappings.get(ID).unwrap();
    let body = schemas
        .get(&m.target.schema)
        .unwrap()
        .encode(&m.apply(&tree).unwrap())
        .unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    store
        .accept(NewMessage {
            id: id.clone(),
            received_at: router::store::now_ms(),
            source_system: "portal".into(),
            message_type: "dossier.event".into(),
            correlation_id: "RB-1".into(),
            idempotency_key: Some(id.clone()),
            partner_message_id: None,
            content_type: "application/json".into(),
            raw: serde_json::to_vec(&tree).unwrap().into(),
            parsed: tree.to_string(),
            deliveries: vec![NewDelivery {
                id: uuid::Uuid::now_v7().to_string(),
                destination: "sink".into(),
                message_type: m.target.message_type.clone(),
                route_id: "portal-events".into(),
                mapping_id: ID.into(),
                mapping_version: 1,
                body: body.into(),
                content_type: "application/json".into(),
            }],
            trail: vec![],
        })
        .await
        .unwrap();

    // v2 (a constant msg_id) goes live, the file on disk says v2, then the
    // administrator rolls back to v1 through the admin layer, as the API does.
    let file = mappings.join("portal/dossier-event.to-sink.yaml");
    let v2 = std::fs::read_to_string(&file)
        .unwrap()
        .replace("version: 3", "version: 4")
        .replace(
            "  - { target: msg_id, source: msg_id }",
            "  - { target: msg_id, const: \"đổi\" }",
        );
    admin
        .propose(Proposal {
            mapping_id: ID.into(),
            content: v2.clone(),
            expected: Some(1),
            author: "admin:thu".into(),
            comment: "v2".into(),
            origin: Origin::Api,
            allow_regressions: false,
        })
        .await
        .unwrap();
    std::fs::write(&file, &v2).unwrap();
    admin
        .rollback(ID, 1, 2, "admin:thu", "incident: back to v1")
        .await
        .unwrap();
    assert_eq!(admin.active().load().mappings.get(ID).unwrap().version, 1);
    drop(admin);
    drop(store);

    let config = tmp.path().join("lienthong.yaml");
    std::fs::write(
        &config,
        format!(
            "store:\n  data_dir: {}\npaths:\n  mappings: {}\n  schemas: {}\ndestinations:\n  sink:\n    url: \"http://127.0.0.1:9/sink\"\n",
            data.display(),
            mappings.display(),
            fx.join("schemas").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["replay", "message", &id, "--mode", "remap", "--dry-run"])
        .args(["--reason", "check the rollback", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("({ID} v1): identical bytes")),
        "the CLI must map with the active v1 (the rollback), not the file's v2:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("đổi"), "{stdout}");
    assert!(stderr.contains("versions active in the store"), "{stderr}");
}
