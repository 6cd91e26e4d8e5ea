//! Starting and stopping a whole hub.
//!
//! [`Hub::start`] is the I/O half of the config's two phases: it loads schemas,
//! mappings and routes (failing with every diagnostic), opens the store (running
//! migrations), releases leases a crashed predecessor left, registers an HTTP
//! transport for each destination with a URL (connector transports passed in
//! [`HubOptions`] win), checks that every route target can be delivered, starts
//! the delivery workers and binds the socket.
//!
//! [`RunningHub::shutdown`] stops in the order that loses nothing: intake answers
//! 503 first, then in-flight deliveries get until the drain deadline, then the
//! HTTP server stops. Anything not delivered stays durably queued.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::http::{router, AppState};
use crate::config::{Config, QueueBackend};
use crate::delivery::{worker::register_http_transports, Dispatcher, Running, TransportRegistry};
use crate::intake::{Enrichers, Intake};
use crate::mapping::MappingSet;
use crate::queue::{DeliveryQueue, EmbeddedQueue};
use crate::routes::Routes;
use crate::schema::SchemaRegistry;
use crate::store::{Store, StoreOptions};
use crate::{Diagnostic, Diagnostics, Error, Result};

/// What the binary plugs in: connector transports, enrichers, extra HTTP routes.
#[derive(Default)]
pub struct HubOptions {
    pub transports: TransportRegistry,
    pub enrichers: Enrichers,
    /// Merged into the hub's router (e.g. the admin API).
    pub extra_routes: Option<Router>,
}

pub struct Hub;

/// A started hub.
pub struct RunningHub {
    pub addr: SocketAddr,
    pub store: Store,
    pub intake: Arc<Intake>,
    workers: Running,
    /// The mapping admin (versions, gate, hot swap); its poller and watcher stop with the hub.
    pub admin: Arc<crate::admin::MappingAdmin>,
    admin_stop: CancellationToken,
    server_stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    drain_deadline: std::time::Duration,
}

impl Hub {
    pub async fn start(config: &Config, opts: HubOptions) -> Result<RunningHub> {
        let schemas = Arc::new(SchemaRegistry::load(&config.schemas_dir).map_err(Error::Invalid)?);
        let mappings =
            MappingSet::load(&config.mappings_dir, schemas.as_ref()).map_err(Error::Invalid)?;
        let routes = Arc::new(
            Routes::load(&config.routes_file, &mappings, schemas.as_ref())
                .map_err(Error::Invalid)?,
        );

        let mut transports = opts.transports;
        let urls: HashMap<String, (String, crate::delivery::DestinationPolicy)> = config
            .destinations
            .iter()
            .filter_map(|(id, d)| d.url.clone().map(|u| (id.clone(), (u, d.policy.clone()))))
            .collect();
        register_http_transports(&mut transports, &urls).map_err(|e| Error::Delivery {
            destination: "-".into(),
            message: format!("building HTTP clients: {e}"),
            retryable: false,
        })?;
        let mut missing = Diagnostics::default();
        let mut targets: Vec<String> = Vec::new();
        for id in routes.mapping_ids() {
            if let Some(m) = mappings.get(&id) {
                targets.push(m.target.system.clone());
            }
        }
        targets.sort();
        targets.dedup();
        for t in &targets {
            if transports.get(t).is_none() {
                missing.push(Diagnostic {
                    file: config.file.as_ref().map_or("(embedded default)".into(), |p| p.display().to_string()),
                    line: 0,
                    column: 0,
                    context: format!("destinations.{t}"),
                    message: format!("routes deliver to `{t}` but it has no url and no connector: add destinations.{t}.url (or LIENTHONG_DESTINATIONS__{}__URL)", t.to_uppercase().replace('-', "_")),
                });
            }
        }
        if !missing.is_empty() {
            return Err(Error::Invalid(missing));
        }

        if config.store_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                Error::io(
                    format!("creating data directory {}", config.data_dir.display()),
                    e,
                )
            })?;
        }
        let store = Store::open(
            &config.store_url,
            StoreOptions {
                max_batch: config.store_max_batch,
                ..Default::default()
            },
        )
        .await?;
        // With RabbitMQ several replicas share the partners: each takes 1/N of their limits.
        let mut replicas = 1;
        let queue: Arc<dyn DeliveryQueue> = match &config.queue {
            QueueBackend::Embedded => EmbeddedQueue::start(store.clone()).await?,
            QueueBackend::RabbitMq(section) => {
                let o =
                    crate::queue::rabbitmq::RabbitOptions::from_config(section, targets.clone())?;
                replicas = o.replicas;
                crate::queue::rabbitmq::RabbitQueue::start(store.clone(), o).await?
            }
        };
        let share = |p: &crate::delivery::DestinationPolicy| p.replica_share(replicas);
        let policies: BTreeMap<_, _> = config
            .destinations
            .iter()
            .map(|(k, d)| (k.clone(), share(&d.policy)))
            .collect();
        let workers = Dispatcher {
            queue: queue.clone(),
            transports,
            policies,
            default_policy: share(&config.destination_defaults),
        }
        .start()
        .await?;

        // Versioned mappings: the store's active versions (files reconciled at start), hot
        // swapped on every activation; replicas poll the generation, files are watched.
        let admin = crate::admin::MappingAdmin::bootstrap(
            &store,
            schemas.clone(),
            &config.mappings_dir,
            &config.routes_file,
            crate::admin::AdminOptions::from_settings(&config.admin),
        )
        .await?;
        let admin_stop = CancellationToken::new();
        admin.spawn_poller(admin_stop.clone());
        if let Err(e) =
            crate::admin::watch::spawn(admin.clone(), &config.mappings_dir, admin_stop.clone())
        {
            tracing::warn!(error = %e, "mapping files are not watched; changes go through the API or the console");
        }
        drop(mappings);
        let api_state = super::api::ApiState::for_hub(
            config,
            &store,
            &queue,
            crate::audit::replay::VersionedMappings {
                admin: admin.clone(),
                mappings_dir: config.mappings_dir.clone(),
            },
            &schemas,
        );
        // The console replays through the same context as the audit API.
        let replay = api_state.replay.clone();
        let audit_api = super::api::routes(api_state);
        let _ = super::metrics::handle();
        let intake = Arc::new(
            Intake::new(
                config,
                schemas,
                routes,
                store.clone(),
                queue.clone(),
                opts.enrichers,
            )
            .with_active_mappings(admin.active().clone()),
        );
        let mut app = router(AppState {
            intake: intake.clone(),
            store: store.clone(),
            queue,
        });
        if let Some(extra) = opts.extra_routes {
            app = app.merge(extra);
        }
        app = app.merge(audit_api);
        let admin_state = crate::admin::api::AdminState {
            admin: admin.clone(),
            auth: config.tokens.clone(),
        };
        app = app
            .merge(crate::admin::api::routes(admin_state.clone()))
            .merge(crate::console::routes(crate::console::ConsoleState {
                admin: admin_state,
                store: store.clone(),
                replay,
            }));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io(format!("binding {} (server.listen)", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let server_stop = CancellationToken::new();
        let stop = server_stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        tracing::info!(%addr, store = %crate::redact::url(&config.store_url), "lienthong listening");
        Ok(RunningHub {
            addr,
            store,
            intake,
            workers,
            admin,
            admin_stop,
            server_stop,
            server,
            drain_deadline: config.drain_deadline,
        })
    }
}

impl RunningHub {
    /// Stop intake (503), drain in-flight deliveries up to the deadline, stop HTTP.
    pub async fn shutdown(self) {
        tracing::info!(deadline = ?self.drain_deadline, "shutting down: intake closed, draining deliveries");
        self.intake.stop_accepting();
        self.workers.shutdown(self.drain_deadline).await;
        self.admin_stop.cancel();
        self.server_stop.cancel();
        let _ = self.server.await;
        tracing::info!("stopped; undelivered messages stay queued");
    }
}
