//! Running the gRPC server: load the sender databases, bind, serve
//! `breach.v1.BreachCheck` and the standard `grpc.health.v1.Health`
//! service, stop gracefully.
//!
//! ```no_run
//! # async fn demo() -> breach_server::Result<()> {
//! use breach_server::psi_db::BuildOptions;
//! use breach_server::server::{ServeConfig, load_collections, serve};
//!
//! let dbs = load_collections("./store".as_ref(), &BuildOptions::default())?;
//! let config = ServeConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServeConfig::default() };
//! let handle = serve(dbs, &config).await?;
//! println!("listening on {}", handle.local_addr());
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use breach_proto::v1::breach_check_server::BreachCheckServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::http;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tower::util::MapResponseLayer;

use crate::error::{Error, Result};
use crate::live::Catalog;
use crate::psi_db::{self, BuildOptions, BuildReport, CollectionDb};
use crate::service::{BreachService, Limits};
use crate::store::{Collection, DB_FILE_NAME, Store};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Checked configuration of a server.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port; see
    /// [`ServerHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Limits enforced on requests.
    pub limits: Limits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("constant address parses"),
            limits: Limits::default(),
        }
    }
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
    health: HealthReporter,
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

    /// Stops accepting requests, lets running ones finish, and waits for
    /// the server to stop.
    pub async fn shutdown(mut self) -> Result<()> {
        self.health
            .set_not_serving::<BreachCheckServer<BreachService>>()
            .await;
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

/// Binds `config.listen` and serves `dbs` until [`ServerHandle::shutdown`].
/// Must run inside a tokio runtime.
pub async fn serve(dbs: Vec<CollectionDb>, config: &ServeConfig) -> Result<ServerHandle> {
    serve_catalog(Arc::new(Catalog::with_databases(dbs)?), config).await
}

/// Binds `config.listen` and serves whatever `catalog` holds, at once: a
/// collection without a database yet gets `UNAVAILABLE`, and the health
/// service says `NOT_SERVING` until every collection has one. Databases
/// can be swapped in at any time ([`crate::live`]).
pub async fn serve_catalog(catalog: Arc<Catalog>, config: &ServeConfig) -> Result<ServerHandle> {
    let service = BreachService::with_catalog(catalog.clone(), config.limits.clone())?;
    let incoming = TcpIncoming::bind(config.listen)
        .map_err(|e| Error::Transport(format!("binding {}: {e}", config.listen)))?
        .with_nodelay(Some(true));
    let local_addr = incoming
        .local_addr()
        .map_err(|e| Error::Transport(format!("local address: {e}")))?;
    let (health, health_service) = tonic_health::server::health_reporter();
    if catalog.is_ready() {
        health
            .set_serving::<BreachCheckServer<BreachService>>()
            .await;
    } else {
        health
            .set_not_serving::<BreachCheckServer<BreachService>>()
            .await;
        let (health, catalog) = (health.clone(), catalog.clone());
        tokio::spawn(async move {
            catalog.wait_ready().await;
            health
                .set_serving::<BreachCheckServer<BreachService>>()
                .await;
        });
    }
    let max = config.limits.max_message_bytes;
    let breach = BreachCheckServer::new(service)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let router = tonic::transport::Server::builder()
        // Dead peers and idle connections are dropped rather than held.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .tcp_keepalive(Some(std::time::Duration::from_secs(60)))
        .layer(MapResponseLayer::new(remap_status))
        .add_service(health_service)
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
    tracing::info!(%local_addr, "serving breach.v1.BreachCheck and grpc.health.v1.Health");
    Ok(ServerHandle {
        local_addr,
        catalog,
        health,
        stop: Some(stop),
        task,
    })
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
