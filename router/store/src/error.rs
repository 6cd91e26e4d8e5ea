//! How storage failures become [`lienthong_core::Error::Store`]: the one classifier.
//!
//! Every error the store returns from a database call goes through [`db_err`]
//! (or [`row_err`] for a column read), so each keeps the driver's error as its
//! `source` and is classified the same way wherever it arose.
//!
//! # Retryable or not
//!
//! Nearly everything the database reports may succeed later unchanged: a lost
//! connection, a restart, a timeout, a lock, a full disk, a serialization
//! failure. What cannot is a statement that does not fit the schema: a column
//! that does not exist or does not decode into the type asked for.
//!
//! A unique violation is retryable *on purpose*. The only one a correct hub
//! can meet is two replicas accepting the same idempotency key at the same
//! moment (`messages_idempotency`): the loser's batch fails, intake answers
//! 503, and the partner's retry is then answered as a duplicate of the
//! winner's message, which is exactly what the key promises. (The chain head
//! and the mapping generation row serialise the other writers, so the trail's
//! and the versions' keys are never raced.)
//!
//! # Refusing writes
//!
//! [`refuses_writes`] tells a store that refuses every write for now (a full
//! disk, a read-only file or standby, failing I/O) from one job that was
//! wrong. It reads the database's own result code from the kept `source`:
//! SQLite's primary result codes `SQLITE_READONLY`, `SQLITE_IOERR`,
//! `SQLITE_FULL` and `SQLITE_CANTOPEN` (of the extended code sqlx reports),
//! PostgreSQL's SQLSTATEs `53100` (disk full) and `25006` (read-only
//! transaction), and an I/O error of the kind "storage full" or "read-only
//! filesystem".

use sqlx::any::AnyRow;
use sqlx::Row;

use lienthong_core::Error;

/// A failed database call: `context` says what the store was doing.
pub(crate) fn db_err(context: &str, e: sqlx::Error) -> Error {
    let retryable = !matches!(
        e,
        sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)
    );
    Error::Store {
        message: format!("{context}: {e}"),
        retryable,
        source: Some(Box::new(e)),
    }
}

/// A failed column read of `row` (see [`get`]).
fn row_err(col: &str, e: sqlx::Error) -> Error {
    db_err(&format!("reading column {col}"), e)
}

/// Column `col` of `row`, as `T`.
pub(crate) fn get<'r, T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>>(
    row: &'r AnyRow,
    col: &str,
) -> lienthong_core::Result<T> {
    row.try_get(col).map_err(|e| row_err(col, e))
}

/// Does this failure say the store as a whole refuses writes for now, rather
/// than that one job was wrong? See the module docs.
pub(crate) fn refuses_writes(e: &Error) -> bool {
    let Error::Store {
        source: Some(source),
        ..
    } = e
    else {
        return false;
    };
    let Some(e) = source.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    match e {
        sqlx::Error::Database(d) => {
            if let Some(s) = d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // The extended code; its low byte is the primary result code.
                let primary = sqlx::error::DatabaseError::code(s)
                    .and_then(|c| c.parse::<i32>().ok())
                    .unwrap_or(0)
                    & 0xff;
                const READONLY: i32 = 8;
                const IOERR: i32 = 10;
                const FULL: i32 = 13;
                const CANTOPEN: i32 = 14;
                return matches!(primary, READONLY | IOERR | FULL | CANTOPEN);
            }
            matches!(d.code().as_deref(), Some("53100" | "25006"))
        }
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::ReadOnlyFilesystem
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_mismatches_are_not_retryable_and_the_cause_is_kept() {
        let e = db_err("reading", sqlx::Error::ColumnNotFound("x".into()));
        assert!(!e.is_retryable());
        assert!(std::error::Error::source(&e).is_some());
        let e = db_err("reading", sqlx::Error::PoolTimedOut);
        assert!(e.is_retryable());
        assert!(!refuses_writes(&e));
    }

    #[test]
    fn io_errors_of_a_full_or_read_only_disk_refuse_writes() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::ReadOnlyFilesystem,
        ] {
            let e = db_err("writing", sqlx::Error::Io(std::io::Error::from(kind)));
            assert!(refuses_writes(&e), "{kind:?}");
        }
        let e = db_err(
            "writing",
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        );
        assert!(!refuses_writes(&e));
    }

    /// A real SQLite refusal, classified by its result code.
    #[tokio::test]
    async fn a_read_only_sqlite_database_refuses_writes() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.db");
        {
            let mut c =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                    .await
                    .unwrap();
            sqlx::query("CREATE TABLE t (x INTEGER)")
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
            .await
            .unwrap();
        let e = sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(&mut c)
            .await
            .unwrap_err();
        let e = db_err("writing", e);
        assert!(refuses_writes(&e), "{e}");
        let wrong = sqlx::query("INSERT INTO nowhere (x) VALUES (1)")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert!(!refuses_writes(&db_err("writing", wrong)));
    }
}
