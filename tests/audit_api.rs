//! The audit API against a real hub (the built binary) and a real HTTP partner
//! on loopback: every route enforces its role; a dead letter is replayed to
//! success after the partner recovers and the trail shows both; a dry-run remap
//! after a mapping change shows the exact difference.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

#[path = "audit_support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use support::*;

async fn inbound(hub: &Hub, code: &str, msg_id: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/inbound/portal/dossier.event", hub.base))
        .header("content-type", "application/json")
        .bearer_auth(PARTNER)
        .body(json!({"code": code, "seq": 1, "msg_id": msg_id}).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 202, "inbound refused: {body}");
    body
}

async fn message_id(hub: &Hub, code: &str) -> String {
    let (s, v) = hub
        .get(&format!("/api/v1/messages?dossier={code}"), AUDITOR)
        .await;
    assert_eq!(s, 200, "{v}");
    v["messages"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no message for {code}: {v}"))
        .to_string()
}

async fn delivery_states(hub: &Hub, id: &str) -> Vec<String> {
    let (s, v) = hub.get(&format!("/api/v1/messages/{id}"), AUDITOR).await;
    assert_eq!(s, 200, "{v}");
    v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["state"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_its_role() {
    let sink = Sink::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = Hub::spawn(&write_config(dir.path(), port, &sink.url), port).await;
    inbound(&hub, "HS-R", "r1").await;
    let existing = message_id(&hub, "HS-R").await;
    let client = reqwest::Client::new();
    let call = |method: &axum::http::Method, path: &str, token: Option<&str>| {
        let mut rb = client.request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            format!("{}{path}", hub.base),
        );
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if *method == axum::http::Method::POST {
            rb = rb.header("content-type", "application/json").body("{}");
        }
        async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The table the hub's router was built from, from the running hub itself.
    let (s, table) = hub.get("/api/v1/routes", AUDITOR).await;
    assert_eq!(s, 200, "{table}");
    let table = table.as_array().unwrap().clone();
    let has = |m: &str, p: &str| table.iter().any(|e| e["method"] == m && e["path"] == p);
    for (m, p) in [
        ("POST", "/inbound/{system}/{message_type}"),
        ("GET", "/api/messages/{id}"),
        ("GET", "/api/messages/{id}/trail"),
        ("GET", "/api/v1/messages/{id}"),
        ("PUT", "/api/v1/mappings/{*rest}"),
        ("GET", "/console/messages/{id}"),
        ("GET", "/api/v1/routes"),
    ] {
        assert!(
            has(m, p),
            "{m} {p} is missing from the route table: {table:?}"
        );
    }
    // Exactly these may be called by anyone.
    let public: Vec<String> = table
        .iter()
        .filter(|e| e["access"]["kind"] == "public")
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    let allowed = [
        "GET /",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /console/style.css",
        "GET /console/login",
        "POST /console/login",
    ];
    for p in &public {
        assert!(
            allowed.contains(&p.as_str()),
            "{p} is public but not on the list of public routes"
        );
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for e in &table {
        let method =
            axum::http::Method::from_bytes(e["method"].as_str().unwrap().as_bytes()).unwrap();
        let pattern = e["path"].as_str().unwrap();
        let kind = e["access"]["kind"].as_str().unwrap();
        match kind {
            "public" => continue,
            "partner" => {
                let path = pattern
                    .replace("{system}", "portal")
                    .replace("{message_type}", "dossier.event");
                let (s, body) = call(&method, &path, None).await;
                assert_eq!(s, 401, "{method} {path} without credentials: {body}");
                continue;
            }
            "console" => {
                let path = pattern.replace("{id}", &existing).replace("{*rest}", "x/y");
                let r = no_redirects
                    .request(
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                        format!("{}{path}", hub.base),
                    )
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.headers()
                        .get("location")
                        .map(|v| v.to_str().unwrap().to_string()),
                    Some("/console/login".to_string()),
                    "{method} {path} without a console session (an API token is not one): {}",
                    r.status()
                );
                continue;
            }
            "api" => {}
            other => panic!("unknown access kind {other} for {method} {pattern}"),
        }
        let need = e["access"]["need"].as_str().unwrap();
        for (label, id) in [
            ("unknown", "does-not-exist"),
            ("existing", existing.as_str()),
        ] {
            let path = pattern
                .replace("{id}", id)
                .replace("{*rest}", "does-not-exist")
                .replace(
                    "{code}",
                    if label == "existing" {
                        "HS-R"
                    } else {
                        "NO-SUCH"
                    },
                );
            let what = format!("{method} {path}");
            for (who, token) in [
                ("no token", None),
                ("forged", Some("forged-token")),
                ("expired", Some(EXPIRED)),
                ("revoked", Some(REVOKED)),
            ] {
                let (s, body) = call(&method, &path, token).await;
                assert_eq!(s, 401, "{what} with {who} token: {body}");
            }
            let (s, partner_body) = call(&method, &path, Some(PARTNER)).await;
            assert_eq!(s, 403, "{what} with a partner token: {partner_body}");
            let (s, body) = call(&method, &path, Some(AUDITOR)).await;
            match need {
                "admin" => assert_eq!(
                    s, 403,
                    "{what} is admin-only but an auditor got {s}: {body}"
                ),
                _ => assert!(
                    s != 401 && s != 403,
                    "{what}: an auditor was refused ({s}): {body}"
                ),
            }
            let (s, body) = call(&method, &path, Some(ADMIN)).await;
            assert!(
                s != 401 && s != 403,
                "{what}: the admin was refused ({s}): {body}"
            );
            // A refusal says nothing about whether the resource exists.
            if label == "existing" {
                let unknown = pattern
                    .replace("{id}", "does-not-exist")
                    .replace("{*rest}", "does-not-exist")
                    .replace("{code}", "NO-SUCH");
                let (_, other) = call(&method, &unknown, Some(PARTNER)).await;
                assert_eq!(
                    partner_body, other,
                    "{method} {pattern}: 403 bodies differ for existing vs unknown"
                );
            }
        }
    }
    // Intake: a partner token submits only as its own system; other roles may not submit.
    for (path, token, want) in [
        ("/inbound/station/reading", PARTNER, 403),
        ("/inbound/portal/dossier.event", AUDITOR, 403),
        ("/inbound/portal/dossier.event", "forged-token", 401),
        ("/inbound/portal/dossier.event", EXPIRED, 401),
    ] {
        let r = client
            .post(format!("{}{path}", hub.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(json!({"code": "HS-X", "seq": 1}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            want,
            "{path} with {token}: {}",
            r.text().await.unwrap()
        );
    }

    // Bad input is a clear 4xx.
    let (s, v) = hub
        .post(
            "/api/v1/messages/does-not-exist/replay",
            AUDITOR,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = hub
        .post(
            &format!("/api/v1/messages/{existing}/replay"),
            AUDITOR,
            json!({"mode": "as-sent"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("reason"), "{v}");
    for q in [
        "from=2026-12-01&to=2026-11-01",
        "from=2020-01-01&to=2026-01-01",
        "state=lost",
        "limit=0",
        "colour=red",
        "from=yesterday",
    ] {
        let (s, v) = hub.get(&format!("/api/v1/messages?{q}"), AUDITOR).await;
        assert_eq!(s, 400, "{q}: {v}");
    }
    let (s, v) = hub.get("/api/v1/dossiers/NO-SUCH/timeline", AUDITOR).await;
    assert_eq!(s, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_replayed_to_success_after_the_partner_recovers() {
    let sink = Sink::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = Hub::spawn(&write_config(dir.path(), port, &sink.url), port).await;
    inbound(&hub, "HS-1", "a1").await;
    let id = message_id(&hub, "HS-1").await;
    wait_for("the delivery to be dead-lettered", 20, || async {
        delivery_states(&hub, &id).await == ["dead"]
    })
    .await;

    // Partner back. A dry run first: identical bytes, nothing queued.
    sink.healthy.store(true, Ordering::SeqCst);
    let (s, v) = hub
        .post(
            &format!("/api/v1/messages/{id}/replay"),
            AUDITOR,
            json!({"reason": "sink back after maintenance", "dry_run": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["targets"][0]["identical"], true, "{v}");
    assert_eq!(v["new_deliveries"], json!([]));
    assert_eq!(delivery_states(&hub, &id).await, ["dead"]);

    let (s, v) = hub
        .post(
            &format!("/api/v1/messages/{id}/replay"),
            AUDITOR,
            json!({"reason": "sink back after maintenance", "targets": ["sink"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let new_id = v["new_deliveries"][0].as_str().unwrap().to_string();
    wait_for("the replay to be delivered", 20, || async {
        delivery_states(&hub, &id).await == ["dead", "delivered"]
    })
    .await;
    let got = sink.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("\"HS-1\""), "{got:?}");

    // The message view links the replay to the original.
    let (_, m) = hub.get(&format!("/api/v1/messages/{id}"), AUDITOR).await;
    let original = m["outputs"][0]["id"].as_str().unwrap();
    assert_eq!(m["outputs"][1]["id"], new_id.as_str());
    assert_eq!(m["outputs"][1]["replay_of"], original);
    assert_eq!(
        m["outputs"][1]["body"], m["outputs"][0]["body"],
        "as-sent must re-send the exact bytes"
    );
    assert_eq!(m["outputs"][0]["attempts"].as_array().unwrap().len(), 2);

    // The timeline shows the failure, the replay (who, why) and the success, in order.
    let (s, t) = hub.get("/api/v1/dossiers/HS-1/timeline", AUDITOR).await;
    assert_eq!(s, 200, "{t}");
    let hops = t["hops"].as_array().unwrap();
    let kinds: Vec<&str> = hops.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("no {k} in {kinds:?}"))
    };
    assert!(
        pos("received") < pos("dead")
            && pos("dead") < pos("replay.requested")
            && pos("replayed") < pos("delivered"),
        "{kinds:?}"
    );
    let replayed = &hops[pos("replayed")];
    assert_eq!(replayed["actor"], "auditor:thanh-tra");
    assert_eq!(replayed["detail"]["reason"], "sink back after maintenance");
    assert_eq!(replayed["detail"]["replay_of"], original);
    assert_eq!(hops[pos("delivered")]["delivery_id"], new_id.as_str());
    assert_eq!(hops[pos("dead")]["system"], "sink");
    assert!(
        hops.iter().any(|h| h["status"] == "retry (HTTP 503)"),
        "{kinds:?}"
    );

    // Bulk: a second dead letter; the dry run counts it, the replay delivers it.
    sink.healthy.store(false, Ordering::SeqCst);
    inbound(&hub, "HS-2", "a2").await;
    let id2 = message_id(&hub, "HS-2").await;
    wait_for("the second dead letter", 20, || async {
        delivery_states(&hub, &id2).await == ["dead"]
    })
    .await;
    sink.healthy.store(true, Ordering::SeqCst);
    let filter = json!({"destination": "sink", "error_class": "exhausted", "reason": "bulk after outage", "dry_run": true});
    let (s, v) = hub
        .post("/api/v1/dead-letters/replay", AUDITOR, filter.clone())
        .await;
    assert_eq!((s, v["matched"].as_u64()), (200, Some(1)), "{v}");
    let mut go = filter;
    go["dry_run"] = json!(false);
    let (s, v) = hub.post("/api/v1/dead-letters/replay", AUDITOR, go).await;
    assert_eq!(s, 200, "{v}");
    wait_for("the bulk replay to be delivered", 20, || async {
        delivery_states(&hub, &id2).await == ["dead", "delivered"]
    })
    .await;

    // Reads and replays are on the record, and the whole trail verifies.
    let (s, v) = hub.get("/api/v1/audit/verify", AUDITOR).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["report"]["records_checked"].as_u64().unwrap() >= 8, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_remap_after_a_mapping_change_shows_the_exact_difference() {
    let sink = Sink::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url);
    let hub = Hub::spawn(&config, port).await;
    inbound(&hub, "HS-3", "b1").await;
    let id = message_id(&hub, "HS-3").await;
    wait_for("delivery", 20, || async {
        delivery_states(&hub, &id).await == ["delivered"]
    })
    .await;
    drop(hub);

    // The administrator changes the mapping file: the new version writes a constant msg_id.
    let file = dir
        .path()
        .join("fixtures/mappings/portal/dossier-event.to-sink.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = text.replace("version: 3", "version: 4").replace(
        "  - { target: msg_id, source: msg_id }",
        "  - { target: msg_id, const: \"đổi\" }",
    );
    assert_ne!(text, changed);
    std::fs::write(&file, changed).unwrap();
    let hub = Hub::spawn(&config, port).await;

    let path = format!("/api/v1/messages/{id}/replay");
    let (s, v) = hub
        .post(
            &path,
            AUDITOR,
            json!({"mode": "remap", "dry_run": true, "reason": "check v4"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let t = &v["targets"][0];
    let original = t["original_delivery"].as_str().unwrap();
    // Versions are the mapping store's: the file reconciled at the first start is v1, the edit v2.
    assert_eq!(t["mapping_version"], 2);
    assert_eq!(t["identical"], false);
    let expected = format!(
        "--- sent before (delivery {original})\n+++ would send now\n@@ -1,5 +1,5 @@\n {{\n   \"code\": \"HS-3\",\n   \"seq\": 1,\n-  \"msg_id\": \"b1\"\n+  \"msg_id\": \"đổi\"\n }}\n"
    );
    assert_eq!(t["diff"].as_str().unwrap(), expected);
    assert_eq!(
        delivery_states(&hub, &id).await,
        ["delivered"],
        "a dry run changes nothing"
    );

    // Versions: v1 (stored) can still be chosen, a made-up one does not exist, as-sent takes none.
    let (s, v) = hub
        .post(
            &path,
            AUDITOR,
            json!({"mode": "remap", "mapping_version": 1, "dry_run": true, "reason": "x"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["targets"][0]["identical"], true,
        "v1 maps to exactly what v1 sent: {v}"
    );
    assert_eq!(v["targets"][0]["diff"], "");
    let (s, _) = hub
        .post(
            &path,
            AUDITOR,
            json!({"mode": "remap", "mapping_version": 99, "dry_run": true, "reason": "x"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = hub
        .post(
            &path,
            AUDITOR,
            json!({"mode": "as-sent", "mapping_version": 2, "reason": "x"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = hub
        .post(&path, AUDITOR, json!({"mode": "sideways", "reason": "x"}))
        .await;
    assert_eq!(s, 400, "{v}");

    // For real: the partner gets the remapped body, through the queue.
    let (s, v) = hub
        .post(
            &path,
            ADMIN,
            json!({"mode": "remap", "mapping_version": 2, "reason": "resend with v2"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    wait_for("the remapped delivery", 20, || async {
        delivery_states(&hub, &id).await == ["delivered", "delivered"]
    })
    .await;
    let got = sink.received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert!(got[1].contains("đổi") && !got[0].contains("đổi"), "{got:?}");
}
