//! Tampering with any stored record is caught by `audit verify`, on SQLite and
//! PostgreSQL; concurrent writers never fork the chain; pruned payloads verify as
//! pruned; bundles verify offline (in Rust and with sha256sum + jq) and one changed
//! byte fails them.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

#[path = "audit_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;

use router::audit::bundle::{self, Bundle};
use router::audit::export::{export, ExportOptions};
use router::audit::retention;
use router::audit::verify::{verify_store, Report, VerifyOptions};
use router::store::now_ms;
use support::{flip, seed, Db};

async fn verify(db: &Db) -> Report {
    verify_store(&db.store, &VerifyOptions::default())
        .await
        .unwrap()
}

fn assert_caught(r: &Report, table: &str, field: &str, case: &str) {
    assert!(!r.ok(), "{case}: tampering was not detected");
    assert!(
        r.problems
            .iter()
            .any(|p| p.table == table && p.field == field),
        "{case}: expected a problem on {table}.{field}, got: {:#?}",
        r.problems
    );
}

type Tamper = fn(&Db) -> futures::future::BoxFuture<'_, ()>;

/// (case, tampering, expected table, expected field)
fn cases() -> Vec<(&'static str, Tamper, &'static str, &'static str)> {
    vec![
        (
            "one byte of messages.raw",
            |db| {
                Box::pin(async move {
                    let b = db.bytes("SELECT raw FROM messages WHERE id = 'm2'").await;
                    db.set_bytes("UPDATE messages SET raw = $1 WHERE id = 'm2'", flip(b))
                        .await;
                })
            },
            "messages",
            "raw",
        ),
        (
            "one byte of messages.parsed",
            |db| {
                Box::pin(async move {
                    let b = db
                        .bytes("SELECT parsed FROM messages WHERE id = 'm1'")
                        .await;
                    db.set_text(
                        "UPDATE messages SET parsed = $1 WHERE id = 'm1'",
                        String::from_utf8(flip(b)).unwrap(),
                    )
                    .await;
                })
            },
            "messages",
            "parsed",
        ),
        (
            "messages.correlation_id",
            |db| {
                Box::pin(async move {
                    db.exec("UPDATE messages SET correlation_id = 'H9' WHERE id = 'm3'")
                        .await;
                })
            },
            "messages",
            "correlation_id",
        ),
        (
            "one byte of a rejected message",
            |db| {
                Box::pin(async move {
                    let b = db.bytes("SELECT raw FROM messages WHERE id = 'r1'").await;
                    db.set_bytes("UPDATE messages SET raw = $1 WHERE id = 'r1'", flip(b))
                        .await;
                })
            },
            "messages",
            "raw",
        ),
        (
            "one byte of deliveries.body",
            |db| {
                Box::pin(async move {
                    let b = db
                        .bytes("SELECT body FROM deliveries WHERE id = 'm1-lis'")
                        .await;
                    db.set_bytes(
                        "UPDATE deliveries SET body = $1 WHERE id = 'm1-lis'",
                        flip(b),
                    )
                    .await;
                })
            },
            "deliveries",
            "body",
        ),
        (
            "deliveries.mapping_version",
            |db| {
                Box::pin(async move {
                    db.exec("UPDATE deliveries SET mapping_version = 2 WHERE id = 'm2-lis'")
                        .await;
                })
            },
            "deliveries",
            "mapping_version",
        ),
        (
            "a dead letter turned into delivered",
            |db| {
                Box::pin(async move {
                    db.exec(
                        "UPDATE deliveries SET state = 'delivered' WHERE id = 'm1-national-portal'",
                    )
                    .await;
                })
            },
            "deliveries",
            "state",
        ),
        (
            "one byte of attempts.response_excerpt",
            |db| {
                Box::pin(async move {
                    let b = db
                        .bytes("SELECT response_excerpt FROM attempts WHERE delivery_id = 'm2-lis'")
                        .await;
                    db.set_text(
                        "UPDATE attempts SET response_excerpt = $1 WHERE delivery_id = 'm2-lis'",
                        String::from_utf8(flip(b)).unwrap(),
                    )
                    .await;
                })
            },
            "attempts",
            "response_excerpt",
        ),
        (
            "attempts.status",
            |db| {
                Box::pin(async move {
                    db.exec(
                        "UPDATE attempts SET status = 200 WHERE delivery_id = 'm1-national-portal'",
                    )
                    .await;
                })
            },
            "attempts",
            "status",
        ),
        (
            "one byte of trail.detail",
            |db| {
                Box::pin(async move {
                    let t = db.text("SELECT detail FROM trail WHERE seq = 3").await;
                    db.set_text(
                        "UPDATE trail SET detail = $1 WHERE seq = 3",
                        String::from_utf8(flip(t.into_bytes())).unwrap(),
                    )
                    .await;
                })
            },
            "trail",
            "content",
        ),
        (
            "whitespace in trail.detail",
            |db| {
                Box::pin(async move {
                    let t = db.text("SELECT detail FROM trail WHERE seq = 2").await;
                    db.set_text(
                        "UPDATE trail SET detail = $1 WHERE seq = 2",
                        t.replacen(':', ": ", 1),
                    )
                    .await;
                })
            },
            "trail",
            "detail",
        ),
        (
            "trail.actor",
            |db| {
                Box::pin(async move {
                    db.exec("UPDATE trail SET actor = 'admin:x' WHERE seq = 5")
                        .await;
                })
            },
            "trail",
            "content",
        ),
        (
            "trail.hash",
            |db| {
                Box::pin(async move {
                    // Always a different first byte: a hash that already starts with "00"
                    // (one in 256) made the old `'00' || ...` edit a no-op.
                    db.exec(
                        "UPDATE trail SET hash = CASE WHEN substr(hash, 1, 2) = '00' THEN 'ff' ELSE '00' END \
                         || substr(hash, 3) WHERE seq = 4",
                    )
                    .await;
                })
            },
            "trail",
            "hash",
        ),
        (
            "a trail row deleted in the middle",
            |db| {
                Box::pin(async move {
                    db.exec("DELETE FROM trail WHERE seq = 6").await;
                })
            },
            "trail",
            "seq",
        ),
        (
            "the last trail row deleted",
            |db| {
                Box::pin(async move {
                    db.exec("DELETE FROM trail WHERE seq = (SELECT MAX(seq) FROM trail)")
                        .await;
                })
            },
            "trail",
            "row",
        ),
        (
            "an attempt deleted",
            |db| {
                Box::pin(async move {
                    db.exec("DELETE FROM attempts WHERE delivery_id = 'm1-lis' AND n = 1")
                        .await;
                })
            },
            "attempts",
            "row",
        ),
        (
            "a rejected message deleted",
            |db| {
                Box::pin(async move {
                    db.exec("DELETE FROM messages WHERE id = 'r1'").await;
                })
            },
            "messages",
            "row",
        ),
        (
            "a message inserted behind the hub's back",
            |db| {
                Box::pin(async move {
                    db.exec("INSERT INTO messages (id, received_at, source_system, message_type, correlation_id, content_type, raw, state) \
                     SELECT 'forged', received_at, source_system, message_type, correlation_id, content_type, raw, state FROM messages WHERE id = 'm2'").await;
                })
            },
            "messages",
            "row",
        ),
        (
            "a payload emptied and marked pruned by hand",
            |db| {
                Box::pin(async move {
                    db.set_bytes(
                        "UPDATE messages SET raw = $1, pruned_at = 1 WHERE id = 'm3'",
                        Vec::new(),
                    )
                    .await;
                })
            },
            "messages",
            "pruned_at",
        ),
    ]
}

async fn every_tampering_is_caught(new_db: fn() -> futures::future::BoxFuture<'static, Db>) {
    {
        let db = new_db().await;
        seed(&db.store).await;
        let r = verify(&db).await;
        assert!(r.ok(), "an untouched store must verify: {:#?}", r.problems);
        assert_eq!((r.trail_rows, r.records_checked), (19, 12), "{r:?}");
    }
    for (case, tamper, table, field) in cases() {
        let db = new_db().await;
        seed(&db.store).await;
        tamper(&db).await;
        let r = verify(&db).await;
        assert_caught(&r, table, field, case);
    }
}

async fn prune_keeps_the_chain_verifiable(db: Db) {
    seed(&db.store).await;
    let out = retention::prune_before(&db.store, now_ms() + 1, "admin:test")
        .await
        .unwrap();
    // m3 still has a pending delivery: it and its delivery are kept.
    assert_eq!(
        (out.messages, out.deliveries, out.attempts),
        (3, 3, 4),
        "{out:?}"
    );
    assert!(db
        .bytes("SELECT raw FROM messages WHERE id = 'm1'")
        .await
        .is_empty());
    assert!(!db
        .bytes("SELECT raw FROM messages WHERE id = 'm3'")
        .await
        .is_empty());
    let r = verify(&db).await;
    assert!(
        r.ok(),
        "pruned payloads must verify as pruned: {:#?}",
        r.problems
    );
    assert_eq!(r.records_pruned, 10, "{r:?}");
    // Editing a pruned record's kept columns is still caught.
    db.exec("UPDATE deliveries SET destination = 'tax' WHERE id = 'm1-lis'")
        .await;
    assert_caught(
        &verify(&db).await,
        "deliveries",
        "destination",
        "edit after prune",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catches_every_tampering() {
    every_tampering_is_caught(|| Box::pin(Db::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catches_every_tampering() {
    every_tampering_is_caught(|| Box::pin(Db::postgres())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_prune_verifies_as_pruned() {
    prune_keeps_the_chain_verifiable(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_prune_verifies_as_pruned() {
    prune_keeps_the_chain_verifiable(Db::postgres().await).await;
}

/// Several processes' worth of writers (separate stores, separate connections) append at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_never_fork_the_chain() {
    let db = Db::postgres().await;
    let mut stores = vec![db.store.clone()];
    for _ in 0..3 {
        stores.push(
            router::store::Store::open(&db.url, Default::default())
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for (w, s) in stores.iter().enumerate() {
        for k in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let id = format!("w{w}k{k}i{i}");
                    s.accept(support::message(
                        &id,
                        &format!("D{w}{k}"),
                        now_ms(),
                        &["lis"],
                    ))
                    .await
                    .unwrap();
                    s.record_events(vec![router::audit::TrailEvent {
                        at: now_ms(),
                        message_id: Some(id),
                        delivery_id: None,
                        kind: "audit.read",
                        actor: format!("auditor:w{w}"),
                        detail: serde_json::json!({}),
                    }])
                    .await
                    .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = verify(&db).await;
    assert!(r.ok(), "{:#?}", r.problems);
    // 160 messages x (received, routed, mapped) + 160 reads.
    assert_eq!(r.trail_rows, 160 * 4);
    assert_eq!(r.last_seq, Some(160 * 4));
    assert_eq!(r.records_checked, 320);
}

fn sh(dir: &std::path::Path, script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The standard-tools check documented in docs/AUDIT.md.
pub const SHELL_CHECK: &str = include_str!("fixtures/audit/check-bundle.sh");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_verify_offline_and_catch_one_changed_byte() {
    let db = Db::sqlite().await;
    seed(&db.store).await;
    let tmp = tempfile::tempdir().unwrap();
    let opts = |dossier: Option<&str>| ExportOptions {
        from: 0,
        to: now_ms() + 1,
        dossier: dossier.map(String::from),
        actor: "auditor:test".into(),
    };

    // A time range, as a tar.
    let (b, summary) = export(&db.store, &opts(None)).await.unwrap();
    assert!(
        bundle::verify(&b).ok(),
        "{:#?}",
        bundle::verify(&b).problems
    );
    let tar = tmp.path().join("all.tar");
    b.write(&tar).unwrap();
    let back = Bundle::read(&tar).unwrap();
    assert_eq!(back, b);
    assert_eq!(summary.first_prev_hash, router::audit::GENESIS_HASH);

    // Standard tools: tar, sha256sum, jq.
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let (ok, out) = sh(
        &x,
        &format!(
            "tar -xf {} && sh -c '{}'",
            tar.display(),
            SHELL_CHECK.replace('\'', "'\\''")
        ),
    );
    assert!(
        ok,
        "the documented shell check failed on a good bundle:\n{out}"
    );
    assert!(out.contains("chain OK"), "{out}");

    // One dossier: its rows, linked by the spine, and nothing of the other dossiers.
    let (d, _) = export(&db.store, &opts(Some("H1"))).await.unwrap();
    let r = bundle::verify(&d);
    assert!(r.ok(), "{:#?}", r.problems);
    let records = String::from_utf8(d.files["records.jsonl"].clone()).unwrap();
    assert!(
        records.contains("\"H1\"") && !records.contains("\"H2\"") && !records.contains("\"H3\""),
        "{records}"
    );
    let trail = String::from_utf8(d.files["trail.jsonl"].clone()).unwrap();
    assert!(!trail.contains("m2") && !trail.contains("m3"), "{trail}");

    // One byte changed in each kind of file: caught (SHA256SUMS alone would catch it, so
    // also re-seal after the change, as a forger would, and it is still caught).
    for name in ["trail.jsonl", "records.jsonl", "spine.jsonl"] {
        for reseal in [false, true] {
            let mut bad = d.clone();
            let f = bad.files.get_mut(name).unwrap();
            // Change a hex digit of a hash, or a character of a value: stays parseable.
            let pos = f.iter().position(|c| *c == b'H').unwrap_or(f.len() / 2);
            f[pos] = b'J';
            if reseal {
                bad.seal();
            }
            let r = bundle::verify(&bad);
            assert!(
                !r.ok(),
                "{name} (resealed: {reseal}) changed but the bundle verified"
            );
        }
    }
    let payload = d
        .files
        .keys()
        .find(|k| k.starts_with("payloads/"))
        .unwrap()
        .clone();
    let mut bad = d.clone();
    let f = bad.files.get_mut(&payload).unwrap();
    f[0] ^= 1;
    bad.seal();
    let r = bundle::verify(&bad);
    assert!(
        r.problems
            .iter()
            .any(|p| p.what.contains("payload digest mismatch")),
        "{:#?}",
        r.problems
    );

    // A byte flipped in the tar file itself, checked by the CLI.
    let mut bytes = std::fs::read(&tar).unwrap();
    let needle = b"\"canonical\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + 20;
    bytes[at] ^= 1;
    let badtar = tmp.path().join("bad.tar");
    std::fs::write(&badtar, &bytes).unwrap();
    let bin = env!("CARGO_BIN_EXE_lienthong");
    let good = Command::new(bin)
        .args(["audit", "verify", "--bundle"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let out = Command::new(bin)
        .args(["audit", "verify", "--bundle"])
        .arg(&badtar)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BROKEN") && err.contains("trail.jsonl"),
        "{err}"
    );
    let x2 = tmp.path().join("x2");
    std::fs::create_dir(&x2).unwrap();
    let (ok, out) = sh(
        &x2,
        &format!(
            "tar -xf {} && sh -c '{}'",
            badtar.display(),
            SHELL_CHECK.replace('\'', "'\\''")
        ),
    );
    assert!(!ok, "the shell check passed a changed bundle:\n{out}");

    // The CLI against the store: OK, then broken with exit 1 and the first broken link.
    let cli = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .args(["--db", &db.url])
            .output()
            .unwrap()
    };
    let ok_run = cli(&["audit", "verify"]);
    assert!(
        ok_run.status.success(),
        "{}",
        String::from_utf8_lossy(&ok_run.stderr)
    );
    db.exec("UPDATE trail SET actor = 'intake2' WHERE seq = 2")
        .await;
    let bad_run = cli(&["audit", "verify"]);
    assert_eq!(bad_run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad_run.stderr);
    assert!(err.contains("first broken link: trail 2: content"), "{err}");
    let _ = BTreeMap::<u8, u8>::new();
}
