//! # lienthong-store: the durable message store
//!
//! A crate of its own, on `lienthong-core` alone, because it is the one place
//! that speaks SQL: the compiler, not a convention, keeps queries out of the
//! queues, the audit code and the console (they depend on this crate; it
//! depends on none of them). The router re-exports it as `router::store`.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL through
//! `sqlx::Any` with portable SQL: `$1` placeholders, epoch-millisecond `BIGINT`
//! timestamps, JSON as `TEXT`, bodies as `BLOB`/`BYTEA`. Migrations live per
//! backend in `router/store/migrations/{sqlite,postgres}` and run on open.
//!
//! # Tables
//!
//! The store owns every SQL statement of the hub; one file per table or read
//! model, and nothing outside this crate runs a query (the read pool is
//! private: other modules ask typed questions).
//!
//! * `messages` ([`messages`]): every inbound attempt with its exact bytes, accepted or rejected.
//! * `deliveries` ([`deliveries`]): one row per (message, target). It is the transactional outbox:
//!   it is written in the same transaction that accepts the message, so nothing
//!   accepted can be lost. For the embedded queue it is also the queue itself;
//!   the broker backend's claims and relay are in [`outbox`].
//! * `attempts` ([`deliveries`]): one row per delivery attempt.
//! * `trail` + `chain_head` ([`trail`]): the hash-chained trail (the rule is
//!   `router::audit::chain`); [`records`] says which columns of the other
//!   tables each trail event records.
//! * `mapping_versions`, `mapping_active`, `mapping_generation` ([`mapping_versions`]).
//! * `console_sessions` ([`sessions`]): console sign-ins, by the hash of their id.
//! * Read models: [`audit_ops`] (verify, export, search, replay) and `views`
//!   (the console and the mapping gate); [`prune`] empties old payloads.
//!
//! Errors: every database error goes through one classifier (`error::db_err`),
//! which keeps the driver's error as the `source` of [`Error::Store`].
//!
//! On PostgreSQL a task per store keeps the planner statistics of `deliveries`
//! current while it grows in bursts ([`stats`]).
//!
//! # Why a single writer
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` each commit
//! costs an fsync. Rather than having every HTTP request open its own transaction
//! (and queue on the lock), all writes go through one task ([`writer`]) over a
//! bounded channel. It takes whatever jobs are waiting, runs them in one
//! transaction and answers each job after the commit: group commit. Under load a
//! single fsync covers dozens of acceptances, which is what makes the embedded
//! default fast while every `202` still means "durably on disk". If a batch fails,
//! the writer re-runs each job in its own transaction so one bad job cannot fail
//! its neighbours. Reads use a separate pool (WAL lets them run beside the writer).

pub mod audit_ops;
pub mod deliveries;
mod error;
pub mod mapping_versions;
mod messages;
mod outage;
pub mod outbox;
pub mod prune;
pub mod records;
pub mod sessions;
mod stats;
pub mod trail;
mod types;
mod views;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

pub(crate) use error::db_err;
pub use outage::Outage;
pub use trail::{StoredTrailRow, TrailEvent};
pub use types::*;
pub use views::{ChainHead, DeliveryCount};
use writer::Job;

use lienthong_core::{Error, Result};

/// Which database is behind the `Any` driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Tuning knobs; the defaults suit the embedded SQLite store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most jobs one group-commit transaction takes.
    pub max_batch: usize,
    /// Capacity of the writer's channel (back-pressure on intake beyond it).
    pub channel_capacity: usize,
    /// Connections in the read pool.
    pub read_connections: u32,
    /// SQLite busy timeout.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            channel_capacity: 4096,
            read_connections: 16,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    jobs: mpsc::Sender<Job>,
    health: std::sync::Arc<writer::Health>,
}

/// Epoch milliseconds now.
/// How long start-up waits for the database to answer before giving up with a clear error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `/readyz` waits for the writer's and the read pool's answers in
/// all: longer means the writer is queued behind a backlog or waiting for a
/// connection to a database that is away, and the hub should not be sent more
/// work meanwhile. Under the 1 s that probes time out after by default
/// (Kubernetes' `timeoutSeconds`), so the probe gets the reason, not a timeout.
const READY_TIMEOUT: Duration = Duration::from_millis(800);

/// How long the writer waits for a connection from its pool (a fresh one
/// after a restart of the database) before failing the waiting jobs.
const WRITER_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Rows per multi-row `INSERT`: keeps the bound parameters (rows × columns)
/// well under both backends' limits (SQLite 32766, PostgreSQL 65535).
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `cols` placeholders, so one
/// statement inserts many rows: on PostgreSQL every statement is a round trip,
/// and a batch of 64 acceptances would otherwise be hundreds of them. `literal`
/// is appended to each row as is (fixed values such as `'pending'`).
pub(crate) fn values_sql(rows: usize, cols: usize, literal: &str) -> String {
    let mut out = String::with_capacity(rows * (cols * 5 + literal.len() + 4));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        }
        out.push_str(literal);
        out.push(')');
    }
    out
}

/// `$first, $first+1, ...` (`n` placeholders), for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether [`Store::open_with`] may create the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
}

/// For [`Store::open_existing`]: a SQLite URL whose file must be there
/// ([`Error::NotFound`] otherwise), with `mode=rwc` turned into `mode=rw` so
/// that the driver cannot create it either. Other URLs are returned as given.
fn existing_sqlite_url(url: &str) -> Result<std::borrow::Cow<'_, str>> {
    if !url.starts_with("sqlite:") {
        return Ok(std::borrow::Cow::Borrowed(url));
    }
    let parsed = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| db_err(&format!("parsing database url {url}"), e))?;
    let file = parsed.get_filename();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory && !file.is_file() {
        return Err(Error::NotFound(format!("no store at {}", file.display())));
    }
    Ok(std::borrow::Cow::Owned(url.replace("mode=rwc", "mode=rw")))
}

/// Whether the database holds the hub's tables (its migrations table), asked
/// without writing anything.
async fn has_schema(
    c: &mut sqlx::AnyConnection,
    backend: Backend,
) -> std::result::Result<bool, sqlx::Error> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *c).await?;
    Ok(n > 0)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// SQLite store in `dir/lienthong.db`, creating the directory and the file.
    pub async fn open_sqlite_dir(dir: &Path, opts: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating data directory {}", dir.display()), e))?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("lienthong.db").display());
        Self::open(&url, opts).await
    }

    /// Opens `url` (`sqlite://path?mode=rwc` or `postgres://...`), runs migrations
    /// and starts the writer task. Must be called inside a Tokio runtime.
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store> {
        Self::open_with(url, opts, Create::Yes).await
    }

    /// Opens a store that must already exist, for the commands that read one
    /// (`audit`, `messages`, `dossier`, `replay`): they would otherwise make an
    /// empty store where the hub's is not, and report on it. Never creates a
    /// file, a directory or the schema: a SQLite file that is not there, or a
    /// database (SQLite or PostgreSQL) without the hub's tables, is
    /// [`Error::NotFound`] naming what was looked for, before anything is
    /// written. An existing store is opened as [`Store::open`] opens it.
    pub async fn open_existing(url: &str, opts: StoreOptions) -> Result<Store> {
        Self::open_with(url, opts, Create::No).await
    }

    async fn open_with(url: &str, opts: StoreOptions, create: Create) -> Result<Store> {
        sqlx::any::install_default_drivers();
        // Errors name the database without its password.
        let shown = lienthong_core::redact::url(url);
        let url = match create {
            Create::Yes => std::borrow::Cow::Borrowed(url),
            Create::No => existing_sqlite_url(url)?,
        };
        let url = url.as_ref();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Store {
                message: format!(
                    "unsupported database url `{shown}`: use sqlite://... or postgres://..."
                ),
                retryable: false,
                source: None,
            });
        };
        let connect = AnyConnectOptions::from_str(url)
            .map_err(|e| db_err(&format!("parsing database url {shown}"), e))?;
        let hint = match backend {
            Backend::Sqlite => "can the hub create and write files in the store's directory, and is there free space on its disk?",
            Backend::Postgres => "is the database running and are the credentials in store.url right?",
        };
        let busy_ms = opts.busy_timeout.as_millis() as u64;
        let sqlite_pragmas = format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout={busy_ms}; PRAGMA foreign_keys=ON;"
        );
        // One plain connection first, set up as the pools' will be: a refused
        // port, a missing database or an SQLite file that cannot be written
        // (read-only filesystem, full disk) fails at once with its own
        // message, instead of as "pool timed out" after the pool's retries.
        // An existing store is checked for the hub's tables before the pragmas,
        // which would write to the file (WAL mode).
        let probe = async {
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&connect).await?;
            let schema = match create {
                Create::Yes => true,
                Create::No => has_schema(&mut c, backend).await?,
            };
            if backend == Backend::Sqlite && schema {
                c.execute(&*sqlite_pragmas).await?;
            }
            Ok::<_, sqlx::Error>((c, schema))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok((c, schema))) => {
                let _ = sqlx::Connection::close(c).await;
                if !schema {
                    return Err(Error::NotFound(format!(
                        "{shown} holds no lienthong store (none of the hub's tables are there)"
                    )));
                }
            }
            Ok(Err(e)) => return Err(db_err(&format!("opening {shown} ({hint})"), e)),
            Err(_) => {
                return Err(Error::Store {
                    message: format!(
                        "opening {shown}: no answer within {CONNECT_TIMEOUT:?}; check the host and port in store.url \
                         and that the database is running"
                    ),
                    retryable: false,
                    source: None,
                })
            }
        }
        let pool = |max: u32| {
            let pragmas = sqlite_pragmas.clone();
            AnyPoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .after_connect(move |conn, _meta| {
                    let pragmas = pragmas.clone();
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute(&*pragmas).await?;
                        }
                        Ok(())
                    })
                })
        };
        let write_pool = pool(1)
            .acquire_timeout(WRITER_ACQUIRE_TIMEOUT)
            .connect_with(connect.clone())
            .await
            .map_err(|e| db_err(&format!("opening {shown} ({hint})"), e))?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&write_pool).await.map_err(|e| Error::Store {
            message: format!("running {backend:?} migrations on {shown}: {e}"),
            retryable: false,
            source: None,
        })?;
        let read = pool(opts.read_connections)
            .connect_with(connect)
            .await
            .map_err(|e| db_err(&format!("opening {shown} ({hint})"), e))?;
        let (tx, rx) = mpsc::channel(opts.channel_capacity);
        let health = std::sync::Arc::new(writer::Health::default());
        tokio::spawn(writer::run(write_pool, rx, opts.max_batch, health.clone()));
        if backend == Backend::Postgres {
            // Lives as long as the store (see the module docs for why).
            tokio::spawn(stats::run(read.clone(), tx.downgrade(), shown.clone()));
        }
        Ok(Store {
            backend,
            read,
            jobs: tx,
            health,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn submit<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(make(tx)).await.map_err(|_| Error::Store {
            message: "the store writer has stopped".into(),
            retryable: true,
            source: None,
        })?;
        rx.await.map_err(|_| Error::Store {
            message: "the store writer dropped a job".into(),
            retryable: true,
            source: None,
        })?
    }

    /// Stores an accepted message with its deliveries and trail events in one
    /// transaction, unless its idempotency key was already accepted.
    pub async fn accept(&self, msg: NewMessage) -> Result<AcceptOutcome> {
        self.submit(|tx| Job::Accept(Box::new(msg), tx)).await
    }

    /// Stores a rejected attempt (state `rejected`, with its reasons) and its trail event.
    pub async fn reject(&self, msg: RejectedMessage) -> Result<()> {
        self.submit(|tx| Job::Reject(Box::new(msg), tx)).await
    }

    /// Leases up to `max` due, head-of-line deliveries for `destination` until `lease_until`.
    pub async fn lease(
        &self,
        destination: &str,
        max: usize,
        lease_until: i64,
    ) -> Result<Vec<LeasedDelivery>> {
        let req = LeaseRequest {
            destination: destination.to_string(),
            max,
            now: now_ms(),
            lease_until,
        };
        self.submit(|tx| Job::Lease(req, tx)).await
    }

    /// Records an attempt and its outcome (delivered, retry later, dead) atomically.
    pub async fn settle(&self, s: Settlement) -> Result<()> {
        self.submit(|tx| Job::Settle(Box::new(s), false, tx))
            .await
            .map(drop)
    }

    /// [`Store::settle`], and when the delivery is now finished (delivered or
    /// dead), the next delivery of its lane if that one is due and relayed:
    /// the broker queue wakes it at once instead of letting it wait out its
    /// parking. Found by the settling statement itself, so it costs no extra
    /// round trip (it used to be one query per settlement).
    pub async fn settle_and_next(&self, s: Settlement) -> Result<Option<NextInLane>> {
        self.submit(|tx| Job::Settle(Box::new(s), true, tx)).await
    }

    /// For `/readyz`: a round trip through the writer's own connection (which
    /// reconnects if it was lost) and one through the read pool. Either failing
    /// means the hub cannot take work; the error says why.
    pub async fn ping(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let slow = |what: &str| Error::Store {
            message: format!(
                "{what} did not answer within {READY_TIMEOUT:?}{}",
                self.health
                    .reason()
                    .map(|r| format!(" (last failure: {r})"))
                    .unwrap_or_default()
            ),
            retryable: true,
            source: None,
        };
        match tokio::time::timeout_at(deadline, self.submit(Job::Ping)).await {
            Ok(r) => r?,
            Err(_) => return Err(slow("the store writer")),
        }
        match tokio::time::timeout_at(deadline, sqlx::query("SELECT 1").execute(&self.read)).await {
            Ok(r) => r.map_err(|e| db_err("store ping (read pool)", e))?,
            Err(_) => return Err(slow("the store's read pool")),
        };
        Ok(())
    }

    /// The read pool, for the router's own integration tests, which check
    /// and alter rows directly (feature `test-support`, enabled only as a
    /// dev-dependency). Everything else asks the store typed questions.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> &AnyPool {
        &self.read
    }

    /// Why the store cannot be written right now, if it cannot (no round trip).
    pub fn unwritable_reason(&self) -> Option<String> {
        self.health.reason()
    }

    /// One message with its deliveries, for the API.
    pub async fn message(&self, id: &str) -> Result<Option<MessageView>> {
        messages::message_view(&self.read, id).await
    }
}
