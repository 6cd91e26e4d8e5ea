//! The dashboard: is the hub healthy, and where is it hurting?
//!
//! One page answers the questions an operator asks first: how much is
//! flowing, what is waiting per partner, what failed or died per partner, and
//! whether the trail's chain head is where it should be. Every number is one
//! indexed aggregate query; nothing here is cached, so what you see is now.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;

use super::layout::{esc, time};
use super::{signed_in, ConsoleState, LangQuery};
use crate::store::now_ms;

#[derive(Default)]
struct PerSystem {
    pending: i64,
    in_flight: i64,
    delivered_1h: i64,
    dead: i64,
    failed_attempts_24h: i64,
}

async fn count(store: &crate::store::Store, since: i64, state: &str) -> i64 {
    match store.messages_since(since, state).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard query failed");
            0
        }
    }
}

pub async fn page(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let ctx = match signed_in(&st, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let store = &st.store;
    let now = now_ms();
    let received_5m = count(store, now - 300_000, "accepted").await;
    let received_1h = count(store, now - 3_600_000, "accepted").await;
    let rejected_1h = count(store, now - 3_600_000, "rejected").await;

    let mut systems: BTreeMap<String, PerSystem> = BTreeMap::new();
    if let Ok(rows) = store.delivery_counts(now - 3_600_000).await {
        for r in rows {
            let n = r.n;
            let s = systems.entry(r.destination).or_default();
            match r.state.as_str() {
                "pending" => s.pending = n,
                "in_flight" => s.in_flight = n,
                "dead" => s.dead = n,
                "delivered" => s.delivered_1h = n,
                _ => {}
            }
        }
    }
    if let Ok(rows) = store.failed_attempts_since(now - 86_400_000).await {
        for (dest, n) in rows {
            systems.entry(dest).or_default().failed_attempts_24h = n;
        }
    }
    let head = store.chain_head_row().await.ok();

    let mut body = format!(
        "<h1>{}</h1><div class=\"cards\">",
        ctx.t("Tổng quan", "Dashboard")
    );
    for (label, n) in [
        (
            ctx.t("Nhận 5 phút qua", "Accepted, last 5 min"),
            received_5m,
        ),
        (ctx.t("Nhận 1 giờ qua", "Accepted, last hour"), received_1h),
        (
            ctx.t("Từ chối 1 giờ qua", "Rejected, last hour"),
            rejected_1h,
        ),
    ] {
        let _ = write!(body, "<div class=\"card\"><b>{n}</b>{label}</div>");
    }
    body.push_str("</div>");
    let _ = write!(
        body,
        "<h2>{}</h2>",
        ctx.t("Theo hệ thống đích", "Per destination system")
    );
    body.push_str(&super::layout::table_head(
        "systems",
        &[
            ctx.t("Hệ thống", "System"),
            ctx.t("Đang chờ", "Queued"),
            ctx.t("Đang gửi", "In flight"),
            ctx.t("Đã gửi (1 giờ)", "Delivered (1 h)"),
            ctx.t("Lần gửi lỗi (24 giờ)", "Failed attempts (24 h)"),
            ctx.t("Thư chết", "Dead letters"),
        ],
    ));
    for (dest, s) in &systems {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/console/dead?destination={}\">{}</a></td></tr>",
            esc(dest),
            s.pending,
            s.in_flight,
            s.delivered_1h,
            s.failed_attempts_24h,
            super::layout::url(dest),
            s.dead
        );
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<h2>{}</h2><div class=\"box\" id=\"chain\">",
        ctx.t("Chuỗi nhật ký", "Trail chain")
    );
    match head {
        Some(h) => {
            let (seq, hash, at) = (h.seq, h.hash, h.updated_at);
            let _ = write!(
                body,
                "{} <b>{seq}</b> · {} <code>{}</code> · {}",
                ctx.t("Bản ghi cuối", "Last row"),
                ctx.t("băm", "hash"),
                esc(&hash[..hash.len().min(16)]),
                time(at)
            );
            let _ = write!(
                body,
                "<p class=\"muted\">{}</p>",
                ctx.t(
                    "Kiểm tra toàn chuỗi: lienthong audit verify.",
                    "Full verification: lienthong audit verify."
                )
            );
        }
        None => body.push_str("<span class=\"bad\">chain_head?</span>"),
    }
    body.push_str("</div>");
    let set = st.admin.admin.active().load();
    let _ = write!(
        body,
        "<h2>{}</h2><p>{} <b>{}</b> · {} {}</p>",
        ctx.t("Ánh xạ", "Mappings"),
        ctx.t("Thế hệ", "Generation"),
        set.generation,
        set.mappings.len(),
        ctx.t("ánh xạ đang hoạt động", "active mappings")
    );
    let refused: Vec<_> = st
        .admin
        .admin
        .file_reports()
        .into_iter()
        .filter(|r| !r.passed)
        .take(5)
        .collect();
    if !refused.is_empty() {
        let _ = write!(
            body,
            "<div class=\"box\"><b>{}</b><ul class=\"error-list\">",
            ctx.t("Sửa tệp bị từ chối", "Refused file edits")
        );
        for r in refused {
            let _ = write!(
                body,
                "<li>{}: {}</li>",
                esc(&r.mapping_id),
                esc(&r.summary())
            );
        }
        body.push_str("</ul></div>");
    }
    ctx.render(ctx.t("Tổng quan", "Dashboard"), &body)
        .into_response()
}
