//! The embedded store on a full disk, from a partner's side (issue 21): while
//! the SQLite file's disk is full, intake refuses with 503 and `Retry-After`
//! (nothing half-stored), and accepts again by itself once space returns; what
//! was accepted before the fault is still delivered.
//!
//! The data directory is a 16 MiB tmpfs mounted by the test (it needs root, as
//! `.ci/run` has), filled with a file until `ENOSPC`.

mod hub_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hub_support::*;
use serde_json::json;

/// A tmpfs mounted at a path; unmounted on drop, even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs at {} failed: {}; this test needs root (run it as .ci/run does)",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the disk refuses.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503_with_retry_after_and_intake_resumes_when_space_returns() {
    let sink = Sink::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(&dir.path().join("data"), "16m");
    let port = free_port();
    let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
    let hub = HubProcess::spawn(&config, port, &[]).await;
    let client = reqwest::Client::new();
    let post = |code: String, note: String| {
        let client = client.clone();
        let url = format!("{}/inbound/portal/dossier.event", hub.base);
        async move {
            let body =
                json!({ "code": code, "seq": 1, "msg_id": format!("m-{code}"), "note": note });
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let status = r.status().as_u16();
            (status, retry, r.text().await.unwrap())
        }
    };

    let (s, _, body) = post("DISK-BEFORE".into(), String::new()).await;
    assert_eq!(s, 202, "{body}");

    let filler = dir.path().join("data/filler");
    fill(&filler);
    // Each message carries a 256 KiB note, so its row needs pages the disk no longer has.
    let note = "x".repeat(256 * 1024);
    let mut refused = None;
    for n in 0..40 {
        let (s, retry, body) = post(format!("DISK-FULL-{n}"), note.clone()).await;
        if s == 503 {
            refused = Some((retry, body));
            break;
        }
        assert_eq!(s, 202, "accepted or refused, nothing else: {body}");
    }
    let (retry, body) = refused.expect("a full disk never refused a write");
    eprintln!("refused on a full disk: {body}");
    assert_eq!(
        retry.as_deref(),
        Some("2"),
        "503 without Retry-After: {body}"
    );
    assert!(body.contains("store unavailable"), "{body}");
    assert!(
        body.contains("full"),
        "the reason names the full disk: {body}"
    );

    std::fs::remove_file(&filler).unwrap();
    let t0 = Instant::now();
    loop {
        let (s, _, body) = post("DISK-AFTER".into(), note.clone()).await;
        if s == 202 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "still refused 5 s after space returned: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("accepting again {:?} after space returned", t0.elapsed());

    wait_until(
        "the messages accepted before and after the fault delivered",
        Duration::from_secs(20),
        || {
            let got: Vec<String> = sink
                .delivered()
                .iter()
                .map(|h| h.correlation_id.clone())
                .collect();
            ["DISK-BEFORE", "DISK-AFTER"]
                .iter()
                .all(|c| got.iter().any(|g| g == c))
        },
    )
    .await;
}
