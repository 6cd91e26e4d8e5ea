//! The `console_sessions` table: who is signed in to the console.
//!
//! Why sessions live in the store and not in a cookie or in memory: the cookie
//! used to hold the raw API token, so a stolen cookie was a long-lived
//! credential and signing out only asked the browser to forget it. A session
//! is a random id whose SHA-256 alone is kept here, with an expiry and a
//! sign-out time, so signing out really ends it, and every replica behind a
//! load balancer sees the same sessions. The policy (lengths, cookies, which
//! token a session stands for) is `router::console::sessions`; the statements
//! are here. Writes go through the writer task like every audit write, and
//! carry their trail event (`console.sign_in`, `console.sign_out`), so who
//! used the console, and when, is in the chain.

use futures::future::BoxFuture;
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::audit_ops::WriteOp;
use super::error::{db_err, get};
use super::trail::TrailEvent;
use super::Store;
use lienthong_core::Result;

/// How long after its expiry a session row is kept (then deleted on the next sign-in).
pub const KEEP_EXPIRED_MS: i64 = 24 * 3600 * 1000;

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_sha256: String,
    /// The SHA-256 (hex) of the API token that signed in.
    pub token_sha256: String,
    /// The token's name when it signed in (for the trail and the logs).
    pub principal: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl SessionRow {
    /// Usable at `now`: not signed out and not expired.
    pub fn live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

fn db(context: &str, e: sqlx::Error) -> lienthong_core::Error {
    db_err(&format!("console sessions: {context}"), e)
}

struct Open {
    row: SessionRow,
    actor: String,
}

impl WriteOp for Open {
    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        events: &'c mut Vec<TrailEvent>,
    ) -> BoxFuture<'c, Result<Value>> {
        Box::pin(async move {
            let r = &self.row;
            sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
                .bind(r.created_at - KEEP_EXPIRED_MS)
                .execute(&mut *conn)
                .await
                .map_err(|e| db("deleting expired sessions", e))?;
            sqlx::query(
                "INSERT INTO console_sessions (id_sha256, token_sha256, principal, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(&r.id_sha256)
            .bind(&r.token_sha256)
            .bind(&r.principal)
            .bind(r.created_at)
            .bind(r.expires_at)
            .execute(&mut *conn)
            .await
            .map_err(|e| db("opening a session", e))?;
            events.push(TrailEvent {
                at: r.created_at,
                message_id: None,
                delivery_id: None,
                kind: "console.sign_in",
                actor: self.actor.clone(),
                // A prefix of the id's hash names the session in the trail without
                // giving anyone the means to use it.
                detail: json!({ "session": &r.id_sha256[..12], "expires_at": r.expires_at }),
            });
            Ok(Value::Null)
        })
    }
}

struct Close {
    id_sha256: String,
    at: i64,
    actor: String,
}

impl WriteOp for Close {
    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        events: &'c mut Vec<TrailEvent>,
    ) -> BoxFuture<'c, Result<Value>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE console_sessions SET revoked_at = $1 WHERE id_sha256 = $2 AND revoked_at IS NULL",
            )
            .bind(self.at)
            .bind(&self.id_sha256)
            .execute(&mut *conn)
            .await
            .map_err(|e| db("closing a session", e))?;
            if done.rows_affected() > 0 {
                events.push(TrailEvent {
                    at: self.at,
                    message_id: None,
                    delivery_id: None,
                    kind: "console.sign_out",
                    actor: self.actor.clone(),
                    detail: json!({ "session": &self.id_sha256[..12.min(self.id_sha256.len())] }),
                });
            }
            Ok(Value::Bool(done.rows_affected() > 0))
        })
    }
}

impl Store {
    /// Stores a new session (and deletes sessions that expired a day ago).
    /// `actor` names who signed in, for the trail.
    pub async fn open_session(&self, row: SessionRow, actor: String) -> Result<()> {
        self.audit_write(Box::new(Open { row, actor }))
            .await
            .map(|_| ())
    }

    /// Ends a session (sign-out). `Ok(false)`: it was unknown or already ended.
    pub async fn close_session(&self, id_sha256: &str, at: i64, actor: String) -> Result<bool> {
        let v = self
            .audit_write(Box::new(Close {
                id_sha256: id_sha256.to_string(),
                at,
                actor,
            }))
            .await?;
        Ok(v == Value::Bool(true))
    }

    /// The session with this id hash, live or not.
    pub async fn session(&self, id_sha256: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT id_sha256, token_sha256, principal, created_at, expires_at, revoked_at \
             FROM console_sessions WHERE id_sha256 = $1",
        )
        .bind(id_sha256)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db("reading a session", e))?;
        row.map(|r| {
            Ok(SessionRow {
                id_sha256: get(&r, "id_sha256")?,
                token_sha256: get(&r, "token_sha256")?,
                principal: get(&r, "principal")?,
                created_at: get(&r, "created_at")?,
                expires_at: get(&r, "expires_at")?,
                revoked_at: get(&r, "revoked_at")?,
            })
        })
        .transpose()
    }
}
