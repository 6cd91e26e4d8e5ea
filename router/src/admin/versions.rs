//! The versioned mapping store: every change is a new, immutable version.
//!
//! # Why versions live in the database and not only in files
//!
//! A file under `mappings/` says what a mapping *is now*; it cannot say who
//! changed it, when, why, or what it was the week a dossier went wrong. So each
//! accepted change becomes a row in `mapping_versions` (author, time, comment,
//! content hash, the exact YAML), and `mapping_active` says which version of
//! each mapping is live. Rollback is "make an earlier version active again";
//! nothing is ever rewritten, so a delivery's `mapping_version` always points at
//! the exact text that produced it.
//!
//! # Why a generation counter
//!
//! With PostgreSQL several replicas share the store. Every activation bumps the
//! single `mapping_generation` row in the same transaction; each replica polls
//! that one integer (a primary-key read, every second by default) and reloads its
//! active set when it moved. That converges all replicas within one poll
//! interval without LISTEN/NOTIFY (which `sqlx::Any` does not expose).
//!
//! The generation row is also the lock: a change *starts* by updating it, which
//! takes the row lock on PostgreSQL and the write lock on SQLite, so two admins
//! (or two replicas) changing mappings at once are serialised, and the
//! compare-and-set on the active version that follows cannot race.

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::AdminError;
use crate::store::audit_ops::WriteOp;
use crate::store::mapping_versions::{self as table, VersionRow};
pub use crate::store::mapping_versions::{ActiveRow, MappingVersion, VersionMeta};
use crate::store::TrailEvent;
use crate::store::{now_ms, Store};
use crate::{Error, Result};

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `PUT /api/v1/mappings/{id}`.
    Api,
    /// The web console's editor.
    Console,
    /// An edit of a file under `mappings/`, seen by the watcher.
    File,
    /// First import of the files at start-up.
    Import,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Console => "console",
            Origin::File => "file",
            Origin::Import => "import",
        }
    }
}

/// A change to record: a new version that becomes active.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub mapping_id: String,
    pub author: String,
    pub comment: String,
    pub origin: Origin,
    pub content_hash: String,
    pub content: String,
}

/// Outcome of a committed activation or rollback.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Activation {
    pub mapping_id: String,
    /// Active before (None for a new mapping).
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub from_hash: Option<String>,
    pub to_hash: String,
    /// The generation after the change.
    pub generation: i64,
}

/// Handle on the version tables; cheap to clone.
#[derive(Clone)]
pub struct VersionStore {
    /// Reads from its read pool; writes go through its single writer.
    store: Store,
}

impl VersionStore {
    /// Reads with the store's pool, writes through its writer (same database as
    /// messages and the trail, so activations are chained with everything else).
    pub fn new(store: &Store) -> Self {
        VersionStore {
            store: store.clone(),
        }
    }

    /// The current generation (bumped by every activation and rollback).
    pub async fn generation(&self) -> Result<i64> {
        self.store.mapping_generation().await
    }

    /// Every mapping's active version, by id.
    pub async fn active_all(&self) -> Result<Vec<ActiveRow>> {
        self.store.active_versions().await
    }

    /// The active version of one mapping.
    pub async fn active(&self, mapping_id: &str) -> Result<Option<ActiveRow>> {
        self.store.active_version(mapping_id).await
    }

    /// The active versions with their content (what a replica compiles on reload).
    pub async fn active_contents(&self) -> Result<Vec<MappingVersion>> {
        self.store.active_contents().await
    }

    /// Every version of a mapping, newest first.
    pub async fn history(&self, mapping_id: &str) -> Result<Vec<VersionMeta>> {
        self.store.version_history(mapping_id).await
    }

    /// One version with its content.
    pub async fn get(&self, mapping_id: &str, version: i64) -> Result<Option<MappingVersion>> {
        self.store.mapping_version(mapping_id, version).await
    }

    /// Every version number whose content has this hash.
    pub async fn versions_with_hash(&self, mapping_id: &str, hash: &str) -> Result<Vec<i64>> {
        self.store.versions_with_hash(mapping_id, hash).await
    }

    /// Records `new` as the next version and makes it active, if the active
    /// version is still `expected` (None: the mapping must not have one yet).
    /// Appends `mapping.activated` to the trail in the same transaction.
    pub async fn commit_new(
        &self,
        new: &NewVersion,
        expected: Option<i64>,
    ) -> Result<Activation, AdminError> {
        let op = Change::New {
            new: new.clone(),
            expected,
        };
        self.run(op, &new.mapping_id, expected).await
    }

    /// Makes an existing (earlier) version active again, if the active version is
    /// still `expected`. Appends `mapping.rolled_back`.
    pub async fn rollback(
        &self,
        mapping_id: &str,
        to_version: i64,
        expected: i64,
        actor: &str,
        comment: &str,
    ) -> Result<Activation, AdminError> {
        let op = Change::Rollback {
            mapping_id: mapping_id.to_owned(),
            to_version,
            expected,
            actor: actor.to_owned(),
            comment: comment.to_owned(),
        };
        self.run(op, mapping_id, Some(expected)).await
    }

    /// Removes the mapping from the active set (its versions stay, so a delivery's
    /// version still names its text), if the active version is still `expected`.
    /// Appends `mapping.deactivated`. Returns the generation after the change.
    pub async fn deactivate(
        &self,
        mapping_id: &str,
        expected: i64,
        actor: &str,
        comment: &str,
    ) -> Result<i64, AdminError> {
        let op = Change::Deactivate {
            mapping_id: mapping_id.to_owned(),
            expected,
            actor: actor.to_owned(),
            comment: comment.to_owned(),
        };
        let answer = self.store.audit_write(Box::new(op)).await?;
        match serde_json::from_value::<Answer>(answer) {
            Ok(Answer::Deactivated { generation }) => Ok(generation),
            Ok(Answer::Conflict { current }) => Err(AdminError::Conflict {
                mapping_id: mapping_id.to_owned(),
                expected: Some(expected),
                current,
            }),
            Ok(other) => Err(AdminError::Router(Error::Store {
                message: format!(
                    "mapping versions: unexpected answer to a deactivation: {other:?}"
                ),
                retryable: false,
                source: None,
            })),
            Err(e) => Err(AdminError::Router(Error::Store {
                message: format!("mapping versions: unexpected answer from the writer: {e}"),
                retryable: false,
                source: None,
            })),
        }
    }

    /// Runs a change in the store's single writer (see the module docs) and reads its answer.
    async fn run(
        &self,
        op: Change,
        mapping_id: &str,
        expected: Option<i64>,
    ) -> Result<Activation, AdminError> {
        let answer = self.store.audit_write(Box::new(op)).await?;
        match serde_json::from_value::<Answer>(answer) {
            Ok(Answer::Done(act)) => Ok(act),
            Ok(Answer::Conflict { current }) => Err(AdminError::Conflict { mapping_id: mapping_id.to_owned(), expected, current }),
            Ok(Answer::NoSuchVersion { version }) => Err(AdminError::Router(Error::NotFound(format!(
                "mapping '{mapping_id}' has no version {version}; list them with GET /api/v1/mappings/{mapping_id}/versions"
            )))),
            Ok(Answer::Deactivated { .. }) => Err(AdminError::Router(Error::Store {
                message: "mapping versions: a change answered as a deactivation".into(),
                retryable: false,
                source: None,
            })),
            Err(e) => Err(AdminError::Router(Error::Store { message: format!("mapping versions: unexpected answer from the writer: {e}"), retryable: false, source: None })),
        }
    }
}

/// A change, run by the store's writer inside its transaction. Owned data, so it
/// can run again alone if its batch failed (the failed transaction was rolled back).
enum Change {
    New {
        new: NewVersion,
        expected: Option<i64>,
    },
    Rollback {
        mapping_id: String,
        to_version: i64,
        expected: i64,
        actor: String,
        comment: String,
    },
    Deactivate {
        mapping_id: String,
        expected: i64,
        actor: String,
        comment: String,
    },
}

/// What a [`Change`] reports back through the writer (as JSON).
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Answer {
    Done(Activation),
    Conflict { current: Option<i64> },
    NoSuchVersion { version: i64 },
    Deactivated { generation: i64 },
}

impl WriteOp for Change {
    fn run<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        events: &'c mut Vec<TrailEvent>,
    ) -> BoxFuture<'c, Result<Value>> {
        Box::pin(async move {
            let answer = match self {
                Change::New { new, expected } => {
                    commit_new_in(conn, events, new, *expected).await?
                }
                Change::Rollback {
                    mapping_id,
                    to_version,
                    expected,
                    actor,
                    comment,
                } => {
                    rollback_in(
                        conn,
                        events,
                        mapping_id,
                        *to_version,
                        *expected,
                        actor,
                        comment,
                    )
                    .await?
                }
                Change::Deactivate {
                    mapping_id,
                    expected,
                    actor,
                    comment,
                } => deactivate_in(conn, events, mapping_id, *expected, actor, comment).await?,
            };
            serde_json::to_value(answer).map_err(|e| Error::Store {
                message: format!("mapping versions: encoding the answer: {e}"),
                retryable: false,
                source: None,
            })
        })
    }
}

async fn commit_new_in(
    conn: &mut AnyConnection,
    events: &mut Vec<TrailEvent>,
    new: &NewVersion,
    expected: Option<i64>,
) -> Result<Answer> {
    let now = now_ms();
    let generation = table::bump_generation(conn, now).await?;
    let current = table::current_active(conn, &new.mapping_id).await?;
    if current.as_ref().map(|c| c.0) != expected {
        // Nothing written but the generation bump, which the batch commits harmlessly:
        // replicas then reload and find the same set.
        return Ok(Answer::Conflict {
            current: current.map(|c| c.0),
        });
    }
    let version = table::last_version(conn, &new.mapping_id).await? + 1;
    table::insert_version(
        conn,
        VersionRow {
            mapping_id: &new.mapping_id,
            version,
            created_at: now,
            author: &new.author,
            comment: &new.comment,
            origin: new.origin.as_str(),
            content_hash: &new.content_hash,
            content: &new.content,
            file_version: declared_version(&new.content),
        },
    )
    .await?;
    table::set_active(conn, &new.mapping_id, version, now, &new.author).await?;
    let act = Activation {
        mapping_id: new.mapping_id.clone(),
        from_version: current.as_ref().map(|c| c.0),
        from_hash: current.map(|c| c.1),
        to_version: version,
        to_hash: new.content_hash.clone(),
        generation,
    };
    events.push(TrailEvent {
        at: now,
        message_id: None,
        delivery_id: None,
        kind: "mapping.activated",
        actor: new.author.clone(),
        detail: json!({
            "mapping_id": act.mapping_id,
            "from_version": act.from_version,
            "to_version": act.to_version,
            "from_hash": act.from_hash,
            "to_hash": act.to_hash,
            "origin": new.origin.as_str(),
            "comment": new.comment,
            "file_version": declared_version(&new.content),
        }),
    });
    Ok(Answer::Done(act))
}

async fn rollback_in(
    conn: &mut AnyConnection,
    events: &mut Vec<TrailEvent>,
    mapping_id: &str,
    to_version: i64,
    expected: i64,
    actor: &str,
    comment: &str,
) -> Result<Answer> {
    let now = now_ms();
    let generation = table::bump_generation(conn, now).await?;
    let current = table::current_active(conn, mapping_id).await?;
    if current.as_ref().map(|c| c.0) != Some(expected) {
        return Ok(Answer::Conflict {
            current: current.map(|c| c.0),
        });
    }
    let Some(to_hash) = table::version_hash(conn, mapping_id, to_version).await? else {
        return Ok(Answer::NoSuchVersion {
            version: to_version,
        });
    };
    table::set_active(conn, mapping_id, to_version, now, actor).await?;
    let act = Activation {
        mapping_id: mapping_id.to_owned(),
        from_version: current.as_ref().map(|c| c.0),
        from_hash: current.map(|c| c.1),
        to_version,
        to_hash,
        generation,
    };
    events.push(TrailEvent {
        at: now,
        message_id: None,
        delivery_id: None,
        kind: "mapping.rolled_back",
        actor: actor.to_owned(),
        detail: json!({
            "mapping_id": act.mapping_id,
            "from_version": act.from_version,
            "to_version": act.to_version,
            "from_hash": act.from_hash,
            "to_hash": act.to_hash,
            "comment": comment,
        }),
    });
    Ok(Answer::Done(act))
}

async fn deactivate_in(
    conn: &mut AnyConnection,
    events: &mut Vec<TrailEvent>,
    mapping_id: &str,
    expected: i64,
    actor: &str,
    comment: &str,
) -> Result<Answer> {
    let now = now_ms();
    let generation = table::bump_generation(conn, now).await?;
    let current = table::current_active(conn, mapping_id).await?;
    let (version, hash) = match current {
        Some((v, h)) if v == expected => (v, h),
        other => {
            return Ok(Answer::Conflict {
                current: other.map(|c| c.0),
            })
        }
    };
    table::delete_active(conn, mapping_id).await?;
    events.push(TrailEvent {
        at: now,
        message_id: None,
        delivery_id: None,
        kind: "mapping.deactivated",
        actor: actor.to_owned(),
        detail: json!({
            "mapping_id": mapping_id,
            "from_version": version,
            "from_hash": hash,
            "comment": comment,
        }),
    });
    Ok(Answer::Deactivated { generation })
}

/// The `version:` a mapping's YAML declares at its top level, if it is a whole number.
/// Content reaching the store has passed the gate's compile step (size, depth and
/// alias limits), so parsing it again here is safe.
pub fn declared_version(content: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Top {
        version: Option<serde_json::Value>,
    }
    serde_saphyr::from_str::<Top>(content)
        .ok()?
        .version?
        .as_i64()
}

/// Unified diff of two versions' YAML (`--- id@vA`, `+++ id@vB`).
pub fn unified_diff(mapping_id: &str, from: &MappingVersion, to: &MappingVersion) -> String {
    similar::TextDiff::from_lines(&from.content, &to.content)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{mapping_id}@v{}", from.meta.version),
            &format!("{mapping_id}@v{}", to.meta.version),
        )
        .to_string()
}
