//! `/api/v1/mappings`: the HTTP face of the versioned mapping store.
//!
//! | method | path | role | what |
//! |---|---|---|---|
//! | GET | `/api/v1/mappings` | admin, auditor | every mapping with its active version |
//! | GET | `/api/v1/mappings/{id}` | admin, auditor | the active version with its YAML; `ETag: "<version>"` |
//! | GET | `/api/v1/mappings/{id}/versions` | admin, auditor | history, newest first |
//! | GET | `/api/v1/mappings/{id}/versions/{v}` | admin, auditor | one version with its YAML |
//! | GET | `/api/v1/mappings/{id}/diff?from=&to=` | admin, auditor | unified diff (text/plain) |
//! | PUT | `/api/v1/mappings/{id}` | admin | gate + activate; `If-Match: <active version>` required for an existing mapping |
//! | POST | `/api/v1/mappings/{id}/validate` | admin, auditor | gate steps a–d, nothing activated |
//! | POST | `/api/v1/mappings/{id}/preview` | admin, auditor | map one input with a draft |
//! | POST | `/api/v1/mappings/{id}/rollback` | admin | `{"to_version": n}` with `If-Match` |
//!
//! Mapping ids contain `/` (`province-portal/dossier-filed.to-lis`): they can be
//! written as is or with `%2F`. The PUT body is the YAML itself (any content
//! type but JSON), with `?comment=` and `?allow_regressions=true`, or JSON
//! `{"content", "comment", "allow_regressions"}`.
//!
//! Status codes: 401 no/unknown token, 403 wrong role, 404 unknown mapping or
//! version, 409 stale `If-Match`, 412 is never used (409 says more), 413 too
//! large, 422 refused by the gate (the body carries the whole gate report, with
//! line and column of every problem), 428 `If-Match` missing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{Authenticate, Principal};
use super::service::{check_id, MappingAdmin, Proposal};
use super::versions::{unified_diff, Origin};
use super::AdminError;
use crate::auth::routes::{Access, Guards, Registry};
use crate::auth::Need;
use crate::Error;

/// Shared state of the admin API and the console.
#[derive(Clone)]
pub struct AdminState {
    pub admin: Arc<MappingAdmin>,
    pub auth: Arc<dyn Authenticate>,
}

/// The `/api/v1/mappings` routes. `POST .../{*rest}` is registered for
/// auditors (validate, preview); its rollback target is admin-only in the handler.
pub fn routes(state: AdminState, guards: Guards) -> Registry {
    let reader = Access::Api(Need::Auditor);
    Registry::new(guards)
        .add(Method::GET, "/api/v1/mappings", reader, list)
        .add(Method::GET, "/api/v1/mappings/{*rest}", reader, get_any)
        .add(
            Method::PUT,
            "/api/v1/mappings/{*rest}",
            Access::Api(Need::Admin),
            put_mapping,
        )
        .add(Method::POST, "/api/v1/mappings/{*rest}", reader, post_any)
        // A mapping is at most 1 MiB; JSON wrapping and a preview input add a little.
        .body_limit(Some(crate::limits::MAX_MAPPING_FILE_BYTES + 256 * 1024))
        .with_state(state)
}

/// An error as JSON, with the status that tells the caller what to do.
pub struct ApiError(StatusCode, Value);

impl IntoResponse for ApiError {
    /// Every error body has the documented `{"error", "reasons"}` keys (plus
    /// `report`, `diagnostics` or `active_version` where they say more).
    fn into_response(self) -> Response {
        let mut body = self.1;
        if let Some(o) = body.as_object_mut() {
            // Without more detail, the error's own text is the reason.
            let reason = o.get("error").cloned().unwrap_or_else(|| json!("error"));
            o.entry("reasons").or_insert_with(|| json!([reason]));
        }
        (self.0, Json(body)).into_response()
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let msg = e.to_string();
        match e {
            AdminError::Conflict { current, .. } => ApiError(
                StatusCode::CONFLICT,
                json!({"error": msg, "active_version": current}),
            ),
            AdminError::Rejected(report) => ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": msg, "reasons": gate_reasons(&report), "report": report}),
            ),
            AdminError::BadRequest(_) => ApiError(StatusCode::BAD_REQUEST, json!({"error": msg})),
            AdminError::Router(Error::NotFound(_)) => {
                ApiError(StatusCode::NOT_FOUND, json!({"error": msg}))
            }
            AdminError::Router(Error::Invalid(d)) => ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": msg, "diagnostics": d}),
            ),
            AdminError::Router(e) if e.is_retryable() => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": msg, "retryable": true}),
            ),
            AdminError::Router(_) => {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": msg}))
            }
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        AdminError::Router(e).into()
    }
}

/// The failed step and its diagnostics, one line each (the `reasons` of a 422).
fn gate_reasons(report: &crate::admin::gate::GateReport) -> Vec<String> {
    let mut out = Vec::new();
    for step in &report.steps {
        if step.status == crate::admin::gate::StepStatus::Failed {
            out.push(format!("{}: {}", step.name, step.message));
            out.extend(step.diagnostics.iter().take(20).map(|d| d.to_string()));
        }
    }
    out.extend(
        report
            .test_failures
            .iter()
            .take(20)
            .map(|t| format!("test {} ({})", t.case, t.origin)),
    );
    out
}

fn err(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(status, json!({"error": msg.into()}))
}

/// The bearer token's principal, or 401.
pub fn principal(auth: &dyn Authenticate, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(token) = crate::auth::bearer(headers) else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>`; ask an administrator for an API token",
        ));
    };
    auth.authenticate(token).ok_or_else(|| {
        err(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked token; check the token or ask for a new one",
        )
    })
}

fn reader(st: &AdminState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let p = principal(st.auth.as_ref(), headers)?;
    if !p.can_read() {
        return Err(err(
            StatusCode::FORBIDDEN,
            format!(
                "token '{}' may not read mappings (needs the admin or auditor role)",
                p.name
            ),
        ));
    }
    Ok(p)
}

fn changer(st: &AdminState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let p = principal(st.auth.as_ref(), headers)?;
    if !p.can_change() {
        return Err(err(
            StatusCode::FORBIDDEN,
            format!(
                "token '{}' may not change mappings (needs the admin role)",
                p.name
            ),
        ));
    }
    Ok(p)
}

async fn list(State(st): State<AdminState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    reader(&st, &headers)?;
    let rows = st.admin.versions().active_all().await?;
    let set = st.admin.active().load();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let m = set.mappings.get(&r.mapping_id);
            json!({
                "id": r.mapping_id,
                "active_version": r.version,
                "content_hash": r.content_hash,
                "activated_at": r.activated_at,
                "activated_by": r.activated_by,
                "description": m.as_ref().map(|m| m.description.clone()),
                "source": m.as_ref().map(|m| format!("{}/{}", m.source.system, m.source.message_type)),
                "target": m.as_ref().map(|m| format!("{}/{}", m.target.system, m.target.message_type)),
            })
        })
        .collect();
    Ok(Json(
        json!({"generation": set.generation, "mappings": items}),
    ))
}

/// What a `{*rest}` path names.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    Mapping(&'a str),
    Versions(&'a str),
    Version(&'a str, i64),
    Diff(&'a str),
    Validate(&'a str),
    Preview(&'a str),
    Rollback(&'a str),
}

fn parse_target(rest: &str) -> Target<'_> {
    let rest = rest.trim_matches('/');
    if let Some(id) = rest.strip_suffix("/versions") {
        return Target::Versions(id);
    }
    if let Some(id) = rest.strip_suffix("/diff") {
        return Target::Diff(id);
    }
    if let Some(id) = rest.strip_suffix("/validate") {
        return Target::Validate(id);
    }
    if let Some(id) = rest.strip_suffix("/preview") {
        return Target::Preview(id);
    }
    if let Some(id) = rest.strip_suffix("/rollback") {
        return Target::Rollback(id);
    }
    if let Some((head, v)) = rest.rsplit_once('/') {
        if let Some(id) = head.strip_suffix("/versions") {
            if let Ok(v) = v.parse() {
                return Target::Version(id, v);
            }
        }
    }
    Target::Mapping(rest)
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

async fn get_any(
    State(st): State<AdminState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(query): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    reader(&st, &headers)?;
    let versions = st.admin.versions();
    match parse_target(&rest) {
        Target::Mapping(id) => {
            check_id(id)?;
            let active = versions.active(id).await?.ok_or_else(|| not_found(id))?;
            let v = versions
                .get(id, active.version)
                .await?
                .ok_or_else(|| not_found(id))?;
            Ok((
                [(header::ETAG, format!("\"{}\"", active.version))],
                Json(json!(v)),
            )
                .into_response())
        }
        Target::Versions(id) => {
            check_id(id)?;
            let h = versions.history(id).await?;
            if h.is_empty() {
                return Err(not_found(id));
            }
            Ok(Json(json!({"mapping_id": id, "versions": h})).into_response())
        }
        Target::Version(id, n) => {
            check_id(id)?;
            let v = versions.get(id, n).await?.ok_or_else(|| {
                err(
                    StatusCode::NOT_FOUND,
                    format!(
                        "mapping '{id}' has no version {n}; see GET /api/v1/mappings/{id}/versions"
                    ),
                )
            })?;
            Ok(Json(json!(v)).into_response())
        }
        Target::Diff(id) => {
            check_id(id)?;
            let (Some(from), Some(to)) = (query.from, query.to) else {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "give the two versions to compare: ?from=<n>&to=<m>",
                ));
            };
            let a = versions
                .get(id, from)
                .await?
                .ok_or_else(|| no_version(id, from))?;
            let b = versions
                .get(id, to)
                .await?
                .ok_or_else(|| no_version(id, to))?;
            Ok((
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                unified_diff(id, &a, &b),
            )
                .into_response())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST for validate, preview and rollback",
        )),
    }
}

fn not_found(id: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        format!("no mapping '{id}'; GET /api/v1/mappings lists them"),
    )
}

fn no_version(id: &str, v: i64) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        format!("mapping '{id}' has no version {v}; see GET /api/v1/mappings/{id}/versions"),
    )
}

/// `If-Match: 3` or `If-Match: "3"`.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .unwrap_or("")
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"');
    s.parse::<i64>().map(Some).map_err(|_| {
        err(
            StatusCode::BAD_REQUEST,
            format!("If-Match must be the active version number (like \"3\"), got {v:?}"),
        )
    })
}

#[derive(Debug, Default, Deserialize)]
struct PutJson {
    content: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    allow_regressions: bool,
}

#[derive(Debug, Default, Deserialize)]
struct PutQuery {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    allow_regressions: bool,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn body_text(body: &Bytes) -> Result<String, ApiError> {
    String::from_utf8(body.to_vec()).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not UTF-8 (bad byte at offset {}); save the mapping as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn read_put(headers: &HeaderMap, query: PutQuery, body: &Bytes) -> Result<PutJson, ApiError> {
    if is_json(headers) {
        serde_json::from_slice(body).map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                format!(
                    "JSON body: {e}; expected {{\"content\": \"<yaml>\", \"comment\": \"...\"}}"
                ),
            )
        })
    } else {
        Ok(PutJson {
            content: body_text(body)?,
            comment: query.comment,
            allow_regressions: query.allow_regressions,
        })
    }
}

async fn put_mapping(
    State(st): State<AdminState>,
    Path(rest): Path<String>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = changer(&st, &headers)?;
    let Target::Mapping(id) = parse_target(&rest) else {
        return Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "PUT goes to /api/v1/mappings/{id}",
        ));
    };
    check_id(id)?;
    let expected = if_match(&headers)?;
    let exists = st.admin.versions().active(id).await?.is_some();
    if exists && expected.is_none() {
        return Err(err(
            StatusCode::PRECONDITION_REQUIRED,
            format!("send If-Match: <active version> (GET /api/v1/mappings/{id} gives it in ETag) so that a concurrent change is not overwritten"),
        ));
    }
    let put = read_put(&headers, query, &body)?;
    let (report, act) = st
        .admin
        .propose(Proposal {
            mapping_id: id.to_owned(),
            content: put.content,
            expected,
            author: who.actor(),
            comment: put.comment,
            origin: Origin::Api,
            allow_regressions: put.allow_regressions,
        })
        .await?;
    let status = if act.from_version.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::ETAG, format!("\"{}\"", act.to_version))],
        Json(json!({"activation": act, "report": report})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct RollbackBody {
    to_version: i64,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
struct PreviewBody {
    content: String,
    input: Value,
}

async fn post_any(
    State(st): State<AdminState>,
    Path(rest): Path<String>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match parse_target(&rest) {
        Target::Validate(id) => {
            reader(&st, &headers)?;
            let put = read_put(&headers, query, &body)?;
            let report = st
                .admin
                .validate(id, &put.content, put.allow_regressions)
                .await?;
            let status = if report.passed {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let body = if report.passed {
                json!({ "report": report })
            } else {
                json!({
                    "error": "the mapping does not pass the gate",
                    "reasons": gate_reasons(&report),
                    "report": report,
                })
            };
            Ok((status, Json(body)).into_response())
        }
        Target::Preview(id) => {
            reader(&st, &headers)?;
            let p: PreviewBody = serde_json::from_slice(&body).map_err(|e| {
                err(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "JSON body: {e}; expected {{\"content\": \"<yaml>\", \"input\": {{...}}}}"
                    ),
                )
            })?;
            match st.admin.preview(id, &p.content, &p.input).await? {
                Ok(out) => Ok(Json(json!({"output": out})).into_response()),
                Err(e) => Ok(
                    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": e}))).into_response(),
                ),
            }
        }
        Target::Rollback(id) => {
            let who = changer(&st, &headers)?;
            let Some(expected) = if_match(&headers)? else {
                return Err(err(
                    StatusCode::PRECONDITION_REQUIRED,
                    "send If-Match: <active version> with a rollback",
                ));
            };
            let b: RollbackBody = serde_json::from_slice(&body).map_err(|e| {
                err(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "JSON body: {e}; expected {{\"to_version\": <n>, \"comment\": \"...\"}}"
                    ),
                )
            })?;
            let (report, act) = st
                .admin
                .rollback(id, b.to_version, expected, &who.actor(), &b.comment)
                .await?;
            Ok((
                [(header::ETAG, format!("\"{}\"", act.to_version))],
                Json(json!({"activation": act, "report": report})),
            )
                .into_response())
        }
        _ => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST goes to .../validate, .../preview or .../rollback",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_slashes_in_ids() {
        assert_eq!(
            parse_target("lis/x.to-tax"),
            Target::Mapping("lis/x.to-tax")
        );
        assert_eq!(
            parse_target("lis/x.to-tax/versions"),
            Target::Versions("lis/x.to-tax")
        );
        assert_eq!(
            parse_target("lis/x.to-tax/versions/3"),
            Target::Version("lis/x.to-tax", 3)
        );
        assert_eq!(
            parse_target("lis/x.to-tax/diff"),
            Target::Diff("lis/x.to-tax")
        );
        assert_eq!(
            parse_target("lis/x.to-tax/rollback"),
            Target::Rollback("lis/x.to-tax")
        );
    }
}
