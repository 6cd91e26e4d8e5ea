//! Console sign-in: server-side sessions, the cookie that names one, and what
//! the console believes about the request's origin.
//!
//! # Why a session and not the token in a cookie
//!
//! The cookie used to hold the raw API token: a long-lived credential that any
//! copy of the cookie (a shared machine, a proxy log, a backup of a browser
//! profile) carried for as long as the token lived, and "sign out" only asked
//! the browser to forget it. Now signing in with a token opens a session:
//!
//! * the browser gets a fresh random id (256 bits from the OS, as hex) in an
//!   `HttpOnly; SameSite=Strict` cookie scoped to `/console`, with `Secure`
//!   when the hub sits behind a TLS proxy (`server.behind_tls_proxy`, or a
//!   trusted proxy's `X-Forwarded-Proto: https`);
//! * the store keeps only the id's SHA-256, the SHA-256 of the token that
//!   signed in, an expiry (`server.console_session_ttl`, default 8 h) and,
//!   after sign-out, the time it ended (`lienthong_store::sessions`), so every
//!   replica sees the same sessions and signing out ends the session for good;
//! * every request looks the session up and checks its token against the
//!   configured tokens again, so revoking or expiring a token ends its sessions;
//! * sign-in and sign-out are trail events (`console.sign_in`, `console.sign_out`).
//!
//! # Origins and proxies
//!
//! [`EdgeLayer`] runs on every console route. It refuses a `POST` that the
//! browser labels cross-site (`Sec-Fetch-Site`) or whose `Origin` is not this
//! hub (sign-in and sign-out included, so a page elsewhere cannot sign a
//! browser in or out), and it adds the security headers to every answer:
//! a strict `Content-Security-Policy` (no scripts at all, styles and forms from
//! the hub only, `frame-ancestors 'none'`), `X-Frame-Options: DENY`,
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (not
//! `no-referrer`: under it Chromium sends `Origin: null` with the console's own
//! form posts, which the origin check must refuse) and
//! `Cache-Control: no-store` (pages carry dossier data). `X-Forwarded-Host` and
//! `X-Forwarded-Proto` are believed only from the peers listed in
//! `server.trusted_proxies`; from anyone else the `Host` header is the hub.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, request::Parts, Extensions, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::admin::access::{Authenticate, Principal};
use crate::auth::routes::SessionAuth;
use crate::config::EdgeTrust;
use crate::store::sessions::SessionRow;
use crate::store::Store;

/// The cookie that carries the session id.
pub const SESSION_COOKIE: &str = "lt_session";

/// The console's Content-Security-Policy: the console has no scripts at all.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The sessions of one hub (shared by its console routes and their guard).
pub struct Sessions {
    pub store: Store,
    pub auth: Arc<dyn Authenticate>,
    pub edge: EdgeTrust,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The peer's address, as the listener recorded it.
pub fn peer_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// What the request says about where it came from, believing the forwarded
/// headers only from a trusted proxy.
pub struct Origin<'a> {
    /// The host (and port) the browser addressed.
    pub host: Option<&'a str>,
    /// The browser spoke HTTPS (to the proxy).
    pub https: bool,
}

pub fn origin_of<'a>(headers: &'a HeaderMap, ext: &Extensions, edge: &EdgeTrust) -> Origin<'a> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let trusted = peer_ip(ext).is_some_and(|ip| edge.trusts(ip));
    let forwarded_host = trusted.then(|| h("x-forwarded-host")).flatten();
    let forwarded_https =
        trusted && h("x-forwarded-proto").is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    Origin {
        host: forwarded_host
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .or_else(|| h("host")),
        https: forwarded_https,
    }
}

/// Why a cross-site post was refused (`None`: it may pass). A request without
/// `Origin` and `Sec-Fetch-Site` (an old browser, a script) relies on the
/// cookie's `SameSite=Strict`.
pub fn cross_site(headers: &HeaderMap, ext: &Extensions, edge: &EdgeTrust) -> Option<&'static str> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if matches!(h("sec-fetch-site"), Some("cross-site" | "same-site")) {
        return Some("sec-fetch-site");
    }
    if let Some(origin) = h("origin") {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_of(headers, ext, edge).host != Some(origin_host) {
            return Some("origin");
        }
    }
    None
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A session that was opened: the cookie to set and who signed in.
pub struct Opened {
    pub set_cookie: String,
    pub who: Principal,
}

impl Sessions {
    fn secure(&self, headers: &HeaderMap, ext: &Extensions) -> bool {
        self.edge.behind_tls_proxy || origin_of(headers, ext, &self.edge).https
    }

    fn cookie_attrs(&self, headers: &HeaderMap, ext: &Extensions) -> &'static str {
        if self.secure(headers, ext) {
            "; Path=/console; HttpOnly; SameSite=Strict; Secure"
        } else {
            "; Path=/console; HttpOnly; SameSite=Strict"
        }
    }

    /// Opens a session for `who`, who has just presented `token`.
    pub async fn open(
        &self,
        token: &str,
        who: Principal,
        headers: &HeaderMap,
        ext: &Extensions,
    ) -> Result<Opened, lienthong_core::Error> {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let now = crate::store::now_ms();
        let ttl = i64::try_from(self.edge.console_session_ttl.as_millis()).unwrap_or(i64::MAX);
        let row = SessionRow {
            id_sha256: sha256_hex(&id),
            token_sha256: sha256_hex(token),
            principal: who.name.clone(),
            created_at: now,
            expires_at: now.saturating_add(ttl),
            revoked_at: None,
        };
        self.store.open_session(row, who.actor()).await?;
        let max_age = self.edge.console_session_ttl.as_secs();
        Ok(Opened {
            set_cookie: format!(
                "{SESSION_COOKIE}={id}{}; Max-Age={max_age}",
                self.cookie_attrs(headers, ext)
            ),
            who,
        })
    }

    /// Ends the request's session, if it has one, and returns the cookie that
    /// makes the browser forget it.
    pub async fn close(
        &self,
        headers: &HeaderMap,
        ext: &Extensions,
        who: Option<&Principal>,
    ) -> Result<String, lienthong_core::Error> {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            let actor = who.map_or_else(|| "console".to_string(), Principal::actor);
            self.store
                .close_session(&sha256_hex(id), crate::store::now_ms(), actor)
                .await?;
        }
        Ok(format!(
            "{SESSION_COOKIE}={}; Max-Age=0",
            self.cookie_attrs(headers, ext)
        ))
    }

    /// The principal of the request's live session.
    pub async fn resolve(&self, headers: &HeaderMap) -> Result<Option<Principal>, String> {
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        // A well-formed id is 64 hex digits; anything else is not looked up.
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row = self.store.session(&sha256_hex(id)).await.map_err(|e| {
            format!(
                "console sessions cannot be read: {e}; the hub retries, reload the page shortly"
            )
        })?;
        let Some(row) = row.filter(|r| r.live(crate::store::now_ms())) else {
            return Ok(None);
        };
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(&row.token_sha256, &mut digest).is_err() {
            return Ok(None);
        }
        Ok(self.auth.authenticate_sha256(&digest))
    }
}

impl SessionAuth for Sessions {
    fn principal<'a>(
        &'a self,
        parts: &'a Parts,
    ) -> BoxFuture<'a, Result<Option<Principal>, String>> {
        Box::pin(self.resolve(&parts.headers))
    }
}

/// The console's edge checks (see the module docs), as an axum middleware.
pub async fn edge_layer(State(s): State<Arc<Sessions>>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST {
        if let Some(why) = cross_site(req.headers(), req.extensions(), &s.edge) {
            tracing::warn!(reason = why, path = %req.uri().path(), "console: cross-site post refused");
            let lang = super::lang_of(req.headers(), None).0;
            let mut r = super::forbidden(
                lang,
                lang.t(
                    "Yêu cầu đến từ một trang khác, đã bị từ chối. Hãy thao tác từ chính bảng điều khiển.",
                    "This request came from another site and was refused. Use the console's own pages.",
                ),
            );
            security_headers(r.headers_mut());
            return r;
        }
    }
    let mut r = next.run(req).await;
    security_headers(r.headers_mut());
    r
}

/// Adds the console's security headers (see the module docs).
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn from(ip: &str) -> Extensions {
        let mut e = Extensions::new();
        e.insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40000)));
        e
    }

    #[test]
    fn forwarded_host_is_believed_only_from_a_trusted_proxy() {
        let edge = EdgeTrust {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..EdgeTrust::default()
        };
        let h = headers(&[
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-host", "hub.stnmt.quangnam.gov.vn"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://hub.stnmt.quangnam.gov.vn"),
        ]);
        let o = origin_of(&h, &from("10.1.2.3"), &edge);
        assert_eq!(o.host, Some("hub.stnmt.quangnam.gov.vn"));
        assert!(o.https);
        assert_eq!(cross_site(&h, &from("10.1.2.3"), &edge), None);
        // The same headers from a peer that is not a listed proxy: Host is the hub.
        let o = origin_of(&h, &from("192.0.2.7"), &edge);
        assert_eq!(o.host, Some("10.0.0.5:8080"));
        assert!(!o.https);
        assert_eq!(cross_site(&h, &from("192.0.2.7"), &edge), Some("origin"));
        // No proxies configured: never believed.
        assert_eq!(
            cross_site(&h, &from("10.1.2.3"), &EdgeTrust::default()),
            Some("origin")
        );
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let edge = EdgeTrust::default();
        let e = from("127.0.0.1");
        let ok = |p: &[(&'static str, &'static str)]| cross_site(&headers(p), &e, &edge).is_none();
        assert!(ok(&[]), "no headers: SameSite=Strict is the protection");
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ]));
        assert!(!ok(&[("host", "127.0.0.1:8080"), ("origin", "null")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
    }
}
