//! Two hub replicas on one PostgreSQL database: a change made through one is
//! active on the other within seconds (generation polling), and two admins
//! racing on the same mapping cannot both win (compare-and-set under the
//! generation row lock). Each test runs in a schema of its own, dropped after.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

mod fs_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fs_support::{copy_dir, repo};
use router::admin::service::Proposal;
use router::admin::{AdminError, AdminOptions, MappingAdmin, Origin};
use router::schema::SchemaRegistry;
use router::store::{Store, StoreOptions};

// The PostgreSQL test-schema helper the store and queue contract suites use.
#[path = "../router/tests/support/pg.rs"]
mod pg;

const ID: &str = "province-portal/dossier-filed.to-lis";

/// One replica: its own store handle (pool, writer) and its own admin over the shared database.
async fn replica(url: &str, mappings: &Path, options: AdminOptions) -> (Store, Arc<MappingAdmin>) {
    let store = Store::open(url, StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}\nIs PostgreSQL running? Start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`"));
    let schemas = Arc::new(SchemaRegistry::load(&repo().join("schemas")).unwrap());
    let admin = MappingAdmin::bootstrap(
        &store,
        schemas,
        mappings,
        &mappings.join("routes.yaml"),
        options,
    )
    .await
    .unwrap();
    (store, admin)
}

fn change(original: &str, n: usize) -> String {
    original.replace(
        "description: >-\n",
        &format!("description: >-\n  Sửa lần {n}.\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_and_concurrent_changes_cannot_both_win() {
    let schema = pg::PgSchema::create("admin");
    let url = schema.url();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("mappings"), &tmp.path().join("mappings"));
    copy_dir(
        &repo().join("tests/fixtures"),
        &tmp.path().join("tests/fixtures"),
    );
    let mappings = tmp.path().join("mappings");
    let options = AdminOptions {
        poll_interval: Duration::from_millis(250),
        ..AdminOptions::default()
    };

    // Both replicas start on the same files; the second finds them imported already.
    let (_sa, a) = replica(&url, &mappings, options.clone()).await;
    let (_sb, b) = replica(&url, &mappings, options.clone()).await;
    assert_eq!(
        b.versions().history(ID).await.unwrap().len(),
        1,
        "imported once, not once per replica"
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let _pa = a.spawn_poller(stop.clone());
    let _pb = b.spawn_poller(stop.clone());

    let original = std::fs::read_to_string(mappings.join(format!("{ID}.yaml"))).unwrap();
    let p = |content: String, expected: i64, author: &str| Proposal {
        mapping_id: ID.into(),
        content,
        expected: Some(expected),
        author: author.into(),
        comment: String::new(),
        origin: Origin::Api,
        allow_regressions: false,
    };

    // A change through replica A is active on replica B within seconds.
    let t = Instant::now();
    a.propose(p(change(&original, 1), 1, "admin:a"))
        .await
        .unwrap();
    while b.active().load().mappings.get(ID).unwrap().version != 2 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "replica B did not converge within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "replica B converged {:?} after the change on A (poll interval 250 ms)",
        t.elapsed()
    );
    assert_eq!(b.active().load().generation, a.active().load().generation);

    // Both replicas race to change version 2: exactly one wins, the other conflicts.
    let (ra, rb) = tokio::join!(
        a.propose(p(change(&original, 2), 2, "admin:a")),
        b.propose(p(change(&original, 3), 2, "admin:b")),
    );
    let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|x| **x).count();
    assert_eq!(
        wins, 1,
        "exactly one concurrent change wins: {ra:?} / {rb:?}"
    );
    for r in [&ra, &rb] {
        if let Err(e) = r {
            assert!(
                matches!(
                    e,
                    AdminError::Conflict {
                        current: Some(3),
                        ..
                    }
                ),
                "the loser gets a conflict: {e}"
            );
        }
    }
    let hist = a.versions().history(ID).await.unwrap();
    assert_eq!(hist.len(), 3, "no lost or extra version: {hist:?}");
    let t = Instant::now();
    while a.active().load().mappings.get(ID).unwrap().version != 3
        || b.active().load().mappings.get(ID).unwrap().version != 3
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "replicas did not converge on version 3"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A rollback on B reaches A.
    b.rollback(ID, 1, 3, "admin:b", "incident").await.unwrap();
    let t = Instant::now();
    while a.active().load().mappings.get(ID).unwrap().version != 1 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the rollback did not reach replica A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
}
