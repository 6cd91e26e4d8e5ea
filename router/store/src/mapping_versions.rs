//! The `mapping_versions`, `mapping_active` and `mapping_generation` tables:
//! every accepted change of a mapping as an immutable version, which version
//! of each mapping is live, and the counter every activation bumps.
//!
//! Why versions live in the database, and why the generation row is both the
//! replicas' reload signal and the lock that serialises changes, is told in
//! `router::admin::versions`, which decides what a change does; the
//! statements are here. The writes take the writer's connection: a change runs
//! as one [`super::audit_ops::WriteOp`] in the store's single writer, so its
//! rows and its trail event commit together.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::error::db_err;
use super::Store;
use lienthong_core::Result;

/// One stored version, without its content.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionMeta {
    pub mapping_id: String,
    pub version: i64,
    pub created_at: i64,
    pub author: String,
    pub comment: String,
    pub origin: String,
    pub content_hash: String,
    /// The `version:` the YAML itself declares (a label kept by its author; deliveries
    /// record `version`, the store's number). `None` for rows stored before it was kept.
    pub file_version: Option<i64>,
    /// Is this the active version?
    pub active: bool,
}

/// One stored version with its YAML.
#[derive(Debug, Clone, Serialize)]
pub struct MappingVersion {
    #[serde(flatten)]
    pub meta: VersionMeta,
    pub content: String,
}

/// The active version of one mapping.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActiveRow {
    pub mapping_id: String,
    pub version: i64,
    pub content_hash: String,
    pub activated_at: i64,
    pub activated_by: String,
}

/// A version row to insert ([`insert_version`]).
#[derive(Debug, Clone, Copy)]
pub struct VersionRow<'a> {
    pub mapping_id: &'a str,
    pub version: i64,
    pub created_at: i64,
    pub author: &'a str,
    pub comment: &'a str,
    pub origin: &'a str,
    pub content_hash: &'a str,
    pub content: &'a str,
    pub file_version: Option<i64>,
}

/// The errors of this file say which tables they are about.
fn db(context: &str, e: sqlx::Error) -> lienthong_core::Error {
    db_err(&format!("mapping versions: {context}"), e)
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>>(
    row: &'r AnyRow,
    col: &str,
) -> Result<T> {
    sqlx::Row::try_get(row, col).map_err(|e| db(&format!("reading column {col}"), e))
}

const META_COLS: &str =
    "v.mapping_id, v.version, v.created_at, v.author, v.comment, v.origin, v.content_hash, v.file_version, \
     CAST(CASE WHEN a.version = v.version THEN 1 ELSE 0 END AS BIGINT) AS is_active";

fn meta(row: &AnyRow) -> Result<VersionMeta> {
    Ok(VersionMeta {
        mapping_id: get(row, "mapping_id")?,
        version: get(row, "version")?,
        created_at: get(row, "created_at")?,
        author: get(row, "author")?,
        comment: get(row, "comment")?,
        origin: get(row, "origin")?,
        content_hash: get(row, "content_hash")?,
        file_version: get(row, "file_version")?,
        active: get::<i64>(row, "is_active")? == 1,
    })
}

fn with_content(r: &AnyRow) -> Result<MappingVersion> {
    Ok(MappingVersion {
        meta: meta(r)?,
        content: get(r, "content")?,
    })
}

fn active_row(r: &AnyRow) -> Result<ActiveRow> {
    Ok(ActiveRow {
        mapping_id: get(r, "mapping_id")?,
        version: get(r, "version")?,
        content_hash: get(r, "content_hash")?,
        activated_at: get(r, "activated_at")?,
        activated_by: get(r, "activated_by")?,
    })
}

impl Store {
    /// The current mapping generation (bumped by every activation and rollback).
    pub async fn mapping_generation(&self) -> Result<i64> {
        let row = sqlx::query("SELECT generation FROM mapping_generation WHERE id = 1")
            .fetch_one(&self.read)
            .await
            .map_err(|e| db("reading the generation", e))?;
        get(&row, "generation")
    }

    /// Every mapping's active version, by id.
    pub async fn active_versions(&self) -> Result<Vec<ActiveRow>> {
        let rows = sqlx::query(
            "SELECT a.mapping_id, a.version, a.activated_at, a.activated_by, v.content_hash \
             FROM mapping_active a JOIN mapping_versions v ON v.mapping_id = a.mapping_id AND v.version = a.version \
             ORDER BY a.mapping_id",
        )
        .fetch_all(&self.read)
        .await
        .map_err(|e| db("listing active versions", e))?;
        rows.iter().map(active_row).collect()
    }

    /// The active version of one mapping.
    pub async fn active_version(&self, mapping_id: &str) -> Result<Option<ActiveRow>> {
        let row = sqlx::query(
            "SELECT a.mapping_id, a.version, a.activated_at, a.activated_by, v.content_hash \
             FROM mapping_active a JOIN mapping_versions v ON v.mapping_id = a.mapping_id AND v.version = a.version \
             WHERE a.mapping_id = $1",
        )
        .bind(mapping_id)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db("reading the active version", e))?;
        row.as_ref().map(active_row).transpose()
    }

    /// The active versions with their content (what a replica compiles on reload).
    pub async fn active_contents(&self) -> Result<Vec<MappingVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {META_COLS}, v.content FROM mapping_active a \
             JOIN mapping_versions v ON v.mapping_id = a.mapping_id AND v.version = a.version ORDER BY v.mapping_id"
        ))
        .fetch_all(&self.read)
        .await
        .map_err(|e| db("reading active contents", e))?;
        rows.iter().map(with_content).collect()
    }

    /// Every version of a mapping, newest first.
    pub async fn version_history(&self, mapping_id: &str) -> Result<Vec<VersionMeta>> {
        let rows = sqlx::query(&format!(
            "SELECT {META_COLS} FROM mapping_versions v LEFT JOIN mapping_active a ON a.mapping_id = v.mapping_id \
             WHERE v.mapping_id = $1 ORDER BY v.version DESC"
        ))
        .bind(mapping_id)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db("listing versions", e))?;
        rows.iter().map(meta).collect()
    }

    /// One version with its content.
    pub async fn mapping_version(
        &self,
        mapping_id: &str,
        version: i64,
    ) -> Result<Option<MappingVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {META_COLS}, v.content FROM mapping_versions v LEFT JOIN mapping_active a ON a.mapping_id = v.mapping_id \
             WHERE v.mapping_id = $1 AND v.version = $2"
        ))
        .bind(mapping_id)
        .bind(version)
        .fetch_optional(&self.read)
        .await
        .map_err(|e| db("reading a version", e))?;
        row.as_ref().map(with_content).transpose()
    }

    /// Every version number of a mapping whose content has this hash.
    pub async fn versions_with_hash(&self, mapping_id: &str, hash: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT version FROM mapping_versions WHERE mapping_id = $1 AND content_hash = $2",
        )
        .bind(mapping_id)
        .bind(hash)
        .fetch_all(&self.read)
        .await
        .map_err(|e| db("looking up a content hash", e))?;
        rows.iter().map(|r| get(r, "version")).collect()
    }
}

/// First statement of every change: bumps the generation and so takes the
/// lock (see `router::admin::versions`). Returns the new generation.
pub async fn bump_generation(tx: &mut AnyConnection, now: i64) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE mapping_generation SET generation = generation + 1, updated_at = $1 WHERE id = 1 RETURNING generation",
    )
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| db("bumping the generation", e))?;
    get(&row, "generation")
}

/// `(version, content_hash)` of the mapping's active version, if it has one.
pub async fn current_active(
    tx: &mut AnyConnection,
    mapping_id: &str,
) -> Result<Option<(i64, String)>> {
    let row = sqlx::query(
        "SELECT a.version, v.content_hash FROM mapping_active a \
         JOIN mapping_versions v ON v.mapping_id = a.mapping_id AND v.version = a.version WHERE a.mapping_id = $1",
    )
    .bind(mapping_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db("reading the active version", e))?;
    row.map(|r| Ok((get(&r, "version")?, get(&r, "content_hash")?)))
        .transpose()
}

/// The highest version number of the mapping (0 when it has none).
pub async fn last_version(tx: &mut AnyConnection, mapping_id: &str) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COALESCE(MAX(version), 0) AS v FROM mapping_versions WHERE mapping_id = $1",
    )
    .bind(mapping_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| db("reading the last version number", e))?;
    get(&row, "v")
}

/// Inserts one version row.
pub async fn insert_version(tx: &mut AnyConnection, v: VersionRow<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO mapping_versions (mapping_id, version, created_at, author, comment, origin, content_hash, content, file_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(v.mapping_id)
    .bind(v.version)
    .bind(v.created_at)
    .bind(v.author)
    .bind(v.comment)
    .bind(v.origin)
    .bind(v.content_hash)
    .bind(v.content)
    .bind(v.file_version)
    .execute(&mut *tx)
    .await
    .map_err(|e| db("inserting the version", e))?;
    Ok(())
}

/// The content hash of one version, if it exists.
pub async fn version_hash(
    tx: &mut AnyConnection,
    mapping_id: &str,
    version: i64,
) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT content_hash FROM mapping_versions WHERE mapping_id = $1 AND version = $2",
    )
    .bind(mapping_id)
    .bind(version)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| db("reading the target version", e))?;
    row.map(|r| get(&r, "content_hash")).transpose()
}

/// Makes `version` the mapping's active version.
pub async fn set_active(
    tx: &mut AnyConnection,
    mapping_id: &str,
    version: i64,
    now: i64,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mapping_active (mapping_id, version, activated_at, activated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (mapping_id) DO UPDATE SET version = excluded.version, activated_at = excluded.activated_at, \
         activated_by = excluded.activated_by",
    )
    .bind(mapping_id)
    .bind(version)
    .bind(now)
    .bind(by)
    .execute(&mut *tx)
    .await
    .map_err(|e| db("setting the active version", e))?;
    Ok(())
}

/// Takes the mapping out of the active set (its versions stay).
pub async fn delete_active(tx: &mut AnyConnection, mapping_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM mapping_active WHERE mapping_id = $1")
        .bind(mapping_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db("deactivating the mapping", e))?;
    Ok(())
}
