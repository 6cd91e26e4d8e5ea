//! The dashboard: is the hub healthy, and where is it hurting?
//!
//! One page answers the questions an operator asks first: how much is
//! flowing, what is waiting per partner, what failed or died per partner, and
//! whether the trail's chain head is where it should be. Every number is one
//! indexed aggregate query; nothing here is cached, so what you see is now.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use std::collections::BTreeMap;

use super::layout::{header_row, time, url};
use super::{ConsoleState, Ctx};
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

pub async fn page(State(st): State<ConsoleState>, ctx: Ctx) -> Response {
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
    let set = st.admin.admin.active().load();
    let refused: Vec<_> = st
        .admin
        .admin
        .file_reports()
        .into_iter()
        .filter(|r| !r.passed)
        .take(5)
        .collect();

    let cards = [
        (
            ctx.t("Nhận 5 phút qua", "Accepted, last 5 min"),
            received_5m,
        ),
        (ctx.t("Nhận 1 giờ qua", "Accepted, last hour"), received_1h),
        (
            ctx.t("Từ chối 1 giờ qua", "Rejected, last hour"),
            rejected_1h,
        ),
    ];
    let body = html! {
        h1 { (ctx.t("Tổng quan", "Dashboard")) }
        @if !st.unconfigured.is_empty() {
            div.box #waiting {
                b.bad { (ctx.t("Chờ cấu hình", "Waiting for configuration")) }
                " "
                (ctx.t(
                    "Các hệ thống đích này chưa có địa chỉ (destinations.<id>.url) hay connector: thông điệp gửi tới chúng vẫn được nhận và giữ lại, chờ đến khi cấu hình xong và khởi động lại hub.",
                    "These destinations have no URL (destinations.<id>.url) and no connector: what is routed to them is accepted and kept, waiting until they are configured and the hub restarted."
                ))
                ul {
                    @for d in st.unconfigured.iter() {
                        li { (d) }
                    }
                }
            }
        }
        div.cards {
            @for (label, n) in cards {
                div.card { b { (n) } (label) }
            }
        }
        h2 { (ctx.t("Theo hệ thống đích", "Per destination system")) }
        table #systems {
            (header_row(&[
                ctx.t("Hệ thống", "System"),
                ctx.t("Đang chờ", "Queued"),
                ctx.t("Đang gửi", "In flight"),
                ctx.t("Đã gửi (1 giờ)", "Delivered (1 h)"),
                ctx.t("Lần gửi lỗi (24 giờ)", "Failed attempts (24 h)"),
                ctx.t("Thư chết", "Dead letters"),
            ]))
            @for (dest, s) in &systems {
                tr {
                    td { (dest) }
                    td { (s.pending) }
                    td { (s.in_flight) }
                    td { (s.delivered_1h) }
                    td { (s.failed_attempts_24h) }
                    td { a href={ "/console/dead?destination=" (url(dest)) } { (s.dead) } }
                }
            }
        }
        h2 { (ctx.t("Chuỗi nhật ký", "Trail chain")) }
        div.box #chain {
            @match &head {
                Some(h) => {
                    (ctx.t("Bản ghi cuối", "Last row")) " " b { (h.seq) }
                    " · " (ctx.t("băm", "hash")) " " code { (&h.hash[..h.hash.len().min(16)]) }
                    " · " (time(h.updated_at))
                    p.muted {
                        (ctx.t(
                            "Kiểm tra toàn chuỗi: lienthong audit verify.",
                            "Full verification: lienthong audit verify."
                        ))
                    }
                }
                None => span.bad { "chain_head?" }
            }
        }
        h2 { (ctx.t("Ánh xạ", "Mappings")) }
        p {
            (ctx.t("Thế hệ", "Generation")) " " b { (set.generation) }
            " · " (set.mappings.len()) " " (ctx.t("ánh xạ đang hoạt động", "active mappings"))
        }
        @if !refused.is_empty() {
            div.box {
                b { (ctx.t("Sửa tệp bị từ chối", "Refused file edits")) }
                ul.error-list {
                    @for r in &refused {
                        li { (r.mapping_id) ": " (r.summary()) }
                    }
                }
            }
        }
    };
    ctx.render(ctx.t("Tổng quan", "Dashboard"), body)
        .into_response()
}
