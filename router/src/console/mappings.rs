//! The mapping pages: list, editor (validate, live preview, activate), history,
//! diff and rollback.
//!
//! The editor is a textarea and three buttons. "Validate" and "Preview" change
//! nothing, so they answer the POST with the page itself (the draft stays in
//! the textarea, errors are listed with `line:column`). "Activate" goes through
//! exactly the gate the API uses and, when it succeeds, redirects (PRG) to the
//! editor showing the new version. The form carries the version the author
//! started from, so a concurrent change is reported, never overwritten.

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{diff, header_row, time, url};
use super::{ConsoleState, Ctx};
use crate::admin::gate::{GateReport, StepStatus};
use crate::admin::service::{check_id, Proposal};
use crate::admin::versions::{unified_diff, Origin};
use crate::admin::AdminError;

pub async fn list(State(st): State<ConsoleState>, ctx: Ctx) -> Response {
    let rows = match st.admin.admin.versions().active_all().await {
        Ok(r) => r,
        Err(e) => return error_page(&ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let set = st.admin.admin.active().load();
    let flow = |id: &str| {
        set.mappings
            .get(id)
            .map(|m| {
                format!(
                    "{}/{} → {}/{}",
                    m.source.system, m.source.message_type, m.target.system, m.target.message_type
                )
            })
            .unwrap_or_default()
    };
    let body = html! {
        h1 { (ctx.t("Ánh xạ", "Mappings")) }
        table #mappings {
            (header_row(&[
                ctx.t("Mã ánh xạ", "Mapping id"),
                ctx.t("Phiên bản", "Version"),
                ctx.t("Nguồn → đích", "Source → target"),
                ctx.t("Kích hoạt", "Activated"),
            ]))
            @for r in &rows {
                tr {
                    td { a href={ "/console/mappings/" (url(&r.mapping_id)) } { (r.mapping_id) } }
                    td { "v" (r.version) }
                    td { (flow(&r.mapping_id)) }
                    td { (time(r.activated_at)) " · " (r.activated_by) }
                }
            }
        }
    };
    ctx.render(ctx.t("Ánh xạ", "Mappings"), body)
}

fn error_page(ctx: &Ctx, status: StatusCode, msg: &str) -> Response {
    let body = html! {
        h1 { (status.as_u16()) }
        p.bad #error { (msg) }
    };
    (status, ctx.render(&status.to_string(), body)).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct EditorQuery {
    from: Option<i64>,
    to: Option<i64>,
    activated: Option<i64>,
    rolled_back: Option<i64>,
}

pub async fn get_any(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Path(rest): Path<String>,
    Query(q): Query<EditorQuery>,
) -> Response {
    if let Some(id) = rest.strip_suffix("/diff") {
        return diff_page(&st, &ctx, id, q.from, q.to).await;
    }
    let flash = match (q.activated, q.rolled_back) {
        (Some(v), _) => Some(format!(
            "{} v{v}",
            ctx.t("Đã kích hoạt phiên bản", "Activated version")
        )),
        (_, Some(v)) => Some(format!(
            "{} v{v}",
            ctx.t("Đã quay lại phiên bản", "Rolled back to version")
        )),
        _ => None,
    };
    editor(
        &st,
        &ctx,
        &rest,
        Draft::default(),
        flash.as_deref(),
        StatusCode::OK,
    )
    .await
}

/// What the editor shows besides the stored state.
#[derive(Default)]
struct Draft {
    content: Option<String>,
    comment: String,
    sample: String,
    report: Option<GateReport>,
    preview: Option<Result<Value, String>>,
    error: Option<String>,
}

async fn editor(
    st: &ConsoleState,
    ctx: &Ctx,
    id: &str,
    draft: Draft,
    flash: Option<&str>,
    status: StatusCode,
) -> Response {
    if let Err(e) = check_id(id) {
        return error_page(ctx, StatusCode::BAD_REQUEST, &e.to_string());
    }
    let versions = st.admin.admin.versions();
    let (active, history) = match (versions.active(id).await, versions.history(id).await) {
        (Ok(a), Ok(h)) => (a, h),
        (Err(e), _) | (_, Err(e)) => {
            return error_page(ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    };
    let Some(active) = active else {
        return error_page(
            ctx,
            StatusCode::NOT_FOUND,
            &format!("{} '{id}'", ctx.t("Không có ánh xạ", "No mapping")),
        );
    };
    let content = match draft.content {
        Some(c) => c,
        None => match versions.get(id, active.version).await {
            Ok(Some(v)) => v.content,
            Ok(None) => String::new(),
            Err(e) => return error_page(ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        },
    };
    let action = format!("/console/mappings/{}", url(id));
    let admin = ctx.who.can_change();
    let body = html! {
        h1 { (id) }
        @if let Some(f) = flash {
            p.flash #flash { (f) }
        }
        p {
            (ctx.t("Phiên bản đang hoạt động", "Active version")) " "
            b #active-version { "v" (active.version) }
            " · " (time(active.activated_at)) " · " (active.activated_by)
        }
        @if let Some(e) = &draft.error {
            p.bad #error { (e) }
        }
        @if let Some(r) = &draft.report {
            (report_html(ctx, r))
        }
        @match &draft.preview {
            Some(Ok(out)) => div.box {
                b { (ctx.t("Xem trước kết quả", "Preview of the output")) }
                pre #preview { (serde_json::to_string_pretty(out).unwrap_or_default()) }
            },
            Some(Err(e)) => div.box {
                b { (ctx.t("Xem trước thất bại", "Preview failed")) }
                pre.bad #preview-error { (e) }
            },
            None => {}
        }
        form method="post" action=(action) #editor {
            input type="hidden" name="expected" value=(active.version);
            textarea name="content" #content spellcheck="false" { (content) }
            p {
                label {
                    (ctx.t(
                        "Mẫu xem trước (mã thông điệp đã lưu, để trống = ca kiểm thử đầu tiên)",
                        "Preview sample (stored message id; empty = first test case)"
                    )) " "
                    input name="sample" #sample size="40" value=(draft.sample)
                        placeholder=(ctx.t("mã thông điệp", "message id"));
                }
            }
            p {
                label {
                    (ctx.t("Ghi chú thay đổi", "Change comment")) " "
                    input name="comment" #comment size="60" value=(draft.comment);
                }
            }
            p {
                button.secondary type="submit" name="action" value="validate" #validate {
                    (ctx.t("Kiểm tra (chạy thử)", "Validate (dry run)"))
                }
                " "
                button.secondary type="submit" name="action" value="preview" #preview-button {
                    (ctx.t("Xem trước", "Preview"))
                }
                " "
                @if admin {
                    button type="submit" name="action" value="activate" #activate {
                        (ctx.t("Kích hoạt", "Activate"))
                    }
                }
            }
        }
        h2 { (ctx.t("Lịch sử", "History")) }
        table #history {
            (header_row(&[
                ctx.t("Phiên bản", "Version"),
                ctx.t("Thời gian", "Time"),
                ctx.t("Người sửa", "Author"),
                ctx.t("Ghi chú", "Comment"),
                "",
            ]))
            @for v in &history {
                tr id={ "v" (v.version) } {
                    td {
                        (super::messages::version_label(ctx, v.version, v.file_version))
                        @if v.active {
                            " " b.ok { (ctx.t("đang hoạt động", "active")) }
                        }
                    }
                    td { (time(v.created_at)) }
                    td { (v.author) " " span.muted { "(" (v.origin) ")" } }
                    td { (v.comment) }
                    td {
                        @if !v.active {
                            a href={ (action) "/diff?from=" (v.version) "&to=" (active.version) } {
                                (ctx.t("so sánh", "diff"))
                            }
                            @if admin {
                                " "
                                form.inline method="post" action={ (action) "/rollback" } {
                                    input type="hidden" name="to_version" value=(v.version);
                                    input type="hidden" name="expected" value=(active.version);
                                    button.secondary type="submit" id={ "rollback-" (v.version) } {
                                        (ctx.t("quay lại", "roll back"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    (status, ctx.render(id, body)).into_response()
}

/// The gate report: steps, positioned errors, failed tests, dry-run counts and examples.
fn report_html(ctx: &Ctx, r: &GateReport) -> Markup {
    let diags: Vec<_> = r.steps.iter().flat_map(|s| s.diagnostics.iter()).collect();
    html! {
        div.box #report {
            @if r.passed {
                b.ok { (ctx.t("Mọi bước kiểm tra đều đạt", "Every gate step passed")) }
            } @else {
                b.bad { (ctx.t("Thay đổi bị từ chối", "The change was refused")) }
            }
            ul {
                @for s in &r.steps {
                    @let (class, mark) = match s.status {
                        StepStatus::Passed => ("ok", "✓"),
                        StepStatus::Failed => ("bad", "✗"),
                        StepStatus::Skipped => ("muted", "–"),
                    };
                    li class=(class) id={ "step-" (s.name) } { (mark) " " (s.name) ": " (s.message) }
                }
            }
            @if !diags.is_empty() {
                ul.error-list #errors {
                    @for d in &diags {
                        li {
                            b { (d.line) ":" (d.column) }
                            @if !d.context.is_empty() {
                                " (" (d.context) ")"
                            }
                            ": " (d.message)
                        }
                    }
                }
            }
            @for t in &r.test_failures {
                pre.bad { (t.detail) }
            }
            @if let Some(dr) = &r.dry_run {
                p #dry-run {
                    (ctx.t("Chạy thử trên thông điệp thật", "Dry run on real messages")) ": "
                    (dr.sampled)
                    " · " (dr.unchanged) " " (ctx.t("không đổi", "unchanged"))
                    " · " (dr.changed) " " (ctx.t("thay đổi", "changed"))
                    " · " (dr.now_failing) " " (ctx.t("nay lỗi", "now failing"))
                    " · " (dr.fixed + dr.new_ok) " " (ctx.t("mới đạt", "newly passing"))
                }
                @for ex in &dr.examples {
                    p {
                        b { (ex.kind) } " "
                        a href={ "/console/messages/" (url(&ex.message_id)) } { (ex.message_id) }
                    }
                    @if let Some(e) = &ex.error {
                        pre.bad { (e) }
                    }
                    @if let Some(d) = &ex.diff {
                        (diff(d))
                    }
                }
            }
        }
    }
}

async fn diff_page(
    st: &ConsoleState,
    ctx: &Ctx,
    id: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Response {
    let (Some(from), Some(to)) = (from, to) else {
        return error_page(ctx, StatusCode::BAD_REQUEST, "?from=&to=");
    };
    let versions = st.admin.admin.versions();
    let (a, b) = match (versions.get(id, from).await, versions.get(id, to).await) {
        (Ok(Some(a)), Ok(Some(b))) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return error_page(ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        _ => {
            return error_page(
                ctx,
                StatusCode::NOT_FOUND,
                ctx.t("Không có phiên bản này", "No such version"),
            )
        }
    };
    let body = html! {
        h1 { (id) " v" (from) " → v" (to) }
        p { a href={ "/console/mappings/" (url(id)) } { "← " (ctx.t("Quay lại trình sửa", "Back to the editor")) } }
        (diff(&unified_diff(id, &a, &b)))
    };
    ctx.render(id, body)
}

#[derive(Debug, Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    sample: String,
    expected: Option<i64>,
    to_version: Option<i64>,
}

pub async fn post_any(
    State(st): State<ConsoleState>,
    ctx: Ctx,
    Path(rest): Path<String>,
    Form(f): Form<EditorForm>,
) -> Response {
    let admin = &st.admin.admin;
    if let Some(id) = rest.strip_suffix("/rollback") {
        if let Err(r) = ctx.require_admin() {
            return *r;
        }
        let (Some(to), Some(expected)) = (f.to_version, f.expected) else {
            return error_page(&ctx, StatusCode::BAD_REQUEST, "to_version, expected");
        };
        return match admin
            .rollback(id, to, expected, &ctx.who.actor(), "console rollback")
            .await
        {
            Ok((_, act)) => Redirect::to(&format!(
                "/console/mappings/{}?rolled_back={}",
                url(id),
                act.to_version
            ))
            .into_response(),
            Err(e) => {
                let status = status_of(&e);
                let report = match e {
                    AdminError::Rejected(r) => Some(*r),
                    _ => None,
                };
                let draft = Draft {
                    report,
                    error: Some(
                        ctx.t("Không quay lại được.", "Rollback refused.")
                            .to_string(),
                    ),
                    ..Draft::default()
                };
                editor(&st, &ctx, id, draft, None, status).await
            }
        };
    }
    let id = rest.as_str();
    if f.action == "activate" {
        if let Err(r) = ctx.require_admin() {
            return *r;
        }
    }
    let mut draft = Draft {
        content: Some(f.content.clone()),
        comment: f.comment.clone(),
        sample: f.sample.clone(),
        ..Draft::default()
    };
    match f.action.as_str() {
        "validate" => match admin.validate(id, &f.content, false).await {
            Ok(r) => draft.report = Some(r),
            Err(e) => draft.error = Some(e.to_string()),
        },
        "preview" => {
            let input = match sample_input(&st, id, f.sample.trim()).await {
                Ok(v) => v,
                Err(e) => {
                    draft.preview = Some(Err(e));
                    return editor(&st, &ctx, id, draft, None, StatusCode::OK).await;
                }
            };
            match admin.preview(id, &f.content, &input).await {
                Ok(p) => draft.preview = Some(p),
                Err(e) => draft.error = Some(e.to_string()),
            }
        }
        "activate" => {
            let p = Proposal {
                mapping_id: id.to_owned(),
                content: f.content.clone(),
                expected: f.expected,
                author: ctx.who.actor(),
                comment: f.comment.clone(),
                origin: Origin::Console,
                allow_regressions: false,
            };
            match admin.propose(p).await {
                Ok((_, act)) => {
                    return Redirect::to(&format!(
                        "/console/mappings/{}?activated={}",
                        url(id),
                        act.to_version
                    ))
                    .into_response()
                }
                Err(e) => {
                    let status = status_of(&e);
                    match e {
                        AdminError::Rejected(r) => draft.report = Some(*r),
                        other => draft.error = Some(other.to_string()),
                    }
                    return editor(&st, &ctx, id, draft, None, status).await;
                }
            }
        }
        other => draft.error = Some(format!("unknown action '{other}'")),
    }
    editor(&st, &ctx, id, draft, None, StatusCode::OK).await
}

fn status_of(e: &AdminError) -> StatusCode {
    match e {
        AdminError::Conflict { .. } => StatusCode::CONFLICT,
        AdminError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AdminError::Router(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        AdminError::Router(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The preview input: a stored message's parsed tree, or the mapping's first test input.
async fn sample_input(st: &ConsoleState, id: &str, message_id: &str) -> Result<Value, String> {
    if !message_id.is_empty() {
        let parsed = st
            .store
            .message_parsed(message_id)
            .await
            .map_err(|e| e.to_string())?;
        return match parsed {
            Some(p) => serde_json::from_str(&p).map_err(|e| e.to_string()),
            None => Err(format!(
                "no stored message '{message_id}' with a parsed tree"
            )),
        };
    }
    let set = st.admin.admin.active().load();
    let m = set
        .mappings
        .get(id)
        .ok_or_else(|| format!("no active mapping '{id}'"))?;
    match m.tests.first().map(|t| &t.input) {
        Some(crate::mapping::compile::TestInput::Tree(v)) => Ok(v.clone()),
        Some(crate::mapping::compile::TestInput::Bytes { path, bytes }) => {
            let name = path.file_name().and_then(|n| n.to_str());
            st.admin
                .admin
                .schemas()
                .decode(&m.source.schema, bytes, name)
                .map_err(|e| e.to_string())
        }
        None => Err("the mapping has no test case; give a stored message id".into()),
    }
}
