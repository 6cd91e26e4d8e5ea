//! The group-commit writer task (see the parent module for why it exists).

use std::collections::{HashMap, HashSet};

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::error::{db_err, refuses_writes};
use super::trail::{self, TrailEvent};
use super::types::*;
use super::{deliveries, messages};
use lienthong_core::Result;

/// One write request; the sender gets the result after the commit.
pub(crate) enum Job {
    Accept(Box<NewMessage>, oneshot::Sender<Result<AcceptOutcome>>),
    Reject(Box<RejectedMessage>, oneshot::Sender<Result<()>>),
    Lease(LeaseRequest, oneshot::Sender<Result<Vec<LeasedDelivery>>>),
    /// A settlement; with `true`, the answer names the lane's next delivery.
    Settle(
        Box<Settlement>,
        bool,
        oneshot::Sender<Result<Option<NextInLane>>>,
    ),
    /// An audit operation (replay, prune, auditor action); see `audit_ops`.
    Audit(
        Box<dyn super::audit_ops::WriteOp>,
        oneshot::Sender<Result<serde_json::Value>>,
    ),
    /// A round trip on the writer's connection (reconnecting if it is down),
    /// for `/readyz`: the read pool can be healthy while the writer is not.
    Ping(oneshot::Sender<Result<()>>),
}

/// A job's result, held until the transaction commits.
enum Done {
    Accept(Result<AcceptOutcome>),
    Reject(Result<()>),
    Lease(Result<Vec<LeasedDelivery>>),
    Settle(Result<Option<NextInLane>>),
    Audit(Result<serde_json::Value>),
    Ping(Result<()>),
}

/// What the writer knows about its connection, shared with [`super::Store`]
/// so that `/readyz` can say why the store cannot be written.
#[derive(Default)]
pub(crate) struct Health {
    /// `Some(reason)` while the last write (or probe) failed on a lost
    /// connection and none has succeeded since.
    down: std::sync::Mutex<Option<String>>,
}

impl Health {
    pub(crate) fn reason(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, reason: Option<String>) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        match (&*down, &reason) {
            (None, Some(r)) => tracing::error!(reason = %r, "the store cannot be written; \
                intake answers 503 and the writer reconnects until the database is back"),
            (Some(_), None) => tracing::info!("the store is writable again"),
            _ => {}
        }
        *down = reason;
    }
}

/// How often, at most, the writer tries to open a new connection while the
/// database is away: jobs that arrive in between fail at once (intake answers
/// 503 with `Retry-After`) instead of each waiting out a connect attempt.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// The writer's connection: taken from a one-connection pool, given back to it
/// while healthy, and thrown away when it is found broken, so that the pool
/// opens a fresh one. (It used to be detached from the pool for the life of
/// the process, and a PostgreSQL restart left the hub unable to write until a
/// human restarted it.)
struct Conn {
    pool: AnyPool,
    conn: Option<PoolConnection<Any>>,
    last_failed_connect: Option<Instant>,
    health: Arc<Health>,
}

impl Conn {
    async fn get(&mut self) -> Result<&mut PoolConnection<Any>> {
        if self.conn.is_none() {
            // Throttled only after a connect attempt failed: the first
            // attempt after a connection was found dead goes straight ahead.
            if let (Some(at), Some(reason)) = (self.last_failed_connect, self.health.reason()) {
                if at.elapsed() < RECONNECT_EVERY {
                    return Err(unavailable(&reason));
                }
            }
            match self.pool.acquire().await {
                Ok(c) => {
                    self.conn = Some(c);
                    self.last_failed_connect = None;
                }
                Err(e) => {
                    self.last_failed_connect = Some(Instant::now());
                    let e = db_err("connecting the store writer", e);
                    let reason = message_of(&e);
                    self.health.set(Some(reason.clone()));
                    return Err(unavailable(&reason));
                }
            }
        }
        Ok(self.conn.as_mut().expect("set above"))
    }

    /// After a failure: is the connection still alive? A dead one is dropped
    /// (detached, so the pool opens a new one) and the failure recorded.
    async fn check_after(&mut self, e: &lienthong_core::Error) -> bool {
        let alive = match self.conn.as_mut() {
            Some(c) => c.ping().await.is_ok(),
            None => false,
        };
        if !alive {
            self.discard();
            self.health.set(Some(message_of(e)));
        }
        alive
    }

    /// Throws the connection away (detached, so the pool opens a new one).
    fn discard(&mut self) {
        if let Some(c) = self.conn.take() {
            drop(c.detach());
        }
    }
}

/// The retryable error every job gets while the connection is away; `reason`
/// is a [`message_of`] text, so the `store:` prefix appears once.
fn unavailable(reason: &str) -> lienthong_core::Error {
    lienthong_core::Error::Store {
        message: format!("unavailable, retry shortly ({reason})"),
        retryable: true,
        source: None,
    }
}

/// A store error's own message (its `Display` adds `store: `), or any other
/// error's text: what [`Health`] keeps and what the errors derived from it carry.
fn message_of(e: &lienthong_core::Error) -> String {
    match e {
        lienthong_core::Error::Store { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub(crate) async fn run(
    pool: AnyPool,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    health: Arc<Health>,
) {
    let mut conn = Conn {
        pool,
        conn: None,
        last_failed_connect: None,
        health,
    };
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("lienthong_store_batch_size").record(batch.len() as f64);
        let jobs = std::mem::take(&mut batch);
        let result = run_on_live_connection(&mut conn, &jobs).await;
        match result {
            Ok(done) => reply(jobs, done),
            Err(Failure::Job(_)) if jobs.len() > 1 => {
                // One job spoiled the batch: run each alone so the others still succeed.
                for job in jobs {
                    let done =
                        match run_on_live_connection(&mut conn, std::slice::from_ref(&job)).await {
                            Ok(mut d) => d.pop().expect("one result per job"),
                            Err(Failure::Job(e) | Failure::Connection(e)) => failed(&job, e),
                        };
                    reply(vec![job], vec![done]);
                }
            }
            Err(Failure::Job(e) | Failure::Connection(e)) => {
                let done: Vec<Done> = jobs.iter().map(|j| failed(j, e.clone_store())).collect();
                reply(jobs, done);
            }
        }
    }
}

/// Why a batch failed: one of its jobs (the connection is fine), or the
/// connection itself (every job fails alike; running them one by one would
/// not help).
enum Failure {
    Job(lienthong_core::Error),
    Connection(lienthong_core::Error),
}

/// Runs the batch, and when it failed because the connection was found dead
/// and nothing was committed, runs it once more on a fresh connection: after a
/// database restart the first write meets the old connection, and the partner
/// should not see a 503 for that.
async fn run_on_live_connection(
    conn: &mut Conn,
    jobs: &[Job],
) -> std::result::Result<Vec<Done>, Failure> {
    let mut retried = false;
    loop {
        let probe_writes = conn.health.reason().is_some();
        let c = conn.get().await.map_err(Failure::Connection)?;
        match run_batch(c, jobs, probe_writes).await {
            Ok(done) => {
                conn.health.set(None);
                return Ok(done);
            }
            Err((e, at_commit)) => {
                if conn.check_after(&e).await {
                    // The connection is fine but the store refused a write it
                    // may take later (a full disk, a read-only file): not
                    // writable until a write succeeds again.
                    if refuses_writes(&e) {
                        conn.health.set(Some(message_of(&e)));
                        // A connection SQLite opened read-only stays so: the
                        // next job opens a fresh one, which can write once the
                        // file or filesystem can.
                        conn.discard();
                    }
                    return Err(Failure::Job(e));
                }
                // A commit that failed on a lost connection may or may not have
                // landed: never run it again here. The caller gets a retryable
                // error and retries with its own idempotency (the idempotency
                // key for intake; the lease for settlements).
                if at_commit || retried {
                    return Err(Failure::Connection(unavailable(&message_of(&e))));
                }
                retried = true;
            }
        }
    }
}

trait CloneStore {
    fn clone_store(&self) -> lienthong_core::Error;
}
impl CloneStore for lienthong_core::Error {
    fn clone_store(&self) -> lienthong_core::Error {
        lienthong_core::Error::Store {
            message: message_of(self),
            retryable: self.is_retryable(),
            source: None,
        }
    }
}

fn failed(job: &Job, e: lienthong_core::Error) -> Done {
    match job {
        Job::Accept(..) => Done::Accept(Err(e)),
        Job::Reject(..) => Done::Reject(Err(e)),
        Job::Lease(..) => Done::Lease(Err(e)),
        Job::Settle(..) => Done::Settle(Err(e)),
        Job::Audit(..) => Done::Audit(Err(e)),
        Job::Ping(..) => Done::Ping(Err(e)),
    }
}

fn reply(jobs: Vec<Job>, done: Vec<Done>) {
    for (job, d) in jobs.into_iter().zip(done) {
        // A requester that went away (client disconnected) is not an error here.
        match (job, d) {
            (Job::Accept(_, tx), Done::Accept(r)) => drop(tx.send(r)),
            (Job::Reject(_, tx), Done::Reject(r)) => drop(tx.send(r)),
            (Job::Lease(_, tx), Done::Lease(r)) => drop(tx.send(r)),
            (Job::Settle(_, _, tx), Done::Settle(r)) => drop(tx.send(r)),
            (Job::Audit(_, tx), Done::Audit(r)) => drop(tx.send(r)),
            (Job::Ping(tx), Done::Ping(r)) => drop(tx.send(r)),
            _ => unreachable!("results are produced in job order"),
        }
    }
}

/// Runs `jobs` in one transaction. `Err` means the transaction was rolled back
/// (or a job failed, which rolls back the whole batch).
/// The error says whether it came from the commit itself, whose outcome is
/// unknown when the connection was lost.
async fn run_batch(
    conn: &mut AnyConnection,
    jobs: &[Job],
    probe_writes: bool,
) -> std::result::Result<Vec<Done>, (lienthong_core::Error, bool)> {
    if jobs.iter().all(|j| matches!(j, Job::Ping(_))) {
        let done = || jobs.iter().map(|_| Done::Ping(Ok(()))).collect();
        if !probe_writes {
            // A probe: one round trip on the writer's own connection.
            return conn
                .ping()
                .await
                .map(|()| done())
                .map_err(|e| (db_err("store writer ping", e), false));
        }
        // The last write failed: only a committed write shows the store can
        // be written again (a full disk or a read-only file still answers
        // reads and pings).
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| (db_err("beginning the store probe", e), false))?;
        sqlx::query(
            "INSERT INTO store_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(super::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| (db_err("writing the store probe", e), false))?;
        tx.commit()
            .await
            .map_err(|e| (db_err("committing the store probe", e), true))?;
        return Ok(done());
    }
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| (db_err("beginning a write transaction", e), false))?;
    match write_batch(&mut tx, jobs).await {
        Ok(done) => {
            tx.commit()
                .await
                .map_err(|e| (db_err("committing a write batch", e), true))?;
            Ok(done)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err((e, false))
        }
    }
}

/// The body of [`run_batch`]: every job's writes and the batch's trail rows.
async fn write_batch(tx: &mut AnyConnection, jobs: &[Job]) -> Result<Vec<Done>> {
    let mut done = Vec::with_capacity(jobs.len());
    let mut events: Vec<TrailEvent> = Vec::new();
    let accepts: Vec<&NewMessage> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Accept(m, _) => Some(&**m),
            _ => None,
        })
        .collect();
    let mut known = messages::known_keys(tx, &accepts).await?;
    let mut gathered = Gathered::default();
    for job in jobs {
        // Acceptances and settlements touch different rows (a delivery is
        // settled only after the batch that accepted it has committed), so
        // they are gathered across the batch and written with multi-row
        // statements; anything else may read them, so it sees them written.
        let flush = match job {
            Job::Accept(..) | Job::Ping(..) => false,
            Job::Settle(s, ..) => gathered.settling.contains(s.delivery_id.as_str()),
            _ => true,
        };
        if flush {
            gathered.flush(tx, &mut events).await?;
        }
        // Any error fails the whole batch; the writer then re-runs each job alone.
        done.push(match job {
            Job::Accept(m, _) => Done::Accept(Ok(messages::accept(
                m,
                &mut known,
                &mut gathered.accepted,
                &mut events,
            ))),
            Job::Reject(m, _) => Done::Reject(Ok(messages::reject(tx, m, &mut events).await?)),
            Job::Lease(r, _) => Done::Lease(Ok(deliveries::lease(tx, r).await?)),
            Job::Settle(s, want_next, _) => {
                gathered.settled.push((&**s, *want_next));
                gathered.settling.insert(s.delivery_id.as_str());
                // Filled in below once the settlement is written.
                Done::Settle(Ok(None))
            }
            Job::Audit(op, _) => Done::Audit(Ok(op.run(tx, &mut events).await?)),
            // Answered after the commit: the batch it rode in was written.
            Job::Ping(_) => Done::Ping(Ok(())),
        });
    }
    gathered.flush(tx, &mut events).await?;
    trail::append(tx, &events).await?;
    if !gathered.next.is_empty() {
        for (job, d) in jobs.iter().zip(done.iter_mut()) {
            if let (Job::Settle(s, true, _), Done::Settle(r)) = (job, d) {
                *r = Ok(gathered.next.remove(&s.delivery_id));
            }
        }
    }
    Ok(done)
}

/// Acceptances and settlements of a batch not yet written.
#[derive(Default)]
struct Gathered<'a> {
    /// Checked acceptances, in order.
    accepted: Vec<&'a NewMessage>,
    /// Settlements, each with whether its lane's next delivery is wanted.
    settled: Vec<(&'a Settlement, bool)>,
    /// The next deliveries found for those that wanted them, by settled delivery id.
    next: HashMap<String, NextInLane>,
    /// The deliveries in `settled`: a second settlement of one of them is
    /// written after the first, never in the same statement.
    settling: HashSet<&'a str>,
}

impl Gathered<'_> {
    async fn flush(&mut self, tx: &mut AnyConnection, events: &mut Vec<TrailEvent>) -> Result<()> {
        if !self.accepted.is_empty() {
            messages::insert_accepted(tx, &self.accepted).await?;
            self.accepted.clear();
        }
        if !self.settled.is_empty() {
            self.next
                .extend(deliveries::settle_many(tx, &self.settled, events).await?);
            self.settled.clear();
            self.settling.clear();
        }
        Ok(())
    }
}
