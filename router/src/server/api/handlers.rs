//! The `/api/v1` handlers. Each one: authorize, validate, do, record, answer.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{ApiError, ApiState};
use crate::audit::replay::{replay_dead_letters, replay_message, DeadLetterRequest, ReplayRequest};
use crate::audit::search::{cursor_after, message_query, parse_range};
use crate::audit::verify::{verify_store, VerifyOptions};
use crate::audit::{retention, TrailEvent};
use crate::auth::{Need, Principal};
use crate::store::now_ms;

type ApiResult = Result<Json<Value>, ApiError>;

fn authorize(
    st: &ApiState,
    headers: &HeaderMap,
    need: Need,
    action: &str,
) -> Result<Principal, ApiError> {
    Ok(st.tokens.authorize(headers, need, action, now_ms())?)
}

async fn record(
    st: &ApiState,
    p: &Principal,
    kind: &'static str,
    message_id: Option<&str>,
    detail: Value,
) -> Result<(), ApiError> {
    st.replay
        .store
        .record_events(vec![TrailEvent {
            at: now_ms(),
            message_id: message_id.map(String::from),
            delivery_id: None,
            kind,
            actor: p.actor(),
            detail,
        }])
        .await?;
    Ok(())
}

fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(vec![
            "the request body is empty: send a JSON object".into(),
        ]));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(vec![format!("the JSON body is not valid: {e}")]))
}

/// `GET /api/v1/messages`
pub async fn search(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let p = authorize(&st, &headers, Need::Auditor, "search messages")?;
    let q = message_query(&params, now_ms()).map_err(ApiError::bad_request)?;
    let found = st.replay.store.search_messages(&q).await?;
    let next = (found.len() as i64 == q.limit)
        .then(|| found.last().map(|m| cursor_after(m.received_at, &m.id)))
        .flatten();
    record(
        &st,
        &p,
        "audit.search",
        None,
        json!({ "filters": params, "results": found.len() }),
    )
    .await?;
    Ok(Json(json!({ "messages": found, "next_cursor": next })))
}

fn body_text(bytes: &[u8]) -> (Value, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Value::from(s), "utf-8"),
        Err(_) => (
            Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
            "base64",
        ),
    }
}

/// `GET /api/v1/messages/{id}`
pub async fn show(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let p = authorize(&st, &headers, Need::Auditor, "read messages")?;
    let store = &st.replay.store;
    let m = store.message_full(&id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("message `{id}` does not exist"),
        )
    })?;
    let deliveries = store.deliveries_of(&id).await?;
    let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    let attempts = store.attempts_of(&ids).await?;
    let trail = store.trail_for_message(&id).await?;
    let (raw, raw_encoding) = body_text(&m.raw);
    let parsed: Value = m
        .parsed
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let outputs: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let (body, enc) = body_text(&d.body);
            let mut v = serde_json::to_value(d).expect("serializable");
            v["body"] = body;
            v["body_encoding"] = Value::from(enc);
            v["body_sha256"] = Value::from(crate::audit::digest::sha256_hex(&d.body));
            v["attempts"] = json!(attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .collect::<Vec<_>>());
            v
        })
        .collect();
    record(&st, &p, "audit.read", Some(&id), json!({})).await?;
    Ok(Json(json!({
        "message": m,
        "raw": raw,
        "raw_encoding": raw_encoding,
        "raw_sha256": crate::audit::digest::sha256_hex(&m.raw),
        "parsed": parsed,
        "outputs": outputs,
        "trail": trail,
    })))
}

/// `POST /api/v1/messages/{id}/replay`
pub async fn replay(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let p = authorize(&st, &headers, Need::Auditor, "replay messages")?;
    let req: ReplayRequest = json_body(&body)?;
    let out = replay_message(&st.replay, &id, &req, &p.actor()).await?;
    Ok(Json(serde_json::to_value(out).expect("serializable")))
}

/// `POST /api/v1/dead-letters/replay`
pub async fn replay_dead(State(st): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = authorize(&st, &headers, Need::Auditor, "replay dead letters")?;
    let req: DeadLetterRequest = json_body(&body)?;
    let out = replay_dead_letters(&st.replay, &req, &p.actor()).await?;
    Ok(Json(serde_json::to_value(out).expect("serializable")))
}

/// A hop's status in words, from its event.
fn hop_status(kind: &str, detail: &Value) -> String {
    match kind {
        "attempt" => {
            let outcome = detail["outcome"].as_str().unwrap_or("attempt");
            match detail["status"].as_i64() {
                Some(s) => format!("{outcome} (HTTP {s})"),
                None => outcome.to_string(),
            }
        }
        "mapped" => "queued".into(),
        other => other.to_string(),
    }
}

/// `GET /api/v1/dossiers/{code}/timeline`
pub async fn timeline(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> ApiResult {
    let p = authorize(&st, &headers, Need::Auditor, "read dossier timelines")?;
    let rows = st.replay.store.dossier_trail(&code).await?;
    if rows.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no messages for dossier `{code}`"),
        ));
    }
    let hops: Vec<Value> = rows
        .iter()
        .map(|(r, source, destination)| {
            let mut detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
            if let Some(o) = detail.as_object_mut() {
                o.remove("records");
            }
            let system = if r.delivery_id.is_some() {
                destination.clone().unwrap_or_default()
            } else {
                source.clone()
            };
            json!({
                "seq": r.seq,
                "at": chrono::DateTime::from_timestamp_millis(r.at).map(|d| d.to_rfc3339()),
                "kind": r.kind,
                "status": hop_status(&r.kind, &detail),
                "from": source,
                "system": system,
                "message_id": r.message_id,
                "delivery_id": r.delivery_id,
                "actor": r.actor,
                "detail": detail,
            })
        })
        .collect();
    record(
        &st,
        &p,
        "audit.timeline",
        None,
        json!({ "dossier": code, "hops": hops.len() }),
    )
    .await?;
    Ok(Json(json!({ "dossier": code, "hops": hops })))
}

/// `GET /api/v1/audit/verify?from=&to=`
pub async fn verify(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let p = authorize(&st, &headers, Need::Auditor, "verify the trail")?;
    let mut reasons = Vec::new();
    for k in params.keys().filter(|k| *k != "from" && *k != "to") {
        reasons.push(format!("unknown parameter `{k}`: use from and to"));
    }
    let range = if params.contains_key("from") || params.contains_key("to") {
        match parse_range(
            params.get("from").map(String::as_str),
            params.get("to").map(String::as_str),
            now_ms(),
            1,
            None,
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                reasons.push(e);
                None
            }
        }
    } else {
        None
    };
    if !reasons.is_empty() {
        return Err(ApiError::bad_request(reasons));
    }
    let report = verify_store(
        &st.replay.store,
        &VerifyOptions {
            range,
            progress: None,
        },
    )
    .await?;
    record(&st, &p, "audit.verify", None, json!({ "range": range, "ok": report.ok(), "rows": report.trail_rows, "problems": report.problems.len() })).await?;
    Ok(Json(json!({ "ok": report.ok(), "report": report })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneRequest {
    older_than: String,
}

/// `POST /api/v1/audit/prune` `{"older_than": "365d"}`
pub async fn prune(State(st): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = authorize(&st, &headers, Need::Admin, "prune payloads")?;
    let req: PruneRequest = json_body(&body)?;
    let age = retention::parse_age(&req.older_than)
        .map_err(|e| ApiError::bad_request(vec![format!("older_than: {e}")]))?;
    let out = retention::prune(&st.replay.store, age, &p.actor()).await?;
    Ok(Json(serde_json::to_value(out).expect("serializable")))
}
