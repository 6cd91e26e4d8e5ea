//! Messages: search by dossier, the dossier timeline, one message in full, a
//! dry-run of re-mapping it with today's mappings, the replay itself, and the
//! dead letters with filters and bulk replay.
//!
//! The dry run answers the question an administrator has before a replay
//! after a mapping fix: "what would the partner receive now, compared with
//! what it was sent?". It routes the stored parsed tree with the active set,
//! maps each target and diffs the result with the stored delivery body decoded
//! by its schema. It changes nothing.
//!
//! Replaying is a two-step confirm: the *Gửi lại / Replay* form only appears
//! under a dry-run result, so whoever presses it has just seen the diff. The
//! replay (and the bulk replay of dead letters) is
//! [`crate::audit::replay::replay_message`] / [`replay_dead_letters`], the code the
//! audit API runs, with the same role (admin or auditor), the same required
//! reason and the same trail events; the console adds no logic of its own. A
//! single replay answers with a redirect (POST-redirect-GET) to the message page,
//! which then shows the new deliveries and their `replayed` trail events. A bulk
//! replay first shows how many dead letters match and asks for confirmation; its
//! result page lists every item. Resubmitting it replays nothing twice: a dead
//! letter that already has a replay is no longer offered.

use std::fmt::Write;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{diff_html, esc, table_head, table_row, time, url};
use super::{signed_in, ConsoleState, Ctx, LangQuery};
use crate::admin::gate::{map_checked, tree_diff};
use crate::audit::replay::{
    replay_dead_letters, replay_message, DeadLetterRequest, Mode, ReplayRequest,
};
use crate::audit::search::{parse_range, MAX_SEARCH_RANGE_DAYS};
use crate::store::audit_ops::{DeadFilter, DeliveryFull, MessageQuery as Search, Order};

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    lang: Option<String>,
    q: Option<String>,
}

/// `GET /console/messages/{id}`: `?replayed=a,b` after a replay (the new delivery ids).
#[derive(Debug, Default, Deserialize)]
pub struct MessageQuery {
    lang: Option<String>,
    replayed: Option<String>,
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
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let term = q.q.clone().unwrap_or_default();
    if let Err(r) = super::record_read(
        &st,
        &ctx,
        "audit.search",
        None,
        "/console/messages",
        serde_json::json!({ "q": term.trim() }),
    )
    .await
    {
        return *r;
    }
    let mut body = format!(
        "<h1>{}</h1><form method=\"get\" action=\"/console/messages\" class=\"box\"><label>{} \
         <input name=\"q\" id=\"q\" size=\"40\" value=\"{}\"></label> <button type=\"submit\" id=\"search\">{}</button></form>",
        ctx.t("Thông điệp", "Messages"),
        ctx.t("Mã hồ sơ, mã trạm hoặc mã thông điệp", "Dossier code, station code or message id"),
        esc(&term),
        ctx.t("Tìm", "Search"),
    );
    let term = term.trim();
    // No term: the latest 50 messages. A term: the dossier's (or station's)
    // messages, or the one message with that id, as a timeline (oldest first).
    let search = if term.is_empty() {
        Search {
            limit: 50,
            ..Search::everything()
        }
    } else {
        Search {
            dossier_or_id: Some(term.to_string()),
            order: Order::OldestFirst,
            limit: 500,
            ..Search::everything()
        }
    };
    let rows = st.store.search_messages(&search).await;
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
    body.push_str(&table_head(
        "results",
        &[
            ctx.t("Thời gian nhận", "Received"),
            ctx.t("Nguồn", "Source"),
            ctx.t("Loại", "Type"),
            ctx.t("Hồ sơ", "Dossier"),
            ctx.t("Trạng thái", "State"),
        ],
    ));
    for r in &rows {
        body.push_str(&table_row(&[
            format!(
                "<a href=\"/console/messages/{}\">{}</a>",
                url(&r.id),
                time(r.received_at)
            ),
            esc(&r.source_system),
            esc(&r.message_type),
            esc(r.correlation_id.as_deref().unwrap_or_default()),
            esc(&r.state),
        ]));
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
    Query(q): Query<MessageQuery>,
) -> Response {
    let ctx = match signed_in(
        &st,
        &headers,
        &LangQuery {
            lang: q.lang.clone(),
        },
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return *r,
    };
    // Only a message that exists is recorded as read (as the API does), so
    // made-up ids cannot fill the trail.
    if let Ok(Some(_)) = st.store.message(&id).await {
        if let Err(r) = super::record_read(
            &st,
            &ctx,
            "audit.read",
            Some(&id),
            "/console/messages/{id}",
            serde_json::json!({}),
        )
        .await
        {
            return *r;
        }
    }
    let replayed: Vec<String> = q
        .replayed
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(100)
        .map(String::from)
        .collect();
    let (page, status) = message_page(&st, &ctx, &id, None, &replayed).await;
    (status, page).into_response()
}

pub async fn dry_run(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Ok(Some(_)) = st.store.message(&id).await {
        if let Err(r) = super::record_read(
            &st,
            &ctx,
            "audit.read",
            Some(&id),
            "/console/messages/{id}/dry-run",
            serde_json::json!({}),
        )
        .await
        {
            return *r;
        }
    }
    let mut section = dry_run_html(&st, &ctx, &id).await;
    section.push_str(&replay_form_html(&st, &ctx, &id, None).await);
    let (page, status) = message_page(&st, &ctx, &id, Some(section), &[]).await;
    (status, page).into_response()
}

/// `POST /console/messages/{id}/replay`: the confirmed replay (form fields `target`
/// (repeated), `mode`, `reason`). Same role as the audit API's replay: admin or auditor.
pub async fn replay(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let req = ReplayRequest {
        targets: fields
            .iter()
            .filter(|(n, _)| n == "target")
            .map(|(_, v)| v.clone())
            .collect(),
        mode: if field("mode").as_deref() == Some("as-sent") {
            Mode::AsSent
        } else {
            Mode::Remap
        },
        mapping_version: None,
        dry_run: false,
        reason: field("reason"),
    };
    if req.targets.is_empty() {
        let err = ctx
            .t(
                "Chọn ít nhất một đích để gửi lại.",
                "Choose at least one destination to replay to.",
            )
            .to_string();
        return replay_refused(&st, &ctx, &id, &req, StatusCode::BAD_REQUEST, err).await;
    }
    match replay_message(&st.replay, &id, &req, &ctx.who.actor()).await {
        Ok(out) => Redirect::to(&format!(
            "/console/messages/{}?replayed={}",
            url(&id),
            url(&out.new_deliveries.join(","))
        ))
        .into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            replay_refused(&st, &ctx, &id, &req, status, e.to_string()).await
        }
    }
}

/// The message page again with the dry run, the refusal and the form as it was sent.
async fn replay_refused(
    st: &ConsoleState,
    ctx: &Ctx,
    id: &str,
    req: &ReplayRequest,
    status: StatusCode,
    error: String,
) -> Response {
    tracing::info!(message = %id, %status, error = %error, "console replay refused");
    let mut section = dry_run_html(st, ctx, id).await;
    let _ = write!(
        section,
        "<p class=\"bad\" id=\"replay-error\">{}: {}</p>",
        ctx.t("Không gửi lại được", "Replay refused"),
        esc(&error)
    );
    section.push_str(&replay_form_html(st, ctx, id, Some(req)).await);
    let (page, _) = message_page(st, ctx, id, Some(section), &[]).await;
    (status, page).into_response()
}

/// The confirm step: shown under the dry-run result. Targets are the message's
/// original deliveries; `remap` (the default) sends what the dry run above shows.
async fn replay_form_html(
    st: &ConsoleState,
    ctx: &Ctx,
    id: &str,
    previous: Option<&ReplayRequest>,
) -> String {
    let dests: Vec<String> = match st.store.deliveries_of(id).await {
        Ok(all) => {
            let mut d: Vec<String> = all
                .into_iter()
                .filter(|d| d.replay_of.is_none())
                .map(|d| d.destination)
                .collect();
            d.dedup();
            d
        }
        Err(_) => Vec::new(),
    };
    if dests.is_empty() {
        return String::new();
    }
    let as_sent = previous.is_some_and(|r| r.mode == Mode::AsSent);
    let reason = previous.and_then(|r| r.reason.clone()).unwrap_or_default();
    let mut out = format!(
        "<form method=\"post\" action=\"/console/messages/{}/replay\" id=\"replay-form\" class=\"box\"><b>{}</b><p>{} ",
        url(id),
        ctx.t("Xác nhận gửi lại", "Confirm the replay"),
        ctx.t("Gửi tới:", "Send to:"),
    );
    for d in &dests {
        let checked = previous.is_none_or(|r| r.targets.is_empty() || r.targets.contains(d));
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" name=\"target\" value=\"{0}\" id=\"target-{0}\"{1}> {0}</label> ",
            esc(d),
            if checked { " checked" } else { "" }
        );
    }
    let _ = write!(
        out,
        "</p><p><label><input type=\"radio\" name=\"mode\" value=\"remap\" id=\"mode-remap\"{}> {}</label><br>\
         <label><input type=\"radio\" name=\"mode\" value=\"as-sent\" id=\"mode-as-sent\"{}> {}</label></p>\
         <p><label>{} <input name=\"reason\" id=\"replay-reason\" size=\"60\" required value=\"{}\"></label></p>\
         <p class=\"muted\">{}</p><button type=\"submit\" id=\"replay-button\">{}</button></form>",
        if as_sent { "" } else { " checked" },
        ctx.t(
            "Ánh xạ lại với phiên bản đang hoạt động (đúng như kết quả chạy thử ở trên)",
            "Map again with the active version (exactly the dry run above)"
        ),
        if as_sent { " checked" } else { "" },
        ctx.t("Gửi lại đúng nội dung đã gửi", "Re-send the exact bytes sent before"),
        ctx.t("Lý do (ghi vào nhật ký)", "Reason (recorded in the trail)"),
        esc(&reason),
        ctx.t(
            "Bản gốc không bị thay đổi; mỗi đích có một lần chuyển mới, gửi qua hàng đợi như thường lệ.",
            "The original is left as it is; each destination gets a new delivery, sent through the queue as usual."
        ),
        ctx.t("Gửi lại", "Replay"),
    );
    out
}

async fn message_page(
    st: &ConsoleState,
    ctx: &Ctx,
    id: &str,
    extra: Option<String>,
    replayed: &[String],
) -> (Response, StatusCode) {
    let row = match st.store.message_full(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (
                ctx.render(
                    "404",
                    &format!(
                        "<p class=\"bad\">{} {}</p>",
                        ctx.t("Không có thông điệp", "No message"),
                        esc(id)
                    ),
                ),
                StatusCode::NOT_FOUND,
            )
        }
        Err(e) => {
            return (
                ctx.render("503", &esc(&e.to_string())),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    };
    let raw = &row.raw;
    let parsed = row.parsed.clone().unwrap_or_default();
    let parsed_pretty = serde_json::from_str::<Value>(&parsed)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(parsed);
    let corr = row.correlation_id.clone().unwrap_or_default();
    let mut body = format!(
        "<h1>{} {}</h1><p>{} · {}/{} · <a href=\"/console/messages?q={}\">{}</a> · {}</p>",
        ctx.t("Thông điệp", "Message"),
        esc(id),
        time(row.received_at),
        esc(&row.source_system),
        esc(&row.message_type),
        url(&corr),
        esc(&corr),
        esc(&row.state),
    );
    // The store's version (what the delivery records) and the file's own `version:` label.
    let deliveries = st
        .store
        .deliveries_with_file_version(id)
        .await
        .unwrap_or_default();
    if !replayed.is_empty() {
        body.push_str(&replay_outcome_html(st, ctx, &deliveries, replayed).await);
    }
    let reasons = row.reasons.clone().unwrap_or_default();
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
        esc(&String::from_utf8_lossy(raw)),
        ctx.t("Đã phân tích", "Parsed"),
        esc(&parsed_pretty)
    );
    let _ = write!(
        body,
        "<h2>{}</h2>",
        ctx.t("Các lần chuyển đi", "Deliveries")
    );
    for (d, file_version) in &deliveries {
        let did = &d.id;
        let replay_of = d.replay_of.clone().unwrap_or_default();
        let replay_note = if replay_of.is_empty() {
            String::new()
        } else {
            format!(
                " · <span class=\"replay-of\">{} {}</span>",
                ctx.t("gửi lại của", "replay of"),
                esc(&replay_of)
            )
        };
        let _ = write!(
            body,
            "<div class=\"box delivery\" id=\"delivery-{}\"><b>{}</b> {} · {} {} · <span class=\"state\">{}</span> · {} {}{replay_note}\
             <br><span class=\"muted\">{} {}</span><pre>{}</pre>",
            esc(did),
            esc(&d.destination),
            esc(&d.message_type),
            esc(&d.mapping_id),
            version_label(ctx, d.mapping_version, *file_version),
            esc(&d.state),
            d.attempts,
            ctx.t("lần gửi", "attempts"),
            ctx.t("Mã lần chuyển", "Delivery id"),
            esc(did),
            esc(&String::from_utf8_lossy(&d.body)),
        );
        let err = d.last_error.clone().unwrap_or_default();
        if !err.is_empty() {
            let _ = write!(body, "<p class=\"bad\">{}</p>", esc(&err));
        }
        let attempts = st
            .store
            .attempts_of(std::slice::from_ref(did))
            .await
            .unwrap_or_default();
        if !attempts.is_empty() {
            body.push_str(&table_head(
                "",
                &[
                    "#",
                    ctx.t("Thời gian", "Time"),
                    "ms",
                    "HTTP",
                    ctx.t("Kết quả", "Outcome"),
                    ctx.t("Lỗi", "Error"),
                ],
            ));
            for a in attempts {
                body.push_str(&table_row(&[
                    a.n.to_string(),
                    time(a.started_at),
                    a.latency_ms.to_string(),
                    a.status.map(|s| s.to_string()).unwrap_or_default(),
                    esc(&a.outcome),
                    esc(a.error.as_deref().unwrap_or_default()),
                ]));
            }
            body.push_str("</table>");
        }
        body.push_str("</div>");
    }
    body.push_str(&trail_html(st, ctx, id).await);
    (ctx.render(id, &body), StatusCode::OK)
}

/// `v3 (tệp: version 2)`: the store's version, which deliveries record, and the label
/// the YAML declares (see docs/ADMIN.md, "Which version is recorded").
pub fn version_label(ctx: &Ctx, store: i64, file: Option<i64>) -> String {
    match file {
        Some(f) => format!(
            "<span class=\"version\">v{store}</span> <span class=\"muted file-version\">({} {f})</span>",
            ctx.t("tệp ghi version", "file says version")
        ),
        None => format!("<span class=\"version\">v{store}</span>"),
    }
}

/// After a replay: the new deliveries with their state, and their `replayed` trail events.
async fn replay_outcome_html(
    st: &ConsoleState,
    ctx: &Ctx,
    deliveries: &[(DeliveryFull, Option<i64>)],
    replayed: &[String],
) -> String {
    let mut out = format!(
        "<div class=\"flash\" id=\"replay-outcome\"><b>{}</b><ul>",
        ctx.t("Đã gửi lại", "Replayed")
    );
    for nid in replayed {
        let Some((d, _)) = deliveries.iter().find(|(d, _)| &d.id == nid) else {
            let _ = write!(
                out,
                "<li class=\"bad\">{} {}</li>",
                esc(nid),
                ctx.t(
                    "không thuộc thông điệp này",
                    "is not a delivery of this message"
                )
            );
            continue;
        };
        let event = st
            .store
            .first_delivery_event(nid, "replayed")
            .await
            .ok()
            .flatten();
        let recorded = match event {
            Some((seq, hash)) => format!(
                "{} #{} ({}…)",
                ctx.t("ghi vào nhật ký: sự kiện", "recorded in the trail: event"),
                seq,
                esc(&hash.chars().take(16).collect::<String>())
            ),
            None => ctx
                .t("chưa thấy trong nhật ký", "not found in the trail")
                .to_string(),
        };
        let _ = write!(
            out,
            "<li class=\"replayed\">{} → {} · {} <b class=\"state\">{}</b> · {recorded}</li>",
            esc(&d.destination),
            esc(nid),
            ctx.t("trạng thái", "state"),
            esc(&d.state),
        );
    }
    out.push_str("</ul></div>");
    out
}

/// The message's trail events (received, routed, attempts, replays...), oldest first.
async fn trail_html(st: &ConsoleState, ctx: &Ctx, id: &str) -> String {
    let rows = st
        .store
        .trail_for_message_first(id, 500)
        .await
        .unwrap_or_default();
    let mut out = format!("<h2>{}</h2>", ctx.t("Nhật ký", "Trail"));
    out.push_str(&table_head(
        "trail",
        &[
            "#",
            ctx.t("Thời gian", "Time"),
            ctx.t("Sự kiện", "Event"),
            ctx.t("Người thực hiện", "Actor"),
            ctx.t("Lần chuyển", "Delivery"),
            "hash",
        ],
    ));
    for r in &rows {
        out.push_str(&table_row(&[
            r.seq.to_string(),
            time(r.at),
            esc(&r.kind),
            esc(&r.actor),
            esc(r.delivery_id.as_deref().unwrap_or_default()),
            format!(
                "<code>{}…</code>",
                esc(&r.hash.chars().take(16).collect::<String>())
            ),
        ]));
    }
    out.push_str("</table>");
    out
}

/// Re-map the stored message with the active set and diff against what was sent.
async fn dry_run_html(st: &ConsoleState, ctx: &Ctx, id: &str) -> String {
    let Ok(Some(row)) = st.store.message_full(id).await else {
        return format!(
            "<p class=\"bad\">{}</p>",
            ctx.t("Không đọc được thông điệp.", "Cannot read the message.")
        );
    };
    let Ok(tree) = serde_json::from_str::<Value>(row.parsed.as_deref().unwrap_or_default()) else {
        return format!(
            "<p class=\"bad\">{}</p>",
            ctx.t(
                "Thông điệp không có cây đã phân tích.",
                "The message has no parsed tree."
            )
        );
    };
    let (system, mtype) = (row.source_system, row.message_type);
    let set = st.admin.admin.active().load();
    let schemas = st.admin.admin.schemas();
    let sent = st.store.deliveries_of(id).await.unwrap_or_default();
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
        let before = sent.iter().find(|d| d.mapping_id == m.id);
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
                let old_v = d.mapping_version;
                match schemas.decode(&m.target.schema, &d.body, None) {
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

/// The dead-letter filter, from the page's query string or the bulk form.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DeadQuery {
    lang: Option<String>,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    message_type: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_class: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// At most this many dead letters are listed on the page (a bulk replay covers up to 1000).
const DEAD_SHOWN: usize = 200;
/// What one bulk replay covers at most (`replay_dead_letters`' own limit).
const BULK_MAX: i64 = 1000;

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl DeadQuery {
    fn from_fields(fields: &[(String, String)]) -> DeadQuery {
        let f = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        DeadQuery {
            lang: None,
            destination: f("destination"),
            message_type: f("message_type"),
            error: f("error"),
            error_class: f("error_class"),
            from: f("from"),
            to: f("to"),
        }
    }

    /// `to` as given; a bare date means the end of that day (Vietnam time), as people read it.
    fn to_bound(&self) -> Option<String> {
        let t = self.to.trim();
        if t.len() == 10 && chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() {
            return Some(format!("{t}T23:59:59.999+07:00"));
        }
        opt(t)
    }

    /// The request `replay_dead_letters` runs for this filter (and the selection, if any).
    fn request(
        &self,
        ids: Vec<String>,
        reason: Option<String>,
        dry_run: bool,
    ) -> DeadLetterRequest {
        DeadLetterRequest {
            destination: opt(&self.destination),
            from: opt(&self.from),
            to: self.to_bound(),
            error_class: opt(&self.error_class),
            message_type: opt(&self.message_type),
            error_contains: opt(&self.error),
            deliveries: ids,
            dry_run,
            reason,
            limit: Some(BULK_MAX),
        }
    }

    /// The filter as hidden form fields (the bulk form repeats what the page showed).
    fn hidden(&self) -> String {
        [
            ("destination", &self.destination),
            ("message_type", &self.message_type),
            ("error", &self.error),
            ("error_class", &self.error_class),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
        .collect()
    }
}

pub async fn dead_letters(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<DeadQuery>,
) -> Response {
    let ctx = match signed_in(
        &st,
        &headers,
        &LangQuery {
            lang: q.lang.clone(),
        },
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Err(r) = super::record_read(
        &st,
        &ctx,
        "audit.read",
        None,
        "/console/dead",
        serde_json::json!({}),
    )
    .await
    {
        return *r;
    }
    let mut body = format!("<h1>{}</h1>", ctx.t("Thư chết", "Dead letters"));
    body.push_str(&dead_filter_form(&ctx, &q));
    let req = q.request(Vec::new(), None, true);
    let range = parse_range(
        req.from.as_deref(),
        req.to.as_deref(),
        crate::store::now_ms(),
        7,
        Some(MAX_SEARCH_RANGE_DAYS),
    );
    let (from, to) = match range {
        Ok(r) => r,
        Err(e) => {
            let _ = write!(body, "<p class=\"bad\" id=\"filter-error\">{}</p>", esc(&e));
            return (
                StatusCode::BAD_REQUEST,
                ctx.render(ctx.t("Thư chết", "Dead letters"), &body),
            )
                .into_response();
        }
    };
    // Exactly the query the bulk replay runs, so the count shown is what it would replay.
    let dead = match st
        .store
        .dead_deliveries(&DeadFilter {
            destination: req.destination.clone(),
            message_type: req.message_type.clone(),
            error_class: req.error_class.clone(),
            error_contains: req.error_contains.clone(),
            ids: Vec::new(),
            from,
            to,
            limit: BULK_MAX,
        })
        .await
    {
        Ok(d) => d,
        Err(e) => {
            let _ = write!(body, "<p class=\"bad\">{}</p>", esc(&e.to_string()));
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                ctx.render(ctx.t("Thư chết", "Dead letters"), &body),
            )
                .into_response();
        }
    };
    let count = if dead.len() as i64 >= BULK_MAX {
        format!("{BULK_MAX}+")
    } else {
        dead.len().to_string()
    };
    let _ = write!(
        body,
        "<p><b id=\"dead-count\">{count}</b> {} <span class=\"muted\">({} {} – {})</span></p>",
        ctx.t(
            "thư chết khớp bộ lọc và chưa được gửi lại",
            "dead letters match the filter and have not been replayed"
        ),
        ctx.t("thời điểm chết", "died between"),
        time(from),
        time(to),
    );
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/dead/replay\" id=\"bulk-form\">{}<input type=\"hidden\" name=\"step\" value=\"preview\">",
        q.hidden()
    );
    body.push_str(&table_head(
        "dead",
        &[
            "✓",
            ctx.t("Thời gian", "Time"),
            ctx.t("Đích", "Destination"),
            ctx.t("Loại", "Type"),
            ctx.t("Hồ sơ", "Dossier"),
            ctx.t("Lần gửi", "Attempts"),
            ctx.t("Lỗi cuối", "Last error"),
        ],
    ));
    for d in dead.iter().take(DEAD_SHOWN) {
        body.push_str(&table_row(&[
            format!(
                "<input type=\"checkbox\" name=\"sel\" value=\"{0}\" class=\"sel\" id=\"sel-{0}\">",
                esc(&d.id)
            ),
            format!(
                "<a href=\"/console/messages/{}\">{}</a>",
                url(&d.message_id),
                time(d.updated_at)
            ),
            esc(&d.destination),
            esc(&d.message_type),
            esc(&d.correlation_id),
            d.attempts.to_string(),
            format!(
                "{} <span class=\"muted\">{}</span>",
                esc(d.last_error.as_deref().unwrap_or("")),
                esc(d.error_class.as_deref().unwrap_or(""))
            ),
        ]));
    }
    body.push_str("</table>");
    if dead.len() > DEAD_SHOWN {
        let _ = write!(
            body,
            "<p class=\"muted\">{} {DEAD_SHOWN}.</p>",
            ctx.t("Chỉ hiển thị", "Showing only the first")
        );
    }
    if !dead.is_empty() {
        let _ = write!(
            body,
            "<div class=\"box\"><p><label>{} <input name=\"reason\" id=\"bulk-reason\" size=\"60\" required></label></p>\
             <button type=\"submit\" name=\"scope\" value=\"selected\" id=\"bulk-selected\">{}</button> \
             <button type=\"submit\" name=\"scope\" value=\"all\" id=\"bulk-all\" class=\"secondary\">{} ({count})</button>\
             <p class=\"muted\">{}</p></div>",
            ctx.t("Lý do (ghi vào nhật ký)", "Reason (recorded in the trail)"),
            ctx.t("Gửi lại các mục đã chọn…", "Replay the selected…"),
            ctx.t("Gửi lại tất cả mục khớp bộ lọc…", "Replay all matching the filter…"),
            ctx.t(
                "Bước tiếp theo cho biết số mục sẽ gửi lại và yêu cầu xác nhận. Gửi lại đúng nội dung đã gửi, qua hàng đợi.",
                "The next step shows how many will be replayed and asks you to confirm. The exact bytes are re-sent, through the queue."
            ),
        );
    } else {
        let _ = write!(
            body,
            "<p class=\"muted\" id=\"no-dead\">{}</p>",
            ctx.t("Không có thư chết nào khớp.", "No dead letter matches.")
        );
    }
    body.push_str("</form>");
    ctx.render(ctx.t("Thư chết", "Dead letters"), &body)
}

fn dead_filter_form(ctx: &Ctx, q: &DeadQuery) -> String {
    let class_opt = |v: &str, label: &str| {
        format!(
            "<option value=\"{v}\"{}>{}</option>",
            if q.error_class == v { " selected" } else { "" },
            esc(label)
        )
    };
    format!(
        "<form method=\"get\" action=\"/console/dead\" class=\"box\" id=\"dead-filter\">\
         <label>{} <input name=\"destination\" id=\"f-destination\" size=\"14\" value=\"{}\"></label> \
         <label>{} <input name=\"message_type\" id=\"f-message-type\" size=\"18\" value=\"{}\"></label> \
         <label>{} <input name=\"error\" id=\"f-error\" size=\"18\" value=\"{}\"></label> \
         <label>{} <select name=\"error_class\" id=\"f-error-class\">{}{}{}{}</select></label><br>\
         <label>{} <input type=\"date\" name=\"from\" id=\"f-from\" value=\"{}\"></label> \
         <label>{} <input type=\"date\" name=\"to\" id=\"f-to\" value=\"{}\"></label> \
         <button type=\"submit\" id=\"filter\">{}</button> <span class=\"muted\">{}</span></form>",
        ctx.t("Hệ thống đích", "Destination"),
        esc(&q.destination),
        ctx.t("Loại thông điệp", "Message type"),
        esc(&q.message_type),
        ctx.t("Lỗi chứa", "Error contains"),
        esc(&q.error),
        ctx.t("Loại lỗi", "Error class"),
        class_opt("", ctx.t("(tất cả)", "(all)")),
        class_opt("transient", "transient"),
        class_opt("permanent", "permanent"),
        class_opt("exhausted", "exhausted"),
        ctx.t("Từ ngày", "From"),
        esc(&q.from),
        ctx.t("Đến ngày", "To"),
        esc(&q.to),
        ctx.t("Lọc", "Filter"),
        ctx.t("(mặc định: 7 ngày gần nhất)", "(default: the last 7 days)"),
    )
}

/// `POST /console/dead/replay`: `step=preview` counts and asks for confirmation,
/// `step=confirm` replays; both through `replay_dead_letters` (role: admin or auditor).
pub async fn bulk_replay(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let field = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let filter = DeadQuery::from_fields(&fields);
    let scope_all = field("scope") == "all";
    let ids: Vec<String> = if scope_all {
        Vec::new()
    } else {
        fields
            .iter()
            .filter(|(n, _)| n == "sel")
            .map(|(_, v)| v.clone())
            .collect()
    };
    let confirm = field("step") == "confirm";
    let title = ctx.t("Gửi lại thư chết", "Replay dead letters");
    let mut body = format!("<h1>{title}</h1>");
    let back = format!(
        "<p><a href=\"/console/dead?{}\" id=\"back\">{}</a></p>",
        [
            ("destination", &filter.destination),
            ("message_type", &filter.message_type),
            ("error", &filter.error),
            ("error_class", &filter.error_class),
            ("from", &filter.from),
            ("to", &filter.to),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", url(v)))
        .collect::<Vec<_>>()
        .join("&amp;"),
        ctx.t("← Quay lại danh sách", "← Back to the list")
    );
    if !scope_all && ids.is_empty() {
        let _ = write!(
            body,
            "<p class=\"bad\" id=\"bulk-error\">{}</p>{back}",
            ctx.t(
                "Chưa chọn mục nào: đánh dấu các thư cần gửi lại, hoặc dùng “tất cả mục khớp bộ lọc”.",
                "Nothing selected: tick the letters to replay, or use “all matching the filter”."
            )
        );
        return (StatusCode::BAD_REQUEST, ctx.render(title, &body)).into_response();
    }
    let reason = opt(&field("reason"));
    let req = filter.request(ids.clone(), reason.clone(), !confirm);
    let out = match replay_dead_letters(&st.replay, &req, &ctx.who.actor()).await {
        Ok(o) => o,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let _ = write!(
                body,
                "<p class=\"bad\" id=\"bulk-error\">{}: {}</p>{back}",
                ctx.t("Không gửi lại được", "Replay refused"),
                esc(&e.to_string())
            );
            return (status, ctx.render(title, &body)).into_response();
        }
    };
    let item = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    if !confirm {
        // Step 1: how many, which ones; nothing is sent yet.
        let _ = write!(
            body,
            "<p class=\"box\"><b id=\"bulk-count\">{}</b> {}</p>",
            out.matched,
            ctx.t(
                "thư chết sẽ được gửi lại đúng nội dung đã gửi.",
                "dead letters will be re-sent with the exact bytes sent before."
            )
        );
        body.push_str(&table_head(
            "bulk-preview",
            &[
                ctx.t("Lần chuyển", "Delivery"),
                ctx.t("Đích", "Destination"),
                ctx.t("Lỗi cuối", "Last error"),
            ],
        ));
        for d in &out.deliveries {
            body.push_str(&table_row(&[
                format!(
                    "<a href=\"/console/messages/{}\">{}</a>",
                    url(&item(d, "message_id")),
                    esc(&item(d, "delivery"))
                ),
                esc(&item(d, "destination")),
                esc(&item(d, "last_error")),
            ]));
        }
        body.push_str("</table>");
        if out.matched > 0 {
            let sel: String = ids
                .iter()
                .map(|i| format!("<input type=\"hidden\" name=\"sel\" value=\"{}\">", esc(i)))
                .collect();
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/console/dead/replay\" id=\"bulk-confirm-form\">{}{sel}\
                 <input type=\"hidden\" name=\"scope\" value=\"{}\"><input type=\"hidden\" name=\"step\" value=\"confirm\">\
                 <input type=\"hidden\" name=\"reason\" value=\"{}\">\
                 <button type=\"submit\" id=\"bulk-confirm\">{} ({})</button></form>",
                filter.hidden(),
                if scope_all { "all" } else { "selected" },
                esc(reason.as_deref().unwrap_or("")),
                ctx.t("Xác nhận gửi lại", "Confirm the replay"),
                out.matched,
            );
        }
        body.push_str(&back);
        return ctx.render(title, &body);
    }
    // Step 2: done; every item with its new delivery (or why it was skipped).
    let replayed = out
        .deliveries
        .iter()
        .filter(|d| d["replayed_as"].is_string())
        .count();
    let _ = write!(
        body,
        "<p class=\"flash\" id=\"bulk-outcome\">{} <b>{replayed}</b> / {} · {}</p>",
        ctx.t("Đã gửi lại", "Replayed"),
        out.matched,
        ctx.t(
            "mỗi lần gửi lại được ghi vào nhật ký (replay.requested, replayed).",
            "each replay is recorded in the trail (replay.requested, replayed)."
        )
    );
    body.push_str(&table_head(
        "bulk-results",
        &[ctx.t("Thư chết", "Dead letter"), ctx.t("Kết quả", "Result")],
    ));
    for d in &out.deliveries {
        let result = match (d["replayed_as"].as_str(), d["skipped"].as_str()) {
            (Some(n), _) => format!(
                "<span class=\"ok\">{} {}</span>",
                ctx.t("gửi lại thành lần chuyển", "replayed as delivery"),
                esc(n)
            ),
            (None, Some(why)) => format!(
                "<span class=\"bad\">{}: {}</span>",
                ctx.t("bỏ qua", "skipped"),
                esc(why)
            ),
            _ => String::new(),
        };
        body.push_str(&table_row(&[esc(&item(d, "delivery")), result]));
    }
    body.push_str("</table>");
    body.push_str(&back);
    ctx.render(title, &body)
}
