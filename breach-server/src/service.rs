//! The `breach.v1.BreachCheck` gRPC service over loaded sender databases.
//!
//! Handlers are thin: check the request against the [`Limits`], call one
//! psi-core function, convert. Every error goes through
//! `From<Error> for tonic::Status` (in [`crate::error`]). CPU-heavy work
//! (OPRF evaluation, query answering) runs on blocking threads and the
//! rayon pool, never on the async runtime; query answers are streamed part
//! by part as psi-core produces them.
//!
//! Nothing here logs request contents, items, OPRF elements or keys: only
//! the method, collection, sizes, the peer address and the outcome.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use breach_proto::v1 as pb;
use psi_core::wire::Codec;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
pub use crate::limits::Limits;
use crate::limits::{ClientKey, Limiter, QueryPermit};
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
        let limiter = Limiter::new(limits)?;
        Ok(Self { catalog, limiter })
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

/// The streamed answer of `Query`.
pub type QueryStream = Pin<Box<dyn Stream<Item = Result<pb::QueryResponsePart, Status>> + Send>>;

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
                answer(db, req.query, permit, peer, shard).await
            }
            Err(e) => Err(Status::from(e)),
        };
        stream
            .map(Response::new)
            .inspect_err(|status| log_rejection("Query", peer, status))
    }
}

/// One result part of this server's answer (shard `shard` of a sharded
/// deployment, 0 otherwise).
/// `position` counts the parts sent before it.
fn result_message(part: Vec<u8>, position: u32, shard: u32) -> pb::QueryResponsePart {
    pb::QueryResponsePart {
        result_part: part,
        shard,
        shards: 1,
        trailer: None,
        part: position,
    }
}

/// The trailer that closes this server's answer after `parts` parts.
fn trailer_message(parts: u32, shard: u32) -> pb::QueryResponsePart {
    pb::QueryResponsePart {
        result_part: Vec::new(),
        shard,
        shards: 1,
        trailer: Some(pb::ShardTrailer { parts }),
        part: 0,
    }
}

/// Decodes and answers a query on a blocking thread, streaming each result
/// part as it is produced, then the trailer declaring how many there were.
/// Waits for the first message so that a bad query fails the call itself
/// rather than its stream. `permit` (the query's slots) is held until the
/// answer is complete or abandoned.
async fn answer(
    db: Arc<CollectionDb>,
    query: Vec<u8>,
    permit: QueryPermit,
    peer: Option<SocketAddr>,
    shard: u32,
) -> Result<QueryStream, Status> {
    let (tx, mut rx) = mpsc::channel::<Result<pb::QueryResponsePart, Status>>(4);
    let collection = db.collection;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _in_flight = crate::metrics::QueryInFlight::start();
        let started = Instant::now();
        let mut tier = None;
        let mut sent = 0u32;
        let result = psi_core::Query::from_wire(&query)
            .map_err(Error::from)
            .and_then(|q| {
                drop(query);
                // The query names its tier by its parameters' fingerprint.
                let t = db
                    .tier_for_fingerprint(&q.params_fingerprint)
                    .ok_or(Error::StaleParameters { collection })?;
                tier = Some(t.tier);
                Ok(t.db.answer(&q, |part| {
                    let position = sent;
                    sent += 1;
                    tx.blocking_send(Ok(result_message(part.to_wire(), position, shard)))
                        .map_err(|_| psi_core::Error::Malformed("the client went away".into()))
                })?)
            });
        let result = result.and_then(|()| {
            tx.blocking_send(Ok(trailer_message(sent, shard)))
                .map_err(|_| Error::Transport("the client went away".into()))
        });
        match result {
            Ok(()) => {
                let tier = tier.map_or("", |t| t.name());
                crate::metrics::query_answered(collection, tier, started.elapsed());
                tracing::info!(%collection, tier, peer = ?peer, elapsed = ?started.elapsed(), "query answered");
            }
            Err(_) if tx.is_closed() => {
                tracing::info!(%collection, peer = ?peer, "query abandoned by the client");
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(Status::from(e)));
            }
        }
    });
    match rx.recv().await {
        Some(Err(status)) => Err(status),
        Some(Ok(first)) => {
            let rest = ReceiverStream::new(rx);
            Ok(Box::pin(tokio_stream::once(Ok(first)).chain(rest)))
        }
        None => Ok(Box::pin(tokio_stream::empty())),
    }
}
