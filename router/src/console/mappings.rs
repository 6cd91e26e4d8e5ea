//! The mapping pages: list, editor (validate, live preview, activate), history,
//! diff and rollback.
//!
//! The editor is a textarea and three buttons. "Validate" and "Preview" change
//! nothing, so they answer the POST with the page itself (the draft stays in
//! the textarea, errors are listed with `line:column`). "Activate" goes through
//! exactly the gate the API uses and, when it succeeds, redirects (PRG) to the
//! editor showing the new version. The form carries the version the author
//! started from, so a concurrent change is reported, never overwritten.

use std::fmt::Write;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{diff_html, esc, table_head, time, url};
use super::{admin_only, signed_in, ConsoleState, Ctx, LangQuery};
use crate::admin::gate::{GateReport, StepStatus};
use crate::admin::service::{check_id, Proposal};
use crate::admin::versions::{unified_diff, Origin};
use crate::admin::AdminError;

pub async fn list(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let rows = match st.admin.admin.versions().active_all().await {
        Ok(r) => r,
        Err(e) => return error_page(&ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let set = st.admin.admin.active().load();
    let mut body = format!("<h1>{}</h1>", ctx.t("Ánh xạ", "Mappings"));
    body.push_str(&table_head(
        "mappings",
        &[
            ctx.t("Mã ánh xạ", "Mapping id"),
            ctx.t("Phiên bản", "Version"),
            ctx.t("Nguồn → đích", "Source → target"),
            ctx.t("Kích hoạt", "Activated"),
        ],
    ));
    for r in rows {
        let flow = set
            .mappings
            .get(&r.mapping_id)
            .map(|m| {
                format!(
                    "{}/{} → {}/{}",
                    m.source.system, m.source.message_type, m.target.system, m.target.message_type
                )
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/mappings/{}\">{}</a></td><td>v{}</td><td>{}</td><td>{} · {}</td></tr>",
            url(&r.mapping_id),
            esc(&r.mapping_id),
            r.version,
            esc(&flow),
            time(r.activated_at),
            esc(&r.activated_by)
        );
    }
    body.push_str("</table>");
    ctx.render(ctx.t("Ánh xạ", "Mappings"), &body)
}

fn error_page(ctx: &Ctx, status: StatusCode, msg: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"bad\" id=\"error\">{}</p>",
        status.as_u16(),
        esc(msg)
    );
    (status, ctx.render(&status.to_string(), &body)).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct EditorQuery {
    lang: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    activated: Option<i64>,
    rolled_back: Option<i64>,
}

impl EditorQuery {
    fn lang(&self) -> LangQuery {
        LangQuery {
            lang: self.lang.clone(),
        }
    }
}

pub async fn get_any(
    State(st): State<ConsoleState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(q): Query<EditorQuery>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q.lang()).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
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
    let mut body = format!("<h1>{}</h1>", esc(id));
    if let Some(f) = flash {
        let _ = write!(body, "<p class=\"flash\" id=\"flash\">{}</p>", esc(f));
    }
    let _ = write!(
        body,
        "<p>{} <b id=\"active-version\">v{}</b> · {} · {}</p>",
        ctx.t("Phiên bản đang hoạt động", "Active version"),
        active.version,
        time(active.activated_at),
        esc(&active.activated_by)
    );
    if let Some(e) = &draft.error {
        let _ = write!(body, "<p class=\"bad\" id=\"error\">{}</p>", esc(e));
    }
    if let Some(r) = &draft.report {
        body.push_str(&report_html(ctx, r));
    }
    if let Some(p) = &draft.preview {
        match p {
            Ok(out) => {
                let _ = write!(
                    body,
                    "<div class=\"box\"><b>{}</b><pre id=\"preview\">{}</pre></div>",
                    ctx.t("Xem trước kết quả", "Preview of the output"),
                    esc(&serde_json::to_string_pretty(out).unwrap_or_default())
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    "<div class=\"box\"><b>{}</b><pre id=\"preview-error\" class=\"bad\">{}</pre></div>",
                    ctx.t("Xem trước thất bại", "Preview failed"),
                    esc(e)
                );
            }
        }
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{action}\" id=\"editor\"><input type=\"hidden\" name=\"expected\" value=\"{}\">\
         <textarea name=\"content\" id=\"content\" spellcheck=\"false\">{}</textarea>\
         <p><label>{} <input name=\"sample\" id=\"sample\" size=\"40\" value=\"{}\" placeholder=\"{}\"></label></p>\
         <p><label>{} <input name=\"comment\" id=\"comment\" size=\"60\" value=\"{}\"></label></p>\
         <p><button type=\"submit\" name=\"action\" value=\"validate\" id=\"validate\" class=\"secondary\">{}</button> \
         <button type=\"submit\" name=\"action\" value=\"preview\" id=\"preview-button\" class=\"secondary\">{}</button> ",
        active.version,
        esc(&content),
        ctx.t("Mẫu xem trước (mã thông điệp đã lưu, để trống = ca kiểm thử đầu tiên)", "Preview sample (stored message id; empty = first test case)"),
        esc(&draft.sample),
        ctx.t("mã thông điệp", "message id"),
        ctx.t("Ghi chú thay đổi", "Change comment"),
        esc(&draft.comment),
        ctx.t("Kiểm tra (chạy thử)", "Validate (dry run)"),
        ctx.t("Xem trước", "Preview"),
    );
    if ctx.who.can_change() {
        let _ = write!(body, "<button type=\"submit\" name=\"action\" value=\"activate\" id=\"activate\">{}</button>", ctx.t("Kích hoạt", "Activate"));
    }
    body.push_str("</p></form>");

    let _ = write!(body, "<h2>{}</h2>", ctx.t("Lịch sử", "History"));
    body.push_str(&table_head(
        "history",
        &[
            ctx.t("Phiên bản", "Version"),
            ctx.t("Thời gian", "Time"),
            ctx.t("Người sửa", "Author"),
            ctx.t("Ghi chú", "Comment"),
            "",
        ],
    ));
    for v in &history {
        let mark = if v.active {
            format!(" <b class=\"ok\">{}</b>", ctx.t("đang hoạt động", "active"))
        } else {
            String::new()
        };
        let mut actions = String::new();
        if !v.active {
            let _ = write!(
                actions,
                "<a href=\"{action}/diff?from={}&to={}\">{}</a>",
                v.version,
                active.version,
                ctx.t("so sánh", "diff")
            );
            if ctx.who.can_change() {
                let _ = write!(
                    actions,
                    " <form method=\"post\" action=\"{action}/rollback\" class=\"inline\"><input type=\"hidden\" name=\"to_version\" value=\"{}\">\
                     <input type=\"hidden\" name=\"expected\" value=\"{}\"><button type=\"submit\" class=\"secondary\" id=\"rollback-{}\">{}</button></form>",
                    v.version,
                    active.version,
                    v.version,
                    ctx.t("quay lại", "roll back")
                );
            }
        }
        let _ = write!(
            body,
            "<tr id=\"v{}\"><td>{}{mark}</td><td>{}</td><td>{} <span class=\"muted\">({})</span></td><td>{}</td><td>{actions}</td></tr>",
            v.version,
            super::messages::version_label(ctx, v.version, v.file_version),
            time(v.created_at),
            esc(&v.author),
            esc(&v.origin),
            esc(&v.comment)
        );
    }
    body.push_str("</table>");
    (status, ctx.render(id, &body)).into_response()
}

/// The gate report: steps, positioned errors, failed tests, dry-run counts and examples.
fn report_html(ctx: &Ctx, r: &GateReport) -> String {
    let mut out = format!(
        "<div class=\"box\" id=\"report\"><b class=\"{}\">{}</b><ul>",
        if r.passed { "ok" } else { "bad" },
        if r.passed {
            ctx.t("Mọi bước kiểm tra đều đạt", "Every gate step passed")
        } else {
            ctx.t("Thay đổi bị từ chối", "The change was refused")
        }
    );
    for s in &r.steps {
        let (class, mark) = match s.status {
            StepStatus::Passed => ("ok", "✓"),
            StepStatus::Failed => ("bad", "✗"),
            StepStatus::Skipped => ("muted", "–"),
        };
        let _ = write!(
            out,
            "<li class=\"{class}\" id=\"step-{}\">{mark} {}: {}</li>",
            s.name,
            s.name,
            esc(&s.message)
        );
    }
    out.push_str("</ul>");
    let diags: Vec<_> = r.steps.iter().flat_map(|s| s.diagnostics.iter()).collect();
    if !diags.is_empty() {
        out.push_str("<ul class=\"error-list\" id=\"errors\">");
        for d in diags {
            let ctx_part = if d.context.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&d.context))
            };
            let _ = write!(
                out,
                "<li><b>{}:{}</b>{ctx_part}: {}</li>",
                d.line,
                d.column,
                esc(&d.message)
            );
        }
        out.push_str("</ul>");
    }
    for t in &r.test_failures {
        let _ = write!(out, "<pre class=\"bad\">{}</pre>", esc(&t.detail));
    }
    if let Some(dr) = &r.dry_run {
        let _ = write!(
            out,
            "<p id=\"dry-run\">{}: {} · {} {} · {} {} · {} {} · {} {}</p>",
            ctx.t("Chạy thử trên thông điệp thật", "Dry run on real messages"),
            dr.sampled,
            dr.unchanged,
            ctx.t("không đổi", "unchanged"),
            dr.changed,
            ctx.t("thay đổi", "changed"),
            dr.now_failing,
            ctx.t("nay lỗi", "now failing"),
            dr.fixed + dr.new_ok,
            ctx.t("mới đạt", "newly passing"),
        );
        for ex in &dr.examples {
            let _ = write!(
                out,
                "<p><b>{}</b> <a href=\"/console/messages/{}\">{}</a></p>",
                ex.kind,
                url(&ex.message_id),
                esc(&ex.message_id)
            );
            if let Some(e) = &ex.error {
                let _ = write!(out, "<pre class=\"bad\">{}</pre>", esc(e));
            }
            if let Some(d) = &ex.diff {
                out.push_str(&diff_html(d));
            }
        }
    }
    out.push_str("</div>");
    out
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
    let body = format!(
        "<h1>{} v{from} → v{to}</h1><p><a href=\"/console/mappings/{}\">← {}</a></p>{}",
        esc(id),
        url(id),
        ctx.t("Quay lại trình sửa", "Back to the editor"),
        diff_html(&unified_diff(id, &a, &b))
    );
    ctx.render(id, &body)
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
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Form(f): Form<EditorForm>,
) -> Response {
    let admin = &st.admin.admin;
    if let Some(id) = rest.strip_suffix("/rollback") {
        let ctx = match admin_only(&st, &headers, &q).await {
            Ok(c) => c,
            Err(r) => return *r,
        };
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
    let ctx = match if f.action == "activate" {
        admin_only(&st, &headers, &q).await
    } else {
        signed_in(&st, &headers, &q).await
    } {
        Ok(c) => c,
        Err(r) => return *r,
    };
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
