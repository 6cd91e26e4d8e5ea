//! The national-portal [`Transport`]: session, POST, one re-login when the
//! session expired or may have.
//!
//! Which answers mean "session expired" is assumed (the reference does not
//! say; a portal written independently from the public description answered
//! `-1`, and a gateway may answer HTTP 403, where the defaults list `401`). So the connector does not rely on the list alone: any non-success
//! `error_code` (or HTTP 401/403) to a session that was used before is a
//! doubt, settled by one re-login and one resend, and only the second answer
//! is classified. A permanent answer also drops the cached session, so a
//! refusal never leaves a poisoned session behind (issue 14).

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use lienthong_core::transport::{Failure, FailureClass, Outbound, Receipt, Transport};
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::auth::SessionSource;
use super::classify::{classify, Verdict};
use super::{codec, NationalPortalConfig, SYSTEM};
use crate::error::ConnectorError;
use crate::secret::Secret;
use crate::wire;

/// Sends mapped messages to DVCQG.
pub struct NationalPortalClient {
    config: NationalPortalConfig,
    http: reqwest::Client,
    sessions: SessionSource,
}

enum Attempt {
    Done(Result<Receipt, Failure>),
    /// The portal answered with a non-success `error_code`: a rejection, or
    /// an expired session under a code we do not know.
    Refused(Failure),
    /// HTTP 401/403 or a listed expiry code.
    Expired(Bytes),
}

impl NationalPortalClient {
    pub fn new(config: NationalPortalConfig) -> Result<Self, ConnectorError> {
        let password = Secret::load(
            &format!("connectors.{SYSTEM}.password"),
            config.password_env.as_deref(),
            config.password_file.as_deref(),
        )?;
        Self::with_password(config, password)
    }

    pub fn with_password(
        config: NationalPortalConfig,
        password: Secret,
    ) -> Result<Self, ConnectorError> {
        let http = wire::build_client(SYSTEM, Duration::from_millis(config.timeout_ms))?;
        let sessions = SessionSource::new(
            http.clone(),
            config.auth_url.clone(),
            config.dstcode.clone(),
            config.username.clone(),
            password,
            config.session_ttl_secs.map(Duration::from_secs),
        );
        Ok(NationalPortalClient {
            config,
            http,
            sessions,
        })
    }

    async fn attempt(&self, out: &Outbound, session: &Secret) -> Attempt {
        let (body, redacted) = match codec::with_session(
            &out.body,
            session.expose(),
            self.config.madonvi.as_deref(),
        ) {
            Ok(pair) => pair,
            Err(e) => {
                return Attempt::Done(Err(wire::failure(
                    FailureClass::Permanent,
                    "bad-body",
                    e,
                    None,
                    &out.body,
                    b"",
                )))
            }
        };
        let recorded = Bytes::from(redacted);
        let builder = self
            .http
            .post(&self.config.integration_url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header("dstcode", &self.config.dstcode)
            .header("Idempotency-Key", &out.idempotency_key)
            .body(body);
        let response = match wire::execute(builder, &recorded).await {
            Ok(r) => r,
            Err(f) => return Attempt::Done(Err(f)),
        };
        if response.status == 401 || response.status == 403 {
            return Attempt::Expired(recorded);
        }
        if !wire::is_success(response.status) {
            return Attempt::Done(Err(wire::status_failure("DVCQG", &response, &recorded)));
        }
        let reply: Value = match serde_json::from_slice(&response.body) {
            Ok(v) => v,
            Err(e) => {
                return Attempt::Done(Err(wire::failure(
                    FailureClass::Permanent,
                    "unexpected-reply",
                    format!("DVCQG answered HTTP {} with a body that is not JSON ({e}); check integration_url", response.status),
                    Some(response.status),
                    &recorded,
                    &response.body,
                )))
            }
        };
        let code = codec::error_code(&reply).unwrap_or_default();
        match classify(
            &code,
            &self.config.session_expired_codes,
            &self.config.transient_error_codes,
        ) {
            Verdict::Ok => Attempt::Done(Ok(wire::receipt(&response, &recorded, None))),
            Verdict::SessionExpired => Attempt::Expired(recorded),
            Verdict::Failed(class, reason) => {
                let what = if class == FailureClass::Transient {
                    "transient: worth retrying"
                } else {
                    "DVCQG rejected the message; fix the data or the mapping and replay"
                };
                let mut f = wire::failure(
                    class,
                    reason,
                    format!(
                        "DVCQG error_code {code:?}: {} ({what})",
                        codec::message(&reply)
                    ),
                    Some(response.status),
                    &recorded,
                    &response.body,
                );
                f.retry_after = wire::retry_after(&response.headers);
                Attempt::Refused(f)
            }
        }
    }

    async fn deliver(&self, out: &Outbound) -> Result<Receipt, Failure> {
        let (session, fresh) = self.sessions.session(&out.body).await?;
        let recorded = match self.attempt(out, &session).await {
            Attempt::Done(r) => return r,
            // A session made for this call: its refusal is believed.
            Attempt::Refused(f) if fresh => return Err(self.settle(f, &session).await),
            Attempt::Refused(f) => {
                tracing::info!(delivery = %out.delivery_id, reason = %f.reason,
                    "DVCQG refused a session used before; logging in again once before believing it");
                f.request
            }
            Attempt::Expired(recorded) => {
                tracing::info!(delivery = %out.delivery_id, "DVCQG session expired; logging in again once");
                recorded
            }
        };
        let renewed = self.sessions.relogin(&session, &recorded).await?;
        match self.attempt(out, &renewed).await {
            Attempt::Done(r) => r,
            Attempt::Refused(f) => Err(self.settle(f, &renewed).await),
            Attempt::Expired(recorded) => {
                self.sessions.forget(&renewed).await;
                Err(wire::failure(
                    FailureClass::Transient,
                    "dvcqg-session-rejected",
                    "DVCQG refused a session it had just issued; transient: worth retrying",
                    None,
                    &recorded,
                    b"",
                ))
            }
        }
    }

    /// A refusal that stands: a permanent one drops the session it came with.
    async fn settle(&self, f: Failure, session: &Secret) -> Failure {
        if f.class == FailureClass::Permanent {
            self.sessions.forget(session).await;
        }
        f
    }
}

impl Transport for NationalPortalClient {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(self.deliver(out))
    }
}
