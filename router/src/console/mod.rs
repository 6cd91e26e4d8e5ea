//! # The web console at `/console`
//!
//! Administrators at the Department are not expected to use `curl`. The console
//! is a handful of server-rendered pages over the same functions as the API:
//! the dashboard, the mapping editor (which goes through the one gate in
//! [`crate::admin`]), message search with dossier timelines, and dead letters.
//!
//! Why server-rendered forms and no JavaScript framework: nothing to build, the
//! binary carries the whole console (`include_str!`), every action is a plain
//! `POST` followed by a redirect (POST-redirect-GET) so reloads never repeat an
//! action, and a real browser test can drive it without waiting on client code.
//!
//! Sign-in takes an API token (the roles are the API's: admin may change,
//! auditor may read) and opens a server-side session ([`sessions`]): the
//! browser holds only a random session id, the store its hash, an expiry and
//! its sign-out. Every request looks the session up and re-checks its token,
//! so signing out, or revoking the token, ends it at once.
//!
//! Cross-site request forgery: the cookie's `SameSite=Strict` means a browser
//! never sends it with a form posted from another site, so such a post arrives
//! signed out. Every post to a console route (sign-in and sign-out included)
//! also passes [`sessions::edge_layer`], which refuses a post the browser
//! labels as coming from elsewhere (`Sec-Fetch-Site`) or whose `Origin` names
//! another host (believing `X-Forwarded-Host` only from `server.trusted_proxies`),
//! and puts the security headers (CSP, frame and sniffing) on every answer.
//!
//! Pages are [`maud`] templates, which escape every spliced value: partner
//! data cannot become markup by a forgotten call (see [`layout`]). The sign-in
//! check every page needs is one extractor, [`Ctx`].
//!
//! Files: [`sessions`] (sign-in sessions, origins, security headers), [`layout`] (shell, shared fragments, languages), [`dashboard`], [`mappings`],
//! [`messages`] (search, message page, dry-run replay then replay, dead letters with
//! filters and bulk replay).

pub mod dashboard;
pub mod layout;
pub mod mappings;
pub mod messages;
pub mod sessions;

use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::admin::access::Principal;
use crate::admin::api::AdminState;
use crate::audit::replay::ReplayContext;
use crate::auth::routes::{Access, Guards, Registry};
use crate::auth::Need;
use crate::store::Store;
use layout::{page, Lang};

/// What the console pages need.
#[derive(Clone)]
pub struct ConsoleState {
    pub admin: AdminState,
    pub store: Store,
    /// What replays need: the same context the audit API's replay routes use, so a
    /// replay from the console is exactly [`crate::audit::replay`]'s.
    pub replay: ReplayContext,
    /// Console sign-in sessions ([`sessions`]).
    pub sessions: std::sync::Arc<sessions::Sessions>,
    /// Destinations the routes deliver to that have no URL and no connector:
    /// their deliveries wait for configuration (the dashboard says so).
    pub unconfigured: std::sync::Arc<Vec<String>>,
}

/// The cookie of an older hub, which held the raw token: cleared on sign-in and
/// sign-out, never read.
const OLD_TOKEN_COOKIE: &str = "lt_token";
const LANG_COOKIE: &str = "lt_lang";
const CSS: &str = include_str!("templates/console.css");

/// The `/console` routes. Every page needs a signed-in reader (the route guard
/// checks the session before the handler runs, and hands it the [`Principal`]);
/// the pages that change something check for an administrator themselves
/// ([`Ctx::require_admin`]).
pub fn routes(state: ConsoleState, guards: Guards) -> Registry {
    let reader = Access::Console(Need::Auditor);
    Registry::new(guards)
        .add(Method::GET, "/console", reader, dashboard::page)
        .add(Method::GET, "/console/", reader, dashboard::page)
        .add(
            Method::GET,
            "/console/style.css",
            Access::Public,
            || async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) },
        )
        .add(Method::GET, "/console/login", Access::Public, login_form)
        .add(Method::POST, "/console/login", Access::Public, login)
        .add(Method::POST, "/console/logout", reader, logout)
        .add(Method::GET, "/console/mappings", reader, mappings::list)
        .add(
            Method::GET,
            "/console/mappings/{*rest}",
            reader,
            mappings::get_any,
        )
        .add(
            Method::POST,
            "/console/mappings/{*rest}",
            reader,
            mappings::post_any,
        )
        .add(Method::GET, "/console/messages", reader, messages::search)
        .add(
            Method::GET,
            "/console/messages/{id}",
            reader,
            messages::message,
        )
        .add(
            Method::POST,
            "/console/messages/{id}/dry-run",
            reader,
            messages::dry_run,
        )
        .add(
            Method::POST,
            "/console/messages/{id}/replay",
            reader,
            messages::replay,
        )
        .add(Method::GET, "/console/dead", reader, messages::dead_letters)
        .add(
            Method::POST,
            "/console/dead/replay",
            reader,
            messages::bulk_replay,
        )
        .body_limit(Some(crate::limits::MAX_MAPPING_FILE_BYTES + 256 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.sessions.clone(),
            sessions::edge_layer,
        ))
        .with_state(state)
}

/// The route guards for a hub whose callers are `auth`'s tokens: bearer tokens
/// for the API, the console's sessions ([`sessions::Sessions`]) for its pages
/// (`None`: a router without the console, whose console routes nobody passes).
pub fn guards(
    auth: std::sync::Arc<dyn crate::admin::access::Authenticate>,
    sessions: Option<std::sync::Arc<sessions::Sessions>>,
) -> Guards {
    Guards {
        tokens: auth,
        sessions: sessions.map(|s| s as std::sync::Arc<dyn crate::auth::routes::SessionAuth>),
    }
}

pub use sessions::cookie;

#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

/// The page language: `?lang=` first (and remembered), then the cookie, then Vietnamese.
/// The second field is true when `?lang=` chose it (the response then stores it).
pub struct PageLang(pub Lang, pub bool);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Other query fields belong to the page; an unreadable query is Vietnamese.
        let q = Query::<LangQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.lang);
        let (lang, set) = lang_of(&parts.headers, q.as_deref());
        Ok(PageLang(lang, set))
    }
}

/// The signed-in reader of a console page, and its language: the one sign-in
/// prologue of every page, as an extractor.
///
/// The route guard ([`crate::auth::routes`]) has already looked the session up
/// and put its [`Principal`] in the request; this reads it from there, so a
/// page costs one session lookup. Without one (a route registered without the
/// console guard, which the architecture test refuses) the answer is the
/// sign-in page, never the page itself.
pub struct Ctx {
    pub lang: Lang,
    /// Set when `?lang=` changed the language: the response stores it.
    pub set_lang: bool,
    pub who: Principal,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, Self::Rejection> {
        let Ok(PageLang(lang, set_lang)) = PageLang::from_request_parts(parts, st).await;
        match parts.extensions.get::<Principal>() {
            Some(who) if who.can_read() => Ok(Ctx {
                lang,
                set_lang,
                who: who.clone(),
            }),
            Some(who) => Err(forbidden(
                lang,
                &format!(
                    "{} ({})",
                    who.name,
                    lang.t(
                        "cần vai trò quản trị hoặc kiểm toán",
                        "needs the admin or auditor role"
                    )
                ),
            )),
            None => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

pub(crate) fn lang_of(headers: &HeaderMap, q: Option<&str>) -> (Lang, bool) {
    match q {
        Some("en") => (Lang::En, true),
        Some("vi") => (Lang::Vi, true),
        _ => match cookie(headers, LANG_COOKIE) {
            Some("en") => (Lang::En, false),
            _ => (Lang::Vi, false),
        },
    }
}

/// A page that answers instead of the one asked for (403, 503); boxed
/// because a `Response` is large and this is the error side of a handler's check.
pub type Refusal = Box<Response>;

/// Records that the signed-in reader read message content from the console
/// (`kind` is `audit.read` or `audit.search`, as the API writes them; `route`
/// is the console route). A read that cannot be recorded is not shown: the
/// answer is 503, as for the API.
pub async fn record_read(
    st: &ConsoleState,
    ctx: &Ctx,
    kind: &'static str,
    message_id: Option<&str>,
    route: &str,
    detail: serde_json::Value,
) -> Result<(), Refusal> {
    let mut d = serde_json::json!({ "route": route, "surface": "console" });
    if let (Some(o), serde_json::Value::Object(extra)) = (d.as_object_mut(), detail) {
        o.extend(extra);
    }
    let ev = crate::audit::TrailEvent {
        at: crate::store::now_ms(),
        message_id: message_id.map(String::from),
        delivery_id: None,
        kind,
        actor: ctx.who.actor(),
        detail: d,
    };
    st.store.record_events(vec![ev]).await.map_err(|e| {
        Box::new(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                format!(
                    "this read could not be recorded in the trail ({e}); reload the page shortly"
                ),
            )
                .into_response(),
        )
    })
}

pub(crate) fn forbidden(lang: Lang, why: &str) -> Response {
    let body = html! { h1 { "403" } p.bad { (why) } };
    (
        StatusCode::FORBIDDEN,
        Html(page(lang, "403", None, body).into_string()),
    )
        .into_response()
}

impl Ctx {
    /// A full page response (remembers `?lang=` in a cookie).
    pub fn render(&self, title: &str, body: Markup) -> Response {
        let who = format!("{} ({:?})", self.who.name, self.who.role).to_lowercase();
        let html = Html(page(self.lang, title, Some(&who), body).into_string());
        if self.set_lang {
            let c = format!(
                "{LANG_COOKIE}={}; Path=/console; SameSite=Strict; Max-Age=31536000",
                self.lang.code()
            );
            ([(header::SET_COOKIE, c)], html).into_response()
        } else {
            html.into_response()
        }
    }
    pub fn t(&self, vi: &'static str, en: &'static str) -> &'static str {
        self.lang.t(vi, en)
    }
    /// Changes need an administrator: `Err` is the 403 page to answer with.
    pub fn require_admin(&self) -> Result<(), Refusal> {
        if self.who.can_change() {
            return Ok(());
        }
        Err(Box::new(forbidden(
            self.lang,
            self.t(
                "Chỉ quản trị viên được thay đổi.",
                "Only administrators may make changes.",
            ),
        )))
    }
}

async fn login_form(PageLang(lang, _): PageLang) -> Response {
    login_page(lang, None)
}

fn login_page(lang: Lang, error: Option<&str>) -> Response {
    let body = html! {
        h1 { (lang.t("Đăng nhập", "Sign in")) }
        @if let Some(e) = error {
            p.bad #login-error { (e) }
        }
        form.box method="post" action="/console/login" {
            label {
                (lang.t("Mã truy cập API", "API token")) br;
                input type="password" name="token" #token size="50" autocomplete="off";
            }
            " "
            input type="hidden" name="lang" value=(lang.code());
            button type="submit" #sign-in { (lang.t("Đăng nhập", "Sign in")) }
        }
        p.muted {
            (lang.t(
                "Dùng mã truy cập do quản trị viên cấp (vai trò quản trị hoặc kiểm toán).",
                "Use an API token from an administrator (admin or auditor role).",
            ))
        }
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (
        status,
        Html(page(lang, lang.t("Đăng nhập", "Sign in"), None, body).into_string()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    lang: Option<String>,
}

async fn login(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = if f.lang.as_deref() == Some("en") {
        Lang::En
    } else {
        Lang::Vi
    };
    let token = f.token.trim();
    match st.admin.auth.authenticate(token) {
        Some(p) if p.can_read() => {
            match st.sessions.open(token, p, &headers, &ext).await {
                Ok(opened) => {
                    tracing::info!(who = %opened.who.actor(), "console: signed in");
                    let mut r = Redirect::to("/console").into_response();
                    let h = r.headers_mut();
                    for c in [
                    opened.set_cookie,
                    format!("{OLD_TOKEN_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
                ] {
                    if let Ok(v) = header::HeaderValue::from_str(&c) {
                        h.append(header::SET_COOKIE, v);
                    }
                }
                    r
                }
                Err(e) => {
                    let mut r = login_page(
                        lang,
                        Some(&format!(
                            "{} ({e})",
                            lang.t(
                                "Không ghi được phiên đăng nhập; hãy thử lại sau ít phút.",
                                "The sign-in could not be recorded; try again in a few minutes.",
                            )
                        )),
                    );
                    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    r
                }
            }
        }
        Some(_) => login_page(
            lang,
            Some(lang.t(
                "Mã này không có quyền xem bảng điều khiển.",
                "This token may not use the console.",
            )),
        ),
        None => login_page(
            lang,
            Some(lang.t(
                "Mã truy cập không đúng hoặc đã bị thu hồi.",
                "Unknown or revoked token.",
            )),
        ),
    }
}

/// Ends the session in the store (not only in the browser): the same cookie
/// no longer signs anyone in.
async fn logout(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
) -> Response {
    let who = ext.get::<Principal>().cloned();
    match st.sessions.close(&headers, &ext, who.as_ref()).await {
        Ok(clear) => {
            let mut r = Redirect::to("/console/login").into_response();
            if let Ok(v) = header::HeaderValue::from_str(&clear) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            format!("signing out could not be recorded: {e}; try again shortly"),
        )
            .into_response(),
    }
}
