//! The `breach.v1.BreachCheck` gRPC service over loaded sender databases.
//!
//! Handlers are thin: check the request against the [`Limits`], call one
//! psi-core function, convert. Every error goes through
//! `From<Error> for tonic::Status` (in [`crate::error`]). CPU-heavy work
//! (OPRF evaluation, query answering) runs on blocking threads and rayon
//! pools, never on the async runtime: OPRF evaluation on rayon's global
//! pool, query answers on their own pool, streamed part by part as the
//! client takes them ([`crate::answering`]).
//!
//! Nothing here logs request contents, items, OPRF elements or keys: only
//! the method, collection, sizes, the peer address and the outcome.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use breach_proto::v1 as pb;
use psi_core::wire::Codec;
use tonic::{Request, Response, Status};

use crate::answering::Answerer;
pub use crate::answering::QueryStream;
use crate::bounds::GRPC_TIMEOUT_HEADER;
use crate::error::{Error, Result};
pub use crate::limits::Limits;
use crate::limits::{ClientKey, Limiter};
use crate::live::Catalog;
use crate::psi_db::CollectionDb;
use crate::store::Collection;
use breach_proto::sharding::oprf_key_id;

/// Size of one ristretto255 element on the wire.
const ELEMENT_BYTES: usize = psi_core::oprf::ELEMENT_BYTES;
/// The `BreachCheck` service: the databases in service (swappable, see
/// [`crate::live`]) and the limits.
#[derive(Debug)]
pub struct BreachService {
    catalog: Arc<Catalog>,
    limiter: Limiter,
    answerer: Arc<Answerer>,
}

impl BreachService {
    /// A service answering from `dbs` (at most one per collection; a
    /// collection without a database is answered with `INVALID_ARGUMENT`).
    pub fn new(dbs: Vec<CollectionDb>, limits: Limits) -> Result<Self> {
        Self::with_catalog(Arc::new(Catalog::with_databases(dbs)?), limits)
    }

    /// A service answering from whatever `catalog` holds at each request
    /// (collections still loading get `UNAVAILABLE`).
    pub fn with_catalog(catalog: Arc<Catalog>, limits: Limits) -> Result<Self> {
        let answerer = Arc::new(Answerer::new(&limits.bounds)?);
        let limiter = Limiter::new(limits)?;
        Ok(Self {
            catalog,
            limiter,
            answerer,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.limiter.limits()
    }

    /// The database in service for a request's collection, held by the
    /// request until it ends.
    fn collection(&self, value: i32) -> Result<Arc<CollectionDb>> {
        let c = pb::Collection::try_from(value).map_err(|_| Error::UnknownCollection)?;
        self.catalog.get(Collection::try_from(c)?)
    }

    /// `GetParameters`: limits and each collection's public parameters.
    pub fn parameters(&self) -> pb::GetParametersResponse {
        let collections = self.catalog.loaded();
        let deployment = self.catalog.deployment();
        pb::GetParametersResponse {
            shard: Some(pb::ShardInfo {
                index: deployment.shard.index,
                count: deployment.shard.count,
            }),
            username_routing: deployment.routing.as_ref().map(|r| pb::UsernameRouting {
                bits: r.bits,
                key: r.key.to_vec(),
            }),
            server_version: format!("breach-server {}", env!("CARGO_PKG_VERSION")),
            limits: Some(pb::Limits {
                max_message_bytes: self.limits().max_message_bytes as u64,
                max_items_per_query: self.limits().max_items_per_query as u64,
                max_concurrent_queries: self.limits().max_concurrent_queries as u64,
            }),
            collections: collections
                .iter()
                .flat_map(|c| {
                    let key_id = c
                        .tiers
                        .first()
                        .map(|t| oprf_key_id(&t.db.oprf_key().public_key()).to_vec());
                    c.tiers.iter().map(move |t| (c, t, key_id.clone()))
                })
                .map(|(c, t, key_id)| {
                    let params = t.db.params();
                    pb::CollectionParameters {
                        collection: pb::Collection::from(c.collection) as i32,
                        psi_params: params.to_wire(),
                        item_count: t.db.item_count(),
                        he_params_fingerprint: params.fingerprint().to_vec(),
                        max_query_items: t.tier.max_query_items(),
                        tier: t.tier.name().into(),
                        generation: c.generation,
                        oprf_key_id: key_id.unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }

    /// Checks an `EvaluateOprf` request and turns it into psi-core's.
    fn oprf_request(
        &self,
        req: pb::OprfRequest,
        client: ClientKey,
    ) -> Result<(Arc<CollectionDb>, psi_core::OprfRequest)> {
        let db = self.collection(req.collection)?;
        let n = req.blinded_elements.len();
        if n > self.limits().max_items_per_query {
            return Err(Error::InvalidRequest(format!(
                "{n} blinded elements; at most {} per request",
                self.limits().max_items_per_query
            )));
        }
        let elements = req
            .blinded_elements
            .iter()
            .enumerate()
            .map(|(i, e)| {
                <[u8; ELEMENT_BYTES]>::try_from(e.as_slice()).map_err(|_| {
                    Error::InvalidRequest(format!(
                        "blinded element {i} is {} bytes; expected {ELEMENT_BYTES}",
                        e.len()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.limiter.charge_oprf(client, n)?;
        Ok((db, psi_core::OprfRequest { elements }))
    }
}

/// Runs CPU-heavy or blocking work (file I/O, SQLite) on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Transport(format!("worker task failed: {e}")))?
}

fn log_rejection(method: &str, peer: Option<SocketAddr>, status: &Status) {
    tracing::info!(method, peer = ?peer, code = ?status.code(), "request rejected");
}

#[tonic::async_trait]
impl pb::breach_check_server::BreachCheck for BreachService {
    async fn get_parameters(
        &self,
        _request: Request<pb::GetParametersRequest>,
    ) -> Result<Response<pb::GetParametersResponse>, Status> {
        Ok(Response::new(self.parameters()))
    }

    async fn evaluate_oprf(
        &self,
        request: Request<pb::OprfRequest>,
    ) -> Result<Response<pb::OprfResponse>, Status> {
        let peer = request.remote_addr();
        let client = self.limiter.client(request.metadata(), peer);
        let started = Instant::now();
        let result = async {
            let (db, req) = self.oprf_request(request.into_inner(), client)?;
            let n = req.elements.len();
            let collection = db.collection;
            let resp = blocking(move || db.evaluate_oprf(&req)).await?;
            crate::metrics::oprf_evaluated(collection, n);
            tracing::debug!(peer = ?peer, elements = n, elapsed = ?started.elapsed(), "EvaluateOprf");
            Ok::<_, Error>(pb::OprfResponse {
                evaluated_elements: resp.elements.iter().map(|e| e.to_vec()).collect(),
            })
        }
        .await;
        result.map(Response::new).map_err(|e| {
            let status = Status::from(e);
            log_rejection("EvaluateOprf", peer, &status);
            status
        })
    }

    type QueryStream = QueryStream;

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let peer = request.remote_addr();
        let client = self.limiter.client(request.metadata(), peer);
        let grpc_timeout = request
            .metadata()
            .get(GRPC_TIMEOUT_HEADER)
            .and_then(|v| v.to_str().ok());
        let deadline = self.limits().bounds.call_deadline(grpc_timeout);
        let req = request.into_inner();
        let result = async {
            let db = self.collection(req.collection)?;
            let permit = self.limiter.admit_query(client).await?;
            Ok::<_, Error>((db, permit))
        }
        .await;
        let stream = match result {
            Ok((db, permit)) => {
                let shard = self.catalog.deployment().shard.index;
                self.answerer
                    .answer(db, req.query, permit, deadline, peer, shard)
                    .await
            }
            Err(e) => Err(Status::from(e)),
        };
        stream
            .map(Response::new)
            .inspect_err(|status| log_rejection("Query", peer, status))
    }
}
