//! Per-client and server-wide limits: who a request is charged to, the
//! OPRF and query rate budgets, and the concurrent-query permits.
//!
//! # Who is a client
//!
//! A request is charged to a [`ClientKey`] derived from an IP address: an
//! IPv4 address is one client, an IPv6 address is charged to its /64 (one
//! site usually holds a whole /64, so keying on the full address would hand
//! it 2^64 budgets), and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as
//! seen on dual-stack sockets) is the IPv4 address. Connections do not
//! matter: every connection from one address shares one budget.
//!
//! The address is the TCP peer's, unless [`Limits::client_ip_header`] names
//! a header (e.g. `x-forwarded-for`) set by a trusted reverse proxy in
//! front of the server. Then the **rightmost** entry of that header (the
//! last entry of the last header line) is used: that is the one the proxy
//! next to this server appended, the only entry a client cannot choose.
//! Entries to its left were supplied by the client or by proxies further
//! away and are ignored. An entry may be a bare address, `ADDR:PORT` or
//! `[V6ADDR]:PORT`. A missing header, or a rightmost entry that is not an
//! address (`unknown`, an obfuscated RFC 7239 identifier, garbage) falls
//! back to the TCP peer, i.e. the proxy, so all such requests share the
//! proxy's budget. Without the option the header is ignored completely:
//! enable it only when every request reaches the server through that proxy
//! and the proxy appends the address (does not just pass the client's
//! header through), or clients choose their own budgets.
//!
//! # Budgets
//!
//! Each client has two token buckets (GCRA, [`governor`] keyed limiters):
//!
//! - **OPRF elements** ([`Limits::oprf_elements_per_sec`],
//!   [`Limits::oprf_burst`]): every blinded element costs one token. This
//!   is what bounds password guessing: an attacker must have every guess
//!   evaluated by the server.
//! - **Queries** ([`Limits::queries_per_minute`], [`Limits::query_burst`]):
//!   every `Query` costs one token, whatever it holds, because a query
//!   costs the server the same compute (about 0.3 s at the default
//!   parameters on 2 cores) whether it is honest or garbage. Queries get
//!   their own bucket rather than a price in OPRF elements: one query is
//!   worth about 8,000 elements of CPU, so any price that reflected its
//!   cost would make a 10,000-entry vault (20 queries) cost 160,000
//!   elements and either break honest use or loosen the guessing bound.
//!   The two buckets limit different things (guesses; CPU).
//!
//! A server-wide bucket ([`Limits::global_oprf_elements_per_sec`],
//! [`Limits::global_oprf_burst`]) caps OPRF work from all clients
//! together. It is charged after the client's bucket, so a request refused
//! by the server-wide bucket has still spent the client's tokens (a
//! refusal never refunds; otherwise a client could probe for free).
//!
//! # Concurrent queries
//!
//! At most [`Limits::max_concurrent_queries`] queries run at once on the
//! server, and at most [`Limits::max_concurrent_queries_per_client`] of
//! them for one client. A query that finds no free slot waits in a FIFO
//! queue for up to [`Limits::query_admission_wait`] (first for its
//! client's slot, then for a server slot), then is refused with
//! `RESOURCE_EXHAUSTED`. The queues are bounded: at most
//! [`QUEUE_FACTOR`] times the slots may be running or waiting, for the
//! server and for each client; beyond that a query is refused at once.
//! Only queries holding one of their client's slots count in the server's
//! queue, so one client fills at most its share of it. A
//! query's token is taken when it is admitted, so a query refused for
//! lack of a slot costs nothing, and one admitted costs its token even if
//! it turns out to be garbage.
//!
//! # Retry hints
//!
//! Every refusal is `RESOURCE_EXHAUSTED` with a `grpc-retry-pushback-ms`
//! metadata entry (gRPC A6): for a rate limit, the time until the bucket
//! holds enough tokens; for a busy server, the admission wait (or
//! [`MIN_BUSY_RETRY_MS`] when it is shorter), since a slot frees up about
//! as often as a query finishes. Refusals are counted in the
//! `breach_rate_limited_total` counter (labels `rpc` and `reason`, see
//! [`Reason`]).
//!
//! # Memory
//!
//! The per-client buckets live in tables of at most
//! [`Limits::max_tracked_clients`] entries (a 16-byte key and an 8-byte
//! state in a hash table: at most about 60 bytes each, so a few MB per
//! table at the default 100,000). A
//! client's entry can be forgotten once its bucket has refilled (it is
//! then indistinguishable from a new one); such entries are swept every
//! [`SWEEP_INTERVAL`], and at most once a second when a table is full.
//! When a table is still full, **new** clients are not given fresh buckets:
//! they all share one overflow bucket (with one client's quota) until
//! entries expire. Clients already tracked keep their own buckets, so a
//! flood of new addresses cannot reset anyone's budget, at the price of
//! throttling genuinely new clients together during such a flood. The
//! slot table holds only clients with a query running or waiting, so it
//! is bounded by the server's queue.
//!
//! # Defaults and why
//!
//! A vault check runs, for each collection, rounds of up to 1024 items:
//! one `EvaluateOprf` and one `Query` each. A 10,000-entry vault is about
//! 20,000 OPRF elements and 20 queries; 8 simultaneous checks of
//! 60-entry vaults are 960 elements and 16 queries, 8 queries at a time.
//!
//! - OPRF: burst 24,576 elements per client covers both together (20,960)
//!   with no wait. The sustained rate of **100 elements per second per
//!   client** (360,000 guesses an hour, 8.64 million a day per IPv4
//!   address or IPv6 /64) is the guessing bound; a client that has used
//!   its burst waits about 10 s per further 1024-item round.
//! - Queries: burst 40 per client (36 needed above) and 60 per minute
//!   sustained: one query a second keeps a third of this 2-core machine
//!   busy per client at the default parameters.
//! - Slots: 4 on the server, 2 per client, 1 s admission wait, so 8
//!   simultaneous queries from one address queue (8 = 4 x 2 may wait or
//!   run) and mostly go through; the rest are refused with a 1 s hint and
//!   succeed when the client retries.
//! - Server-wide OPRF: 20,000 elements per second (about 0.75 of a core
//!   at 38 us an element), burst 65,536.
//!
//! Behind a NAT or a proxy without `client_ip_header`, everyone shares one
//! address's budget: raise the per-client limits accordingly.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{NotUntil, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataMap;

use crate::error::{Error, Result};

/// How many times the slots may be running or waiting (server-wide and per
/// client) before further queries are refused without waiting.
pub const QUEUE_FACTOR: usize = 4;
/// How often per-client entries whose buckets have refilled are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Shortest retry hint given for a busy server, in milliseconds.
pub const MIN_BUSY_RETRY_MS: u64 = 250;
/// Metric counting refused requests (labels `rpc`, `reason`).
pub const RATE_LIMITED_METRIC: &str = "breach_rate_limited_total";

/// Limits the server enforces (and partly announces in `GetParameters`).
/// See the [module documentation](self) for what each one bounds and the
/// arithmetic behind the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest gRPC message accepted or sent, in bytes. Larger requests get
    /// `RESOURCE_EXHAUSTED`. A query at the default parameters is about
    /// 2 MiB.
    pub max_message_bytes: usize,
    /// Most blinded elements in one `EvaluateOprf` request.
    pub max_items_per_query: usize,
    /// Most `Query` calls answered at once on the server.
    pub max_concurrent_queries: usize,
    /// Most `Query` calls answered at once for one client (at most
    /// `max_concurrent_queries`).
    pub max_concurrent_queries_per_client: usize,
    /// How long a `Query` may wait for a free slot before it is refused
    /// with `RESOURCE_EXHAUSTED`; zero refuses at once.
    pub query_admission_wait: Duration,
    /// OPRF elements each client may have evaluated per second, on average
    /// (the sustained guessing bound per client).
    pub oprf_elements_per_sec: u32,
    /// OPRF elements a client may use in a burst (bucket capacity); at
    /// least `max_items_per_query`.
    pub oprf_burst: u32,
    /// Queries each client may make per minute, on average.
    pub queries_per_minute: u32,
    /// Queries a client may make in a burst.
    pub query_burst: u32,
    /// OPRF elements evaluated per second for all clients together.
    pub global_oprf_elements_per_sec: u32,
    /// Server-wide OPRF burst; at least `max_items_per_query`.
    pub global_oprf_burst: u32,
    /// Most clients tracked per budget table; new clients beyond it share
    /// one overflow bucket.
    pub max_tracked_clients: usize,
    /// Header carrying the client address, set by a trusted reverse proxy
    /// (lower case, e.g. `x-forwarded-for`); its rightmost entry is used.
    /// `None` (the default) ignores every such header.
    pub client_ip_header: Option<String>,
    /// Connection, call, request-size and answer bounds.
    pub bounds: crate::bounds::Bounds,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 << 20,
            max_items_per_query: 2048,
            max_concurrent_queries: 4,
            max_concurrent_queries_per_client: 2,
            query_admission_wait: Duration::from_secs(1),
            oprf_elements_per_sec: 100,
            oprf_burst: 24_576,
            queries_per_minute: 60,
            query_burst: 40,
            global_oprf_elements_per_sec: 20_000,
            global_oprf_burst: 65_536,
            max_tracked_clients: 100_000,
            client_ip_header: None,
            bounds: crate::bounds::Bounds::default(),
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
        if self.max_concurrent_queries_per_client == 0
            || self.max_concurrent_queries_per_client > self.max_concurrent_queries
        {
            return bad("max concurrent queries per client must be in 1..=max concurrent queries");
        }
        if self.query_admission_wait > Duration::from_secs(60) {
            return bad("query admission wait must be at most 60 s");
        }
        if self.oprf_elements_per_sec == 0 || self.global_oprf_elements_per_sec == 0 {
            return bad("OPRF rates must be at least 1 element per second");
        }
        if (self.oprf_burst as usize) < self.max_items_per_query
            || (self.global_oprf_burst as usize) < self.max_items_per_query
        {
            return bad("OPRF bursts must be at least the max items per query");
        }
        if self.queries_per_minute == 0 || self.query_burst == 0 {
            return bad("query rate and burst must be at least 1");
        }
        if self.max_tracked_clients == 0 {
            return bad("max tracked clients must be at least 1");
        }
        if let Some(h) = &self.client_ip_header {
            header_key(h)?;
        }
        self.bounds.validate()
    }
}

/// A checked client-address header name.
fn header_key(name: &str) -> Result<tonic::metadata::MetadataKey<tonic::metadata::Ascii>> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with("-bin") || lower.starts_with("grpc-") || lower.starts_with(':') {
        return Err(Error::Config(format!(
            "client IP header `{name}` must be a plain text header (not grpc-*, *-bin or a pseudo-header)"
        )));
    }
    tonic::metadata::MetadataKey::from_bytes(lower.as_bytes()).map_err(|_| {
        Error::Config(format!(
            "client IP header `{name}` is not a valid header name"
        ))
    })
}

/// Who a request is charged to: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 client (also an IPv4-mapped IPv6 address).
    V4(Ipv4Addr),
    /// An IPv6 client: the upper 64 bits (the /64 network).
    V6Net(u64),
    /// A transport without peer addresses (none in this server): all such
    /// requests share one budget.
    Unknown,
    /// New clients while the table is full share this budget.
    Overflow,
}

impl ClientKey {
    /// The client an address belongs to.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }

    /// The client of a request: the rightmost entry of `header` when one is
    /// configured and holds an address, else the TCP peer.
    pub fn of_request(
        metadata: &MetadataMap,
        peer: Option<SocketAddr>,
        header: Option<&str>,
    ) -> Self {
        if let Some(ip) = header.and_then(|h| forwarded_ip(metadata, h)) {
            return Self::from_ip(ip);
        }
        peer.map_or(Self::Unknown, |p| Self::from_ip(p.ip()))
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a) => write!(f, "{a}"),
            Self::V6Net(n) => {
                write!(f, "{}/64", std::net::Ipv6Addr::from(u128::from(*n) << 64))
            }
            Self::Unknown => f.write_str("unknown"),
            Self::Overflow => f.write_str("overflow"),
        }
    }
}

/// The rightmost entry of the last `header` line, if it is an address.
fn forwarded_ip(metadata: &MetadataMap, header: &str) -> Option<IpAddr> {
    let value = metadata.get_all(header).iter().next_back()?.to_str().ok()?;
    parse_forwarded_entry(value.rsplit(',').next()?)
}

/// `ADDR`, `ADDR:PORT`, `[V6ADDR]` or `[V6ADDR]:PORT`.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// Which limit refused a request (the `reason` label of the metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The client's OPRF bucket.
    ClientOprfRate,
    /// The server-wide OPRF bucket.
    ServerOprfRate,
    /// The client's query bucket.
    ClientQueryRate,
    /// The client's concurrent-query slots.
    ClientQuerySlots,
    /// The server's concurrent-query slots.
    ServerQuerySlots,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ClientOprfRate => "client_oprf_rate",
            Self::ServerOprfRate => "server_oprf_rate",
            Self::ClientQueryRate => "client_query_rate",
            Self::ClientQuerySlots => "client_query_slots",
            Self::ServerQuerySlots => "server_query_slots",
        }
    }
}

impl fmt::Display for Reason {
    /// Words for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClientOprfRate => "this client's OPRF rate limit",
            Self::ServerOprfRate => "the server's OPRF rate limit",
            Self::ClientQueryRate => "this client's query rate limit",
            Self::ClientQuerySlots => "this client's concurrent-query limit",
            Self::ServerQuerySlots => "the server's concurrent-query limit",
        })
    }
}

fn count_refusal(rpc: &'static str, reason: Reason) {
    metrics::counter!(RATE_LIMITED_METRIC, "rpc" => rpc, "reason" => reason.label()).increment(1);
}

/// A keyed state store of at most `cap` clients: when full, unknown
/// clients are charged to [`ClientKey::Overflow`].
#[derive(Debug)]
pub struct BoundedStore {
    map: DashMapStateStore<ClientKey>,
    cap: usize,
}

impl BoundedStore {
    fn new(cap: usize) -> Self {
        Self {
            map: DashMapStateStore::default(),
            cap,
        }
    }
}

impl StateStore for BoundedStore {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // Racing inserts may pass the cap by the number of threads at most.
        if self.map.len() >= self.cap && !self.map.contains_key(key) {
            return self.map.measure_and_replace(&ClientKey::Overflow, f);
        }
        self.map.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&self.map);
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

type KeyedLimiter = RateLimiter<ClientKey, BoundedStore, DefaultClock>;
type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is non-zero")
}

fn over_burst(n: usize, burst: u32) -> Error {
    Error::InvalidRequest(format!(
        "{n} OPRF elements in one request; the rate limit allows at most {burst} at once"
    ))
}

fn retry_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Enforces [`Limits`]: rate budgets and query slots. One per server.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    clock: DefaultClock,
    client_oprf: KeyedLimiter,
    client_queries: KeyedLimiter,
    server_oprf: DirectLimiter,
    slots: Arc<Slots>,
    last_sweep: Mutex<Instant>,
}

impl Limiter {
    /// A limiter enforcing `limits` (checked first).
    pub fn new(mut limits: Limits) -> Result<Self> {
        limits.validate()?;
        if let Some(h) = &mut limits.client_ip_header {
            h.make_ascii_lowercase();
        }
        let clock = DefaultClock::default();
        let keyed = |quota: Quota| {
            RateLimiter::new(
                quota,
                BoundedStore::new(limits.max_tracked_clients),
                clock.clone(),
            )
        };
        let client_oprf = keyed(
            Quota::per_second(nonzero(limits.oprf_elements_per_sec))
                .allow_burst(nonzero(limits.oprf_burst)),
        );
        let client_queries = keyed(
            Quota::per_minute(nonzero(limits.queries_per_minute))
                .allow_burst(nonzero(limits.query_burst)),
        );
        let server_oprf = RateLimiter::new(
            Quota::per_second(nonzero(limits.global_oprf_elements_per_sec))
                .allow_burst(nonzero(limits.global_oprf_burst)),
            InMemoryState::default(),
            clock.clone(),
        );
        let slots = Arc::new(Slots {
            server: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            max_pending: limits.max_concurrent_queries * QUEUE_FACTOR,
            per_client: limits.max_concurrent_queries_per_client,
            max_pending_per_client: limits.max_concurrent_queries_per_client * QUEUE_FACTOR,
            table: Mutex::new(SlotTable::default()),
        });
        Ok(Self {
            clock,
            client_oprf,
            client_queries,
            server_oprf,
            slots,
            last_sweep: Mutex::new(Instant::now()),
            limits,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The client a request is charged to (see the module documentation).
    pub fn client(&self, metadata: &MetadataMap, peer: Option<SocketAddr>) -> ClientKey {
        ClientKey::of_request(metadata, peer, self.limits.client_ip_header.as_deref())
    }

    /// The client's address as [`client`](Self::client) reads it (the
    /// configured header's rightmost entry, else the TCP peer): what a
    /// front forwards to its shards.
    pub fn client_ip(&self, metadata: &MetadataMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        self.limits
            .client_ip_header
            .as_deref()
            .and_then(|h| forwarded_ip(metadata, h))
            .or(peer.map(|p| p.ip()))
    }

    /// Charges `n` OPRF elements to `client` and to the server-wide budget.
    pub fn charge_oprf(&self, client: ClientKey, n: usize) -> Result<()> {
        const RPC: &str = "EvaluateOprf";
        let Some(cells) = u32::try_from(n).ok().and_then(NonZeroU32::new) else {
            return Ok(());
        };
        self.sweep_if_due(&self.client_oprf);
        let refused = |reason, wait| {
            count_refusal(RPC, reason);
            Error::RateLimited {
                reason,
                requested: n as u64,
                unit: "OPRF elements",
                retry_after_ms: retry_ms(wait),
            }
        };
        match self.client_oprf.check_key_n(&client, cells) {
            Ok(Ok(())) => {}
            Ok(Err(not_until)) => {
                return Err(refused(Reason::ClientOprfRate, self.wait(&not_until)));
            }
            // More than the burst: retrying cannot help (validate() keeps
            // the bursts at least max_items_per_query, so not reached).
            Err(_) => return Err(over_burst(n, self.limits.oprf_burst)),
        }
        match self.server_oprf.check_n(cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(Reason::ServerOprfRate, self.wait(&not_until))),
            Err(_) => Err(over_burst(n, self.limits.global_oprf_burst)),
        }
    }

    /// Admits a query of `client`: waits (at most
    /// [`Limits::query_admission_wait`]) for one of the client's slots and
    /// one of the server's, then charges one query token. The permit holds
    /// both slots until dropped.
    pub async fn admit_query(&self, client: ClientKey) -> Result<QueryPermit> {
        const RPC: &str = "Query";
        let busy_ms = retry_ms(self.limits.query_admission_wait).max(MIN_BUSY_RETRY_MS);
        let busy = |reason: Reason| {
            count_refusal(RPC, reason);
            let limit = match reason {
                Reason::ClientQuerySlots => self.limits.max_concurrent_queries_per_client,
                _ => self.limits.max_concurrent_queries,
            };
            Error::Busy {
                reason,
                limit,
                retry_after_ms: busy_ms,
            }
        };
        let entry = Slots::enter(&self.slots, client).map_err(busy)?;
        let deadline = tokio::time::Instant::now() + self.limits.query_admission_wait;
        let client_slot = acquire_by(&entry.semaphore, deadline)
            .await
            .ok_or_else(|| busy(Reason::ClientQuerySlots))?;
        let server_stage = Slots::enter_server(&self.slots).map_err(busy)?;
        let server_slot = acquire_by(&self.slots.server, deadline)
            .await
            .ok_or_else(|| busy(Reason::ServerQuerySlots))?;
        self.sweep_if_due(&self.client_queries);
        if let Err(not_until) = self.client_queries.check_key(&client) {
            count_refusal(RPC, Reason::ClientQueryRate);
            return Err(Error::RateLimited {
                reason: Reason::ClientQueryRate,
                requested: 1,
                unit: "queries",
                retry_after_ms: retry_ms(self.wait(&not_until)),
            });
        }
        Ok(QueryPermit {
            _server: server_slot,
            _server_stage: server_stage,
            _client: client_slot,
            _entry: entry,
        })
    }

    /// Clients tracked in the OPRF and query tables (each at most
    /// [`Limits::max_tracked_clients`], plus the overflow entry).
    pub fn tracked_clients(&self) -> (usize, usize) {
        (self.client_oprf.len(), self.client_queries.len())
    }

    /// Clients with a query running or waiting.
    pub fn clients_with_queries(&self) -> usize {
        self.slots.lock().clients.len()
    }

    fn wait(&self, not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
        not_until.wait_time_from(self.clock.now())
    }

    /// Drops refilled entries every [`SWEEP_INTERVAL`], or after a second
    /// when `table` is full.
    fn sweep_if_due(&self, table: &KeyedLimiter) {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return; // another request is sweeping
        };
        let since = last.elapsed();
        let full = table.len() >= self.limits.max_tracked_clients;
        if since >= SWEEP_INTERVAL || (full && since >= Duration::from_secs(1)) {
            for t in [&self.client_oprf, &self.client_queries] {
                t.retain_recent();
                t.shrink_to_fit();
            }
            *last = Instant::now();
        }
    }
}

/// Waits for a permit until `deadline`; `None` when it passes.
async fn acquire_by(
    semaphore: &Arc<Semaphore>,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    match tokio::time::timeout_at(deadline, semaphore.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Some(permit),
        // Timed out, or closed (never: the semaphores are not closed).
        _ => None,
    }
}

/// The concurrent-query slots.
#[derive(Debug)]
struct Slots {
    server: Arc<Semaphore>,
    max_pending: usize,
    per_client: usize,
    max_pending_per_client: usize,
    table: Mutex<SlotTable>,
}

/// Queries running or waiting, per client; and how many hold a client
/// slot and wait for or hold a server slot. Only clients with a query
/// running or waiting have an entry, so the table is bounded by the
/// server's queue (a client waiting for its own slot has all its slots in
/// the server's queue).
#[derive(Debug, Default)]
struct SlotTable {
    clients: HashMap<ClientKey, ClientSlots>,
    server_pending: usize,
}

#[derive(Debug)]
struct ClientSlots {
    semaphore: Arc<Semaphore>,
    pending: usize,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotTable> {
        // The table is consistent after every statement; a panic elsewhere
        // while it was held does not make it unusable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a query of `client` as pending, or refuses it when the
    /// client's queue is full.
    fn enter(slots: &Arc<Self>, client: ClientKey) -> Result<PendingEntry, Reason> {
        let mut table = slots.lock();
        let per_client = slots.per_client;
        let entry = table.clients.entry(client).or_insert_with(|| ClientSlots {
            semaphore: Arc::new(Semaphore::new(per_client)),
            pending: 0,
        });
        if entry.pending >= slots.max_pending_per_client {
            return Err(Reason::ClientQuerySlots);
        }
        entry.pending += 1;
        let semaphore = entry.semaphore.clone();
        Ok(PendingEntry {
            slots: slots.clone(),
            client,
            semaphore,
        })
    }

    /// Counts a query holding a client slot as waiting for a server slot,
    /// or refuses it when the server's queue is full. Each client has at
    /// most its share of slots here, so one client cannot fill the queue.
    fn enter_server(slots: &Arc<Self>) -> Result<ServerStage, Reason> {
        let mut table = slots.lock();
        if table.server_pending >= slots.max_pending {
            return Err(Reason::ServerQuerySlots);
        }
        table.server_pending += 1;
        Ok(ServerStage {
            slots: slots.clone(),
        })
    }
}

/// A query counted in the server's queue; uncounted on drop.
#[derive(Debug)]
struct ServerStage {
    slots: Arc<Slots>,
}

impl Drop for ServerStage {
    fn drop(&mut self) {
        self.slots.lock().server_pending -= 1;
    }
}

/// A query counted as running or waiting; uncounted on drop.
#[derive(Debug)]
struct PendingEntry {
    slots: Arc<Slots>,
    client: ClientKey,
    semaphore: Arc<Semaphore>,
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        let mut table = self.slots.lock();
        if let Some(c) = table.clients.get_mut(&self.client) {
            c.pending -= 1;
            if c.pending == 0 {
                table.clients.remove(&self.client);
            }
        }
    }
}

/// An admitted query's slots (server and client); released on drop, i.e.
/// when the answer is complete or abandoned.
#[derive(Debug)]
pub struct QueryPermit {
    // Field order is drop order: slots first, then the pending counts.
    _server: OwnedSemaphorePermit,
    _server_stage: ServerStage,
    _client: OwnedSemaphorePermit,
    _entry: PendingEntry,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> ClientKey {
        ClientKey::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn limiter(limits: Limits) -> Limiter {
        Limiter::new(limits).unwrap()
    }

    fn small() -> Limits {
        Limits {
            max_items_per_query: 10,
            oprf_elements_per_sec: 1,
            oprf_burst: 10,
            global_oprf_burst: 1000,
            ..Limits::default()
        }
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| ClientKey::from_ip(s.parse().unwrap());
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff:ee:dd:5"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(ip("::ffff:192.0.2.7"), v4(192, 0, 2, 7));
        assert_eq!(ip("192.0.2.7"), v4(192, 0, 2, 7));
        assert_ne!(ip("192.0.2.7"), ip("192.0.2.8"));
        // IPv4-compatible (deprecated) addresses are not IPv4.
        assert!(matches!(ip("::192.0.2.7"), ClientKey::V6Net(0)));
        // Connections (ports) do not matter.
        let md = MetadataMap::new();
        assert_eq!(
            ClientKey::of_request(&md, peer("[2001:db8::1]:1000"), None),
            ClientKey::of_request(&md, peer("[2001:db8::2]:2000"), None)
        );
        assert_eq!(ClientKey::of_request(&md, None, None), ClientKey::Unknown);
    }

    #[test]
    fn forwarding_header_is_used_only_when_configured_rightmost_entry() {
        let mut md = MetadataMap::new();
        md.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let p = peer("10.0.0.1:5000");
        // Not configured: ignored completely.
        assert_eq!(ClientKey::of_request(&md, p, None), v4(10, 0, 0, 1));
        assert_eq!(
            ClientKey::of_request(&md, p, Some("x-real-ip")),
            v4(10, 0, 0, 1)
        );
        let xff = Some("x-forwarded-for");
        assert_eq!(
            ClientKey::of_request(&md, p, xff),
            v4(198, 51, 100, 7),
            "the rightmost entry, appended by the proxy"
        );
        // Several header lines form one list: the last line's last entry.
        md.append("x-forwarded-for", "192.0.2.1 , 192.0.2.55".parse().unwrap());
        assert_eq!(ClientKey::of_request(&md, p, xff), v4(192, 0, 2, 55));
        for (value, want) in [
            ("1.2.3.4:8080", v4(1, 2, 3, 4)),
            (
                "spoofed, [2001:db8:7:7::9]:443",
                ClientKey::V6Net(0x2001_0db8_0007_0007),
            ),
            ("[2001:db8:7:7::9]", ClientKey::V6Net(0x2001_0db8_0007_0007)),
            ("::ffff:1.2.3.4", v4(1, 2, 3, 4)),
            // Malformed or opaque: the socket peer.
            ("unknown", v4(10, 0, 0, 1)),
            ("1.2.3.4, ", v4(10, 0, 0, 1)),
            ("1.2.3.4, not an address", v4(10, 0, 0, 1)),
            ("", v4(10, 0, 0, 1)),
        ] {
            let mut md = MetadataMap::new();
            md.insert("x-forwarded-for", value.parse().unwrap());
            assert_eq!(ClientKey::of_request(&md, p, xff), want, "{value:?}");
        }
        // Missing header: the socket peer.
        assert_eq!(
            ClientKey::of_request(&MetadataMap::new(), p, xff),
            v4(10, 0, 0, 1)
        );
        // The limiter's configured name is case-insensitive.
        let l = limiter(Limits {
            client_ip_header: Some("X-Forwarded-For".into()),
            ..Limits::default()
        });
        assert_eq!(l.client(&md, p), v4(192, 0, 2, 55));
    }

    #[test]
    fn one_oprf_budget_per_client_whatever_the_connection() {
        let l = limiter(small());
        let md = MetadataMap::new();
        let a1 = l.client(&md, peer("127.0.0.1:40001"));
        let a2 = l.client(&md, peer("127.0.0.1:40002"));
        l.charge_oprf(a1, 6).unwrap();
        let e = l.charge_oprf(a2, 6).unwrap_err();
        match e {
            Error::RateLimited {
                reason: Reason::ClientOprfRate,
                requested: 6,
                retry_after_ms,
                ..
            } => assert!(retry_after_ms > 0, "{retry_after_ms}"),
            other => panic!("{other:?}"),
        }
        // Another address has its own budget; the same /64 does not.
        l.charge_oprf(v4(127, 0, 0, 2), 10).unwrap();
        let n1 = ClientKey::from_ip("2001:db8::1".parse().unwrap());
        let n2 = ClientKey::from_ip("2001:db8::2".parse().unwrap());
        l.charge_oprf(n1, 10).unwrap();
        assert!(l.charge_oprf(n2, 1).is_err());
    }

    #[test]
    fn server_wide_oprf_budget_caps_all_clients() {
        let l = limiter(Limits {
            global_oprf_burst: 15,
            ..small()
        });
        l.charge_oprf(v4(192, 0, 2, 1), 10).unwrap();
        let e = l.charge_oprf(v4(192, 0, 2, 2), 10).unwrap_err();
        assert!(
            matches!(
                e,
                Error::RateLimited {
                    reason: Reason::ServerOprfRate,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn client_table_stays_bounded_and_new_clients_share_the_overflow_bucket() {
        let l = limiter(Limits {
            max_tracked_clients: 50,
            max_items_per_query: 1000,
            oprf_burst: 1000,
            global_oprf_burst: 60_000,
            global_oprf_elements_per_sec: 1_000_000,
            ..small()
        });
        // 50 clients use their whole burst (refilling takes 1000 s, so no
        // sweep can drop them during the test).
        for i in 0..50 {
            l.charge_oprf(v4(198, 51, 100, i), 1000).unwrap();
        }
        assert_eq!(l.tracked_clients().0, 50);
        // A new client gets the overflow bucket, and the next new client
        // shares it rather than getting a fresh one.
        l.charge_oprf(v4(203, 0, 113, 1), 1000).unwrap();
        let e = l.charge_oprf(v4(203, 0, 113, 2), 1).unwrap_err();
        assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
        // Many more distinct clients: the table does not grow.
        for i in 0..20_000u32 {
            let _ = l.charge_oprf(ClientKey::V4(Ipv4Addr::from(0x0a00_0000 + i)), 1);
            let _ = l.charge_oprf(ClientKey::V6Net(u64::from(i)), 1);
        }
        assert!(l.tracked_clients().0 <= 51, "{:?}", l.tracked_clients());
        // Tracked clients keep their own (empty) buckets.
        assert!(l.charge_oprf(v4(198, 51, 100, 3), 1).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn query_slots_per_client_and_server_wide() {
        let l = limiter(Limits {
            max_concurrent_queries: 2,
            max_concurrent_queries_per_client: 1,
            query_admission_wait: Duration::from_millis(100),
            ..Limits::default()
        });
        let (a, b, c) = (v4(192, 0, 2, 1), v4(192, 0, 2, 2), v4(192, 0, 2, 3));
        let pa = l.admit_query(a).await.unwrap();
        // A's share is one: its second query waits, then is refused.
        match l.admit_query(a).await.unwrap_err() {
            Error::Busy {
                reason: Reason::ClientQuerySlots,
                limit: 1,
                retry_after_ms,
            } => assert_eq!(retry_after_ms, MIN_BUSY_RETRY_MS),
            other => panic!("{other:?}"),
        }
        let pb = l.admit_query(b).await.unwrap();
        // The server's two slots are taken.
        assert!(matches!(
            l.admit_query(c).await.unwrap_err(),
            Error::Busy {
                reason: Reason::ServerQuerySlots,
                limit: 2,
                ..
            }
        ));
        drop(pa);
        let pc = l.admit_query(c).await.unwrap();
        // A waiting query is admitted when a slot frees within the wait.
        let waiting = async { l.admit_query(a).await };
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(pb);
        };
        let (admitted, ()) = tokio::join!(waiting, release);
        drop(admitted.unwrap());
        drop(pc);
        assert_eq!(l.clients_with_queries(), 0, "entries are dropped when idle");
    }

    #[tokio::test(start_paused = true)]
    async fn query_queues_are_bounded() {
        let l = limiter(Limits {
            max_concurrent_queries: 2,
            max_concurrent_queries_per_client: 1,
            query_admission_wait: Duration::from_secs(30),
            ..Limits::default()
        });
        let (a, b) = (v4(192, 0, 2, 1), v4(192, 0, 2, 2));
        let _running = l.admit_query(a).await.unwrap();
        // QUEUE_FACTOR (4) times the client's share may be running or
        // waiting: 3 wait (they never finish here), the 5th is refused at
        // once, and another client still gets the free server slot.
        let mut waiters: Vec<_> = (0..3).map(|_| Box::pin(l.admit_query(a))).collect();
        for w in &mut waiters {
            assert!(poll_once(w).await.is_none(), "waits");
        }
        assert!(matches!(
            l.admit_query(a).await.unwrap_err(),
            Error::Busy {
                reason: Reason::ClientQuerySlots,
                ..
            }
        ));
        let _b = l.admit_query(b).await.unwrap();
        // The server's queue: 2 x 4 running or waiting (A's waiters hold
        // no slot of A's and do not count), then refusals.
        let others: Vec<_> = (3..9).map(|i| v4(192, 0, 2, i)).collect();
        let mut more: Vec<_> = others.iter().map(|&c| Box::pin(l.admit_query(c))).collect();
        for w in &mut more {
            assert!(poll_once(w).await.is_none(), "waits");
        }
        assert!(matches!(
            l.admit_query(v4(192, 0, 2, 9)).await.unwrap_err(),
            Error::Busy {
                reason: Reason::ServerQuerySlots,
                ..
            }
        ));
        drop((waiters, more));
        assert_eq!(l.clients_with_queries(), 2);
    }

    /// Polls a future once.
    async fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test]
    async fn queries_are_charged_to_the_client() {
        let l = limiter(Limits {
            queries_per_minute: 1,
            query_burst: 2,
            ..Limits::default()
        });
        let a = v4(192, 0, 2, 1);
        drop(l.admit_query(a).await.unwrap());
        drop(l.admit_query(a).await.unwrap());
        match l.admit_query(a).await.unwrap_err() {
            Error::RateLimited {
                reason: Reason::ClientQueryRate,
                retry_after_ms,
                ..
            } => assert!(retry_after_ms > 1000, "about a minute: {retry_after_ms}"),
            other => panic!("{other:?}"),
        }
        // The refused query holds no slot; other clients are unaffected.
        assert_eq!(l.clients_with_queries(), 0);
        drop(l.admit_query(v4(192, 0, 2, 2)).await.unwrap());
    }

    #[tokio::test]
    async fn default_limits_admit_a_10000_entry_vault_and_8_small_ones_at_once() {
        // Rounds of at most 1024 items per collection: one EvaluateOprf and
        // one Query each, all from one address, with no waiting.
        let l = limiter(Limits::default());
        let client = v4(127, 0, 0, 1);
        let mut rounds = Vec::new();
        for _collection in 0..2 {
            let mut left = 10_000;
            while left > 0 {
                rounds.push(left.min(1024));
                left -= left.min(1024);
            }
        }
        rounds.extend([60; 16]);
        assert_eq!(rounds.len(), 36);
        for n in rounds {
            l.charge_oprf(client, n).unwrap();
            drop(l.admit_query(client).await.unwrap());
        }
        // ... but one address cannot go on guessing at that pace.
        let mut refused = false;
        for _ in 0..10 {
            refused |= l.charge_oprf(client, 1024).is_err();
        }
        assert!(refused);
    }

    #[test]
    fn refusals_map_to_resource_exhausted_with_a_retry_hint() {
        for e in [
            Error::RateLimited {
                reason: Reason::ClientOprfRate,
                requested: 7,
                unit: "OPRF elements",
                retry_after_ms: 1234,
            },
            Error::Busy {
                reason: Reason::ServerQuerySlots,
                limit: 4,
                retry_after_ms: 1234,
            },
        ] {
            let message = e.to_string();
            let s = tonic::Status::from(e);
            assert_eq!(s.code(), tonic::Code::ResourceExhausted);
            assert_eq!(s.message(), message);
            let hint = s
                .metadata()
                .get(crate::error::RETRY_PUSHBACK_KEY)
                .expect("hint present");
            assert_eq!(hint.to_str().unwrap().parse::<u64>().unwrap(), 1234);
        }
    }

    #[test]
    fn refusals_are_counted_by_rpc_and_reason() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let l = limiter(small());
        metrics::with_local_recorder(&recorder, || {
            l.charge_oprf(v4(192, 0, 2, 1), 10).unwrap();
            let _ = l.charge_oprf(v4(192, 0, 2, 1), 10).unwrap_err();
            let _ = l.charge_oprf(v4(192, 0, 2, 1), 1).unwrap_err();
        });
        let counted: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == RATE_LIMITED_METRIC)
            .map(|(k, _, _, v)| {
                let labels: Vec<_> = k
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (labels, v)
            })
            .collect();
        assert_eq!(
            counted,
            [(
                vec![
                    "rpc=EvaluateOprf".to_string(),
                    "reason=client_oprf_rate".into()
                ],
                DebugValue::Counter(2)
            )]
        );
    }

    #[test]
    fn limits_are_checked() {
        Limits::default().validate().unwrap();
        for bad in [
            Limits {
                oprf_burst: 10,
                ..Limits::default()
            },
            Limits {
                max_concurrent_queries_per_client: 5,
                ..Limits::default()
            },
            Limits {
                query_burst: 0,
                ..Limits::default()
            },
            Limits {
                client_ip_header: Some("bad header".into()),
                ..Limits::default()
            },
            Limits {
                client_ip_header: Some("grpc-status".into()),
                ..Limits::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
