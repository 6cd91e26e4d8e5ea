//! The group-commit writer task (see the parent module for why it exists).

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Connection};
use tokio::sync::{mpsc, oneshot};

use super::db_err;
use super::ops;
use super::types::*;
use crate::audit::{chain, TrailEvent};
use crate::Result;

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
}

/// A job's result, held until the transaction commits.
enum Done {
    Accept(Result<AcceptOutcome>),
    Reject(Result<()>),
    Lease(Result<Vec<LeasedDelivery>>),
    Settle(Result<Option<NextInLane>>),
    Audit(Result<serde_json::Value>),
}

pub(crate) async fn run(mut conn: AnyConnection, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
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
        match run_batch(&mut conn, &jobs).await {
            Ok(done) => reply(jobs, done),
            Err(_) if jobs.len() > 1 => {
                // One job spoiled the batch: run each alone so the others still succeed.
                for job in jobs {
                    let done = match run_batch(&mut conn, std::slice::from_ref(&job)).await {
                        Ok(mut d) => d.pop().expect("one result per job"),
                        Err(e) => failed(&job, e),
                    };
                    reply(vec![job], vec![done]);
                }
            }
            Err(e) => {
                let done: Vec<Done> = jobs.iter().map(|j| failed(j, e.clone_store())).collect();
                reply(jobs, done);
            }
        }
    }
}

trait CloneStore {
    fn clone_store(&self) -> crate::Error;
}
impl CloneStore for crate::Error {
    fn clone_store(&self) -> crate::Error {
        crate::Error::Store {
            message: self.to_string(),
            retryable: self.is_retryable(),
        }
    }
}

fn failed(job: &Job, e: crate::Error) -> Done {
    match job {
        Job::Accept(..) => Done::Accept(Err(e)),
        Job::Reject(..) => Done::Reject(Err(e)),
        Job::Lease(..) => Done::Lease(Err(e)),
        Job::Settle(..) => Done::Settle(Err(e)),
        Job::Audit(..) => Done::Audit(Err(e)),
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
            _ => unreachable!("results are produced in job order"),
        }
    }
}

/// Runs `jobs` in one transaction. `Err` means the transaction was rolled back
/// (or a job failed, which rolls back the whole batch).
async fn run_batch(conn: &mut AnyConnection, jobs: &[Job]) -> Result<Vec<Done>> {
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| db_err("beginning a write transaction", e))?;
    match write_batch(&mut tx, jobs).await {
        Ok(done) => {
            tx.commit()
                .await
                .map_err(|e| db_err("committing a write batch", e))?;
            Ok(done)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
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
    let mut known = ops::known_keys(tx, &accepts).await?;
    let mut gathered = Gathered::default();
    for job in jobs {
        // Acceptances and settlements touch different rows (a delivery is
        // settled only after the batch that accepted it has committed), so
        // they are gathered across the batch and written with multi-row
        // statements; anything else may read them, so it sees them written.
        let flush = match job {
            Job::Accept(..) => false,
            Job::Settle(s, ..) => gathered.settling.contains(s.delivery_id.as_str()),
            _ => true,
        };
        if flush {
            gathered.flush(tx, &mut events).await?;
        }
        // Any error fails the whole batch; the writer then re-runs each job alone.
        done.push(match job {
            Job::Accept(m, _) => Done::Accept(Ok(ops::accept(
                m,
                &mut known,
                &mut gathered.accepted,
                &mut events,
            ))),
            Job::Reject(m, _) => Done::Reject(Ok(ops::reject(tx, m, &mut events).await?)),
            Job::Lease(r, _) => Done::Lease(Ok(ops::lease(tx, r).await?)),
            Job::Settle(s, want_next, _) => {
                gathered.settled.push((&**s, *want_next));
                gathered.settling.insert(s.delivery_id.as_str());
                // Filled in below once the settlement is written.
                Done::Settle(Ok(None))
            }
            Job::Audit(op, _) => Done::Audit(Ok(op.run(tx, &mut events).await?)),
        });
    }
    gathered.flush(tx, &mut events).await?;
    chain::append(tx, &events).await?;
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
            ops::insert_accepted(tx, &self.accepted).await?;
            self.accepted.clear();
        }
        if !self.settled.is_empty() {
            self.next
                .extend(ops::settle_many(tx, &self.settled, events).await?);
            self.settled.clear();
            self.settling.clear();
        }
        Ok(())
    }
}
