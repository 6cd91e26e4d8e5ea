//! A PostgreSQL schema of a test's own, created on demand and dropped on drop,
//! shared by the store and queue contract suites so both set up and clean up alike.

use std::process::Command;

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

pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// Creates `lt_<tag>_<random>`; panics with how to start PostgreSQL if it is down.
    pub fn create(tag: &str) -> PgSchema {
        let name = format!(
            "lt_{tag}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        psql(&format!("CREATE SCHEMA {name}")).unwrap_or_else(|e| panic!("{e}"));
        PgSchema { name }
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
