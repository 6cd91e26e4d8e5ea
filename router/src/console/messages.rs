//! Messages: search by dossier, the dossier timeline, one message in full, a
//! dry-run of re-mapping it with today's mappings, and the dead letters.
//!
//! The dry run answers the question an administrator has before a replay
//! after a mapping fix: "what would the partner receive now, compared with
//! what it was sent?". It routes the stored parsed tree with the active set,
//! maps each target and diffs the result with the stored delivery body decoded
//! by its schema. It changes nothing; the replay itself belongs to the audit
//! API (`/api/v1` replay), which records who replayed what in the trail.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use sqlx::Row;

use super::layout::{diff_html, esc, time, url};
use super::{signed_in, ConsoleState, Ctx, LangQuery};
use crate::admin::gate::{map_checked, tree_diff};

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    lang: Option<String>,
    q: Option<String>,
    destination: Option<String>,
}

fn text(r: &sqlx::any::AnyRow, col: &str) -> String {
    r.try_get::<Option<String>, _>(col)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub async fn search(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let ctx = match signed_in(
        &st,
        &headers,
        &LangQuery {
            lang: q.lang.clone(),
        },
    ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let term = q.q.clone().unwrap_or_default();
    let mut body = format!(
        "<h1>{}</h1><form method=\"get\" action=\"/console/messages\" class=\"box\"><label>{} \
         <input name=\"q\" id=\"q\" size=\"40\" value=\"{}\"></label> <button type=\"submit\" id=\"search\">{}</button></form>",
        ctx.t("Thông điệp", "Messages"),
        ctx.t("Mã hồ sơ, mã trạm hoặc mã thông điệp", "Dossier code, station code or message id"),
        esc(&term),
        ctx.t("Tìm", "Search"),
    );
    let term = term.trim();
    let rows = if term.is_empty() {
        sqlx::query("SELECT id, received_at, source_system, message_type, correlation_id, state FROM messages ORDER BY received_at DESC LIMIT 50")
            .fetch_all(st.store.read_pool())
            .await
    } else {
        sqlx::query(
            "SELECT id, received_at, source_system, message_type, correlation_id, state FROM messages \
             WHERE correlation_id = $1 OR id = $1 ORDER BY received_at LIMIT 500",
        )
        .bind(term)
        .fetch_all(st.store.read_pool())
        .await
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                ctx.render("503", &esc(&e.to_string())),
            )
                .into_response()
        }
    };
    if !term.is_empty() {
        let _ = write!(
            body,
            "<h2>{} {}</h2>",
            ctx.t("Dòng thời gian của", "Timeline of"),
            esc(term)
        );
    }
    let _ = write!(
        body,
        "<table id=\"results\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        ctx.t("Thời gian nhận", "Received"),
        ctx.t("Nguồn", "Source"),
        ctx.t("Loại", "Type"),
        ctx.t("Hồ sơ", "Dossier"),
        ctx.t("Trạng thái", "State"),
    );
    for r in &rows {
        let id = text(r, "id");
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/messages/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            url(&id),
            time(r.try_get("received_at").unwrap_or(0)),
            esc(&text(r, "source_system")),
            esc(&text(r, "message_type")),
            esc(&text(r, "correlation_id")),
            esc(&text(r, "state")),
        );
    }
    body.push_str("</table>");
    if rows.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\" id=\"no-results\">{}</p>",
            ctx.t("Không có kết quả.", "No results.")
        );
    }
    ctx.render(ctx.t("Thông điệp", "Messages"), &body)
}

pub async fn message(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    message_page(&st, &ctx, &id, None).await
}

pub async fn dry_run(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let section = dry_run_html(&st, &ctx, &id).await;
    message_page(&st, &ctx, &id, Some(section)).await
}

async fn message_page(st: &ConsoleState, ctx: &Ctx, id: &str, extra: Option<String>) -> Response {
    let pool = st.store.read_pool();
    let row = sqlx::query("SELECT id, received_at, source_system, message_type, correlation_id, state, raw, parsed, reasons FROM messages WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await;
    let row = match row {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                ctx.render(
                    "404",
                    &format!(
                        "<p class=\"bad\">{} {}</p>",
                        ctx.t("Không có thông điệp", "No message"),
                        esc(id)
                    ),
                ),
            )
                .into_response()
        }
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                ctx.render("503", &esc(&e.to_string())),
            )
                .into_response()
        }
    };
    let raw: Vec<u8> = row.try_get("raw").unwrap_or_default();
    let parsed = text(&row, "parsed");
    let parsed_pretty = serde_json::from_str::<Value>(&parsed)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(parsed);
    let corr = text(&row, "correlation_id");
    let mut body = format!(
        "<h1>{} {}</h1><p>{} · {}/{} · <a href=\"/console/messages?q={}\">{}</a> · {}</p>",
        ctx.t("Thông điệp", "Message"),
        esc(id),
        time(row.try_get("received_at").unwrap_or(0)),
        esc(&text(&row, "source_system")),
        esc(&text(&row, "message_type")),
        url(&corr),
        esc(&corr),
        esc(&text(&row, "state")),
    );
    let reasons = text(&row, "reasons");
    if !reasons.is_empty() {
        let _ = write!(body, "<pre class=\"bad\">{}</pre>", esc(&reasons));
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/messages/{}/dry-run\"><button type=\"submit\" id=\"dry-run-button\">{}</button></form>",
        url(id),
        ctx.t("Chạy thử gửi lại (so sánh)", "Replay dry run (diff)")
    );
    if let Some(extra) = extra {
        body.push_str(&extra);
    }
    let _ = write!(
        body,
        "<h2>{}</h2><pre id=\"raw\">{}</pre><h2>{}</h2><pre id=\"parsed\">{}</pre>",
        ctx.t("Dữ liệu gốc", "Raw"),
        esc(&String::from_utf8_lossy(&raw)),
        ctx.t("Đã phân tích", "Parsed"),
        esc(&parsed_pretty)
    );
    let deliveries = sqlx::query(
        "SELECT id, destination, message_type, mapping_id, mapping_version, body, state, attempts, last_error FROM deliveries WHERE message_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let _ = write!(
        body,
        "<h2>{}</h2>",
        ctx.t("Các lần chuyển đi", "Deliveries")
    );
    for d in &deliveries {
        let did = text(d, "id");
        let _ = write!(
            body,
            "<div class=\"box\"><b>{}</b> {} · {} v{} · {} · {} {}<pre>{}</pre>",
            esc(&text(d, "destination")),
            esc(&text(d, "message_type")),
            esc(&text(d, "mapping_id")),
            d.try_get::<i64, _>("mapping_version").unwrap_or(0),
            esc(&text(d, "state")),
            d.try_get::<i64, _>("attempts").unwrap_or(0),
            ctx.t("lần gửi", "attempts"),
            esc(&String::from_utf8_lossy(
                &d.try_get::<Vec<u8>, _>("body").unwrap_or_default()
            )),
        );
        let err = text(d, "last_error");
        if !err.is_empty() {
            let _ = write!(body, "<p class=\"bad\">{}</p>", esc(&err));
        }
        let attempts = sqlx::query("SELECT n, started_at, latency_ms, status, error, outcome FROM attempts WHERE delivery_id = $1 ORDER BY n")
            .bind(&did)
            .fetch_all(pool)
            .await
            .unwrap_or_default();
        if !attempts.is_empty() {
            body.push_str("<table><tr><th>#</th><th>time</th><th>ms</th><th>HTTP</th><th>outcome</th><th>error</th></tr>");
            for a in attempts {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    a.try_get::<i64, _>("n").unwrap_or(0),
                    time(a.try_get("started_at").unwrap_or(0)),
                    a.try_get::<i64, _>("latency_ms").unwrap_or(0),
                    a.try_get::<Option<i64>, _>("status")
                        .ok()
                        .flatten()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    esc(&text(&a, "outcome")),
                    esc(&text(&a, "error")),
                );
            }
            body.push_str("</table>");
        }
        body.push_str("</div>");
    }
    ctx.render(id, &body)
}

/// Re-map the stored message with the active set and diff against what was sent.
async fn dry_run_html(st: &ConsoleState, ctx: &Ctx, id: &str) -> String {
    let pool = st.store.read_pool();
    let row = sqlx::query("SELECT source_system, message_type, parsed FROM messages WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await;
    let Ok(Some(row)) = row else {
        return format!(
            "<p class=\"bad\">{}</p>",
            ctx.t("Không đọc được thông điệp.", "Cannot read the message.")
        );
    };
    let Ok(tree) = serde_json::from_str::<Value>(&text(&row, "parsed")) else {
        return format!(
            "<p class=\"bad\">{}</p>",
            ctx.t(
                "Thông điệp không có cây đã phân tích.",
                "The message has no parsed tree."
            )
        );
    };
    let (system, mtype) = (text(&row, "source_system"), text(&row, "message_type"));
    let set = st.admin.admin.active().load();
    let schemas = st.admin.admin.schemas();
    let sent = sqlx::query("SELECT destination, mapping_id, mapping_version, body FROM deliveries WHERE message_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    let mut out = format!(
        "<div class=\"box\" id=\"dry-run-result\"><b>{}</b>",
        ctx.t(
            "Kết quả chạy thử (không gửi gì)",
            "Dry run result (nothing sent)"
        )
    );
    let targets = set.routes.resolve(&system, &mtype, &tree);
    if targets.is_empty() {
        let _ = write!(
            out,
            "<p>{}</p>",
            ctx.t(
                "Không tuyến nào khớp với thông điệp này lúc này.",
                "No route matches this message now."
            )
        );
    }
    for t in targets {
        let m = &t.mapping;
        let now = map_checked(m, schemas, &tree);
        let before = sent.iter().find(|d| text(d, "mapping_id") == m.id);
        let _ = write!(
            out,
            "<h3>{} · {} v{}</h3>",
            esc(&t.system),
            esc(&m.id),
            m.version
        );
        match (now, before) {
            (Err(e), _) => {
                let _ = write!(out, "<pre class=\"bad\">{}</pre>", esc(&e));
            }
            (Ok(new), Some(d)) => {
                let body: Vec<u8> = d.try_get("body").unwrap_or_default();
                let old_v = d.try_get::<i64, _>("mapping_version").unwrap_or(0);
                match schemas.decode(&m.target.schema, &body, None) {
                    Ok(old) if old == new => {
                        let _ = write!(
                            out,
                            "<p class=\"ok\">{} (v{old_v} = v{})</p>",
                            ctx.t("Giống hệt lần đã gửi", "Identical to what was sent"),
                            m.version
                        );
                    }
                    Ok(old) => out.push_str(&diff_html(&tree_diff(
                        &old,
                        &new,
                        &format!("sent (v{old_v})"),
                        &format!("now (v{})", m.version),
                    ))),
                    Err(e) => {
                        let _ = write!(out, "<pre class=\"bad\">{}</pre>", esc(&e.to_string()));
                    }
                }
            }
            (Ok(new), None) => {
                let _ = write!(
                    out,
                    "<p>{}</p><pre>{}</pre>",
                    ctx.t(
                        "Chưa từng gửi tới đích này; sẽ gửi:",
                        "Never sent to this destination; would send:"
                    ),
                    esc(&serde_json::to_string_pretty(&new).unwrap_or_default())
                );
            }
        }
    }
    out.push_str("</div>");
    out
}

pub async fn dead_letters(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let ctx = match signed_in(
        &st,
        &headers,
        &LangQuery {
            lang: q.lang.clone(),
        },
    ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let dest = q.destination.clone().unwrap_or_default();
    let rows = sqlx::query(
        "SELECT id, message_id, destination, message_type, correlation_id, attempts, last_error, error_class, updated_at \
         FROM deliveries WHERE state = 'dead' AND ($1 = '' OR destination = $1) ORDER BY updated_at DESC LIMIT 200",
    )
    .bind(&dest)
    .fetch_all(st.store.read_pool())
    .await
    .unwrap_or_default();
    let mut body = format!(
        "<h1>{}</h1><form method=\"get\" action=\"/console/dead\" class=\"box\"><label>{} <input name=\"destination\" value=\"{}\"></label> <button type=\"submit\">{}</button></form>",
        ctx.t("Thư chết", "Dead letters"),
        ctx.t("Hệ thống đích", "Destination"),
        esc(&dest),
        ctx.t("Lọc", "Filter"),
    );
    let _ = write!(
        body,
        "<table id=\"dead\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        ctx.t("Thời gian", "Time"),
        ctx.t("Đích", "Destination"),
        ctx.t("Hồ sơ", "Dossier"),
        ctx.t("Lần gửi", "Attempts"),
        ctx.t("Lỗi cuối", "Last error"),
    );
    for r in &rows {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/messages/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} <span class=\"muted\">{}</span></td></tr>",
            url(&text(r, "message_id")),
            time(r.try_get("updated_at").unwrap_or(0)),
            esc(&text(r, "destination")),
            esc(&text(r, "correlation_id")),
            r.try_get::<i64, _>("attempts").unwrap_or(0),
            esc(&text(r, "last_error")),
            esc(&text(r, "error_class")),
        );
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<p class=\"muted\">{}</p>",
        ctx.t(
            "Gửi lại hàng loạt: dùng API kiểm toán POST /api/v1/replay (ghi vào nhật ký ai đã gửi lại).",
            "Bulk replay: use the audit API POST /api/v1/replay (the trail records who replayed what)."
        )
    );
    ctx.render(ctx.t("Thư chết", "Dead letters"), &body)
}
