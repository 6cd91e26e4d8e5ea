//! A PostgreSQL schema of a test's own, created on demand and dropped on drop,
//! shared by the store and queue contract suites so both set up and clean up alike.

use std::process::Command;

const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";
const START_HINT: &str =
    "Is PostgreSQL running? Start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`";

fn psql(sql: &str) -> Result<(), String> {
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
            "-qc",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run psql ({e}); install the PostgreSQL client"))?;
    if out.status.success() {
        Ok(())
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

    /// A database URL whose connections use this schema.
    pub fn url(&self) -> String {
        format!("{PG_BASE}?options=-csearch_path%3D{}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}
