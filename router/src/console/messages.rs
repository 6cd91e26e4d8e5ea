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

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{diff, header_row, time, url};
use super::{ConsoleState, Ctx};
use crate::admin::gate::{map_checked, tree_diff};
use crate::audit::replay::{
    replay_dead_letters, replay_history, replay_message, DeadLetterRequest, Mode, ReplayRequest,
};
use crate::audit::search::{parse_range, MAX_SEARCH_RANGE_DAYS};
use crate::store::audit_ops::{DeadFilter, DeliveryFull, MessageQuery as Search, Order};

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// `GET /console/messages/{id}`: `?replayed=a,b` after a replay (the new delivery ids).
#[derive(Debug, Default, Deserialize)]
pub struct MessageQuery {
    replayed: Option<String>,
}

/// The first 16 characters of a hash, as the pages show it.
fn short(hash: &str) -> String {
    hash.chars().take(16).collect()
}

pub async fn search(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Query(q): Query<SearchQuery>,
) -> Response {
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
    let form = html! {
        h1 { (ctx.t("Thông điệp", "Messages")) }
        form.box method="get" action="/console/messages" {
            label {
                (ctx.t("Mã hồ sơ, mã trạm hoặc mã thông điệp", "Dossier code, station code or message id")) " "
                input name="q" #q size="40" value=(term);
            }
            " "
            button type="submit" #search { (ctx.t("Tìm", "Search")) }
        }
    };
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
    let rows = match st.store.search_messages(&search).await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                ctx.render("503", html! { (form) p.bad { (e.to_string()) } }),
            )
                .into_response()
        }
    };
    let body = html! {
        (form)
        @if !term.is_empty() {
            h2 { (ctx.t("Dòng thời gian của", "Timeline of")) " " (term) }
        }
        table #results {
            (header_row(&[
                ctx.t("Thời gian nhận", "Received"),
                ctx.t("Nguồn", "Source"),
                ctx.t("Loại", "Type"),
                ctx.t("Hồ sơ", "Dossier"),
                ctx.t("Trạng thái", "State"),
            ]))
            @for r in &rows {
                tr {
                    td { a href={ "/console/messages/" (url(&r.id)) } { (time(r.received_at)) } }
                    td { (r.source_system) }
                    td { (r.message_type) }
                    td { (r.correlation_id.as_deref().unwrap_or_default()) }
                    td { (r.state) }
                }
            }
        }
        @if rows.is_empty() {
            p.muted #no-results { (ctx.t("Không có kết quả.", "No results.")) }
        }
    };
    ctx.render(ctx.t("Thông điệp", "Messages"), body)
}

pub async fn message(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Response {
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

pub async fn dry_run(State(st): State<ConsoleState>, ctx: Ctx, Path(id): Path<String>) -> Response {
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
    let section = html! {
        (dry_run_html(&st, &ctx, &id).await)
        (replay_form_html(&st, &ctx, &id, None).await)
    };
    let (page, status) = message_page(&st, &ctx, &id, Some(section), &[]).await;
    (status, page).into_response()
}

/// `POST /console/messages/{id}/replay`: the confirmed replay (form fields `target`
/// (repeated), `mode`, `reason`). Same role as the audit API's replay: admin or auditor.
pub async fn replay(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
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
        // A remap always has a new key; the box only changes an as-sent replay.
        new_ids: field("new_ids").is_some() && field("mode").as_deref() == Some("as-sent"),
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
    let section = html! {
        (dry_run_html(st, ctx, id).await)
        p.bad #replay-error { (ctx.t("Không gửi lại được", "Replay refused")) ": " (error) }
        (replay_form_html(st, ctx, id, Some(req)).await)
    };
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
) -> Markup {
    // Per original destination: has the partner got it (the original or a
    // replay delivered), and how many replays exist already.
    let mut dests: Vec<(String, bool, usize)> = Vec::new();
    if let Ok(all) = st.store.deliveries_of(id).await {
        for d in all.iter().filter(|d| d.replay_of.is_none()) {
            let (delivered, replays) = replay_history(&all, d);
            match dests.iter_mut().find(|(n, _, _)| *n == d.destination) {
                Some(e) => {
                    e.1 |= delivered;
                    e.2 += replays;
                }
                None => dests.push((d.destination.clone(), delivered, replays)),
            }
        }
    }
    if dests.is_empty() {
        return html! {};
    }
    let replayed: Vec<&(String, bool, usize)> = dests.iter().filter(|d| d.2 > 0).collect();
    let as_sent = previous.is_some_and(|r| r.mode == Mode::AsSent);
    let reason = previous.and_then(|r| r.reason.clone()).unwrap_or_default();
    html! {
        form.box method="post" action={ "/console/messages/" (url(id)) "/replay" } #replay-form {
            b { (ctx.t("Xác nhận gửi lại", "Confirm the replay")) }
            @if !replayed.is_empty() {
                p.bad #already-replayed {
                    (ctx.t("Thông điệp này đã được gửi lại:", "This message was replayed before:"))
                    @for (d, _, n) in &replayed {
                        " " (d) " (" (n) " " (ctx.t("lần", "time(s)")) ")"
                    }
                    ". " (ctx.t("Kiểm tra các lần chuyển bên dưới trước khi gửi lại nữa.", "Check the deliveries below before replaying again."))
                }
            }
            p {
                (ctx.t("Gửi tới:", "Send to:")) " "
                @for (d, delivered, _) in &dests {
                    // By default only where the partner has not got it yet.
                    @let checked = match previous {
                        Some(r) => r.targets.is_empty() || r.targets.contains(d),
                        None => !delivered,
                    };
                    label {
                        input type="checkbox" name="target" value=(d) id={ "target-" (d) } checked[checked];
                        " " (d)
                        @if *delivered {
                            " " span.muted.delivered { "(" (ctx.t("đã nhận", "already delivered")) ")" }
                        }
                    }
                    " "
                }
            }
            p {
                label {
                    input type="radio" name="mode" value="remap" #mode-remap checked[!as_sent];
                    " "
                    (ctx.t(
                        "Ánh xạ lại với phiên bản đang hoạt động (đúng như kết quả chạy thử ở trên)",
                        "Map again with the active version (exactly the dry run above)"
                    ))
                }
                br;
                label {
                    input type="radio" name="mode" value="as-sent" #mode-as-sent checked[as_sent];
                    " " (ctx.t("Gửi lại đúng nội dung đã gửi", "Re-send the exact bytes sent before"))
                }
                br;
                label {
                    input type="checkbox" name="new_ids" value="1" #new-ids checked[previous.is_some_and(|r| r.new_ids)];
                    " "
                    (ctx.t(
                        "với Idempotency-Key mới (mặc định: đúng khóa đã gửi, để đối tác nhận ra yêu cầu đã áp dụng)",
                        "with a new Idempotency-Key (default: the key sent before, so the partner can recognise what it already applied)"
                    ))
                }
            }
            p {
                label {
                    (ctx.t("Lý do (ghi vào nhật ký)", "Reason (recorded in the trail)")) " "
                    input name="reason" #replay-reason size="60" required value=(reason);
                }
            }
            p.muted {
                (ctx.t(
                    "Bản gốc không bị thay đổi; mỗi đích có một lần chuyển mới, gửi qua hàng đợi như thường lệ.",
                    "The original is left as it is; each destination gets a new delivery, sent through the queue as usual."
                ))
            }
            button type="submit" #replay-button { (ctx.t("Gửi lại", "Replay")) }
        }
    }
}

async fn message_page(
    st: &ConsoleState,
    ctx: &Ctx,
    id: &str,
    extra: Option<Markup>,
    replayed: &[String],
) -> (Response, StatusCode) {
    let row = match st.store.message_full(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (
                ctx.render(
                    "404",
                    html! { p.bad { (ctx.t("Không có thông điệp", "No message")) " " (id) } },
                ),
                StatusCode::NOT_FOUND,
            )
        }
        Err(e) => {
            return (
                ctx.render("503", html! { p.bad { (e.to_string()) } }),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    };
    let parsed = row.parsed.clone().unwrap_or_default();
    let parsed_pretty = serde_json::from_str::<Value>(&parsed)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(parsed);
    let corr = row.correlation_id.clone().unwrap_or_default();
    // The store's version (what the delivery records) and the file's own `version:` label.
    let deliveries = st
        .store
        .deliveries_with_file_version(id)
        .await
        .unwrap_or_default();
    let outcome = if replayed.is_empty() {
        None
    } else {
        Some(replay_outcome_html(st, ctx, &deliveries, replayed).await)
    };
    let mut attempts = Vec::with_capacity(deliveries.len());
    for (d, _) in &deliveries {
        attempts.push(
            st.store
                .attempts_of(std::slice::from_ref(&d.id))
                .await
                .unwrap_or_default(),
        );
    }
    let trail = trail_html(st, ctx, id).await;
    let reasons = row.reasons.clone().unwrap_or_default();
    let body = html! {
        h1 { (ctx.t("Thông điệp", "Message")) " " (id) }
        p {
            (time(row.received_at)) " · " (row.source_system) "/" (row.message_type)
            " · " a href={ "/console/messages?q=" (url(&corr)) } { (corr) }
            " · " (row.state)
        }
        @if let Some(o) = outcome { (o) }
        @if !reasons.is_empty() {
            pre.bad { (reasons) }
        }
        form method="post" action={ "/console/messages/" (url(id)) "/dry-run" } {
            button type="submit" #dry-run-button { (ctx.t("Chạy thử gửi lại (so sánh)", "Replay dry run (diff)")) }
        }
        @if let Some(extra) = extra { (extra) }
        h2 { (ctx.t("Dữ liệu gốc", "Raw")) }
        pre #raw { (String::from_utf8_lossy(&row.raw)) }
        h2 { (ctx.t("Đã phân tích", "Parsed")) }
        pre #parsed { (parsed_pretty) }
        h2 { (ctx.t("Các lần chuyển đi", "Deliveries")) }
        @for ((d, file_version), attempts) in deliveries.iter().zip(&attempts) {
            div.box.delivery id={ "delivery-" (d.id) } {
                b { (d.destination) } " " (d.message_type)
                " · " (d.mapping_id) " " (version_label(ctx, d.mapping_version, *file_version))
                " · " span.state { (d.state) }
                " · " (d.attempts) " " (ctx.t("lần gửi", "attempts"))
                @if let Some(of) = d.replay_of.as_deref().filter(|s| !s.is_empty()) {
                    " · " span.replay-of { (ctx.t("gửi lại của", "replay of")) " " (of) }
                }
                br;
                span.muted { (ctx.t("Mã lần chuyển", "Delivery id")) " " (d.id) }
                pre { (String::from_utf8_lossy(&d.body)) }
                @if let Some(err) = d.last_error.as_deref().filter(|s| !s.is_empty()) {
                    p.bad { (err) }
                }
                @if !attempts.is_empty() {
                    table {
                        (header_row(&[
                            "#",
                            ctx.t("Thời gian", "Time"),
                            "ms",
                            "HTTP",
                            ctx.t("Kết quả", "Outcome"),
                            ctx.t("Lỗi", "Error"),
                        ]))
                        @for a in attempts {
                            tr {
                                td { (a.n) }
                                td { (time(a.started_at)) }
                                td { (a.latency_ms) }
                                td { @if let Some(s) = a.status { (s) } }
                                td { (a.outcome) }
                                td { (a.error.as_deref().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        (trail)
    };
    (ctx.render(id, body), StatusCode::OK)
}

/// `v3 (tệp: version 2)`: the store's version, which deliveries record, and the label
/// the YAML declares (see docs/ADMIN.md, "Which version is recorded").
pub fn version_label(ctx: &Ctx, store: i64, file: Option<i64>) -> Markup {
    html! {
        span.version { "v" (store) }
        @if let Some(f) = file {
            " " span.muted.file-version { "(" (ctx.t("tệp ghi version", "file says version")) " " (f) ")" }
        }
    }
}

/// After a replay: the new deliveries with their state, and their `replayed` trail events.
async fn replay_outcome_html(
    st: &ConsoleState,
    ctx: &Ctx,
    deliveries: &[(DeliveryFull, Option<i64>)],
    replayed: &[String],
) -> Markup {
    let mut items = Vec::with_capacity(replayed.len());
    for nid in replayed {
        let found = deliveries
            .iter()
            .find(|(d, _)| &d.id == nid)
            .map(|(d, _)| d);
        let event = match found {
            Some(_) => st
                .store
                .first_delivery_event(nid, "replayed")
                .await
                .ok()
                .flatten(),
            None => None,
        };
        items.push((nid, found, event));
    }
    html! {
        div.flash #replay-outcome {
            b { (ctx.t("Đã gửi lại", "Replayed")) }
            ul {
                @for (nid, found, event) in &items {
                    @match found {
                        None => li.bad {
                            (nid) " " (ctx.t("không thuộc thông điệp này", "is not a delivery of this message"))
                        },
                        Some(d) => li.replayed {
                            (d.destination) " → " (nid) " · " (ctx.t("trạng thái", "state")) " "
                            b.state { (d.state) } " · "
                            @match event {
                                Some((seq, hash)) => {
                                    (ctx.t("ghi vào nhật ký: sự kiện", "recorded in the trail: event"))
                                    " #" (seq) " (" (short(hash)) "…)"
                                }
                                None => (ctx.t("chưa thấy trong nhật ký", "not found in the trail")),
                            }
                        },
                    }
                }
            }
        }
    }
}

/// The message's trail events (received, routed, attempts, replays...), oldest first.
async fn trail_html(st: &ConsoleState, ctx: &Ctx, id: &str) -> Markup {
    let rows = st
        .store
        .trail_for_message_first(id, 500)
        .await
        .unwrap_or_default();
    html! {
        h2 { (ctx.t("Nhật ký", "Trail")) }
        table #trail {
            (header_row(&[
                "#",
                ctx.t("Thời gian", "Time"),
                ctx.t("Sự kiện", "Event"),
                ctx.t("Người thực hiện", "Actor"),
                ctx.t("Lần chuyển", "Delivery"),
                "hash",
            ]))
            @for r in &rows {
                tr {
                    td { (r.seq) }
                    td { (time(r.at)) }
                    td { (r.kind) }
                    td { (r.actor) }
                    td { (r.delivery_id.as_deref().unwrap_or_default()) }
                    td { code { (short(&r.hash)) "…" } }
                }
            }
        }
    }
}

/// Re-map the stored message with the active set and diff against what was sent.
async fn dry_run_html(st: &ConsoleState, ctx: &Ctx, id: &str) -> Markup {
    let Ok(Some(row)) = st.store.message_full(id).await else {
        return html! { p.bad { (ctx.t("Không đọc được thông điệp.", "Cannot read the message.")) } };
    };
    let Ok(tree) = serde_json::from_str::<Value>(row.parsed.as_deref().unwrap_or_default()) else {
        return html! {
            p.bad { (ctx.t("Thông điệp không có cây đã phân tích.", "The message has no parsed tree.")) }
        };
    };
    let (system, mtype) = (row.source_system, row.message_type);
    let set = st.admin.admin.active().load();
    let schemas = st.admin.admin.schemas();
    let sent = st.store.deliveries_of(id).await.unwrap_or_default();
    let targets = set.routes.resolve(&system, &mtype, &tree);
    html! {
        div.box #dry-run-result {
            b { (ctx.t("Kết quả chạy thử (không gửi gì)", "Dry run result (nothing sent)")) }
            @if targets.is_empty() {
                p { (ctx.t("Không tuyến nào khớp với thông điệp này lúc này.", "No route matches this message now.")) }
            }
            @for t in &targets {
                @let m = &t.mapping;
                h3 { (t.system) " · " (m.id) " v" (m.version) }
                @match (map_checked(m, schemas, &tree), sent.iter().find(|d| d.mapping_id == m.id)) {
                    (Err(e), _) => pre.bad { (e) },
                    (Ok(new), Some(d)) => {
                        @let old_v = d.mapping_version;
                        @match schemas.decode(&m.target.schema, &d.body, None) {
                            Ok(old) if old == new => p.ok {
                                (ctx.t("Giống hệt lần đã gửi", "Identical to what was sent"))
                                " (v" (old_v) " = v" (m.version) ")"
                            },
                            Ok(old) => (diff(&tree_diff(
                                &old,
                                &new,
                                &format!("sent (v{old_v})"),
                                &format!("now (v{})", m.version),
                            ))),
                            Err(e) => pre.bad { (e.to_string()) },
                        }
                    }
                    (Ok(new), None) => {
                        p { (ctx.t("Chưa từng gửi tới đích này; sẽ gửi:", "Never sent to this destination; would send:")) }
                        pre { (serde_json::to_string_pretty(&new).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// The dead-letter filter, from the page's query string or the bulk form.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DeadQuery {
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
            new_ids: false,
        }
    }

    /// The filter's fields, in the order the page shows them.
    fn fields(&self) -> [(&'static str, &str); 6] {
        [
            ("destination", &self.destination),
            ("message_type", &self.message_type),
            ("error", &self.error),
            ("error_class", &self.error_class),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }

    /// The filter as hidden form fields (the bulk form repeats what the page showed).
    fn hidden(&self) -> Markup {
        html! {
            @for (k, v) in self.fields() {
                input type="hidden" name=(k) value=(v);
            }
        }
    }

    /// The filter as a query string (the link back to the list).
    fn query(&self) -> String {
        self.fields()
            .iter()
            .map(|(k, v)| format!("{k}={}", url(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub async fn dead_letters(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Query(q): Query<DeadQuery>,
) -> Response {
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
    let title = ctx.t("Thư chết", "Dead letters");
    let top = html! {
        h1 { (title) }
        (dead_filter_form(&ctx, &q))
    };
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
            let body = html! { (top) p.bad #filter-error { (e) } };
            return (StatusCode::BAD_REQUEST, ctx.render(title, body)).into_response();
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
            let body = html! { (top) p.bad { (e.to_string()) } };
            return (StatusCode::SERVICE_UNAVAILABLE, ctx.render(title, body)).into_response();
        }
    };
    let count = if dead.len() as i64 >= BULK_MAX {
        format!("{BULK_MAX}+")
    } else {
        dead.len().to_string()
    };
    let body = html! {
        (top)
        p {
            b #dead-count { (count) } " "
            (ctx.t(
                "thư chết khớp bộ lọc và chưa được gửi lại",
                "dead letters match the filter and have not been replayed"
            ))
            " " span.muted { "(" (ctx.t("thời điểm chết", "died between")) " " (time(from)) " – " (time(to)) ")" }
        }
        form method="post" action="/console/dead/replay" #bulk-form {
            (q.hidden())
            input type="hidden" name="step" value="preview";
            table #dead {
                (header_row(&[
                    "✓",
                    ctx.t("Thời gian", "Time"),
                    ctx.t("Đích", "Destination"),
                    ctx.t("Loại", "Type"),
                    ctx.t("Hồ sơ", "Dossier"),
                    ctx.t("Lần gửi", "Attempts"),
                    ctx.t("Lỗi cuối", "Last error"),
                ]))
                @for d in dead.iter().take(DEAD_SHOWN) {
                    tr {
                        td { input.sel type="checkbox" name="sel" value=(d.id) id={ "sel-" (d.id) }; }
                        td { a href={ "/console/messages/" (url(&d.message_id)) } { (time(d.updated_at)) } }
                        td { (d.destination) }
                        td { (d.message_type) }
                        td { (d.correlation_id) }
                        td { (d.attempts) }
                        td {
                            (d.last_error.as_deref().unwrap_or(""))
                            " " span.muted { (d.error_class.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if dead.len() > DEAD_SHOWN {
                p.muted { (ctx.t("Chỉ hiển thị", "Showing only the first")) " " (DEAD_SHOWN) "." }
            }
            @if !dead.is_empty() {
                div.box {
                    p {
                        label {
                            (ctx.t("Lý do (ghi vào nhật ký)", "Reason (recorded in the trail)")) " "
                            input name="reason" #bulk-reason size="60" required;
                        }
                    }
                    button type="submit" name="scope" value="selected" #bulk-selected {
                        (ctx.t("Gửi lại các mục đã chọn…", "Replay the selected…"))
                    }
                    " "
                    button.secondary type="submit" name="scope" value="all" #bulk-all {
                        (ctx.t("Gửi lại tất cả mục khớp bộ lọc…", "Replay all matching the filter…"))
                        " (" (count) ")"
                    }
                    p.muted {
                        (ctx.t(
                            "Bước tiếp theo cho biết số mục sẽ gửi lại và yêu cầu xác nhận. Gửi lại đúng nội dung đã gửi, qua hàng đợi.",
                            "The next step shows how many will be replayed and asks you to confirm. The exact bytes are re-sent, through the queue."
                        ))
                    }
                }
            } @else {
                p.muted #no-dead { (ctx.t("Không có thư chết nào khớp.", "No dead letter matches.")) }
            }
        }
    };
    ctx.render(title, body)
}

fn dead_filter_form(ctx: &Ctx, q: &DeadQuery) -> Markup {
    let classes = [
        ("", ctx.t("(tất cả)", "(all)")),
        ("transient", "transient"),
        ("permanent", "permanent"),
        ("exhausted", "exhausted"),
    ];
    html! {
        form.box method="get" action="/console/dead" #dead-filter {
            label {
                (ctx.t("Hệ thống đích", "Destination")) " "
                input name="destination" #f-destination size="14" value=(q.destination);
            }
            " "
            label {
                (ctx.t("Loại thông điệp", "Message type")) " "
                input name="message_type" #f-message-type size="18" value=(q.message_type);
            }
            " "
            label {
                (ctx.t("Lỗi chứa", "Error contains")) " "
                input name="error" #f-error size="18" value=(q.error);
            }
            " "
            label {
                (ctx.t("Loại lỗi", "Error class")) " "
                select name="error_class" #f-error-class {
                    @for (v, label) in classes {
                        option value=(v) selected[q.error_class == v] { (label) }
                    }
                }
            }
            br;
            label {
                (ctx.t("Từ ngày", "From")) " "
                input type="date" name="from" #f-from value=(q.from);
            }
            " "
            label {
                (ctx.t("Đến ngày", "To")) " "
                input type="date" name="to" #f-to value=(q.to);
            }
            " "
            button type="submit" #filter { (ctx.t("Lọc", "Filter")) }
            " " span.muted { (ctx.t("(mặc định: 7 ngày gần nhất)", "(default: the last 7 days)")) }
        }
    }
}

/// `POST /console/dead/replay`: `step=preview` counts and asks for confirmation,
/// `step=confirm` replays; both through `replay_dead_letters` (role: admin or auditor).
pub async fn bulk_replay(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
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
    let back = html! {
        p {
            a href={ "/console/dead?" (filter.query()) } #back {
                (ctx.t("← Quay lại danh sách", "← Back to the list"))
            }
        }
    };
    if !scope_all && ids.is_empty() {
        let body = html! {
            h1 { (title) }
            p.bad #bulk-error {
                (ctx.t(
                    "Chưa chọn mục nào: đánh dấu các thư cần gửi lại, hoặc dùng “tất cả mục khớp bộ lọc”.",
                    "Nothing selected: tick the letters to replay, or use “all matching the filter”."
                ))
            }
            (back)
        };
        return (StatusCode::BAD_REQUEST, ctx.render(title, body)).into_response();
    }
    let reason = opt(&field("reason"));
    let req = filter.request(ids.clone(), reason.clone(), !confirm);
    let out = match replay_dead_letters(&st.replay, &req, &ctx.who.actor()).await {
        Ok(o) => o,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let body = html! {
                h1 { (title) }
                p.bad #bulk-error { (ctx.t("Không gửi lại được", "Replay refused")) ": " (e.to_string()) }
                (back)
            };
            return (status, ctx.render(title, body)).into_response();
        }
    };
    let item = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    if !confirm {
        // Step 1: how many, which ones; nothing is sent yet.
        let body = html! {
            h1 { (title) }
            p.box {
                b #bulk-count { (out.matched) } " "
                (ctx.t(
                    "thư chết sẽ được gửi lại đúng nội dung đã gửi.",
                    "dead letters will be re-sent with the exact bytes sent before."
                ))
            }
            table #bulk-preview {
                (header_row(&[
                    ctx.t("Lần chuyển", "Delivery"),
                    ctx.t("Đích", "Destination"),
                    ctx.t("Lỗi cuối", "Last error"),
                ]))
                @for d in &out.deliveries {
                    tr {
                        td { a href={ "/console/messages/" (url(&item(d, "message_id"))) } { (item(d, "delivery")) } }
                        td { (item(d, "destination")) }
                        td { (item(d, "last_error")) }
                    }
                }
            }
            @if out.matched > 0 {
                form method="post" action="/console/dead/replay" #bulk-confirm-form {
                    (filter.hidden())
                    @for i in &ids {
                        input type="hidden" name="sel" value=(i);
                    }
                    input type="hidden" name="scope" value=(if scope_all { "all" } else { "selected" });
                    input type="hidden" name="step" value="confirm";
                    input type="hidden" name="reason" value=(reason.as_deref().unwrap_or(""));
                    button type="submit" #bulk-confirm {
                        (ctx.t("Xác nhận gửi lại", "Confirm the replay")) " (" (out.matched) ")"
                    }
                }
            }
            (back)
        };
        return ctx.render(title, body);
    }
    // Step 2: done; every item with its new delivery (or why it was skipped).
    let replayed = out
        .deliveries
        .iter()
        .filter(|d| d["replayed_as"].is_string())
        .count();
    let body = html! {
        h1 { (title) }
        p.flash #bulk-outcome {
            (ctx.t("Đã gửi lại", "Replayed")) " " b { (replayed) } " / " (out.matched) " · "
            (ctx.t(
                "mỗi lần gửi lại được ghi vào nhật ký (replay.requested, replayed).",
                "each replay is recorded in the trail (replay.requested, replayed)."
            ))
        }
        table #bulk-results {
            (header_row(&[ctx.t("Thư chết", "Dead letter"), ctx.t("Kết quả", "Result")]))
            @for d in &out.deliveries {
                tr {
                    td { (item(d, "delivery")) }
                    td {
                        @match (d["replayed_as"].as_str(), d["skipped"].as_str()) {
                            (Some(n), _) => span.ok { (ctx.t("gửi lại thành lần chuyển", "replayed as delivery")) " " (n) },
                            (None, Some(why)) => span.bad { (ctx.t("bỏ qua", "skipped")) ": " (why) },
                            _ => {}
                        }
                    }
                }
            }
        }
        (back)
    };
    ctx.render(title, body)
}
