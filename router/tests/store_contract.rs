//! The store contract, run unchanged against SQLite and PostgreSQL.
//!
//! Every test body takes a freshly opened [`Store`]; the `contract!` macro runs
//! it once on a SQLite file in a temporary directory and once on PostgreSQL in a
//! schema of its own (`CREATE SCHEMA`, then `options=-csearch_path%3D<schema>` in
//! the URL; dropped afterwards, even when the test fails). PostgreSQL must be on
//! 127.0.0.1:5432 with user `postgres` and a database `test`.

// A test crate: a panic is how a test fails (see [workspace.lints]).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use router::audit::{event_hash, TrailEvent, GENESIS_HASH};
use router::store::{
    now_ms, AcceptOutcome, Backend, LeasedDelivery, NewDelivery, NewMessage, RejectedMessage,
    SettleOutcome, Settlement, Store, StoreOptions,
};
use serde_json::json;
use sqlx::Row;

mod support {
    pub mod pg;
}
use support::pg::PgSchema;

/// Keeps whatever backs a store alive for the test's duration.
enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PgSchema),
}

async fn sqlite() -> (Store, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path(), StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    (store, Guard::Sqlite(dir))
}

async fn postgres() -> (Store, Guard) {
    let guard = PgSchema::create("store");
    let url = guard.url();
    let store = Store::open(&url, StoreOptions::default()).await.unwrap_or_else(|e| {
        panic!("{e}\nIs PostgreSQL running? Start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`")
    });
    assert_eq!(store.backend(), Backend::Postgres);
    (store, Guard::Postgres(guard))
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _guard) = super::sqlite().await;
                super::$name(store).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let (store, _guard) = super::postgres().await;
                super::$name(store).await
            }
        }
    )*};
}

contract!(
    accept_stores_message_deliveries_and_trail,
    idempotency_key_returns_the_original,
    rejected_attempts_are_kept_and_never_count_as_duplicates,
    lease_is_head_of_line_per_dossier_and_destination,
    settle_records_attempts_and_outcomes,
    expired_lease_is_leased_again,
    an_unsent_lease_given_back_is_due_at_once,
    concurrent_writers_keep_one_unbroken_chain,
    a_burst_of_settlements_is_recorded_one_by_one,
    exact_bytes_and_unicode_survive,
    settling_names_the_next_due_relayed_delivery_of_the_lane,
);

fn message(correlation: &str, key: Option<&str>, destinations: &[&str]) -> NewMessage {
    let id = uuid::Uuid::now_v7().to_string();
    let at = now_ms();
    NewMessage {
        id: id.clone(),
        received_at: at,
        source_system: "province-portal".into(),
        message_type: "dossier.filed".into(),
        correlation_id: correlation.into(),
        idempotency_key: key.map(str::to_string),
        partner_message_id: None,
        content_type: "application/json".into(),
        raw: Bytes::from(format!("{{\"MaHoSo\":\"{correlation}\"}}")),
        parsed: format!("{{\"MaHoSo\":\"{correlation}\"}}"),
        deliveries: destinations
            .iter()
            .map(|d| NewDelivery {
                id: uuid::Uuid::now_v7().to_string(),
                destination: d.to_string(),
                message_type: "dossier.register".into(),
                route_id: "dossier-filed".into(),
                mapping_id: format!("province-portal/dossier-filed.to-{d}"),
                mapping_version: 3,
                body: Bytes::from(format!("<HoSo>{correlation}</HoSo>")),
                content_type: "application/xml".into(),
            })
            .collect(),
        trail: vec![TrailEvent {
            at,
            message_id: Some(id),
            delivery_id: None,
            kind: "received",
            actor: "intake".into(),
            detail: json!({"system": "province-portal", "correlation_id": correlation}),
        }],
    }
}

fn settlement(l: &LeasedDelivery, outcome: SettleOutcome) -> Settlement {
    Settlement {
        delivery_id: l.id.clone(),
        message_id: l.message_id.clone(),
        destination: l.destination.clone(),
        attempt: l.attempt,
        started_at: now_ms(),
        latency_ms: 12,
        request_excerpt: "<HoSo/>".into(),
        status: Some(if outcome == SettleOutcome::Delivered {
            200
        } else {
            503
        }),
        response_excerpt: "ok".into(),
        error: if outcome == SettleOutcome::Delivered {
            None
        } else {
            Some("http-503: busy".into())
        },
        error_class: match outcome {
            SettleOutcome::Delivered => None,
            SettleOutcome::Retry { .. } => Some("transient".into()),
            SettleOutcome::Dead => Some("exhausted".into()),
        },
        partner_reference: Some("REF-1".into()),
        outcome,
    }
}

/// Recomputes the whole chain; panics at the first broken link.
async fn verify_chain(store: &Store) -> usize {
    let rows = sqlx::query(
        "SELECT seq, at, message_id, delivery_id, kind, actor, detail, prev_hash, hash FROM trail ORDER BY seq",
    )
    .fetch_all(store.pool_for_tests())
    .await
    .unwrap();
    let mut prev = GENESIS_HASH.to_string();
    for (i, r) in rows.iter().enumerate() {
        let seq: i64 = r.try_get("seq").unwrap();
        assert_eq!(seq, i as i64 + 1, "trail seq has a gap");
        let prev_hash: String = r.try_get("prev_hash").unwrap();
        assert_eq!(prev_hash, prev, "row {seq} does not follow row {}", seq - 1);
        let detail: String = r.try_get("detail").unwrap();
        let obj = router::audit::chain::event_object(
            seq,
            r.try_get("at").unwrap(),
            r.try_get::<Option<String>, _>("message_id")
                .unwrap()
                .as_deref(),
            r.try_get::<Option<String>, _>("delivery_id")
                .unwrap()
                .as_deref(),
            &r.try_get::<String, _>("kind").unwrap(),
            &r.try_get::<String, _>("actor").unwrap(),
            &serde_json::from_str(&detail).unwrap(),
        );
        let hash: String = r.try_get("hash").unwrap();
        assert_eq!(hash, event_hash(&prev, &obj), "row {seq} was altered");
        prev = hash;
    }
    rows.len()
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn lease(store: &Store, dest: &str) -> Vec<LeasedDelivery> {
    store.lease(dest, 16, now_ms() + 30_000).await.unwrap()
}

// ---------------------------------------------------------------- bodies

async fn accept_stores_message_deliveries_and_trail(store: Store) {
    let m = message(
        "000.00.32.H47-261128-0001",
        Some("k1"),
        &["lis", "national-portal"],
    );
    let out = store.accept(m.clone()).await.unwrap();
    assert_eq!(
        out,
        AcceptOutcome::Accepted {
            id: m.id.clone(),
            deliveries: 2
        }
    );
    let view = store.message(&m.id).await.unwrap().expect("stored");
    assert_eq!(view.state, "accepted");
    assert_eq!(
        view.correlation_id.as_deref(),
        Some("000.00.32.H47-261128-0001")
    );
    assert_eq!(view.deliveries.len(), 2);
    assert!(view
        .deliveries
        .iter()
        .all(|d| d.state == "pending" && d.attempts == 0 && d.mapping_version == 3));
    let mut depth = store.queue_depth().await.unwrap();
    depth.sort();
    assert_eq!(
        depth,
        vec![("lis".to_string(), 1), ("national-portal".to_string(), 1)]
    );
    assert!(store.next_due("lis").await.unwrap().unwrap() <= now_ms());
    assert_eq!(
        store.trail_for_message(&m.id).await.unwrap()[0].kind,
        "received"
    );
    assert!(verify_chain(&store).await >= 1);
    store.ping().await.unwrap();
}

async fn idempotency_key_returns_the_original(store: Store) {
    let first = message("HS-1", Some("same-key"), &["lis"]);
    store.accept(first.clone()).await.unwrap();
    let again = message("HS-1", Some("same-key"), &["lis"]);
    assert_eq!(
        store.accept(again.clone()).await.unwrap(),
        AcceptOutcome::Duplicate {
            id: first.id.clone(),
            correlation_id: "HS-1".into()
        }
    );
    assert!(
        store.message(&again.id).await.unwrap().is_none(),
        "a duplicate stores nothing"
    );
    // Same key from another system is a different message.
    let mut other = message("HS-1", Some("same-key"), &["lis"]);
    other.source_system = "lis".into();
    assert!(matches!(
        store.accept(other.clone()).await.unwrap(),
        AcceptOutcome::Accepted { .. }
    ));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM deliveries").await, 2);
    // Resent together (one batch, two source systems): each names its own original.
    let mut from_lis = message("HS-1", Some("same-key"), &["lis"]);
    from_lis.source_system = "lis".into();
    let from_portal = message("HS-1", Some("same-key"), &["lis"]);
    let (a, b) = futures::join!(store.accept(from_portal), store.accept(from_lis));
    let original = |m: &NewMessage| AcceptOutcome::Duplicate {
        id: m.id.clone(),
        correlation_id: "HS-1".into(),
    };
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (original(&first), original(&other))
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM deliveries").await, 2);
    // The same key many times at once: the writer commits them in one batch,
    // and exactly one is stored; every other answer names that one.
    let same: Vec<NewMessage> = (0..32)
        .map(|_| message("HS-2", Some("burst-key"), &["lis"]))
        .collect();
    let outcomes = futures::future::join_all(same.iter().map(|m| store.accept(m.clone()))).await;
    let stored: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o.as_ref().unwrap() {
            AcceptOutcome::Accepted { id, .. } => Some(id),
            AcceptOutcome::Duplicate { .. } => None,
        })
        .collect();
    assert_eq!(stored.len(), 1, "{outcomes:?}");
    for o in &outcomes {
        if let AcceptOutcome::Duplicate { id, .. } = o.as_ref().unwrap() {
            assert_eq!(id, stored[0]);
        }
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM deliveries").await, 3);
    // Many distinct keys resent at once, from two systems: the writer looks them
    // up in batches of up to 512, in statements of at most 250 keys, so this
    // crosses a statement boundary. Every resend names its own original.
    let originals: Vec<NewMessage> = (0..300)
        .map(|i| {
            let mut m = message(&format!("HS-M{i}"), Some(&format!("many-{i}")), &["lis"]);
            if i % 3 == 0 {
                m.source_system = "lis".into();
            }
            m
        })
        .collect();
    for o in futures::future::join_all(originals.iter().map(|m| store.accept(m.clone()))).await {
        assert!(matches!(o.unwrap(), AcceptOutcome::Accepted { .. }));
    }
    let resends = originals.iter().map(|m| {
        let mut again = message(&m.correlation_id, m.idempotency_key.as_deref(), &["lis"]);
        again.source_system = m.source_system.clone();
        store.accept(again)
    });
    let outcomes = futures::future::join_all(resends).await;
    for (m, o) in originals.iter().zip(outcomes) {
        assert_eq!(
            o.unwrap(),
            AcceptOutcome::Duplicate {
                id: m.id.clone(),
                correlation_id: m.correlation_id.clone()
            }
        );
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM deliveries").await, 303);
}

async fn rejected_attempts_are_kept_and_never_count_as_duplicates(store: Store) {
    let id = uuid::Uuid::now_v7().to_string();
    store
        .reject(RejectedMessage {
            id: id.clone(),
            received_at: now_ms(),
            source_system: "province-portal".into(),
            message_type: "dossier.filed".into(),
            correlation_id: None,
            content_type: "application/json".into(),
            raw: Bytes::from_static(b"{not json"),
            parsed: None,
            status: 400,
            reasons: vec!["line 1 column 2: key must be a string".into()],
        })
        .await
        .unwrap();
    let v = store.message(&id).await.unwrap().unwrap();
    assert_eq!(v.state, "rejected");
    assert_eq!(
        v.reasons,
        Some(json!(["line 1 column 2: key must be a string"]))
    );
    let raw: Vec<u8> = sqlx::query("SELECT raw FROM messages WHERE id = $1")
        .bind(&id)
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap()
        .try_get("raw")
        .unwrap();
    assert_eq!(raw, b"{not json");
    assert_eq!(
        store.trail_for_message(&id).await.unwrap()[0].kind,
        "rejected"
    );
    let ok = message("HS-2", Some("k"), &["lis"]);
    assert!(matches!(
        store.accept(ok).await.unwrap(),
        AcceptOutcome::Accepted { .. }
    ));
}

async fn lease_is_head_of_line_per_dossier_and_destination(store: Store) {
    let a1 = message("A", None, &["lis", "tax"]);
    let a2 = message("A", None, &["lis"]);
    let b1 = message("B", None, &["lis"]);
    for m in [&a1, &a2, &b1] {
        store.accept(m.clone()).await.unwrap();
    }
    let first = lease(&store, "lis").await;
    let ids: Vec<&str> = first.iter().map(|l| l.message_id.as_str()).collect();
    assert_eq!(
        ids,
        vec![a1.id.as_str(), b1.id.as_str()],
        "A's second message waits for its first"
    );
    assert!(
        lease(&store, "lis").await.is_empty(),
        "leased rows are not leased twice"
    );
    // Another destination of the same dossier is independent.
    assert_eq!(lease(&store, "tax").await.len(), 1);
    let l_a1 = first.iter().find(|l| l.message_id == a1.id).unwrap();
    assert_eq!((l_a1.attempt, l_a1.correlation_id.as_str()), (1, "A"));
    assert_eq!(&l_a1.body[..], b"<HoSo>A</HoSo>");
    store
        .settle(settlement(l_a1, SettleOutcome::Delivered))
        .await
        .unwrap();
    let next = lease(&store, "lis").await;
    assert_eq!(
        next.iter()
            .map(|l| l.message_id.as_str())
            .collect::<Vec<_>>(),
        vec![a2.id.as_str()]
    );
}

/// `settle_and_next` (what the RabbitMQ queue wakes after a settlement) names
/// the lane's next delivery only when the settled one is finished and the next
/// one is due and relayed; never another lane's, never for a retry.
async fn settling_names_the_next_due_relayed_delivery_of_the_lane(store: Store) {
    let a1 = message("L", None, &["lis"]);
    let a2 = message("L", None, &["lis"]);
    let a3 = message("L", None, &["lis"]);
    let other = message("M", None, &["lis"]);
    for m in [&a1, &a2, &a3, &other] {
        store.accept(m.clone()).await.unwrap();
    }
    let delivery_of = |m: &NewMessage| m.deliveries[0].id.clone();
    let seq_of = |id: String| {
        let store = store.clone();
        async move {
            sqlx::query("SELECT seq FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(store.pool_for_tests())
                .await
                .unwrap()
                .try_get::<i64, _>("seq")
                .unwrap()
        }
    };
    let relay = |ids: Vec<String>| {
        let store = store.clone();
        async move {
            for id in ids {
                sqlx::query("UPDATE deliveries SET relayed_at = $1 WHERE id = $2")
                    .bind(now_ms())
                    .bind(id)
                    .execute(store.pool_for_tests())
                    .await
                    .unwrap();
            }
        }
    };
    let leased = lease(&store, "lis").await;
    let l1 = leased.iter().find(|l| l.message_id == a1.id).unwrap();
    // The next one is not relayed yet: the relay publishes it anyway.
    let mut retry = settlement(l1, SettleOutcome::Retry { at: now_ms() });
    retry.attempt = 1;
    assert_eq!(
        store.settle_and_next(retry).await.unwrap(),
        None,
        "a retry keeps its place: nothing to wake"
    );
    let l1 = lease(&store, "lis").await;
    let l1 = l1.iter().find(|l| l.message_id == a1.id).unwrap();
    relay(vec![delivery_of(&a3), delivery_of(&other)]).await;
    assert_eq!(
        store
            .settle_and_next(settlement(l1, SettleOutcome::Delivered))
            .await
            .unwrap(),
        None,
        "the head of the lane (a2) is not relayed yet; a3 behind it is not woken"
    );
    relay(vec![delivery_of(&a2)]).await;
    let l2 = lease(&store, "lis").await;
    assert_eq!(l2.len(), 1, "{l2:?}");
    assert_eq!(l2[0].message_id, a2.id);
    let next = store
        .settle_and_next(settlement(&l2[0], SettleOutcome::Dead))
        .await
        .unwrap()
        .expect("a3 is due and relayed once a2 is dead");
    assert_eq!(
        next,
        router::store::NextInLane {
            id: delivery_of(&a3),
            seq: seq_of(delivery_of(&a3)).await,
            correlation_id: "L".into(),
            destination: "lis".into(),
        }
    );
    let l3 = lease(&store, "lis").await;
    assert_eq!(l3.len(), 1, "{l3:?}");
    assert_eq!(
        store
            .settle_and_next(settlement(&l3[0], SettleOutcome::Delivered))
            .await
            .unwrap(),
        None,
        "the lane is empty (another lane's delivery is not its next)"
    );
}

async fn settle_records_attempts_and_outcomes(store: Store) {
    let m = message("S", None, &["lis"]);
    store.accept(m.clone()).await.unwrap();
    let l = lease(&store, "lis").await.remove(0);
    let at = now_ms() + 60_000;
    store
        .settle(settlement(&l, SettleOutcome::Retry { at }))
        .await
        .unwrap();
    assert!(
        lease(&store, "lis").await.is_empty(),
        "not before its retry time"
    );
    assert_eq!(store.next_due("lis").await.unwrap(), Some(at));
    sqlx::query("UPDATE deliveries SET next_attempt_at = $1")
        .bind(now_ms())
        .execute(store.pool_for_tests())
        .await
        .unwrap();
    let l2 = lease(&store, "lis").await.remove(0);
    assert_eq!(l2.attempt, 2);
    store
        .settle(settlement(&l2, SettleOutcome::Dead))
        .await
        .unwrap();
    let v = store.message(&m.id).await.unwrap().unwrap();
    let d = &v.deliveries[0];
    assert_eq!(
        (d.state.as_str(), d.attempts, d.error_class.as_deref()),
        ("dead", 2, Some("exhausted"))
    );
    assert_eq!(d.last_error.as_deref(), Some("http-503: busy"));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM attempts").await, 2);
    // Other modules may add their own trail rows (e.g. record digests); these must be there, in order.
    let kinds: Vec<String> = store
        .trail_for_message(&m.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.kind)
        .collect();
    let ours: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| ["received", "attempt", "dead", "delivered"].contains(k))
        .collect();
    assert_eq!(
        ours,
        ["received", "attempt", "attempt", "dead"],
        "{kinds:?}"
    );
    assert!(store.queue_depth().await.unwrap().is_empty());
    assert!(verify_chain(&store).await >= 4);
}

async fn expired_lease_is_leased_again(store: Store) {
    store.accept(message("E", None, &["lis"])).await.unwrap();
    let l = store.lease("lis", 1, now_ms() + 300).await.unwrap();
    assert_eq!(l.len(), 1);
    assert!(lease(&store, "lis").await.is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = lease(&store, "lis").await;
    assert_eq!(
        (again[0].id.as_str(), again[0].attempt),
        (l[0].id.as_str(), 2)
    );
}

/// A lease given back unsent (a shutdown) is due at once, with the attempt it
/// counted taken back; one that has meanwhile been taken again is left alone.
async fn an_unsent_lease_given_back_is_due_at_once(store: Store) {
    store.accept(message("R", None, &["lis"])).await.unwrap();
    let l = store.lease("lis", 1, now_ms() + 60_000).await.unwrap();
    assert_eq!((l.len(), l[0].attempt), (1, 1));
    let stale = vec![(l[0].id.clone(), l[0].lease_until - 1)];
    assert_eq!(
        store.release_leases(&stale).await.unwrap(),
        0,
        "another lease's give-back"
    );
    assert!(lease(&store, "lis").await.is_empty(), "still leased");
    let mine = vec![(l[0].id.clone(), l[0].lease_until)];
    assert_eq!(store.release_leases(&mine).await.unwrap(), 1);
    let again = lease(&store, "lis").await;
    assert_eq!(
        (again[0].id.as_str(), again[0].attempt),
        (l[0].id.as_str(), 1),
        "leased again at once, as its first attempt"
    );
}

async fn concurrent_writers_keep_one_unbroken_chain(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.accept(message(
                &format!("C{}", i % 5),
                Some(&format!("c-{i}")),
                &["lis", "ioc"],
            ))
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let leased = lease(&store, "ioc").await;
    let settles: Vec<_> = leased
        .iter()
        .map(|l| {
            let s = store.clone();
            let st = settlement(l, SettleOutcome::Delivered);
            tokio::spawn(async move { s.settle(st).await.unwrap() })
        })
        .collect();
    for t in settles {
        t.await.unwrap();
    }
    assert_eq!(leased.len(), 5, "one head-of-line delivery per dossier");
    let rows = verify_chain(&store).await as i64;
    let trail = count(&store, "SELECT COUNT(*) FROM trail").await;
    assert_eq!(rows, trail);
    assert!(rows >= 40 + 2 * 5, "{rows} trail rows");
}

/// The writer records a burst of settlements with multi-row statements; each
/// must end exactly as if it had been settled alone, including two
/// settlements of one delivery in the same burst (applied in order).
async fn a_burst_of_settlements_is_recorded_one_by_one(store: Store) {
    for i in 0..30 {
        store
            .accept(message(&format!("B{i}"), None, &["lis"]))
            .await
            .unwrap();
    }
    let leased = store.lease("lis", 100, now_ms() + 60_000).await.unwrap();
    assert_eq!(leased.len(), 30);
    let retry_at = now_ms() + 3_600_000;
    let outcome = |i: usize| match i % 3 {
        0 => SettleOutcome::Delivered,
        1 => SettleOutcome::Retry { at: retry_at },
        _ => SettleOutcome::Dead,
    };
    // All at once, so they share group-commit batches; the first delivery is
    // settled twice in a row (a retry, then delivered).
    let twice = &leased[0];
    let mut burst = vec![store.settle(settlement(twice, SettleOutcome::Retry { at: retry_at }))];
    burst.extend(
        leased
            .iter()
            .enumerate()
            .map(|(i, l)| store.settle(settlement(l, outcome(i)))),
    );
    for r in futures::future::join_all(burst).await {
        r.unwrap();
    }
    for (i, l) in leased.iter().enumerate() {
        let (state, next, class): (String, i64, Option<String>) = sqlx::query_as(
            "SELECT state, next_attempt_at, error_class FROM deliveries WHERE id = $1",
        )
        .bind(&l.id)
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap();
        let want = match outcome(i) {
            SettleOutcome::Delivered => ("delivered", None),
            SettleOutcome::Retry { .. } => ("pending", Some("transient")),
            SettleOutcome::Dead => ("dead", Some("exhausted")),
        };
        assert_eq!((state.as_str(), class.as_deref()), want, "delivery {i}");
        if matches!(outcome(i), SettleOutcome::Retry { .. }) {
            assert_eq!(next, retry_at, "delivery {i}");
        }
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM attempts").await, 31);
    let twice_attempts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE delivery_id = $1")
            .bind(&twice.id)
            .fetch_one(store.pool_for_tests())
            .await
            .unwrap();
    assert_eq!(twice_attempts, 2);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM trail WHERE kind = 'attempt'").await,
        31
    );
    // Delivered (10, one of them the twice-settled) and dead (10) each add one row.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM trail WHERE kind IN ('delivered', 'dead')"
        )
        .await,
        20
    );
    verify_chain(&store).await;
}

async fn exact_bytes_and_unicode_survive(store: Store) {
    let mut m = message("000.00.32.H47-261128-0002", None, &["lis"]);
    let text = "Nguyễn Văn Đức, Thăng Bình — tờ 12 thửa 345";
    m.raw = Bytes::from(format!(
        "{{\"ChuHoSo\":\"{text}\",\"LePhi\":123456789012345678.50}}"
    ));
    m.deliveries[0].body = Bytes::from(format!("<HoTen>{text}</HoTen>\u{0}\u{ff}").into_bytes());
    store.accept(m.clone()).await.unwrap();
    let raw: Vec<u8> = sqlx::query("SELECT raw FROM messages WHERE id = $1")
        .bind(&m.id)
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap()
        .try_get("raw")
        .unwrap();
    assert_eq!(raw, m.raw.to_vec());
    let l = lease(&store, "lis").await.remove(0);
    assert_eq!(l.body, m.deliveries[0].body);
}

/// A database that cannot be reached, or that refuses the connection, fails
/// start-up with an error that names it without its password and says what to
/// check (issue #4, "Bad input and faults").
#[tokio::test]
async fn postgres_startup_errors_name_the_database_without_the_password() {
    for (url, shown) in [
        // Nothing listens on port 9.
        (
            "postgres://postgres:s3cret-pw@127.0.0.1:9/test",
            "postgres://postgres:***@127.0.0.1:9/test",
        ),
        // The server answers, but the database does not exist.
        (
            "postgres://postgres:s3cret-pw@127.0.0.1:5432/lt_no_such_database",
            "postgres://postgres:***@127.0.0.1:5432/lt_no_such_database",
        ),
    ] {
        let started = std::time::Instant::now();
        let e = match Store::open(url, StoreOptions::default()).await {
            Ok(_) => panic!("{shown} must not open"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains(shown) && !e.contains("s3cret-pw"),
            "the error must name {shown} without the password: {e}"
        );
        assert!(
            e.contains("store.url"),
            "the error must say what to check: {e}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "start-up must fail, not hang: {e}"
        );
    }
}

/// `deliveries` gets planner statistics while a burst fills it, without
/// waiting for autovacuum (which is off on this machine, and at best runs once
/// a minute): without them PostgreSQL reads the whole backlog for a lane
/// lookup (see `router/store/src/stats.rs`). Analyzed once it has 1,000 rows,
/// and again once it has doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deliveries_get_planner_statistics_as_they_grow() {
    let (store, _guard) = postgres().await;
    let analyzed_rows = || async {
        let row = sqlx::query(
            "SELECT reltuples::BIGINT AS n FROM pg_class WHERE oid = 'deliveries'::regclass",
        )
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap();
        row.try_get::<i64, _>("n").unwrap()
    };
    assert!(
        analyzed_rows().await < 0,
        "a new table has no statistics yet"
    );
    let accept = |n: usize| {
        futures::future::join_all((0..n).map(|i| {
            let store = store.clone();
            async move {
                let m = message(&format!("HS-{}", i % 300), None, &["lis"]);
                store.accept(m).await.unwrap();
            }
        }))
    };
    let wait_for = |at_least: i64| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let n = analyzed_rows().await;
            if n >= at_least {
                return n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deliveries was not analyzed at {at_least} rows within 20 s (pg_class.reltuples = {n})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    accept(1_200).await;
    let first = wait_for(1_000).await;
    assert!(first <= 1_200, "{first}");
    accept(1_300).await;
    let second = wait_for(2_000).await;
    assert!(second <= 2_500, "{second}");
}

/// Issue 21: after an operator (or a failover, or a restart) ends the hub's
/// PostgreSQL backends, the store writes again by itself: the writer's
/// connection is replaced, not kept broken for the life of the process, and
/// readiness is truthful on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_writes_again_after_its_backends_are_terminated() {
    let (store, Guard::Postgres(guard)) = postgres().await else {
        unreachable!("postgres() opens a PostgreSQL store")
    };
    let first = store
        .accept(message("HS-RECONNECT-1", Some("k-reconnect-1"), &["tax"]))
        .await
        .unwrap();
    assert!(matches!(first, AcceptOutcome::Accepted { .. }));
    store.ping().await.expect("ready before the fault");

    for round in 1..=3 {
        let ended = guard.terminate_backends().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            ended >= 2,
            "round {round}: expected the writer's and the read pool's backends, ended {ended}"
        );
        let t0 = std::time::Instant::now();
        let key = format!("k-reconnect-after-{round}");
        let outcome = loop {
            match store
                .accept(message(&format!("HS-RECONNECT-{round}"), Some(&key), &["tax"]))
                .await
            {
                Ok(o) => break o,
                Err(e) if t0.elapsed() < Duration::from_secs(5) => {
                    eprintln!("round {round}: +{:?} still refused: {e}", t0.elapsed());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("round {round}: the store still cannot write 5 s after its backends were ended: {e}"),
            }
        };
        eprintln!("round {round}: writing again after {:?}", t0.elapsed());
        assert!(
            matches!(outcome, AcceptOutcome::Accepted { .. }),
            "round {round}: {outcome:?}"
        );
        store.ping().await.expect("ready again after the fault");
        assert!(store.unwritable_reason().is_none());
    }
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM messages").await,
        4,
        "every acceptance stored exactly once"
    );
}
