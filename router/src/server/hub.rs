//! Starting and stopping a whole hub.
//!
//! [`Hub::start`] is the I/O half of the config's two phases (the pure half is
//! `config::validate`, run by `Config::load` for both `lienthong check` and
//! `serve`). It is a list of named steps: load schemas, mappings and routes
//! (failing with every diagnostic), register an HTTP transport for each
//! destination with a URL (connector transports passed in [`HubOptions`] win),
//! name the route targets that cannot be delivered yet
//! ([`Config::unconfigured_targets`], the question `lienthong check` asks too,
//! here with the real transports: their deliveries wait for configuration), open
//! the store (running migrations), start the queue (which releases leases a
//! crashed predecessor left), the delivery workers and the mapping admin, and
//! bind the socket.
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

use super::http::AppState;
use crate::auth::routes::{Guards, Registry, RouteEntry};
use crate::config::{route_targets, Config, HttpLimits, QueueBackend};
use crate::delivery::{worker::register_http_transports, Dispatcher, Running, TransportRegistry};
use crate::intake::{Enrichers, Intake};
use crate::mapping::MappingSet;
use crate::queue::{DeliveryQueue, EmbeddedQueue};
use crate::routes::Routes;
use crate::schema::SchemaRegistry;
use crate::store::{Store, StoreOptions};
use crate::{Error, Result};

/// What the binary plugs in: connector transports and enrichers. (HTTP routes
/// are not pluggable: every route is registered with its access in
/// [`http_app`], see [`crate::auth::routes`].)
#[derive(Default)]
pub struct HubOptions {
    pub transports: TransportRegistry,
    pub enrichers: Enrichers,
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
    server: Server,
    drain_deadline: std::time::Duration,
}

impl Hub {
    /// Starts a hub on a validated config: the named steps below, in this order.
    /// Nothing is opened until everything read from files has loaded and every
    /// route target has a transport.
    pub async fn start(config: &Config, opts: HubOptions) -> Result<RunningHub> {
        let files = load_files(config)?;
        let mut transports = opts.transports;
        register_http(config, &mut transports)?;
        let targets = route_targets(&files.routes, &files.mappings);
        let unconfigured = config.unconfigured_targets(&targets, |t| transports.get(t).is_some());
        for t in &unconfigured {
            tracing::warn!(destination = %t, "{}", crate::config::waiting_for_configuration(t));
            metrics::gauge!("lienthong_destination_unconfigured", "destination" => t.clone())
                .set(1.0);
        }
        let store = open_store(config).await?;
        let routed = Routed {
            all: targets.clone(),
            unconfigured,
        };
        let (queue, replicas) = start_queue(config, &store, targets).await?;
        let workers = start_workers(config, queue.clone(), transports, replicas).await?;
        let (admin, admin_stop) = start_admin(config, &store, &files.schemas).await?;
        // The admin's active set serves from here on; the set loaded above was only the check.
        let Files {
            schemas,
            mappings,
            routes,
        } = files;
        drop(mappings);
        let intake = Arc::new(
            Intake::new(
                config,
                schemas.clone(),
                routes,
                store.clone(),
                queue.clone(),
                opts.enrichers,
            )
            .with_active_mappings(admin.active().clone()),
        );
        let app = http_app(config, &store, queue, &schemas, &admin, &intake, routed);
        let (addr, server_stop, server) = serve_http(config, app).await?;
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

/// The systems the routes deliver to, as the HTTP side reports them.
struct Routed {
    all: Vec<String>,
    /// Those with no transport: their deliveries wait for configuration.
    unconfigured: Vec<String>,
}

/// What the hub reads from files before it opens anything.
struct Files {
    schemas: Arc<SchemaRegistry>,
    mappings: MappingSet,
    routes: Arc<Routes>,
}

/// Schemas, mappings and routes, each failing with every diagnostic of its files.
fn load_files(config: &Config) -> Result<Files> {
    let schemas = Arc::new(SchemaRegistry::load(&config.schemas_dir).map_err(Error::Invalid)?);
    let mappings =
        MappingSet::load(&config.mappings_dir, schemas.as_ref()).map_err(Error::Invalid)?;
    let routes = Arc::new(
        Routes::load(&config.routes_file, &mappings, schemas.as_ref()).map_err(Error::Invalid)?,
    );
    Ok(Files {
        schemas,
        mappings,
        routes,
    })
}

/// An HTTP transport for each destination with a URL (a connector passed in wins).
fn register_http(config: &Config, transports: &mut TransportRegistry) -> Result<()> {
    let urls: HashMap<String, (String, crate::delivery::DestinationPolicy)> = config
        .destinations
        .iter()
        .filter_map(|(id, d)| d.url.clone().map(|u| (id.clone(), (u, d.policy.clone()))))
        .collect();
    register_http_transports(transports, &urls).map_err(|e| Error::Delivery {
        destination: "-".into(),
        message: format!("building HTTP clients: {e}"),
        retryable: false,
    })
}

/// The store (its migrations run), creating the data directory for SQLite.
async fn open_store(config: &Config) -> Result<Store> {
    if config.store_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::io(
                format!("creating data directory {}", config.data_dir.display()),
                e,
            )
        })?;
    }
    Store::open(
        &config.store_url,
        StoreOptions {
            max_batch: config.store_max_batch,
            ..Default::default()
        },
    )
    .await
}

/// The delivery queue, and how many replicas share the partners (1 but with RabbitMQ).
async fn start_queue(
    config: &Config,
    store: &Store,
    targets: Vec<String>,
) -> Result<(Arc<dyn DeliveryQueue>, u32)> {
    Ok(match &config.queue {
        QueueBackend::Embedded => (EmbeddedQueue::start(store.clone()).await?, 1),
        QueueBackend::RabbitMq(section) => {
            let o = crate::queue::rabbitmq::RabbitOptions::from_config(section, targets)?;
            let replicas = o.replicas;
            (
                crate::queue::rabbitmq::RabbitQueue::start(store.clone(), o).await?,
                replicas,
            )
        }
    })
}

/// The delivery workers. With RabbitMQ several replicas share the partners: each
/// takes 1/N of their limits.
async fn start_workers(
    config: &Config,
    queue: Arc<dyn DeliveryQueue>,
    transports: TransportRegistry,
    replicas: u32,
) -> Result<Running> {
    let share = |p: &crate::delivery::DestinationPolicy| p.replica_share(replicas);
    let policies: BTreeMap<_, _> = config
        .destinations
        .iter()
        .map(|(k, d)| (k.clone(), share(&d.policy)))
        .collect();
    Dispatcher {
        queue,
        transports,
        policies,
        default_policy: share(&config.destination_defaults),
    }
    .start()
    .await
}

/// Versioned mappings: the store's active versions (files reconciled at start), hot
/// swapped on every activation; replicas poll the generation, files are watched.
/// The token stops the poller and the watcher.
async fn start_admin(
    config: &Config,
    store: &Store,
    schemas: &Arc<SchemaRegistry>,
) -> Result<(Arc<crate::admin::MappingAdmin>, CancellationToken)> {
    let admin = crate::admin::MappingAdmin::bootstrap(
        store,
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
    Ok((admin, admin_stop))
}

/// Every HTTP route: intake and health, the audit API, the admin API and the
/// console, each registered with its access; then `/api/v1/routes` (the table
/// itself), the JSON 404/405 and the error-body layer.
fn http_app(
    config: &Config,
    store: &Store,
    queue: Arc<dyn DeliveryQueue>,
    schemas: &Arc<SchemaRegistry>,
    admin: &Arc<crate::admin::MappingAdmin>,
    intake: &Arc<Intake>,
    routed: Routed,
) -> Router {
    let unconfigured = Arc::new(routed.unconfigured);
    let api_state = super::api::ApiState::for_hub(
        config,
        store,
        &queue,
        crate::audit::replay::VersionedMappings {
            admin: admin.clone(),
            mappings_dir: config.mappings_dir.clone(),
        },
        schemas,
    );
    // The console replays through the same context as the audit API.
    let replay = api_state.replay.clone();
    let _ = super::metrics::handle();
    let tokens: Arc<dyn crate::admin::access::Authenticate> = config.tokens.clone();
    let sessions = Arc::new(crate::console::sessions::Sessions {
        store: store.clone(),
        auth: tokens.clone(),
        edge: config.edge.clone(),
    });
    let guards = crate::console::guards(tokens.clone(), Some(sessions.clone()));
    let admin_state = crate::admin::api::AdminState {
        admin: admin.clone(),
        auth: tokens,
    };
    let app_state = AppState {
        intake: intake.clone(),
        store: store.clone(),
        queue,
        unconfigured: unconfigured.clone(),
        depth_series: Arc::new(std::sync::Mutex::new(routed.all.into_iter().collect())),
    };
    let probes = super::http::probes(app_state.clone(), guards.clone());
    let hub = super::http::routes(app_state, guards.clone())
        .merge(super::api::routes(api_state, guards.clone()))
        .merge(crate::admin::api::routes(
            admin_state.clone(),
            guards.clone(),
        ))
        .merge(crate::console::routes(
            crate::console::ConsoleState {
                admin: admin_state,
                store: store.clone(),
                replay,
                sessions,
                unconfigured,
            },
            guards.clone(),
        ));
    with_route_table(hub, probes, guards, &config.http)
}

/// Adds `GET /api/v1/routes` (auditor): the table the router was built from,
/// itself included, so an operator (and the role test) sees every route the
/// hub serves and who may call it.
fn with_route_table(
    hub: Registry,
    probes: Registry,
    guards: Guards,
    limits: &HttpLimits,
) -> Router {
    let table: Arc<std::sync::OnceLock<Vec<RouteEntry>>> = Arc::default();
    let served = table.clone();
    let hub = hub.merge(Registry::new(guards).add(
        axum::http::Method::GET,
        "/api/v1/routes",
        crate::auth::routes::Access::Api(crate::auth::Need::Auditor),
        move || {
            let served = served.clone();
            async move { axum::Json(served.get().cloned().unwrap_or_default()) }
        },
    ));
    let (router, mut entries) = hub.into_parts();
    let (probes, probe_entries) = probes.into_parts();
    entries.extend(probe_entries);
    let _ = table.set(entries);
    super::errors::uniform(super::listener::limit(router, limits).merge(probes))
}

type Server = JoinHandle<std::io::Result<()>>;

/// Binds `server.listen` and serves `app` until the token is cancelled.
async fn serve_http(
    config: &Config,
    app: Router,
) -> Result<(SocketAddr, CancellationToken, Server)> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("binding {} (server.listen)", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    let server_stop = CancellationToken::new();
    let stop = server_stop.clone();
    let limits = config.http.clone();
    let drain = config.drain_deadline;
    let server = tokio::spawn(super::listener::serve(listener, app, limits, stop, drain));
    Ok((addr, server_stop, server))
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
