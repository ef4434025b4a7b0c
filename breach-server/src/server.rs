//! Running the gRPC server: bind, serve `breach.v1.BreachCheck`, the
//! standard `grpc.health.v1.Health` service and gRPC server reflection (v1
//! and v1alpha), optionally over TLS and with Prometheus metrics; stop
//! gracefully.
//!
//! ```no_run
//! # async fn demo() -> breach_server::Result<()> {
//! use breach_server::psi_db::BuildOptions;
//! use breach_server::server::{ServeConfig, load_collections, serve};
//!
//! let dbs = load_collections("./store".as_ref(), &BuildOptions::default())?;
//! let config = ServeConfig { listen: "localhost:0".into(), ..ServeConfig::default() };
//! let handle = serve(dbs, &config).await?;
//! println!("listening on {}", handle.local_addr());
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use breach_proto::v1::breach_check_server::BreachCheckServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::http;
use tonic::transport::server::TcpIncoming;
use tower::util::MapResponseLayer;

use crate::bounds::{RequestSizeLayer, oprf_request_limit};
use crate::error::{Error, Result};
use crate::health::HealthState;
use crate::live::Catalog;
use crate::metrics::RequestMetricsLayer;
use crate::psi_db::{self, BuildOptions, BuildReport, CollectionDb};
use crate::service::{BreachService, Limits};
use crate::store::{Collection, DB_FILE_NAME, Store};
use crate::tls::TlsConfig;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Checked configuration of a server.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on, `HOST:PORT` (a host name such as `localhost`,
    /// an IPv4 address, or `[IPv6]`); port 0 picks a free port (see
    /// [`ServerHandle::local_addr`]). A host name is resolved and the first
    /// of its addresses that can be bound is used.
    pub listen: String,
    /// Limits enforced on requests.
    pub limits: Limits,
    /// TLS (and mutual TLS) configuration; plaintext when `None`.
    pub tls: Option<TlsConfig>,
    /// Where to serve Prometheus metrics over HTTP; off when `None`. The
    /// recorder is process-wide: one server per process can have it.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_string(),
            limits: Limits::default(),
            tls: None,
            metrics_listen: None,
        }
    }
}

/// Binds `listen` (`HOST:PORT`, see [`ServeConfig::listen`]): an IP
/// address is bound as given; a host name is resolved and its addresses
/// tried in order. Errors name the address and say why (in use, not an
/// address of this host, cannot be resolved, ...).
pub async fn bind(listen: &str) -> Result<TcpListener> {
    let err = |reason: String| Error::Listen {
        addr: listen.to_string(),
        reason,
    };
    let addrs: Vec<SocketAddr> = match listen.parse::<SocketAddr>() {
        Ok(a) => vec![a],
        Err(_) => {
            let (host, port) = listen.rsplit_once(':').ok_or_else(|| {
                err("expected HOST:PORT (e.g. localhost:50051, 0.0.0.0:50051, [::]:50051)".into())
            })?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(err(
                    "expected HOST:PORT with a port in 0..=65535 (e.g. localhost:50051)".into(),
                ));
            }
            tokio::net::lookup_host(listen)
                .await
                .map_err(|e| err(format!("cannot resolve {host}: {e}")))?
                .collect()
        }
    };
    let mut failures = Vec::new();
    for addr in &addrs {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => failures.push((*addr, e)),
        }
    }
    let in_use = failures
        .iter()
        .any(|(_, e)| e.kind() == std::io::ErrorKind::AddrInUse);
    let detail = failures
        .iter()
        .map(|(a, e)| format!("{a}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(err(match (in_use, failures.len()) {
        (_, 0) => "the host name has no addresses".into(),
        (true, _) => format!(
            "address already in use ({detail}); is another server running there? \
             Stop it or choose another --listen port"
        ),
        (false, 1) => failures[0].1.to_string(),
        (false, _) => detail,
    }))
}

/// Opens the store in `store_dir` and brings every collection's sender
/// database up to date ([`psi_db::refresh`]), returning them loaded.
/// Blocking and CPU-heavy: call it before starting the runtime or from
/// `spawn_blocking`.
pub fn load_collections(store_dir: &Path, options: &BuildOptions) -> Result<Vec<CollectionDb>> {
    Ok(build_all(store_dir, options)?
        .into_iter()
        .map(|(db, _)| db)
        .collect())
}

/// [`load_collections`] with the report of each collection.
pub fn build_all(
    store_dir: &Path,
    options: &BuildOptions,
) -> Result<Vec<(CollectionDb, BuildReport)>> {
    if !store_dir.join(DB_FILE_NAME).is_file() {
        return Err(Error::NoStore {
            path: store_dir.to_path_buf(),
        });
    }
    let store = Store::open(store_dir)?;
    Collection::ALL
        .iter()
        .map(|&c| psi_db::refresh(&store, c, options))
        .collect()
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    catalog: Arc<Catalog>,
    health: HealthState,
    health_sync: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on (the real port when the
    /// configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The databases in service (swap new ones in with
    /// [`Catalog::install`] or a [`crate::live::Reloader`]).
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The health state the server reports (to mark collections loaded or
    /// not, e.g. around a database swap).
    pub fn health(&self) -> &HealthState {
        &self.health
    }

    /// Stops accepting requests, lets running ones finish, and waits for
    /// the server to stop.
    pub async fn shutdown(mut self) -> Result<()> {
        self.health_sync.abort();
        self.health.shutting_down().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Serves until `signal` resolves (then shuts down gracefully) or the
    /// server fails.
    pub async fn run_until(mut self, signal: impl Future<Output = Result<()>>) -> Result<()> {
        tokio::select! {
            r = signal => {
                r?;
                tracing::info!("shutting down: finishing running requests");
                self.shutdown().await
            }
            r = &mut self.task => {
                r.map_err(|e| Error::Transport(format!("server task failed: {e}")))?
            }
        }
    }

    /// Waits until the server stops (on [`shutdown`](Self::shutdown) or a
    /// transport error).
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| Error::Transport(format!("server task failed: {e}")))?
    }
}

/// tonic reports a request over the size limit as `OUT_OF_RANGE`; gRPC's
/// convention (grpc-go, grpc-java, grpc-core) is `RESOURCE_EXHAUSTED`, and
/// this service never returns `OUT_OF_RANGE` itself, so the code is
/// rewritten. Such errors are always trailers-only responses (sent before
/// any message), so the status is in the headers.
///
/// Likewise a request body that is not the method's protobuf is rejected by
/// the generated code before the service sees it, as `INTERNAL` with
/// prost's "failed to decode Protobuf message"; it is the client's fault, so
/// it becomes `INVALID_ARGUMENT` like every other malformed request.
fn remap_status<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    match headers.get("grpc-status").map(|v| v.as_bytes()) {
        Some(b"11") => {
            headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        }
        Some(b"13") => {
            let decode_error = headers.get("grpc-message").is_some_and(|m| {
                let m = m.as_bytes();
                m.starts_with(b"failed to decode Protobuf message")
                    || m.starts_with(b"failed%20to%20decode%20Protobuf%20message")
            });
            if decode_error {
                headers.insert("grpc-status", http::HeaderValue::from_static("3"));
            }
        }
        _ => {}
    }
    response
}

/// Binds `config.listen` ([`bind`]) and serves `dbs` until
/// [`ServerHandle::shutdown`]. Must run inside a tokio runtime.
pub async fn serve(dbs: Vec<CollectionDb>, config: &ServeConfig) -> Result<ServerHandle> {
    let listener = bind(&config.listen).await?;
    serve_on(listener, Arc::new(Catalog::with_databases(dbs)?), config).await
}

/// Serves whatever `catalog` holds on an already bound `listener`
/// (`config.listen` is not used) until [`ServerHandle::shutdown`], at
/// once: a collection without a database yet gets `UNAVAILABLE`, and the
/// health service says `NOT_SERVING` for it (and for the whole service)
/// until it has one. Databases can be swapped in at any time
/// ([`crate::live`]); health follows the catalog. Must run inside a tokio
/// runtime.
pub async fn serve_on(
    listener: TcpListener,
    catalog: Arc<Catalog>,
    config: &ServeConfig,
) -> Result<ServerHandle> {
    let service = BreachService::with_catalog(catalog.clone(), config.limits.clone())?;
    let (health, health_service) = HealthState::new(catalog.collections()).await;
    let health_sync = tokio::spawn(sync_health(catalog.clone(), health.clone()));
    let (local_addr, stop, task) = spawn_router(listener, config, health_service, service).await?;
    Ok(ServerHandle {
        local_addr,
        catalog,
        health,
        health_sync,
        stop: Some(stop),
        task,
    })
}

/// Serves `breach` (the `BreachCheck` implementation: a server's or a
/// front's), the health service and gRPC reflection on `listener` with
/// the configuration's TLS, message limits and metrics, until the
/// returned sender fires (or is dropped).
pub(crate) async fn spawn_router<H, S>(
    listener: TcpListener,
    config: &ServeConfig,
    health_service: tonic_health::pb::health_server::HealthServer<H>,
    breach: S,
) -> Result<(SocketAddr, oneshot::Sender<()>, JoinHandle<Result<()>>)>
where
    H: tonic_health::pb::health_server::Health,
    S: breach_proto::v1::breach_check_server::BreachCheck,
{
    let local_addr = listener
        .local_addr()
        .map_err(|e| Error::Transport(format!("local address: {e}")))?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    if let Some(addr) = config.metrics_listen {
        crate::metrics::install(addr)?;
    }
    // Both reflection versions list every service served, themselves
    // included.
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(breach_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .include_reflection_service(false)
    };
    let reflection_err =
        |e: tonic_reflection::server::Error| Error::Config(format!("gRPC reflection: {e}"));
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(reflection_err)?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(reflection_err)?;
    let max = config.limits.max_message_bytes;
    let breach = BreachCheckServer::new(breach)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder
            .tls_config(tls.server_config())
            .map_err(|e| Error::Config(format!("TLS configuration: {e}")))?;
    }
    // Connection and call bounds (see crate::bounds).
    let bounds = &config.limits.bounds;
    let router = builder
        // Dead peers and idle connections are dropped rather than held.
        .http2_keepalive_interval(Some(bounds.keepalive_interval))
        .http2_keepalive_timeout(Some(bounds.keepalive_timeout))
        .tcp_keepalive(Some(std::time::Duration::from_secs(60)))
        .max_concurrent_streams(bounds.max_streams_per_connection)
        .max_connection_age(bounds.max_connection_age)
        .max_connection_age_grace(bounds.max_call_duration)
        // Every call's deadline: the client's grpc-timeout if shorter.
        .timeout(bounds.max_call_duration)
        // Outermost: counts the status codes clients see.
        .layer(RequestMetricsLayer)
        .layer(MapResponseLayer::new(remap_status))
        .layer(RequestSizeLayer::new(
            oprf_request_limit(config.limits.max_items_per_query),
            bounds.max_query_bytes.min(max),
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(breach);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    });
    let tls = match &config.tls {
        None => "plaintext",
        Some(t) if t.mutual() => "TLS, client certificates required",
        Some(_) => "TLS",
    };
    tracing::info!(
        %local_addr,
        tls,
        "serving breach.v1.BreachCheck, grpc.health.v1.Health and gRPC reflection"
    );
    Ok((local_addr, stop, task))
}

/// Keeps the health service in step with the catalog: each collection
/// SERVING while it has a database. Runs until aborted (at shutdown).
async fn sync_health(catalog: Arc<Catalog>, health: HealthState) {
    let mut changes = catalog.subscribe();
    loop {
        for c in catalog.collections() {
            health.set_collection(c, catalog.get(c).is_ok()).await;
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Transport(format!("installing the SIGTERM handler: {e}")))?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            r.map_err(|e| Error::Transport(format!("installing the SIGINT handler: {e}")))?;
        }
        _ = term.recv() => {}
    }
    Ok(())
}
