//! The stateless front of a sharded deployment (`breach-server front`).
//!
//! It serves the same `breach.v1.BreachCheck` API as a single server, so
//! clients need no new option, and holds no secret and no data:
//!
//! - **GetParameters**: the shards' parameters, polled every
//!   [`FrontConfig::poll_interval`] and checked identical across shards
//!   (every tier's PSI parameters, fingerprint, query size, OPRF key id, the
//!   username routing), each shard's [`ShardInfo`](pb::ShardInfo) matching
//!   its place in the `--shard` list. Item counts are summed; the
//!   generation is the largest.
//! - **EvaluateOprf**: forwarded to one serving shard (round robin; the
//!   next one if it is unavailable). Every shard has the same key.
//! - **Query**: sent to every shard at once (or, with username routing,
//!   to the shards of the query's bucket); each shard's parts are streamed
//!   back as they come, tagged with the shard, each shard's answer closed
//!   by its trailer. A shard that cannot answer fails the whole call with
//!   `UNAVAILABLE` naming it: a partial answer would be a silent "not
//!   breached".
//!
//! Per-client limits apply at the front (it is what clients reach); the
//! client's address goes to the shards in `x-forwarded-for`, so shards
//! run with `--client-ip-header x-forwarded-for` and must be reachable
//! only from the front.
//!
//! Health: `""` and `breach.v1.BreachCheck` are SERVING while every shard
//! serves with consistent parameters, `breach.v1.BreachCheck/<collection>`
//! per collection, `liveness` always.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use breach_proto::sharding::{ShardSpec, bucket_shards};
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::error::{Error, Result};
use crate::health::{LIVENESS, SERVICE, collection_service};
use crate::limits::Limiter;
use crate::server::ServeConfig;
use crate::service::QueryStream;
use crate::store::Collection;

/// Header carrying the client's address to the shards.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// Default interval between two polls of the shards' parameters and health.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Configuration of a front.
#[derive(Clone, Debug)]
pub struct FrontConfig {
    /// How the front itself serves (listen address, TLS, limits, metrics).
    pub serve: ServeConfig,
    /// The shards' URLs (`http://HOST:PORT` or `https://HOST:PORT`), shard
    /// 0 first: the position is the shard index.
    pub shards: Vec<String>,
    /// CA certificate (PEM) that signs the shards' certificates, for
    /// `https://` shards.
    pub shard_ca: Option<PathBuf>,
    /// Route credential queries by this many username bits (the shards
    /// must have been imported with the same `--route-username-bits`).
    pub route_username_bits: Option<u32>,
    /// How often the shards' parameters and health are polled.
    pub poll_interval: Duration,
    /// Longest wait for one shard's answer to a poll or an OPRF call.
    pub shard_timeout: Duration,
}

/// One shard as the front reaches it.
#[derive(Clone, Debug)]
struct Shard {
    index: u32,
    url: String,
    client: BreachCheckClient<Channel>,
}

impl Shard {
    fn error(&self, reason: impl Into<String>, unavailable: bool) -> Error {
        Error::Shard {
            shard: self.index,
            url: self.url.clone(),
            reason: reason.into(),
            unavailable,
        }
    }

    /// A shard's failed call as the front reports it: unreachable or not
    /// serving is `UNAVAILABLE`; anything else keeps its code, with the
    /// shard named in the message (so a client still sees, e.g.,
    /// `FAILED_PRECONDITION` for stale parameters).
    fn status(&self, status: &Status) -> Status {
        let message = format!("shard {} ({}): {}", self.index, self.url, status.message());
        match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded => Status::unavailable(message),
            code => {
                let mut s = Status::new(code, message);
                // Keep the retry hint of RESOURCE_EXHAUSTED.
                if let Some(v) = status.metadata().get(crate::error::RETRY_PUSHBACK_KEY) {
                    s.metadata_mut()
                        .insert(crate::error::RETRY_PUSHBACK_KEY, v.clone());
                }
                s
            }
        }
    }
}

/// What the last poll of the shards found.
#[derive(Debug)]
enum View {
    /// Not polled yet.
    Starting,
    /// Every shard answered with consistent parameters: the merged answer.
    Consistent(pb::GetParametersResponse),
    /// A shard is unreachable, not serving, or disagrees.
    Broken(Error),
}

/// The `BreachCheck` implementation of a front.
#[derive(Debug)]
pub struct FrontService {
    shards: Vec<Shard>,
    view: Arc<ArcSwap<View>>,
    limiter: Limiter,
    routing_bits: Option<u32>,
    shard_timeout: Duration,
    /// How long a message may wait for the client to take it.
    send_timeout: Duration,
    next_oprf: AtomicUsize,
}

/// A running front.
#[derive(Debug)]
pub struct FrontHandle {
    local_addr: SocketAddr,
    view: Arc<ArcSwap<View>>,
    poller: JoinHandle<()>,
    health: HealthReporter,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
    changed: tokio::sync::watch::Receiver<u64>,
}

fn connect(url: &str, ca: Option<&Certificate>) -> Result<Channel> {
    let bad = |reason: String| Error::Config(format!("--shard {url}: {reason}"));
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| bad(format!("not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    match endpoint.uri().scheme_str() {
        Some("http") => {}
        Some("https") => {
            let ca = ca.ok_or_else(|| {
                bad("an https:// shard needs --shard-ca (the CA that signs the shards' certificates)".into())
            })?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(ca.clone()))
                .map_err(|e| bad(format!("TLS: {e}")))?;
        }
        other => {
            return Err(bad(format!(
                "scheme {:?}; use http:// or https://",
                other.unwrap_or("")
            )));
        }
    }
    // Lazy: a shard that is down at start-up is retried by every call and
    // poll; its host name is resolved again on every reconnection.
    Ok(endpoint.connect_lazy())
}

/// Binds `config.serve.listen` and starts a front; polls the shards at
/// once. Must run inside a tokio runtime.
pub async fn start(config: &FrontConfig) -> Result<FrontHandle> {
    let listener = crate::server::bind(&config.serve.listen).await?;
    start_on(listener, config).await
}

/// [`start`] on an already bound listener.
pub async fn start_on(listener: TcpListener, config: &FrontConfig) -> Result<FrontHandle> {
    if config.shards.is_empty() {
        return Err(Error::Config("a front needs at least one --shard".into()));
    }
    ShardSpec::new(0, config.shards.len() as u32).map_err(Error::Config)?;
    let ca = match &config.shard_ca {
        None => None,
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Some(Certificate::from_pem(pem))
        }
    };
    let shards = config
        .shards
        .iter()
        .enumerate()
        .map(|(i, url)| {
            Ok(Shard {
                index: i as u32,
                url: url.clone(),
                client: BreachCheckClient::new(connect(url, ca.as_ref())?)
                    .max_decoding_message_size(config.serve.limits.max_message_bytes)
                    .max_encoding_message_size(config.serve.limits.max_message_bytes),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let view = Arc::new(ArcSwap::from_pointee(View::Starting));
    let service = FrontService {
        shards: shards.clone(),
        view: view.clone(),
        limiter: Limiter::new(config.serve.limits.clone())?,
        routing_bits: config.route_username_bits,
        shard_timeout: config.shard_timeout,
        send_timeout: config.serve.limits.bounds.send_timeout,
        next_oprf: AtomicUsize::new(0),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    for name in std::iter::once(String::new())
        .chain(std::iter::once(SERVICE.to_string()))
        .chain(Collection::ALL.iter().map(|&c| collection_service(c)))
    {
        health
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
    let (local_addr, stop, task) =
        crate::server::spawn_router(listener, &config.serve, health_service, service).await?;
    let (changes, changed) = tokio::sync::watch::channel(0u64);
    let poller = tokio::spawn(poll(
        shards,
        view.clone(),
        health.clone(),
        changes,
        config.route_username_bits,
        config.poll_interval,
        config.shard_timeout,
    ));
    tracing::info!(
        %local_addr,
        shards = config.shards.len(),
        routing_bits = ?config.route_username_bits,
        "front started"
    );
    Ok(FrontHandle {
        local_addr,
        view,
        poller,
        health,
        stop: Some(stop),
        task,
        changed,
    })
}

impl FrontHandle {
    /// The address the front listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits for the first poll that finds every shard serving with
    /// consistent parameters. Fails at once, naming the shard, when a
    /// reachable shard disagrees with the others or with its place in the
    /// list (a misconfigured deployment); shards that are down or still
    /// loading are waited for.
    pub async fn wait_ready(&mut self) -> Result<()> {
        loop {
            match &**self.view.load() {
                View::Consistent(_) => return Ok(()),
                View::Broken(Error::Shard {
                    shard,
                    url,
                    reason,
                    unavailable: false,
                }) => {
                    return Err(Error::Shard {
                        shard: *shard,
                        url: url.clone(),
                        reason: reason.clone(),
                        unavailable: false,
                    });
                }
                _ => {}
            }
            if self.changed.changed().await.is_err() {
                return Err(Error::Transport("the shard poller stopped".into()));
            }
        }
    }

    /// Stops accepting requests, lets running ones finish, and waits.
    pub async fn shutdown(mut self) -> Result<()> {
        self.poller.abort();
        for name in ["", SERVICE] {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .map_err(|e| Error::Transport(format!("front task failed: {e}")))?
    }

    /// Serves until `signal` resolves (then shuts down gracefully) or the
    /// front fails.
    pub async fn run_until(mut self, signal: impl Future<Output = Result<()>>) -> Result<()> {
        tokio::select! {
            r = signal => {
                r?;
                tracing::info!("shutting down: finishing running requests");
                self.shutdown().await
            }
            r = &mut self.task => {
                r.map_err(|e| Error::Transport(format!("front task failed: {e}")))?
            }
        }
    }
}

/// Polls every shard's parameters forever, publishing the view and the
/// health it implies.
async fn poll(
    shards: Vec<Shard>,
    view: Arc<ArcSwap<View>>,
    health: HealthReporter,
    changes: tokio::sync::watch::Sender<u64>,
    routing_bits: Option<u32>,
    interval: Duration,
    timeout: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        let answers = futures::future::join_all(shards.iter().map(|shard| async move {
            let mut client = shard.client.clone();
            let mut request = Request::new(pb::GetParametersRequest {});
            request.set_timeout(timeout);
            let answer = tokio::time::timeout(timeout, client.get_parameters(request)).await;
            match answer {
                Ok(Ok(r)) => Ok(r.into_inner()),
                Ok(Err(status)) => Err(shard.error(
                    format!("unavailable: {} ({:?})", status.message(), status.code()),
                    true,
                )),
                Err(_) => Err(shard.error(format!("no answer within {timeout:?}"), true)),
            }
        }))
        .await;
        let merged = answers
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .and_then(|answers| merge(&shards, answers, routing_bits));
        // Per-collection health: every shard serves it consistently.
        let (overall, per_collection) = match &merged {
            Ok(m) => (
                true,
                Collection::ALL
                    .iter()
                    .map(|&c| {
                        let wire = pb::Collection::from(c) as i32;
                        (c, m.collections.iter().any(|p| p.collection == wire))
                    })
                    .collect::<Vec<_>>(),
            ),
            Err(_) => (false, Collection::ALL.iter().map(|&c| (c, false)).collect()),
        };
        let status = |ok: bool| {
            if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let overall = overall && per_collection.iter().all(|(_, ok)| *ok);
        for (c, ok) in per_collection {
            health
                .set_service_status(collection_service(c), status(ok))
                .await;
        }
        health.set_service_status(SERVICE, status(overall)).await;
        health.set_service_status("", status(overall)).await;
        match &merged {
            Ok(_) if last_error.is_some() => {
                tracing::info!("every shard serves with consistent parameters again");
                last_error = None;
            }
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "the deployment is not serving");
                    last_error = Some(text);
                }
            }
        }
        view.store(Arc::new(match merged {
            Ok(m) => View::Consistent(m),
            Err(e) => View::Broken(e),
        }));
        changes.send_modify(|n| *n += 1);
    }
}

/// A caller: its limits key, its address, its `grpc-timeout`.
type Caller = (
    crate::limits::ClientKey,
    Option<std::net::IpAddr>,
    Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
);

/// What must be identical for one tier on every shard: collection, tier
/// name, PSI parameters, HE fingerprint, query size, OPRF key id.
type TierKey = (i32, String, Vec<u8>, Vec<u8>, u64, Vec<u8>);

/// The shards' `GetParameters` answers as one, or the first shard that
/// disagrees with shard 0 or with its place in the list.
fn merge(
    shards: &[Shard],
    answers: Vec<pb::GetParametersResponse>,
    routing_bits: Option<u32>,
) -> Result<pb::GetParametersResponse> {
    let count = shards.len() as u32;
    let first = &answers[0];
    let tiers = |a: &pb::GetParametersResponse| {
        let mut t: Vec<TierKey> = a
            .collections
            .iter()
            .map(|c| {
                (
                    c.collection,
                    c.tier.clone(),
                    c.psi_params.clone(),
                    c.he_params_fingerprint.clone(),
                    c.max_query_items,
                    c.oprf_key_id.clone(),
                )
            })
            .collect();
        t.sort();
        t
    };
    let reference = tiers(first);
    for (shard, answer) in shards.iter().zip(&answers) {
        if answer.collections.is_empty() {
            // Started but still loading: its shard is not known yet either.
            return Err(shard.error("still loading its databases", true));
        }
        let info = answer.shard.unwrap_or(pb::ShardInfo { index: 0, count: 1 });
        if info.count != count || info.index != shard.index {
            return Err(shard.error(
                format!(
                    "it serves shard {}/{} but is listed as shard {}/{count} (its store was \
                     imported with another --shard, or the --shard list is out of order)",
                    info.index, info.count, shard.index
                ),
                false,
            ));
        }
        let mine = tiers(answer);
        if mine.len() != reference.len() {
            // A collection still loading on one shard: wait for it.
            return Err(shard.error(
                format!(
                    "it serves {} collection tiers, shard 0 serves {} (still loading?)",
                    mine.len(),
                    reference.len()
                ),
                true,
            ));
        }
        for (m, r) in mine.iter().zip(&reference) {
            let what = if m.0 != r.0 || m.1 != r.1 {
                Some("other collections or tiers")
            } else if m.5 != r.5 {
                Some("another OPRF key (every shard must `build --keys` the same keygen folder)")
            } else if m.2 != r.2 || m.3 != r.3 || m.4 != r.4 {
                Some("other PSI parameters (build every shard with the same --expected-items)")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(shard.error(
                    format!(
                        "it serves {what} than shard 0 ({})",
                        crate::store::Collection::try_from(
                            pb::Collection::try_from(m.0).unwrap_or_default()
                        )
                        .map_or("?", |c| c.name())
                    ),
                    false,
                ));
            }
        }
        if answer.username_routing != first.username_routing {
            return Err(shard.error("its username routing differs from shard 0's", false));
        }
        match (routing_bits, &answer.username_routing) {
            (Some(bits), Some(r)) if r.bits == bits => {}
            (Some(bits), r) => {
                return Err(shard.error(
                    format!(
                        "the front routes by {bits} username bits but the shard's credential \
                         pairs were split by {} (import every shard with \
                         --route-username-bits {bits})",
                        r.as_ref()
                            .map_or("item hash".to_string(), |r| format!("{} bits", r.bits))
                    ),
                    false,
                ));
            }
            (None, _) => {}
        }
    }
    let mut merged = pb::GetParametersResponse {
        server_version: format!(
            "breach-server {} front over {count} shards ({})",
            env!("CARGO_PKG_VERSION"),
            first.server_version
        ),
        limits: None,
        collections: first.collections.clone(),
        shard: Some(pb::ShardInfo { index: 0, count }),
        // Without routing at the front, queries go to every shard: the
        // client sends no bucket.
        username_routing: routing_bits.and(first.username_routing.clone()),
    };
    for c in &mut merged.collections {
        let same = |o: &&pb::CollectionParameters| o.collection == c.collection && o.tier == c.tier;
        c.item_count = answers
            .iter()
            .filter_map(|a| a.collections.iter().find(same))
            .map(|o| o.item_count)
            .sum();
        c.generation = answers
            .iter()
            .filter_map(|a| a.collections.iter().find(same))
            .map(|o| o.generation)
            .max()
            .unwrap_or(0);
    }
    // The tightest limits of any shard.
    let limits: Vec<pb::Limits> = answers.iter().filter_map(|a| a.limits).collect();
    merged.limits = limits.iter().copied().reduce(|a, b| pb::Limits {
        max_message_bytes: a.max_message_bytes.min(b.max_message_bytes),
        max_items_per_query: a.max_items_per_query.min(b.max_items_per_query),
        max_concurrent_queries: a.max_concurrent_queries.min(b.max_concurrent_queries),
    });
    Ok(merged)
}

impl FrontService {
    fn consistent(&self) -> Result<pb::GetParametersResponse, Status> {
        match &**self.view.load() {
            View::Consistent(p) => Ok(p.clone()),
            View::Starting => Err(Status::unavailable("the front is still polling its shards")),
            View::Broken(e) => Err(Status::unavailable(format!("deployment not serving: {e}"))),
        }
    }

    /// Who calls and with what deadline: the client charged by the
    /// limits, the address forwarded to the shards and the `grpc-timeout`
    /// passed on. Refuses while the deployment is not serving.
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.consistent()?;
        let peer = request.remote_addr();
        let metadata = request.metadata();
        Ok((
            self.limiter.client(metadata, peer),
            self.limiter.client_ip(metadata, peer),
            metadata.get("grpc-timeout").cloned(),
        ))
    }

    /// A request to a shard carrying the client's address and deadline.
    fn forward<T>(
        &self,
        message: T,
        client_ip: Option<std::net::IpAddr>,
        timeout: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(ip) = client_ip
            && let Ok(v) = ip.to_string().parse()
        {
            request.metadata_mut().insert(FORWARDED_FOR, v);
        }
        if let Some(t) = timeout {
            request.metadata_mut().insert("grpc-timeout", t.clone());
        }
        request
    }

    /// The shards a query goes to.
    fn targets(&self, req: &pb::QueryRequest) -> Result<Vec<&Shard>, Status> {
        let count = self.shards.len() as u32;
        match (
            self.routing_bits,
            req.collection == pb::Collection::Credentials as i32,
        ) {
            (Some(bits), true) => {
                let bucket = req.username_bucket.ok_or_else(|| {
                    Status::invalid_argument(
                        "credential queries must name their username bucket here (GetParameters \
                         publishes username_routing)",
                    )
                })?;
                if bucket >= 1 << bits {
                    return Err(Status::invalid_argument(format!(
                        "username bucket {bucket} is out of range for {bits} bits"
                    )));
                }
                Ok(bucket_shards(bucket, bits, count)
                    .map(|i| &self.shards[i as usize])
                    .collect())
            }
            (_, _) if req.username_bucket.is_some() => Err(Status::invalid_argument(
                "this deployment does not route by username bucket; send none",
            )),
            _ => Ok(self.shards.iter().collect()),
        }
    }
}

#[tonic::async_trait]
impl pb::breach_check_server::BreachCheck for FrontService {
    async fn get_parameters(
        &self,
        _request: Request<pb::GetParametersRequest>,
    ) -> Result<Response<pb::GetParametersResponse>, Status> {
        let mut answer = self.consistent()?;
        let own = self.limiter.limits();
        let limits = answer.limits.get_or_insert_default();
        limits.max_message_bytes = limits.max_message_bytes.min(own.max_message_bytes as u64);
        limits.max_items_per_query = limits
            .max_items_per_query
            .min(own.max_items_per_query as u64);
        limits.max_concurrent_queries = own.max_concurrent_queries as u64;
        Ok(Response::new(answer))
    }

    async fn evaluate_oprf(
        &self,
        request: Request<pb::OprfRequest>,
    ) -> Result<Response<pb::OprfResponse>, Status> {
        let (client, client_ip, timeout) = self.caller(&request)?;
        let req = request.into_inner();
        let n = req.blinded_elements.len();
        if n > self.limiter.limits().max_items_per_query {
            return Err(Status::from(Error::InvalidRequest(format!(
                "{n} blinded elements; at most {} per request",
                self.limiter.limits().max_items_per_query
            ))));
        }
        self.limiter.charge_oprf(client, n).map_err(Status::from)?;
        // Every shard has the key: try them in turn from the next one.
        let start = self.next_oprf.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for k in 0..self.shards.len() {
            let shard = &self.shards[(start + k) % self.shards.len()];
            let mut grpc = shard.client.clone();
            let mut call = self.forward(req.clone(), client_ip, timeout.as_ref());
            call.set_timeout(self.shard_timeout);
            match grpc.evaluate_oprf(call).await {
                Ok(answer) => return Ok(answer),
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tracing::warn!(shard = shard.index, url = %shard.url, error = %status.message(), "EvaluateOprf: shard unavailable, trying the next");
                    last = Some(shard.status(&status));
                }
                Err(status) => return Err(shard.status(&status)),
            }
        }
        Err(last.unwrap_or_else(|| Status::unavailable("no shard")))
    }

    type QueryStream = QueryStream;

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let (client, client_ip, timeout) = self.caller(&request)?;
        let req = request.into_inner();
        let targets = self.targets(&req)?;
        let permit = self
            .limiter
            .admit_query(client)
            .await
            .map_err(Status::from)?;
        let shards = targets.len() as u32;
        // Open every shard's stream first: a shard that refuses the query
        // (stale parameters, unavailable) fails the call itself.
        let opened = futures::future::join_all(targets.iter().map(|shard| {
            let mut grpc = shard.client.clone();
            let call = self.forward(req.clone(), client_ip, timeout.as_ref());
            async move {
                grpc.query(call)
                    .await
                    .map(|r| ((*shard).clone(), r.into_inner()))
                    .map_err(|status| shard.status(&status))
            }
        }))
        .await;
        let streams = opened.into_iter().collect::<Result<Vec<_>, Status>>()?;
        let (tx, rx) = mpsc::channel::<Result<pb::QueryResponsePart, Status>>(8);
        let permit = Arc::new(permit);
        let send_timeout = self.send_timeout;
        for (shard, mut stream) in streams {
            let tx = tx.clone();
            let permit = permit.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut trailer = false;
                loop {
                    let next = tokio::select! {
                        m = stream.next() => m,
                        // The client went away: stop reading this shard.
                        () = tx.closed() => return,
                    };
                    let message = match next {
                        None if trailer => return,
                        None => Err(Status::unavailable(format!(
                            "shard {} ({}): its answer ended without its trailer",
                            shard.index, shard.url
                        ))),
                        Some(Err(status)) => Err(shard.status(&status)),
                        Some(Ok(_)) if trailer => Err(Status::unavailable(format!(
                            "shard {} ({}): sent more after its trailer",
                            shard.index, shard.url
                        ))),
                        Some(Ok(m)) if m.shard != shard.index => Err(Status::unavailable(format!(
                            "shard {} ({}): tagged its answer as shard {}",
                            shard.index, shard.url, m.shard
                        ))),
                        Some(Ok(mut m)) => {
                            trailer = m.trailer.is_some();
                            m.shards = shards;
                            Ok(m)
                        }
                    };
                    let failed = message.is_err();
                    if failed && let Err(status) = &message {
                        tracing::warn!(shard = shard.index, url = %shard.url, code = ?status.code(), error = %status.message(), "Query: shard failed");
                    }
                    // A client that stops reading holds this task (and the
                    // query's slot) for at most the send timeout.
                    match tokio::time::timeout(send_timeout, tx.send(message)).await {
                        Ok(Ok(())) if !failed => {}
                        _ => return,
                    }
                }
            });
        }
        drop(tx);
        // The first error ends the answer: the client never sees a partial
        // answer as complete (and would refuse it anyway, lacking a trailer).
        let stream = ReceiverStream::new(rx);
        let mut failed = false;
        let stream = stream.map_while(move |m| {
            if failed {
                return None;
            }
            failed = m.is_err();
            Some(m)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
