//! The embedded store on a full disk and on a read-only filesystem, from a
//! partner's side (issue 21): while the SQLite file cannot be written, intake
//! refuses with 503 and `Retry-After` (nothing half-stored) and `/readyz` says
//! not ready, with the reason; both recover by themselves once space or write
//! access returns, and what was accepted before the fault is still delivered.
//!
//! The data directory is a 16 MiB tmpfs mounted by the test (it needs root, as
//! `.ci/run` has), filled with a file until `ENOSPC`, or remounted read-only.
//! (As root, `chmod` would not stop SQLite from writing; a read-only mount does.)

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

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

impl Tmpfs {
    fn remount(&self, mode: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "remounting {} {mode} failed: {}",
            self.0.display(),
            String::from_utf8_lossy(&out.stderr)
        );
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

/// A hub whose data directory is a tmpfs of `size`, delivering to a sink.
/// Fields drop in order: the hub is killed before the tmpfs is unmounted.
struct OnTmpfs {
    hub: HubProcess,
    config: std::path::PathBuf,
    disk: Tmpfs,
    dir: tempfile::TempDir,
    sink: Sink,
}

impl OnTmpfs {
    async fn start(size: &str) -> OnTmpfs {
        let sink = Sink::start(None).await;
        let dir = tempfile::tempdir().unwrap();
        let disk = Tmpfs::mount(&dir.path().join("data"), size);
        let port = free_port();
        let config = write_config(dir.path(), port, &sink.url, OPEN_INTAKE);
        let hub = HubProcess::spawn(&config, port, &[]).await;
        OnTmpfs {
            hub,
            config,
            disk,
            dir,
            sink,
        }
    }
}

/// `/readyz`'s status and body.
async fn ready(client: &reqwest::Client, base: &str) -> (u16, String) {
    let r = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("/readyz answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Until the sink has received a message of each of `codes`.
async fn delivered(sink: &Sink, codes: &[&str]) {
    wait_until(
        "the messages accepted before and after the fault delivered",
        Duration::from_secs(20),
        || {
            let got: Vec<String> = sink
                .delivered()
                .iter()
                .map(|h| h.correlation_id.clone())
                .collect();
            codes.iter().all(|c| got.iter().any(|g| g == c))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503_with_retry_after_and_intake_resumes_when_space_returns() {
    // Bound whole: a field left out of a destructuring would be dropped (the
    // tmpfs unmounted) at once.
    let t = OnTmpfs::start("16m").await;
    let (hub, sink, dir) = (&t.hub, &t.sink, &t.dir);
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

    let (status, why) = ready(&client, &hub.base).await;
    assert_eq!(status, 503, "/readyz said {status} on a full disk: {why}");
    assert!(why.contains("full"), "/readyz does not say why: {why}");

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
    let took = t0.elapsed();
    let (status, why) = ready(&client, &hub.base).await;
    assert_eq!(status, 200, "/readyz after space returned: {why}");
    let _ = writeln!(
        std::io::stderr(),
        "full disk: refused with {retry:?}; accepting again {took:?} after space returned"
    );
    delivered(sink, &["DISK-BEFORE", "DISK-AFTER"]).await;
}

/// A store on a read-only filesystem cannot be opened for writing: `serve`
/// exits at once with SQLite's reason and what to check, instead of timing
/// out with advice about database credentials. (A filesystem cannot be made
/// read-only under a running hub here: a read-only remount is refused while
/// the store has files open for writing, and `chmod` does not bind root.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_read_only_store_exits_with_what_to_check() {
    let mut t = OnTmpfs::start("64m").await;
    t.hub.sigterm();
    let _ = tokio::task::block_in_place(|| t.hub.child.wait());
    let (config, disk) = (&t.config, &t.disk);
    disk.remount("ro");
    let t0 = Instant::now();
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "off")
            .output()
            .expect("running lienthong")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "serve started on a read-only store: {stderr}"
    );
    assert!(
        stderr.contains("unable to open database file") || stderr.contains("readonly database"),
        "{stderr}"
    );
    assert!(
        stderr.contains("write files in the store's directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("credentials"), "{stderr}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}: {stderr}",
        t0.elapsed()
    );
    disk.remount("rw");
}
