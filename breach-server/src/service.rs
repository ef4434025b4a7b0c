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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use breach_proto::v1 as pb;
use psi_core::wire::Codec;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::psi_db::CollectionDb;
use crate::store::Collection;

/// Size of one ristretto255 element on the wire.
const ELEMENT_BYTES: usize = psi_core::oprf::ELEMENT_BYTES;
/// Rate-limiter entries kept before idle ones are dropped.
const MAX_TRACKED_PEERS: usize = 10_000;

/// Limits the server enforces (and announces in `GetParameters`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Largest gRPC message accepted or sent, in bytes. Larger requests get
    /// `RESOURCE_EXHAUSTED`. A query at the default parameters is about
    /// 2 MiB.
    pub max_message_bytes: usize,
    /// Most blinded elements in one `EvaluateOprf` request.
    pub max_items_per_query: usize,
    /// Most `Query` calls answered at once; more get `RESOURCE_EXHAUSTED`
    /// immediately (no queueing).
    pub max_concurrent_queries: usize,
    /// OPRF elements each connection may have evaluated per second, on
    /// average (token-bucket refill rate).
    pub oprf_elements_per_sec: u32,
    /// OPRF elements a connection may use in a burst (bucket capacity);
    /// at least `max_items_per_query`.
    pub oprf_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 << 20,
            max_items_per_query: 2048,
            max_concurrent_queries: 4,
            oprf_elements_per_sec: 100,
            oprf_burst: 8192,
        }
    }
}

impl Limits {
    /// Checks the limits for consistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.max_message_bytes < 1024 {
            return bad("max message size must be at least 1024 bytes");
        }
        if self.max_items_per_query == 0
            || self.max_items_per_query > psi_core::messages::MAX_OPRF_BATCH
        {
            return bad("max items per query must be in 1..=65536");
        }
        if self.max_concurrent_queries == 0 {
            return bad("max concurrent queries must be at least 1");
        }
        if self.oprf_elements_per_sec == 0 {
            return bad("OPRF rate must be at least 1 element per second");
        }
        if (self.oprf_burst as usize) < self.max_items_per_query {
            return bad("OPRF burst must be at least the max items per query");
        }
        Ok(())
    }
}

/// A token bucket per peer address (one per connection).
#[derive(Debug)]
struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<SocketAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` tokens from `peer`'s bucket, or says when to retry.
    fn take(&self, peer: Option<SocketAddr>, n: usize) -> Result<()> {
        // A transport without peer addresses (none in this server) shares
        // one bucket.
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_PEERS && !buckets.contains_key(&peer) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + rate * (now - b.at).as_secs_f64() < burst);
        }
        let b = buckets.entry(peer).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + self.rate * (now - b.at).as_secs_f64()).min(self.burst);
        b.at = now;
        let want = n as f64;
        if b.tokens >= want {
            b.tokens -= want;
            Ok(())
        } else {
            Err(Error::RateLimited {
                requested: n as u64,
                available: b.tokens as u64,
                retry_after_ms: ((want - b.tokens) / self.rate * 1000.0).ceil() as u64,
            })
        }
    }
}

/// The `BreachCheck` service: the loaded databases and the limits.
#[derive(Debug)]
pub struct BreachService {
    collections: HashMap<Collection, Arc<CollectionDb>>,
    limits: Limits,
    queries: Arc<Semaphore>,
    oprf_rate: RateLimiter,
}

impl BreachService {
    /// A service answering from `dbs` (at most one per collection; a
    /// collection without a database is answered with `INVALID_ARGUMENT`).
    pub fn new(dbs: Vec<CollectionDb>, limits: Limits) -> Result<Self> {
        limits.validate()?;
        let mut collections = HashMap::new();
        for db in dbs {
            let c = db.collection;
            if collections.insert(c, Arc::new(db)).is_some() {
                return Err(Error::Config(format!("two databases for collection {c}")));
            }
        }
        Ok(Self {
            collections,
            queries: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            oprf_rate: RateLimiter::new(limits.oprf_elements_per_sec, limits.oprf_burst),
            limits,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn collection(&self, value: i32) -> Result<&Arc<CollectionDb>> {
        let c = pb::Collection::try_from(value).map_err(|_| Error::UnknownCollection)?;
        let c = Collection::try_from(c)?;
        self.collections
            .get(&c)
            .ok_or_else(|| Error::InvalidRequest(format!("collection {c} is not served here")))
    }

    /// `GetParameters`: limits and each collection's public parameters.
    pub fn parameters(&self) -> pb::GetParametersResponse {
        let mut collections: Vec<_> = self.collections.values().collect();
        collections.sort_by_key(|c| c.collection);
        pb::GetParametersResponse {
            server_version: format!("breach-server {}", env!("CARGO_PKG_VERSION")),
            limits: Some(pb::Limits {
                max_message_bytes: self.limits.max_message_bytes as u64,
                max_items_per_query: self.limits.max_items_per_query as u64,
                max_concurrent_queries: self.limits.max_concurrent_queries as u64,
            }),
            collections: collections
                .into_iter()
                .flat_map(|c| c.tiers.iter().map(move |t| (c, t)))
                .map(|(c, t)| {
                    let params = t.db.params();
                    pb::CollectionParameters {
                        collection: pb::Collection::from(c.collection) as i32,
                        psi_params: params.to_wire(),
                        item_count: t.db.item_count(),
                        he_params_fingerprint: params.fingerprint().to_vec(),
                        max_query_items: t.tier.max_query_items(),
                        tier: t.tier.name().into(),
                        generation: c.generation,
                    }
                })
                .collect(),
        }
    }

    /// Checks an `EvaluateOprf` request and turns it into psi-core's.
    fn oprf_request(
        &self,
        req: pb::OprfRequest,
        peer: Option<SocketAddr>,
    ) -> Result<(Arc<CollectionDb>, psi_core::OprfRequest)> {
        let db = self.collection(req.collection)?.clone();
        let n = req.blinded_elements.len();
        if n > self.limits.max_items_per_query {
            return Err(Error::InvalidRequest(format!(
                "{n} blinded elements; at most {} per request",
                self.limits.max_items_per_query
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
        self.oprf_rate.take(peer, n)?;
        Ok((db, psi_core::OprfRequest { elements }))
    }
}

/// Runs CPU-heavy work on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
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
        let started = Instant::now();
        let result = async {
            let (db, req) = self.oprf_request(request.into_inner(), peer)?;
            let n = req.elements.len();
            let resp = blocking(move || db.evaluate_oprf(&req)).await?;
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
        let req = request.into_inner();
        let result = async {
            let db = self.collection(req.collection)?.clone();
            let permit = self
                .queries
                .clone()
                .try_acquire_owned()
                .map_err(|_| Error::Busy {
                    limit: self.limits.max_concurrent_queries,
                })?;
            Ok::<_, Error>((db, permit))
        }
        .await;
        let stream = match result {
            Ok((db, permit)) => answer(db, req.query, permit, peer).await,
            Err(e) => Err(Status::from(e)),
        };
        stream
            .map(Response::new)
            .inspect_err(|status| log_rejection("Query", peer, status))
    }
}

/// Decodes and answers a query on a blocking thread, streaming each result
/// part as it is produced. Waits for the first part so that a bad query
/// fails the call itself rather than its stream. `permit` (a concurrency
/// slot) is held until the answer is complete or abandoned.
async fn answer(
    db: Arc<CollectionDb>,
    query: Vec<u8>,
    permit: tokio::sync::OwnedSemaphorePermit,
    peer: Option<SocketAddr>,
) -> Result<QueryStream, Status> {
    let (tx, mut rx) = mpsc::channel::<Result<pb::QueryResponsePart, Status>>(4);
    let collection = db.collection;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let started = Instant::now();
        let mut tier = None;
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
                    tx.blocking_send(Ok(pb::QueryResponsePart {
                        result_part: part.to_wire(),
                    }))
                    .map_err(|_| psi_core::Error::Malformed("the client went away".into()))
                })?)
            });
        match result {
            Ok(()) => {
                let tier = tier.map_or("", |t| t.name());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_limits_and_refills() {
        let rl = RateLimiter::new(1000, 10);
        let a = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
        let b = Some(SocketAddr::from(([127, 0, 0, 1], 2)));
        rl.take(a, 10).unwrap();
        let e = rl.take(a, 5).unwrap_err();
        assert!(matches!(e, Error::RateLimited { requested: 5, .. }), "{e}");
        rl.take(b, 10).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        rl.take(a, 5).unwrap();
    }

    #[test]
    fn default_limits_are_consistent() {
        Limits::default().validate().unwrap();
        let bad = Limits {
            oprf_burst: 10,
            ..Limits::default()
        };
        assert!(bad.validate().is_err());
    }
}
