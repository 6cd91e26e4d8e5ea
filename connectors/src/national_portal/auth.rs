//! DVCQG session login, cached and re-established when it expires.
//!
//! The session is a bearer-like string the portal returns from the login call. It is
//! kept in a [`Secret`] (it grants access) and shared by all deliveries; the mutex
//! makes a re-login single-flight.

use std::time::Duration;

use bytes::Bytes;
use lienthong_core::transport::{Failure, FailureClass};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::codec;
use crate::secret::Secret;
use crate::wire;

#[derive(Clone)]
struct Session {
    value: Secret,
    since: Instant,
}

/// Logs in and caches the session.
pub struct SessionSource {
    http: reqwest::Client,
    auth_url: String,
    dstcode: String,
    username: String,
    password: Secret,
    ttl: Option<Duration>,
    current: Mutex<Option<Session>>,
}

impl SessionSource {
    pub fn new(
        http: reqwest::Client,
        auth_url: String,
        dstcode: String,
        username: String,
        password: Secret,
        ttl: Option<Duration>,
    ) -> Self {
        SessionSource {
            http,
            auth_url,
            dstcode,
            username,
            password,
            ttl,
            current: Mutex::new(None),
        }
    }

    /// The current session, logging in when there is none or it is older than
    /// the TTL; `true` with it when it was just made for this call (a session
    /// that worked before is the one a portal may have ended without saying so
    /// in a code we know).
    pub async fn session(&self, request: &Bytes) -> Result<(Secret, bool), Failure> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref() {
            if self.ttl.is_none_or(|ttl| s.since.elapsed() < ttl) {
                return Ok((s.value.clone(), false));
            }
        }
        let s = self.login(request).await?;
        *current = Some(s.clone());
        Ok((s.value, true))
    }

    /// Drops `session` from the cache (unless another task already replaced
    /// it): the next call logs in. For a session that a refusal leaves in
    /// doubt, so that no refusal leaves a poisoned session behind.
    pub async fn forget(&self, session: &Secret) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|s| &s.value == session) {
            *current = None;
        }
    }

    /// After the portal refused `expired`: a new session (unless another task already made one).
    pub async fn relogin(&self, expired: &Secret, request: &Bytes) -> Result<Secret, Failure> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref() {
            if &s.value != expired {
                return Ok(s.value.clone());
            }
        }
        *current = None;
        let s = self.login(request).await?;
        *current = Some(s.clone());
        Ok(s.value)
    }

    async fn login(&self, request: &Bytes) -> Result<Session, Failure> {
        let body = json!({"username": self.username, "password": self.password.expose()});
        let builder = self
            .http
            .post(&self.auth_url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header("dstcode", &self.dstcode)
            .body(serde_json::to_vec(&body).expect("JSON serialises"));
        let response = wire::execute(builder, request).await.map_err(|mut f| {
            f.reason = format!("login-{}", f.reason);
            f.detail = format!("DVCQG login at {} failed: {}", self.auth_url, f.detail);
            f
        })?;
        if !wire::is_success(response.status) {
            let mut f = wire::status_failure("the DVCQG login", &response, request);
            f.reason = format!("login-{}", f.reason);
            return Err(f);
        }
        let reply: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let code = codec::error_code(&reply).unwrap_or_default();
        let session = reply
            .get("session")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match session {
            Some(s) if codec::is_success(&code) => {
                tracing::debug!(auth_url = %self.auth_url, "DVCQG session established");
                Ok(Session { value: Secret::new(s), since: Instant::now() })
            }
            _ => Err(wire::failure(
                FailureClass::Permanent,
                format!("dvcqg-login:{}", if code.is_empty() { "none" } else { &code }),
                format!(
                    "DVCQG refused the login (error_code {code:?}: {}); check username, the password and dstcode",
                    codec::message(&reply)
                ),
                Some(response.status),
                request,
                &response.body,
            )),
        }
    }
}
