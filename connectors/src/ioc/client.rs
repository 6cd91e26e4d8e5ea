//! The IOC [`Transport`]: batched observations, immediate alerts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use lienthong_core::transport::{Failure, FailureClass, Outbound, Receipt, Transport};
use reqwest::header::CONTENT_TYPE;
use tokio::sync::{mpsc, oneshot};

use super::auth::ApiKey;
use super::batch::{self, Batch, Item};
use super::{classify, codec, IocConfig, SYSTEM};
use crate::error::ConnectorError;
use crate::wire;

struct Inner {
    config: IocConfig,
    http: reqwest::Client,
    api_key: ApiKey,
}

impl Inner {
    async fn post(&self, path: &str, body: Bytes, key: &str) -> Result<Receipt, Failure> {
        let url = format!("{}{}", self.config.base_url.trim_end_matches('/'), path);
        let builder = self
            .http
            .post(url)
            .header(self.config.api_key_header.as_str(), self.api_key.expose())
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header("Idempotency-Key", key)
            .body(body.clone());
        let response = wire::execute(builder, &body).await?;
        if !classify::is_success(response.status) {
            return Err(classify::status_failure("the IOC", &response, &body));
        }
        Ok(wire::receipt(&response, &body, None))
    }

    async fn flush(&self, batch: Batch) -> Result<Receipt, Failure> {
        let ids = codec::batch_ids(&batch.observations);
        let body = Bytes::from(codec::batch_body(
            &self.config.source,
            &ids.message_id,
            batch.observations,
        ));
        self.post(&self.config.observations_path, body, &ids.key)
            .await
    }
}

/// The key travels as an HTTP header value, which must be visible ASCII
/// (RFC 9110 field-value; reqwest would refuse it at the first request, or a
/// gateway would mangle it), so a key with anything else can never authenticate.
/// Refuse it when the connector is built, before the hub starts, naming where it
/// came from and the position of the first bad character, never the key.
fn check_key(key: &ApiKey) -> Result<(), ConnectorError> {
    match key
        .expose()
        .chars()
        .position(|c| !c.is_ascii_graphic())
    {
        None => Ok(()),
        Some(i) => Err(ConnectorError::Secret {
            what: format!("connectors.{SYSTEM}.api_key"),
            message: format!(
                "character {} of the API key is not visible ASCII (a space, a control character or a non-ASCII letter); \
                 an API key travels in the `api_key_header` HTTP header, whose value must be visible ASCII (0x21-0x7E). \
                 Check the file or environment variable named by api_key_file/api_key_env (a stray space, a BOM, or a key typed with diacritics)",
                i + 1
            ),
        }),
    }
}

/// Sends to the IOC. Must be created inside a Tokio runtime (it spawns the batcher).
pub struct IocClient {
    inner: Arc<Inner>,
    batches: mpsc::Sender<Item>,
}

impl IocClient {
    pub fn new(config: IocConfig) -> Result<Self, ConnectorError> {
        let key = ApiKey::load(
            &format!("connectors.{SYSTEM}.api_key"),
            config.api_key_env.as_deref(),
            config.api_key_file.as_deref(),
        )?;
        Self::with_key(config, key)
    }

    pub fn with_key(config: IocConfig, api_key: ApiKey) -> Result<Self, ConnectorError> {
        check_key(&api_key)?;
        if config.batch_size == 0 || config.queue_capacity == 0 {
            return Err(ConnectorError::config(
                SYSTEM,
                "batch_size and queue_capacity must be at least 1",
            ));
        }
        let http = wire::build_client(SYSTEM, Duration::from_millis(config.timeout_ms))?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let inner = Arc::new(Inner {
            config,
            http,
            api_key,
        });
        let worker = Arc::clone(&inner);
        let (size, linger) = (
            inner.config.batch_size,
            Duration::from_millis(inner.config.linger_ms),
        );
        tokio::spawn(async move {
            batch::run(rx, size, linger, |b| {
                let w = Arc::clone(&worker);
                async move { w.flush(b).await }
            })
            .await
        });
        Ok(IocClient { inner, batches: tx })
    }

    async fn deliver(&self, out: &Outbound) -> Result<Receipt, Failure> {
        let cfg = &self.inner.config;
        if !cfg
            .batch_message_types
            .iter()
            .any(|t| t == &out.message_type)
        {
            let path = cfg.paths.get(&out.message_type).unwrap_or(&cfg.alerts_path);
            return self
                .inner
                .post(path, out.body.clone(), &out.idempotency_key)
                .await;
        }
        let observations = codec::observations(&out.body).map_err(|e| {
            wire::failure(FailureClass::Permanent, "bad-body", e, None, &out.body, b"")
        })?;
        let (reply, outcome) = oneshot::channel();
        let item = Item {
            observations,
            reply,
        };
        let stopped = || {
            wire::failure(
                FailureClass::Transient,
                "batcher-stopped",
                "the IOC batcher task is not running (the hub is shutting down); transient: worth retrying",
                None,
                &batch::no_request(),
                b"",
            )
        };
        self.batches.send(item).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

impl Transport for IocClient {
    fn send<'a>(&'a self, out: &'a Outbound) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(self.deliver(out))
    }
}
