//! An auditor cannot read the hub's files through a mapping (issue 13, item 2).
//!
//! On the main of 2026-12-03, `POST /api/v1/mappings/<id>/validate` with a lookup
//! `file: /etc/passwd` (or `../../..`, or `/proc/self/environ`) read the file and
//! answered with its contents in the diff or a parse error at a position, and
//! the errors named absolute server paths. Here every such path is refused by
//! one rule (`lienthong_core::mapping::paths::confine`), through the API and
//! the CLI, whether or not the target exists.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod hub_support;

use std::path::Path;

use hub_support::*;
use serde_json::{json, Value};

const AUDITOR: &str = "paths-auditor-token";
const ID: &str = "portal/dossier-event.to-sink";

fn sha256_hex(s: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | sha256sum"))
        .output()
        .expect("sha256sum (coreutils)");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn mapping_with_lookup(file: &str) -> String {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hub/mappings/portal/dossier-event.to-sink.yaml"),
    )
    .unwrap();
    base.replace(
        "rules:\n",
        &format!("lookups:\n  leak: {{ file: \"{file}\" }}\nrules:\n  - {{ target: leaked, source: code, pipe: [{{ lookup: leak }}] }}\n"),
    )
}

/// A file outside the mappings folder whose content must never come back.
const SECRET_TEXT: &str = "hunter2-do-not-leak";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_files_outside_the_mappings_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub/mappings"),
        &mappings,
    );
    let secret = dir.path().join("secret.yaml");
    std::fs::write(&secret, format!("X: {SECRET_TEXT}\nY: [broken\n")).unwrap();
    // Planted under lookups/, which holds tables, not mappings.
    std::fs::create_dir_all(mappings.join("lookups/ok")).unwrap();
    std::os::unix::fs::symlink(&secret, mappings.join("lookups/link.yaml")).unwrap();
    std::fs::write(mappings.join("lookups/ok/codes.yaml"), "A: Alpha\n").unwrap();

    let sink = Sink::start(None).await;
    let port = free_port();
    let extra = format!(
        "{OPEN_INTAKE}tokens:\n  - {{ name: auditor, role: auditor, sha256: {} }}\n",
        sha256_hex(AUDITOR)
    );
    let config = write_config(dir.path(), port, &sink.url, &extra);
    let text = std::fs::read_to_string(&config).unwrap();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub/mappings");
    std::fs::write(
        &config,
        text.replace(&fx.display().to_string(), &mappings.display().to_string()),
    )
    .unwrap();
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let http = reqwest::Client::new();
    let validate = |content: String| {
        http.post(format!("{}/api/v1/mappings/{ID}/validate", hub.base))
            .bearer_auth(AUDITOR)
            .json(&json!({ "content": content }))
            .send()
    };

    let server_path = dir.path().display().to_string();
    let mut messages = Vec::new();
    for file in [
        secret.display().to_string(),
        "/etc/passwd".to_string(),
        "/proc/self/environ".to_string(),
        "../../secret.yaml".to_string(),
        "../../no-such-file.yaml".to_string(),
        "lookups/ok/../../../secret.yaml".to_string(),
        "lookups/link.yaml".to_string(),
    ] {
        let r = validate(mapping_with_lookup(&file)).await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 422, "{file}: {body}");
        assert!(
            !body.contains(SECRET_TEXT),
            "{file}: the file's content leaked: {body}"
        );
        assert!(
            !body.contains("root:"),
            "{file}: /etc/passwd leaked: {body}"
        );
        // The caller's own text may be quoted back; no other server path may appear.
        assert!(
            !body.replace(&file, "").contains(&server_path),
            "{file}: a server path in the answer: {body}"
        );
        assert!(
            body.contains("inside the mappings folder")
                || body.contains("outside the mappings folder"),
            "{file}: {body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        messages.push((file, v["reasons"].to_string()));
    }
    // A path that leaves the folder gets the same answer whether its target exists or not.
    let exists = &messages[3].1;
    let missing = &messages[4].1;
    assert_eq!(
        exists.replace("secret.yaml", "X"),
        missing.replace("no-such-file.yaml", "X"),
        "the answers tell an existing file from a missing one"
    );

    // A lookup file inside the folder still works.
    let r = validate(mapping_with_lookup("lookups/ok/codes.yaml"))
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("mappings folder"), "{body}");
    assert!(!body.contains(&server_path), "{body}");

    // The CLI refuses the same file in a mappings folder, naming it relatively.
    std::fs::write(
        mappings.join("portal/dossier-event.to-sink.yaml"),
        mapping_with_lookup("/etc/passwd"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("inside the mappings folder"), "{text}");
    assert!(!text.contains("root:"), "{text}");
}
