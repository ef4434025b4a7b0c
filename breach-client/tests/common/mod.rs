//! A small in-process breach server for the client's tests: psi-core's
//! `SenderDb` behind the `breach.v1.BreachCheck` gRPC service, loaded with
//! the fixture breach corpus (`fixtures/data/breach/`) imported by the
//! fixtures' reference rules, so every fixture vault's known answer holds.
//!
//! Test-only; the real service is `breach-server`.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use breach_proto::encoding::{Label, credential_item, password_item_from_sha1};
use breach_proto::v1::breach_check_server::{BreachCheck, BreachCheckServer};
use breach_proto::v1::{
    Collection, CollectionParameters, GetParametersRequest, GetParametersResponse, Limits,
    OprfRequest, OprfResponse, QueryRequest, QueryResponsePart,
};
use fixtures_gen::reference::{Corpus, sha1};
use psi_core::wire::Codec;
use psi_core::{OprfKey, PsiParams, Query, SenderDb};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

/// One runtime for every server and every library call of a test binary.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime")
    })
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data")
}

/// The fixture breach corpus, imported by the reference rules.
pub fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = fixtures_dir().join("breach");
        let read = |name: &str| std::fs::read(dir.join(name)).expect("fixture breach file");
        let mut corpus = Corpus::default();
        corpus.add_combo_file(&read("combo-1.txt"));
        corpus.add_combo_file(&read("combo-2.txt"));
        corpus.add_hibp_file(&read("pwned-passwords.txt"));
        corpus
    })
}

pub fn test_params() -> PsiParams {
    PsiParams::from_json(include_str!("../../../psi-core/params/test-small.json"))
        .expect("test-small.json")
}

/// Other parameters than [`test_params`] (one more query power), for a
/// second tier or a rebuilt database.
pub fn other_params() -> PsiParams {
    let mut params = test_params();
    params.query_powers = vec![1, 2, 3, 4];
    params.validate().expect("other params");
    params
}

/// The two sender databases built from [`corpus`], built once per test binary.
pub struct Databases {
    pub credentials: SenderDb,
    pub passwords: SenderDb,
}

/// [`test_params`] with fresh OPRF keys.
pub fn databases() -> Arc<Databases> {
    static DBS: OnceLock<Arc<Databases>> = OnceLock::new();
    DBS.get_or_init(|| Arc::new(build_databases(test_params(), None)))
        .clone()
}

/// [`other_params`] under the same OPRF keys as [`databases`]: a second
/// tier of the same collections.
pub fn other_tier_databases() -> Arc<Databases> {
    static DBS: OnceLock<Arc<Databases>> = OnceLock::new();
    DBS.get_or_init(|| {
        let main = databases();
        Arc::new(build_databases(
            other_params(),
            Some((main.credentials.oprf_key(), main.passwords.oprf_key())),
        ))
    })
    .clone()
}

/// [`other_params`] under new OPRF keys: a rebuilt database.
pub fn rebuilt_databases() -> Arc<Databases> {
    static DBS: OnceLock<Arc<Databases>> = OnceLock::new();
    DBS.get_or_init(|| Arc::new(build_databases(other_params(), None)))
        .clone()
}

fn build_databases(params: PsiParams, keys: Option<(&OprfKey, &OprfKey)>) -> Databases {
    let copy = |k: &OprfKey| OprfKey::from_bytes(&k.to_bytes()[..]).expect("key");
    let (cred_key, pw_key) = match keys {
        Some((c, p)) => (copy(c), copy(p)),
        None => (
            OprfKey::generate().expect("key"),
            OprfKey::generate().expect("key"),
        ),
    };
    {
        let corpus = corpus();
        let credentials: Vec<([u8; 32], [u8; 8])> = corpus
            .pairs
            .iter()
            .map(|((user, pw), count)| {
                (
                    credential_item(user, pw),
                    Label { count: *count }.to_bytes(),
                )
            })
            .collect();
        let mut by_sha1 = corpus.hibp.clone();
        for (pw, count) in &corpus.combo_passwords {
            *by_sha1.entry(sha1(pw)).or_default() += count;
        }
        let passwords: Vec<([u8; 32], [u8; 8])> = by_sha1
            .iter()
            .map(|(digest, count)| {
                (
                    password_item_from_sha1(digest),
                    Label { count: *count }.to_bytes(),
                )
            })
            .collect();
        let build = |items: &[([u8; 32], [u8; 8])], key: OprfKey| {
            let mut db = SenderDb::new(params.clone(), key).expect("db");
            let refs: Vec<(&[u8], &[u8])> = items
                .iter()
                .map(|(i, l)| (i.as_slice(), l.as_slice()))
                .collect();
            db.insert(&refs).expect("insert");
            db
        };
        Databases {
            credentials: build(&credentials, cred_key),
            passwords: build(&passwords, pw_key),
        }
    }
}

/// One tier the test server serves: its name and `max_query_items` as
/// `GetParameters` lists them ("" and 0 for a server before tiers).
#[derive(Clone)]
pub struct TierSpec {
    pub name: &'static str,
    pub max_query_items: u64,
    pub dbs: Arc<Databases>,
}

impl TierSpec {
    /// A server before tiers: no name, no limit.
    pub fn legacy(dbs: Arc<Databases>) -> Self {
        TierSpec {
            name: "",
            max_query_items: 0,
            dbs,
        }
    }
}

/// A refusal the server answers an RPC with, `times` times.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// "GetParameters", "EvaluateOprf" or "Query".
    pub rpc: &'static str,
    pub code: tonic::Code,
    pub message: &'static str,
    /// `grpc-retry-pushback-ms`, if any.
    pub pushback: Option<&'static str>,
    /// How many calls are refused (`usize::MAX`: all).
    pub times: usize,
}

/// How a test server behaves.
#[derive(Clone)]
pub struct ServerConfig {
    pub max_items_per_query: u64,
    pub max_message_bytes: u64,
    pub max_concurrent_queries: u64,
    /// Send the parameters in psi-core's JSON form instead of the wire form.
    pub params_as_json: bool,
    /// Leave the passwords collection out of `GetParameters`.
    pub without_passwords: bool,
    /// Fail every `GetParameters` with `UNAVAILABLE` and this message.
    pub fail_with: Option<String>,
    /// Generations of the database, each a list of tiers; `GetParameters`
    /// lists the current one. Default: one generation, one legacy tier.
    pub generations: Vec<Vec<TierSpec>>,
    /// This many `Query` calls (`usize::MAX`: all) first swap in the next
    /// generation, as a server that rebuilt its database does, so the
    /// query in hand no longer fits (FAILED_PRECONDITION).
    pub swaps: usize,
    /// Refuse calls for load this way.
    pub refusal: Option<Refusal>,
    /// This RPC never answers.
    pub stall: Option<&'static str>,
    /// Serve TLS with this identity.
    pub tls: Option<tonic::transport::Identity>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_items_per_query: 4096,
            max_message_bytes: 32 << 20,
            max_concurrent_queries: 4,
            params_as_json: false,
            without_passwords: false,
            fail_with: None,
            generations: vec![vec![TierSpec::legacy(databases())]],
            swaps: 0,
            refusal: None,
            stall: None,
            tls: None,
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Stats {
    pub oprf_requests: AtomicUsize,
    pub queries: AtomicUsize,
    pub largest_oprf_batch: AtomicUsize,
    pub credential_queries: AtomicUsize,
    pub password_queries: AtomicUsize,
    pub get_parameters: AtomicUsize,
    pub refused: AtomicUsize,
    pub stale_queries: AtomicUsize,
    /// The tier of every answered query, in order.
    pub tiers_queried: Mutex<Vec<String>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

/// A certificate authority and a server certificate for `localhost` and
/// 127.0.0.1 signed by it: (CA certificate PEM, server identity).
pub fn test_pki() -> (String, tonic::transport::Identity) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "breach-client test CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca).expect("server cert");
    (
        ca.pem(),
        tonic::transport::Identity::from_pem(cert.pem(), key.serialize_pem()),
    )
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a server on 127.0.0.1:0 on [`runtime`].
pub fn start_server(config: ServerConfig) -> TestServer {
    let stats = Arc::new(Stats::default());
    let service = Service {
        config: config.clone(),
        stats: Arc::clone(&stats),
        generation: Arc::new(AtomicUsize::new(0)),
        swaps_left: Arc::new(AtomicUsize::new(config.swaps)),
        refusals_left: Arc::new(AtomicUsize::new(
            config.refusal.as_ref().map_or(0, |r| r.times),
        )),
    };

    assert!(!config.generations.is_empty() && config.generations.iter().all(|g| !g.is_empty()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let limit = config.max_message_bytes as usize;
    rt.spawn(async move {
        let mut builder = tonic::transport::Server::builder();
        if let Some(identity) = config.tls.clone() {
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .expect("server TLS");
        }
        builder
            .add_service(
                BreachCheckServer::new(service)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit),
            )
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await
            .expect("test server");
    });
    TestServer {
        addr,
        stats,
        shutdown: Some(tx),
    }
}

struct Service {
    config: ServerConfig,
    stats: Arc<Stats>,
    generation: Arc<AtomicUsize>,
    swaps_left: Arc<AtomicUsize>,
    refusals_left: Arc<AtomicUsize>,
}

/// Takes one from a countdown unless it is at 0 (`usize::MAX` never runs out).
fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            usize::MAX => Some(usize::MAX),
            n => Some(n - 1),
        })
        .is_ok()
}

impl Service {
    fn tiers(&self) -> &[TierSpec] {
        let g = self.generation.load(Ordering::SeqCst) % self.config.generations.len();
        &self.config.generations[g]
    }

    fn served(&self, collection: i32) -> Result<Collection, Status> {
        match Collection::try_from(collection) {
            Ok(Collection::Credentials) => Ok(Collection::Credentials),
            Ok(Collection::Passwords) if !self.config.without_passwords => {
                Ok(Collection::Passwords)
            }
            _ => Err(Status::invalid_argument("unknown collection")),
        }
    }

    fn db(dbs: &Databases, collection: Collection) -> &SenderDb {
        match collection {
            Collection::Credentials => &dbs.credentials,
            _ => &dbs.passwords,
        }
    }

    /// Refuses the call if the configuration says so.
    async fn gate(&self, rpc: &'static str) -> Result<(), Status> {
        if self.config.stall == Some(rpc) {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        if let Some(r) = &self.config.refusal
            && r.rpc == rpc
            && take_one(&self.refusals_left)
        {
            self.stats.refused.fetch_add(1, Ordering::SeqCst);
            let mut status = Status::new(r.code, r.message);
            if let Some(ms) = r.pushback {
                status.metadata_mut().insert(
                    "grpc-retry-pushback-ms",
                    ms.parse().expect("pushback metadata"),
                );
            }
            return Err(status);
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl BreachCheck for Service {
    async fn get_parameters(
        &self,
        _request: Request<GetParametersRequest>,
    ) -> Result<Response<GetParametersResponse>, Status> {
        self.stats.get_parameters.fetch_add(1, Ordering::SeqCst);
        if let Some(message) = &self.config.fail_with {
            return Err(Status::unavailable(message.clone()));
        }
        self.gate("GetParameters").await?;
        let mut served = vec![Collection::Credentials];
        if !self.config.without_passwords {
            served.push(Collection::Passwords);
        }
        let mut collections = Vec::new();
        for c in served {
            for tier in self.tiers() {
                let db = Self::db(&tier.dbs, c);
                let params = db.params();
                collections.push(CollectionParameters {
                    collection: c as i32,
                    psi_params: if self.config.params_as_json {
                        params.to_json().into_bytes()
                    } else {
                        params.to_wire()
                    },
                    item_count: db.stats().items,
                    he_params_fingerprint: params.fingerprint().to_vec(),
                    max_query_items: tier.max_query_items,
                    tier: tier.name.to_owned(),
                    generation: self.generation.load(Ordering::SeqCst) as u64,
                    oprf_key_id: Vec::new(),
                });
            }
        }
        Ok(Response::new(GetParametersResponse {
            server_version: "test-server 0".into(),
            limits: Some(Limits {
                max_message_bytes: self.config.max_message_bytes,
                max_items_per_query: self.config.max_items_per_query,
                max_concurrent_queries: self.config.max_concurrent_queries,
            }),
            collections,
            shard: None,
            username_routing: None,
        }))
    }

    async fn evaluate_oprf(
        &self,
        request: Request<OprfRequest>,
    ) -> Result<Response<OprfResponse>, Status> {
        let request = request.into_inner();
        let collection = self.served(request.collection)?;
        self.gate("EvaluateOprf").await?;
        let n = request.blinded_elements.len();
        if n as u64 > self.config.max_items_per_query {
            return Err(Status::invalid_argument(format!(
                "{n} elements exceed max_items_per_query {}",
                self.config.max_items_per_query
            )));
        }
        self.stats.oprf_requests.fetch_add(1, Ordering::SeqCst);
        self.stats.largest_oprf_batch.fetch_max(n, Ordering::SeqCst);
        let elements = request
            .blinded_elements
            .iter()
            .map(|e| <[u8; 32]>::try_from(e.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Status::invalid_argument("blinded element is not 32 bytes"))?;
        // Every tier of a generation shares the OPRF key.
        let db = Self::db(&self.tiers()[0].dbs, collection);
        let answer = db
            .evaluate_oprf(&psi_core::OprfRequest { elements })
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(OprfResponse {
            evaluated_elements: answer.elements.iter().map(|e| e.to_vec()).collect(),
        }))
    }

    type QueryStream = ReceiverStream<Result<QueryResponsePart, Status>>;

    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let request = request.into_inner();
        let collection = self.served(request.collection)?;
        let query = Query::from_wire(&request.query)
            .map_err(|e| Status::invalid_argument(format!("query: {e}")))?;
        self.gate("Query").await?;
        if take_one(&self.swaps_left) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        let Some(tier) = self
            .tiers()
            .iter()
            .find(|t| {
                Self::db(&t.dbs, collection).params().fingerprint() == query.params_fingerprint
            })
            .cloned()
        else {
            self.stats.stale_queries.fetch_add(1, Ordering::SeqCst);
            return Err(Status::failed_precondition(
                "the query's parameters are no longer served (the database was rebuilt): \
                 fetch the parameters again",
            ));
        };
        self.stats.queries.fetch_add(1, Ordering::SeqCst);
        match collection {
            Collection::Credentials => &self.stats.credential_queries,
            _ => &self.stats.password_queries,
        }
        .fetch_add(1, Ordering::SeqCst);
        self.stats
            .tiers_queried
            .lock()
            .expect("stats")
            .push(tier.name.to_owned());
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let db = Self::db(&tier.dbs, collection);
            let mut sent = 0;
            let outcome = db.answer(&query, |part| {
                sent += 1;
                tx.blocking_send(Ok(QueryResponsePart {
                    result_part: part.to_wire(),
                    part: sent - 1,
                    ..Default::default()
                }))
                .map_err(|_| psi_core::Error::Io("client went away".into()))
            });
            let end = match outcome {
                Ok(()) => Ok(QueryResponsePart {
                    trailer: Some(breach_proto::v1::ShardTrailer { parts: sent }),
                    ..Default::default()
                }),
                Err(e) => Err(Status::invalid_argument(e.to_string())),
            };
            let _ = tx.blocking_send(end);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The reference answer for a vault, computed from [`corpus`] directly.
pub fn expected_report(vault: &breach_client::Vault) -> serde_json::Value {
    let corpus = corpus();
    let results: Vec<serde_json::Value> = vault
        .entries
        .iter()
        .map(|e| {
            let count = corpus.breach_count(&e.username, e.password.expose());
            let seen = corpus.password_seen(e.password.expose());
            serde_json::json!({
                "entry": e.record,
                "url": e.url,
                "username": e.username,
                "credential_breached": count > 0,
                "breach_count": count,
                "password_breached": seen > 0,
                "password_seen": seen,
            })
        })
        .collect();
    let mut report = serde_json::json!({ "checked": vault.entries.len(), "results": results });
    if !vault.skipped.is_none() {
        report["skipped"] = serde_json::to_value(vault.skipped).expect("skipped");
    }
    report
}
