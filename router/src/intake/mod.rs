//! Intake: from an HTTP request to a durably accepted message (or a recorded rejection).
//!
//! The order of checks is chosen so that each failure gets the most useful
//! status, and so that nothing expensive happens for a caller who is not allowed:
//!
//! 1. shutting down → 503; unknown system → 404; authentication → 401;
//!    over the partner's rate → 429 with `Retry-After` (governor, keyed per partner);
//! 2. unknown message type → 404; content type not matching the format → 415;
//!    (body over [`crate::limits::MAX_BODY_BYTES`] → 413, checked by the server);
//! 3. decode → 400 when malformed; validate against the schema → 422 with every violation;
//! 4. enrichment ([`Enricher`]), routes, then for each target: map, validate the
//!    output against the target schema, encode → 422 listing every failure
//!    (the route-and-map plan, in `intake/plan.rs`);
//! 5. one transaction: raw body + parsed tree + every delivery + trail events,
//!    then `202 {"id", "correlation_id"}`.
//!
//! Idempotency: when the schema declares a natural key (`dedupe_key` pointers, e.g.
//! dossier code + status + filing time, for partners that send no message id), that
//! key, whatever `Idempotency-Key` header came with the message (a resend without
//! one, or with a new one, is still the same message); otherwise the
//! `Idempotency-Key` header, else the partner's message id (the schema's
//! `message_id` pointer). A resend of an accepted key gets the original id back
//! (`"duplicate": true`) and causes no second delivery.
//!
//! Every rejection answers `{"error", "reasons": [...]}` and is stored as a
//! `rejected` message with its trail event; flow control (429, 503) is not.

pub mod auth;
mod enrich;
mod plan;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{json, Value};

pub use enrich::{Enriched, Enricher, Enrichers, ExtraMessage};
use plan::Plan;

use crate::audit::TrailEvent;
use crate::codec::Format;
use crate::config::{Config, PartnerAuth};
use crate::queue::DeliveryQueue;
use crate::routes::Routes;
use crate::schema::{MessageSchema, SchemaRegistry};
use crate::store::{now_ms, AcceptOutcome, NewMessage, RejectedMessage, Store};
use crate::Error;

/// One inbound HTTP request, already read.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    pub system: String,
    pub message_type: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct IntakeResponse {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
    /// Answer with `Connection: close` (the hub is draining: a keep-alive client
    /// must open its next connection elsewhere rather than meet an EOF here).
    pub close: bool,
}

impl IntakeResponse {
    pub fn error(status: StatusCode, error: &str, reasons: Vec<String>) -> Self {
        Self {
            status,
            body: json!({ "error": error, "reasons": reasons }),
            retry_after: None,
            close: false,
        }
    }
}

/// What the headers alone established (step 1), before a byte of the body is read.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    /// The partner proves itself with an HMAC signature over the body, which can
    /// only be checked once the body is read ([`Intake::handle_admitted`]).
    signature_pending: bool,
}

impl Admitted {
    /// Authenticated from the headers (a token or an API key), or let in by open
    /// intake: such a caller's rejections are recorded. A signature not yet checked
    /// is not: an unauthenticated caller must not be able to write to the store.
    pub fn is_authenticated(&self) -> bool {
        !self.signature_pending
    }
}

/// The intake service; shared by all requests.
pub struct Intake {
    pub schemas: Arc<SchemaRegistry>,
    pub routes: Arc<Routes>,
    /// When set (by `serve`), the routes and mappings of the currently active
    /// generation: read once per message, so a hot swap never splits a message.
    pub active: Option<Arc<crate::admin::ActiveMappings>>,
    pub store: Store,
    pub queue: Arc<dyn DeliveryQueue>,
    partners: HashMap<String, PartnerAuth>,
    /// `tokens:` from the config: a `partner:<system>` (or admin) token may submit as that system.
    tokens: Arc<crate::auth::TokenStore>,
    allow_unauthenticated: bool,
    max_skew: Duration,
    limiter: DefaultKeyedRateLimiter<String>,
    partner_limiters: HashMap<String, governor::DefaultDirectRateLimiter>,
    enrichers: Enrichers,
    accepting: AtomicBool,
    /// The in-flight body budget in KiB (`intake.max_inflight_body_mib`): one
    /// permit per KiB of a body being read or handled.
    body_budget: Arc<tokio::sync::Semaphore>,
    body_budget_kib: usize,
}

/// How long a request waits for room in the body budget before it is shed.
const BODY_BUDGET_WAIT: Duration = Duration::from_secs(5);

fn quota((per, burst): (u32, u32)) -> Quota {
    Quota::per_second(NonZeroU32::new(per.max(1)).expect("max 1"))
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("max 1"))
}

/// Content types accepted for a wire format (parameters such as `charset` ignored).
pub fn content_types(format: Format) -> &'static [&'static str] {
    match format {
        Format::Json => &["application/json"],
        Format::Xml | Format::TaxGip => &["application/xml", "text/xml", "application/soap+xml"],
        Format::StationFile => &["text/plain", "application/octet-stream"],
    }
}

/// `Retry-After` (seconds) on a 503 for a store that cannot be written or a
/// hub that is draining. While the database is away the store's writer tries
/// a new connection at most every 0.5 s and waits up to 2 s for each, so a
/// partner that waits this long meets at least one fresh attempt: after a
/// routine database restart its retry is accepted.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

struct Rejection {
    status: StatusCode,
    error: &'static str,
    reasons: Vec<String>,
    correlation_id: Option<String>,
    parsed: Option<String>,
}

impl Rejection {
    fn new(status: StatusCode, error: &'static str, reasons: Vec<String>) -> Self {
        Self {
            status,
            error,
            reasons,
            correlation_id: None,
            parsed: None,
        }
    }
}

fn reasons_of(e: &Error) -> Vec<String> {
    match e {
        Error::Schema { schema, violations } => violations
            .iter()
            .map(|v| format!("{schema}: {v}"))
            .collect(),
        other => vec![other.to_string()],
    }
}

impl Intake {
    pub fn new(
        config: &Config,
        schemas: Arc<SchemaRegistry>,
        routes: Arc<Routes>,
        store: Store,
        queue: Arc<dyn DeliveryQueue>,
        enrichers: Enrichers,
    ) -> Self {
        let partner_limiters = config
            .partners
            .iter()
            .filter_map(|(id, p)| p.rate.map(|r| (id.clone(), RateLimiter::direct(quota(r)))))
            .collect();
        Self {
            schemas,
            routes,
            store,
            queue,
            partners: config
                .partners
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            tokens: config.tokens.clone(),
            allow_unauthenticated: config.allow_unauthenticated,
            max_skew: config.max_clock_skew,
            limiter: RateLimiter::keyed(quota(config.intake_rate)),
            partner_limiters,
            enrichers,
            accepting: AtomicBool::new(true),
            active: None,
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                (config.max_inflight_body_bytes / 1024).max(1),
            )),
            body_budget_kib: (config.max_inflight_body_bytes / 1024).max(1),
        }
    }

    /// Route and map through the admin layer's swap handle instead of the fixed routes.
    pub fn with_active_mappings(mut self, active: Arc<crate::admin::ActiveMappings>) -> Self {
        self.active = Some(active);
        self
    }

    /// Stop accepting (shutdown): every later request gets 503.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Handles one request end to end (the drop folders and the hub's own
    /// reports; HTTP intake calls [`Intake::admit`] before it reads the body).
    pub async fn handle(&self, req: InboundRequest) -> IntakeResponse {
        match self.admit(&req.system, &req.headers) {
            Ok(admitted) => self.handle_admitted(req, admitted).await,
            Err(resp) => resp,
        }
    }

    /// Step 1 of the module docs, on the headers alone: shutting down, unknown
    /// system, authentication, the partner's rate, the queue's backlog. Nothing
    /// is stored for a request refused here.
    pub fn admit(&self, system: &str, headers: &HeaderMap) -> Result<Admitted, IntakeResponse> {
        if !self.is_accepting() {
            let mut r = IntakeResponse::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
                vec!["the hub is shutting down; retry shortly".into()],
            );
            r.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
            r.close = true;
            return Err(r);
        }
        self.flow_control(system, headers).inspect_err(|_| {
            metrics::counter!("lienthong_throttled_total", "system" => self.metric_label(system))
                .increment(1);
        })
    }

    /// The `system` label of a metric: a configured system, or `unknown`, so that
    /// requests to made-up paths cannot create new series without end.
    pub fn metric_label(&self, system: &str) -> String {
        if self.schemas.iter().any(|s| s.system == system) {
            system.to_string()
        } else {
            "unknown".to_string()
        }
    }

    /// Steps 2 to 5 for a request [`Intake::admit`] let in, its body now read.
    pub async fn handle_admitted(&self, req: InboundRequest, admitted: Admitted) -> IntakeResponse {
        let t0 = Instant::now();
        let received_at = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let system = self.metric_label(&req.system);
        if admitted.signature_pending {
            if let Some(p) = self.partners.get(&req.system) {
                if let Err(why) =
                    auth::check(p, &req.headers, &req.body, self.max_skew, now_ms() / 1000)
                {
                    metrics::counter!("lienthong_throttled_total", "system" => system).increment(1);
                    return IntakeResponse::error(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        vec![why],
                    );
                }
            }
        }
        let result = self.process(&id, received_at, &req).await;
        let resp = match result {
            Ok(resp) => {
                metrics::counter!("lienthong_received_total", "system" => system.clone())
                    .increment(1);
                resp
            }
            Err(rej) => {
                metrics::counter!("lienthong_rejected_total", "system" => system.clone(), "status" => rej.status.as_u16().to_string()).increment(1);
                tracing::info!(message_id = %id, system = %req.system, message_type = %req.message_type, status = rej.status.as_u16(),
                    reasons = rej.reasons.len(), "rejected");
                self.record_rejection(&id, received_at, &req, &rej).await
            }
        };
        metrics::histogram!("lienthong_accept_latency_seconds", "system" => system)
            .record(t0.elapsed().as_secs_f64());
        resp
    }

    /// Reserves `bytes` of the in-flight body budget (`intake.max_inflight_body_mib`)
    /// for a body about to be read; the permit is held until the answer is sent.
    /// A hub busy with large bodies makes the caller wait briefly, then sheds it
    /// with 503 and `Retry-After` rather than read more than the budget.
    pub async fn reserve_body(
        &self,
        bytes: usize,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, IntakeResponse> {
        let want = bytes.div_ceil(1024).clamp(1, self.body_budget_kib) as u32;
        let acquire = self.body_budget.clone().acquire_many_owned(want);
        match tokio::time::timeout(BODY_BUDGET_WAIT, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                let mut r = IntakeResponse::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    vec![format!(
                        "the hub is reading as many large bodies as its memory budget allows \
                         (intake.max_inflight_body_mib = {} MiB); retry shortly",
                        self.body_budget_kib / 1024
                    )],
                );
                r.retry_after = Some(1);
                Err(r)
            }
        }
    }

    /// Unknown system (404), authentication (401) and the partner's rate (429),
    /// from the headers alone. These are answered before anything is stored and
    /// before the body is read: an unauthenticated flood must neither fill the
    /// store nor the hub's memory.
    fn flow_control(&self, system: &str, headers: &HeaderMap) -> Result<Admitted, IntakeResponse> {
        if !self.schemas.iter().any(|s| s.system == system) {
            return Err(IntakeResponse::error(
                StatusCode::NOT_FOUND,
                "unknown system",
                vec![format!("no schemas are registered for system `{system}`")],
            ));
        }
        // A configured token (router::auth) with role `partner:<system>` or `admin` is enough;
        // a valid token of another partner is refused with 403. Otherwise the partner's own
        // credentials (`partners.<system>`) are checked.
        let by_token = match self.tokens.authorize_submit(headers, system, now_ms()) {
            Ok(_) => true,
            Err(e @ crate::auth::AuthError::Forbidden { .. }) => {
                return Err(IntakeResponse::error(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    vec![e.to_string()],
                ));
            }
            Err(_) => false,
        };
        let mut admitted = Admitted {
            signature_pending: false,
        };
        match self.partners.get(system) {
            _ if by_token => {}
            Some(p) => match auth::check_headers(p, headers, self.max_skew, now_ms() / 1000) {
                Ok(auth::HeaderCheck::Authenticated) => {}
                Ok(auth::HeaderCheck::SignatureToVerify) => admitted.signature_pending = true,
                Err(why) => {
                    return Err(IntakeResponse::error(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        vec![why],
                    ))
                }
            },
            None if self.allow_unauthenticated => {}
            None => {
                return Err(IntakeResponse::error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    vec![format!(
                        "no credentials are configured for partner `{system}`: add partners.{system} to the config"
                    )],
                ))
            }
        }
        let limited = match self.partner_limiters.get(system) {
            Some(l) => l.check().map_err(|n| {
                n.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            }),
            None => self.limiter.check_key(&system.to_string()).map_err(|n| {
                n.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            }),
        };
        if let Err(wait) = limited {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = IntakeResponse::error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limited",
                vec![format!(
                    "partner `{}` is over its intake rate; retry after {secs}s",
                    system
                )],
            );
            r.retry_after = Some(secs);
            return Err(r);
        }
        // A broker backend refuses while too many deliveries wait unpublished (broker away).
        if let Err(e) = self.queue.admit() {
            let mut r = IntakeResponse::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue backlog",
                vec![e.to_string()],
            );
            r.retry_after = Some(5);
            return Err(r);
        }
        Ok(admitted)
    }

    /// Steps 2 to 5 of the module docs, for a caller already let in.
    async fn process(
        &self,
        id: &str,
        received_at: i64,
        req: &InboundRequest,
    ) -> Result<IntakeResponse, Rejection> {
        let schema = self.message_schema(req)?;
        check_content_type(&schema, &req.headers)?;
        let tree = decode(&schema, req)?;
        let unprocessable = Unprocessable::of(&schema, &tree);
        schema
            .validate(&tree)
            .map_err(|e| unprocessable.reject("schema validation failed", reasons_of(&e)))?;
        let Enriched { tree, extra } = self
            .enrich(req, tree)
            .map_err(|e| unprocessable.reject("enrichment failed", reasons_of(&e)))?;
        let keys = Keys::of(&schema, &tree, id, &req.headers);
        let plan = self
            .plan(id, received_at, &req.system, &req.message_type, &tree)
            .map_err(|reasons| unprocessable.reject("mapping failed", reasons))?;
        let destinations: Vec<String> = plan
            .deliveries
            .iter()
            .map(|d| d.destination.clone())
            .collect();
        let correlation_id = keys.correlation_id.clone();
        let msg = accepted_message(id, received_at, req, &tree, keys, plan);
        let outcome = self.store.accept(msg).await.map_err(|e| {
            Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable",
                vec![e.to_string()],
            )
        })?;
        Ok(self
            .answer(id, req, &correlation_id, outcome, &destinations, extra)
            .await)
    }

    /// The schema of the message type (404 when the system has no such type).
    fn message_schema(&self, req: &InboundRequest) -> Result<Arc<MessageSchema>, Rejection> {
        self.schemas
            .find(&req.system, &req.message_type)
            .ok_or_else(|| {
                Rejection::new(
                    StatusCode::NOT_FOUND,
                    "unknown message type",
                    vec![format!(
                        "system `{}` has no message type `{}`",
                        req.system, req.message_type
                    )],
                )
            })
    }

    /// The message type's enricher, if one is registered.
    fn enrich(&self, req: &InboundRequest, tree: Value) -> crate::Result<Enriched> {
        match self.enrichers.get(&req.system, &req.message_type) {
            Some(e) => e.enrich(&req.system, &req.message_type, tree),
            None => Ok(Enriched {
                tree,
                extra: Vec::new(),
            }),
        }
    }

    /// The answer to a committed message: the original id for a duplicate; for a new
    /// one, the queue is told and enrichment's extra messages are accepted in turn.
    async fn answer(
        &self,
        id: &str,
        req: &InboundRequest,
        correlation_id: &str,
        outcome: AcceptOutcome,
        destinations: &[String],
        extra: Vec<ExtraMessage>,
    ) -> IntakeResponse {
        match outcome {
            AcceptOutcome::Duplicate {
                id: original,
                correlation_id,
            } => {
                tracing::info!(message_id = %original, correlation_id = %correlation_id, "duplicate; original id returned");
                IntakeResponse {
                    status: StatusCode::ACCEPTED,
                    body: json!({ "id": original, "correlation_id": correlation_id, "duplicate": true }),
                    retry_after: None,
                    close: false,
                }
            }
            AcceptOutcome::Accepted { deliveries, .. } => {
                if let Err(e) = self.queue.committed(destinations).await {
                    // Committed already; the queue relays from the outbox later.
                    tracing::warn!(message_id = %id, error = %e, "queue notification failed");
                }
                tracing::info!(message_id = %id, correlation_id = %correlation_id, system = %req.system,
                    message_type = %req.message_type, deliveries, "accepted");
                for x in extra {
                    self.accept_extra(id, &req.system, x).await;
                }
                IntakeResponse {
                    status: StatusCode::ACCEPTED,
                    body: json!({ "id": id, "correlation_id": correlation_id }),
                    retry_after: None,
                    close: false,
                }
            }
        }
    }

    /// An extra message produced by enrichment (e.g. a threshold alert): stored and
    /// routed as its own accepted message, linked to its parent in the trail.
    async fn accept_extra(&self, parent: &str, system: &str, x: ExtraMessage) {
        let id = uuid::Uuid::now_v7().to_string();
        let at = now_ms();
        let correlation_id = self
            .schemas
            .find(system, &x.message_type)
            .and_then(|s| s.correlation_id(&x.tree))
            .unwrap_or_else(|| parent.to_string());
        let Plan {
            deliveries,
            mut trail,
        } = match self.plan(&id, at, system, &x.message_type, &x.tree) {
            Ok(p) => p,
            Err(reasons) => {
                tracing::error!(parent = %parent, message_type = %x.message_type, ?reasons, "an enrichment message could not be mapped; dropped");
                return;
            }
        };
        trail.insert(0, TrailEvent {
            at,
            message_id: Some(id.clone()),
            delivery_id: None,
            kind: "received",
            actor: "enrichment".into(),
            detail: json!({ "system": system, "message_type": x.message_type, "parent": parent, "correlation_id": correlation_id }),
        });
        let destinations: Vec<String> = deliveries.iter().map(|d| d.destination.clone()).collect();
        let parsed = x.tree.to_string();
        let msg = NewMessage {
            id: id.clone(),
            received_at: at,
            source_system: system.to_string(),
            message_type: x.message_type,
            correlation_id,
            idempotency_key: Some(format!("{parent}/{}", x.key)),
            partner_message_id: None,
            content_type: "application/json".into(),
            raw: Bytes::from(parsed.clone()),
            parsed,
            deliveries,
            trail,
        };
        match self.store.accept(msg).await {
            Ok(_) => {
                let _ = self.queue.committed(&destinations).await;
            }
            Err(e) => {
                tracing::error!(parent = %parent, error = %e, "storing an enrichment message failed")
            }
        }
    }

    async fn record_rejection(
        &self,
        id: &str,
        received_at: i64,
        req: &InboundRequest,
        rej: &Rejection,
    ) -> IntakeResponse {
        let mut resp = IntakeResponse::error(rej.status, rej.error, rej.reasons.clone());
        if rej.status == StatusCode::SERVICE_UNAVAILABLE {
            // Nothing was stored (the store is what failed): tell the partner
            // when to come back rather than leave it to guess or hammer.
            resp.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
            return resp;
        }
        let r = RejectedMessage {
            id: id.to_string(),
            received_at,
            source_system: req.system.clone(),
            message_type: req.message_type.clone(),
            correlation_id: rej.correlation_id.clone(),
            content_type: header(&req.headers, "content-type").unwrap_or_default(),
            raw: req.body.clone(),
            parsed: rej.parsed.clone(),
            status: rej.status.as_u16(),
            reasons: rej.reasons.clone(),
        };
        if let Err(e) = self.store.reject(r).await {
            tracing::error!(message_id = %id, error = %e, "recording a rejection failed");
        }
        let mut resp = resp;
        resp.body["id"] = json!(id);
        resp
    }

    /// A rejection decided outside [`Intake::handle`] (413 by the server).
    /// It is recorded only for a caller that authenticated from its headers:
    /// an unauthenticated caller must not be able to write to the store.
    #[allow(clippy::too_many_arguments)]
    pub async fn reject_early(
        &self,
        system: &str,
        message_type: &str,
        headers: &HeaderMap,
        admitted: Admitted,
        status: StatusCode,
        error: &'static str,
        reason: String,
    ) -> IntakeResponse {
        metrics::counter!("lienthong_rejected_total", "system" => self.metric_label(system), "status" => status.as_u16().to_string()).increment(1);
        if !admitted.is_authenticated() {
            return IntakeResponse::error(status, error, vec![reason]);
        }
        let req = InboundRequest {
            system: system.into(),
            message_type: message_type.into(),
            headers: headers.clone(),
            body: Bytes::new(),
        };
        self.record_rejection(
            &uuid::Uuid::now_v7().to_string(),
            now_ms(),
            &req,
            &Rejection::new(status, error, vec![reason]),
        )
        .await
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn check_content_type(schema: &MessageSchema, headers: &HeaderMap) -> Result<(), Rejection> {
    let allowed = content_types(schema.format);
    let given = header(headers, "content-type").unwrap_or_default();
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = allowed.contains(&essence.as_str())
        || (schema.format == Format::Json && essence.ends_with("+json"));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
            vec![format!(
                "{}/{} is {} and needs Content-Type {}; got `{}`",
                schema.system,
                schema.message_type,
                schema.format.as_str(),
                allowed.join(" or "),
                if given.is_empty() { "(none)" } else { &given }
            )],
        ))
    }
}

/// The body decoded into the tree (400 when malformed).
fn decode(schema: &MessageSchema, req: &InboundRequest) -> Result<Value, Rejection> {
    let file_name = req.headers.get("x-file-name").and_then(|v| v.to_str().ok());
    schema
        .decode_with(&req.body, file_name)
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, "malformed body", reasons_of(&e)))
}

/// A 422 about a decoded message: the rejection keeps the tree as parsed (before
/// enrichment) and its correlation id, so the trail can find it.
struct Unprocessable {
    correlation_id: Option<String>,
    parsed: String,
}

impl Unprocessable {
    fn of(schema: &MessageSchema, tree: &Value) -> Self {
        Self {
            correlation_id: schema.correlation_id(tree),
            parsed: tree.to_string(),
        }
    }

    fn reject(&self, error: &'static str, reasons: Vec<String>) -> Rejection {
        Rejection {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error,
            reasons,
            correlation_id: self.correlation_id.clone(),
            parsed: Some(self.parsed.clone()),
        }
    }
}

/// What identifies an accepted message (see "Idempotency" in the module docs).
struct Keys {
    correlation_id: String,
    partner_message_id: Option<String>,
    idempotency_key: Option<String>,
}

impl Keys {
    fn of(schema: &MessageSchema, tree: &Value, id: &str, headers: &HeaderMap) -> Self {
        let correlation_id = schema
            .correlation_id(tree)
            .unwrap_or_else(|| id.to_string());
        let partner_message_id = schema.message_id_of(tree);
        // A declared natural key identifies the message whatever header came with
        // it (a resend with no key, or a new one, is still the same filing).
        let idempotency_key = schema.dedupe_key_of(tree).or_else(|| {
            headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| partner_message_id.clone())
        });
        Self {
            correlation_id,
            partner_message_id,
            idempotency_key,
        }
    }
}

/// The message as committed: raw body, parsed (enriched) tree, the plan's
/// deliveries, and the trail opening with `received`.
fn accepted_message(
    id: &str,
    received_at: i64,
    req: &InboundRequest,
    tree: &Value,
    keys: Keys,
    plan: Plan,
) -> NewMessage {
    let content_type = header(&req.headers, "content-type");
    let received = TrailEvent {
        at: received_at,
        message_id: Some(id.to_string()),
        delivery_id: None,
        kind: "received",
        actor: format!("partner:{}", req.system),
        detail: json!({
            "system": req.system, "message_type": req.message_type, "bytes": req.body.len(),
            "content_type": content_type, "correlation_id": keys.correlation_id,
            "idempotency_key": keys.idempotency_key, "partner_message_id": keys.partner_message_id,
            "raw_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&req.body)),
        }),
    };
    let mut trail = plan.trail;
    trail.insert(0, received);
    NewMessage {
        id: id.to_string(),
        received_at,
        source_system: req.system.clone(),
        message_type: req.message_type.clone(),
        correlation_id: keys.correlation_id,
        idempotency_key: keys.idempotency_key,
        partner_message_id: keys.partner_message_id,
        content_type: content_type.unwrap_or_default(),
        raw: req.body.clone(),
        parsed: tree.to_string(),
        deliveries: plan.deliveries,
        trail,
    }
}
