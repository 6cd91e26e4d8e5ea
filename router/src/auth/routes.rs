//! The one way to add an HTTP route: [`Registry::add`], which takes the access the
//! route needs.
//!
//! # Why a registry
//!
//! Before this, each module built its own `axum::Router` and each handler checked
//! its caller on its first line. A route whose handler forgot (the old
//! `/api/messages/{id}`) served dossier data to anyone, and the role test, which
//! walked a hand-kept list, never saw it. Now:
//!
//! * every route is added through [`Registry::add`] with an [`Access`]; there is no
//!   other way to put a route into the hub (`tests/architecture.rs` refuses
//!   `Router::route`, `.nest` and `.route_service` outside this file);
//! * the check for [`Access::Api`] and [`Access::Console`] runs as a route layer
//!   **before the handler and its extractors**: an unauthenticated caller gets
//!   401 (or the sign-in page) before the query is parsed or a byte of the body is
//!   read, so it can neither make the hub buffer a body nor learn from a 400
//!   what the route accepts;
//! * the table ([`Registry::table`]) is the list the router was built from, not a
//!   copy: the role test (`tests/edge_routes.rs`) walks it against a started hub
//!   and calls every route without credentials and with the wrong role.
//!
//! The guard is a floor, not the whole policy: a handler may refuse more (the
//! mapping API's `POST .../rollback` is admin-only under a `POST` registered for
//! auditors). [`Access::Partner`] routes (intake) authenticate in the intake
//! itself, from the headers, before the body is read (see `crate::intake`),
//! because the partner's system comes from the path and an HMAC signature needs
//! the body; they are in the table so that the role test calls them too.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::{Need, Principal};
use crate::admin::access::Authenticate;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "need")]
pub enum Access {
    /// Anyone: `/healthz`, `/readyz`, `/metrics`, `/` (a redirect to the console),
    /// the console's sign-in page and CSS.
    Public,
    /// A partner submitting as the system in the path (checked by the intake).
    Partner,
    /// `Authorization: Bearer <token>` with a role that satisfies the need.
    Api(Need),
    /// A signed-in console session with a role that satisfies the need; otherwise
    /// the browser is sent to the sign-in page.
    Console(Need),
}

/// One row of the table: what the router serves and who may call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteEntry {
    #[serde(serialize_with = "method_str")]
    pub method: Method,
    /// In axum's syntax (`/api/v1/messages/{id}`, `/console/mappings/{*rest}`).
    pub path: &'static str,
    pub access: Access,
}

fn method_str<S: serde::Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

/// Resolves a console request to its signed-in principal (the console's session
/// store implements it). `None`: not signed in.
/// It is asynchronous because sessions are rows in the store. `Err`: the
/// sessions cannot be read now (the store is away); the text says why.
pub trait SessionAuth: Send + Sync {
    fn principal<'a>(
        &'a self,
        parts: &'a axum::http::request::Parts,
    ) -> futures::future::BoxFuture<'a, Result<Option<Principal>, String>>;
}

/// How the guards authenticate: bearer tokens for the API, sessions for the console.
#[derive(Clone)]
pub struct Guards {
    pub tokens: Arc<dyn Authenticate>,
    pub sessions: Option<Arc<dyn SessionAuth>>,
}

/// A router under construction together with its access table.
pub struct Registry<S = ()> {
    router: Router<S>,
    table: Vec<RouteEntry>,
    guards: Guards,
}

fn filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::DELETE => MethodFilter::DELETE,
        Method::PATCH => MethodFilter::PATCH,
        Method::HEAD => MethodFilter::HEAD,
        Method::OPTIONS => MethodFilter::OPTIONS,
        _ => panic!("route method {m} is not supported by the registry"),
    }
}

impl<S: Clone + Send + Sync + 'static> Registry<S> {
    pub fn new(guards: Guards) -> Self {
        Registry {
            router: Router::new(),
            table: Vec::new(),
            guards,
        }
    }

    /// Adds `method path` served by `handler`, reachable only with `access`.
    pub fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: axum::handler::Handler<T, S>,
        T: 'static,
    {
        let mut mr = on(filter(&method), handler);
        match access {
            Access::Public | Access::Partner => {}
            Access::Api(need) => {
                let tokens = self.guards.tokens.clone();
                let route = format!("{method} {path}");
                mr = mr.route_layer(axum::middleware::from_fn(
                    move |req: Request, next: Next| {
                        let tokens = tokens.clone();
                        let route = route.clone();
                        async move { api_guard(tokens.as_ref(), need, &route, req, next).await }
                    },
                ));
            }
            Access::Console(need) => {
                let sessions = self.guards.sessions.clone();
                mr = mr.route_layer(axum::middleware::from_fn(
                    move |req: Request, next: Next| {
                        let sessions = sessions.clone();
                        async move { console_guard(sessions.as_deref(), need, req, next).await }
                    },
                ));
            }
        }
        self.router = self.router.route(path, mr);
        self.table.push(RouteEntry {
            method,
            path,
            access,
        });
        self
    }

    /// Adds every route of `other` (built with the same kind of state).
    pub fn merge(mut self, other: Registry<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// The table the router was built from.
    pub fn table(&self) -> &[RouteEntry] {
        &self.table
    }

    /// Limits the request body of every route added so far (`None`: no limit,
    /// for intake, which reads and limits its body itself). A declared
    /// `Content-Length` over the limit is answered 413 at once
    /// (tower-http's `RequestBodyLimitLayer`), before the guard and without
    /// waiting for a body that will never be read; a chunked body is cut off at
    /// the limit by the extractors (`DefaultBodyLimit`).
    pub fn body_limit(mut self, bytes: Option<usize>) -> Self {
        self.router = match bytes {
            Some(n) => self
                .router
                .layer(axum::extract::DefaultBodyLimit::max(n))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(n)),
            None => self
                .router
                .layer(axum::extract::DefaultBodyLimit::disable()),
        };
        self
    }

    /// Wraps every route added so far in `layer` (the console's edge checks).
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }

    /// Gives the routes their state: the result can be merged with routes of another state.
    pub fn with_state<S2>(self, state: S) -> Registry<S2> {
        Registry {
            router: self.router.with_state(state),
            table: self.table,
            guards: self.guards,
        }
    }

    /// The finished router and its table.
    pub fn into_parts(self) -> (Router<S>, Vec<RouteEntry>) {
        (self.router, self.table)
    }
}

/// `{"error", "reasons"}` with `WWW-Authenticate` on 401.
fn refusal(status: StatusCode, error: &str, reason: String) -> Response {
    let mut r = (status, Json(json!({ "error": error, "reasons": [reason] }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lienthong\""),
        );
    }
    r
}

fn need_words(need: Need) -> &'static str {
    match need {
        Need::Auditor => "the auditor or admin role",
        Need::Admin => "the admin role",
    }
}

fn allows(need: Need, p: &Principal) -> bool {
    need.allows(&p.role)
}

/// `route` is the registered pattern (`GET /api/v1/messages/{id}`), so a 403
/// reads the same whether or not the named resource exists.
async fn api_guard(
    tokens: &dyn Authenticate,
    need: Need,
    route: &str,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = super::bearer(req.headers()) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no bearer token: send `Authorization: Bearer <token>`; ask an administrator for a token"
                .into(),
        );
    };
    let Some(p) = tokens.authenticate(token) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            super::AuthError::Invalid.to_string(),
        );
    };
    if !allows(need, &p) {
        return refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the token `{}` has role `{}`; {route} needs {}",
                p.name,
                p.role.as_string(),
                need_words(need)
            ),
        );
    }
    req.extensions_mut().insert(p);
    next.run(req).await
}

async fn console_guard(
    sessions: Option<&dyn SessionAuth>,
    need: Need,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let who = match sessions {
        Some(s) => match s.principal(&parts).await {
            Ok(who) => who,
            Err(why) => {
                let mut r = refusal(StatusCode::SERVICE_UNAVAILABLE, "store unavailable", why);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return r;
            }
        },
        None => None,
    };
    match who {
        Some(p) if allows(need, &p) => {
            let mut req = Request::from_parts(parts, body);
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Some(p) => refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{}` has role `{}`; this page needs {}",
                p.name,
                p.role.as_string(),
                need_words(need)
            ),
        ),
        // A browser: to the sign-in page (303 so a refused POST becomes a GET).
        None => Redirect::to("/console/login").into_response(),
    }
}
