//! A PostgreSQL schema of a test's own, created on demand and dropped on drop,
//! shared by the store and queue contract suites so both set up and clean up alike.
//!
//! Also the lock that keeps the PostgreSQL fault tests, which stop and restart
//! the one shared server, away from every other test that uses it: across test
//! binaries and concurrent `cargo test` runs alike (a `flock` on a file in the
//! temporary directory). Each [`PgSchema`] holds it shared; a [`PgOutage`]
//! holds it exclusively, and always leaves the server running.
//!
//! Each test binary that includes this file uses part of it.
#![allow(dead_code)]

use std::fs::File;
use std::process::Command;
use std::time::{Duration, Instant};

const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";
const START_HINT: &str =
    "Is PostgreSQL running? Start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`";

/// Runs `sql` as `postgres` on the test database and returns its unaligned,
/// tuples-only output (`-Atq`), or why it failed with how to start PostgreSQL.
fn psql(sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atqc",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run psql ({e}); install the PostgreSQL client"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "psql `{sql}` failed: {}\n{START_HINT}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn lock_file() -> File {
    let path = std::env::temp_dir().join("lienthong-tests-postgres.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening the test lock {}: {e}", path.display()))
}

/// Holds the PostgreSQL test lock shared until dropped: a fault test waits for
/// it to be let go before it stops the server. For tests that use PostgreSQL
/// without a [`PgSchema`].
pub fn shared_lock() -> File {
    let f = lock_file();
    f.lock_shared()
        .expect("taking the PostgreSQL test lock (shared)");
    f
}

pub struct PgSchema {
    name: String,
    /// `None` for a schema made by a [`PgOutage`], which holds the lock itself.
    _lock: Option<File>,
}

impl PgSchema {
    /// Creates `lt_<tag>_<random>`; panics with how to start PostgreSQL if it
    /// is down. Waits while a fault test has the server.
    pub fn create(tag: &str) -> PgSchema {
        let lock = shared_lock();
        PgSchema {
            name: create_schema(tag),
            _lock: Some(lock),
        }
    }

    /// A database URL whose connections use this schema. They also carry the
    /// schema's name as `application_name`, so [`Drop`] can find them.
    pub fn url(&self) -> String {
        format!(
            "{PG_BASE}?options=-csearch_path%3D{0}&application_name={0}",
            self.name
        )
    }
}

impl PgSchema {
    /// Ends every backend of this schema's connections, as `pg_terminate_backend`
    /// run by an operator (or a failover) would; returns how many there were.
    pub fn terminate_backends(&self) -> Result<usize, String> {
        let ended = psql(&format!(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE application_name = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))?;
        ended
            .parse()
            .map_err(|e| format!("psql answered {ended:?}, not a count ({e})"))
    }
}

fn create_schema(tag: &str) -> String {
    let name = format!(
        "lt_{tag}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    psql(&format!("CREATE SCHEMA {name}")).unwrap_or_else(|e| panic!("{e}"));
    name
}

/// The PostgreSQL server taken away from everybody else, for a fault test: it
/// holds the test lock exclusively (waiting until no other test has a schema)
/// and starts the server again when dropped, even when the test failed.
pub struct PgOutage {
    version: String,
    _lock: File,
}

impl PgOutage {
    pub fn begin() -> PgOutage {
        let lock = lock_file();
        lock.lock()
            .expect("taking the PostgreSQL test lock (exclusive)");
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()
            .and_then(|d| d.filter_map(|e| e.ok()).next())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .unwrap_or_else(|| {
                panic!("no cluster under /etc/postgresql: these tests restart the local PostgreSQL with pg_ctlcluster")
            });
        let outage = PgOutage {
            version,
            _lock: lock,
        };
        outage.wait_ready(Duration::from_secs(30));
        outage
    }

    /// A schema of the test's own; it does not take the lock this outage holds.
    pub fn schema(&self, tag: &str) -> PgSchema {
        PgSchema {
            name: create_schema(tag),
            _lock: None,
        }
    }

    /// `pg_ctlcluster <version> main <action>` (`restart`, `stop`, `start`).
    pub fn ctl(&self, action: &str) {
        self.pg_ctl(action).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits until the server accepts queries.
    pub fn wait_ready(&self, timeout: Duration) {
        ready_within(timeout).unwrap_or_else(|e| panic!("{e}"));
    }

    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let out = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", action])
            .output()
            .map_err(|e| format!("cannot run pg_ctlcluster ({e})"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctlcluster {action} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

fn ready_within(timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match psql("SELECT 1") {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("PostgreSQL is not back after {timeout:?}: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

impl Drop for PgOutage {
    /// Leaves the server running, without panicking (this may run while a
    /// failed test unwinds).
    fn drop(&mut self) {
        if psql("SELECT 1").is_err() {
            let _ = self.pg_ctl("start");
            let _ = ready_within(Duration::from_secs(30));
        }
    }
}

impl Drop for PgSchema {
    /// Ends the schema's connections first, then drops it. A test's pool can
    /// still hold a connection inside a transaction (a relay pass, say) when
    /// the test ends, and in a current-thread test runtime the task that would
    /// finish it cannot run while this blocks: `DROP SCHEMA` would wait for its
    /// locks forever. `lock_timeout` bounds the wait in any case.
    fn drop(&mut self) {
        let _ = self.terminate_backends();
        if let Err(e) = psql(&format!(
            "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        )) {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}
