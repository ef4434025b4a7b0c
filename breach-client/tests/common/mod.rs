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
use std::sync::{Arc, OnceLock};

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

/// The two sender databases built from [`corpus`], built once per test binary.
pub struct Databases {
    pub credentials: SenderDb,
    pub passwords: SenderDb,
}

pub fn databases() -> Arc<Databases> {
    static DBS: OnceLock<Arc<Databases>> = OnceLock::new();
    DBS.get_or_init(|| {
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
        let build = |items: &[([u8; 32], [u8; 8])]| {
            let mut db =
                SenderDb::new(test_params(), OprfKey::generate().expect("key")).expect("db");
            let refs: Vec<(&[u8], &[u8])> = items
                .iter()
                .map(|(i, l)| (i.as_slice(), l.as_slice()))
                .collect();
            db.insert(&refs).expect("insert");
            db
        };
        Arc::new(Databases {
            credentials: build(&credentials),
            passwords: build(&passwords),
        })
    })
    .clone()
}

/// How a test server behaves.
#[derive(Clone, Debug)]
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
    let dbs = databases();
    let stats = Arc::new(Stats::default());
    let service = Service {
        dbs,
        config: config.clone(),
        stats: Arc::clone(&stats),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let limit = config.max_message_bytes as usize;
    rt.spawn(async move {
        tonic::transport::Server::builder()
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
    dbs: Arc<Databases>,
    config: ServerConfig,
    stats: Arc<Stats>,
}

impl Service {
    fn db(&self, collection: i32) -> Result<&SenderDb, Status> {
        match Collection::try_from(collection) {
            Ok(Collection::Credentials) => Ok(&self.dbs.credentials),
            Ok(Collection::Passwords) if !self.config.without_passwords => Ok(&self.dbs.passwords),
            _ => Err(Status::invalid_argument("unknown collection")),
        }
    }
}

#[tonic::async_trait]
impl BreachCheck for Service {
    async fn get_parameters(
        &self,
        _request: Request<GetParametersRequest>,
    ) -> Result<Response<GetParametersResponse>, Status> {
        if let Some(message) = &self.config.fail_with {
            return Err(Status::unavailable(message.clone()));
        }
        let mut collections = vec![Collection::Credentials];
        if !self.config.without_passwords {
            collections.push(Collection::Passwords);
        }
        let collections = collections
            .into_iter()
            .map(|c| {
                let db = self.db(c as i32).expect("served collection");
                let params = db.params();
                CollectionParameters {
                    collection: c as i32,
                    psi_params: if self.config.params_as_json {
                        params.to_json().into_bytes()
                    } else {
                        params.to_wire()
                    },
                    item_count: db.stats().items,
                    he_params_fingerprint: params.fingerprint().to_vec(),
                    ..CollectionParameters::default()
                }
            })
            .collect();
        Ok(Response::new(GetParametersResponse {
            server_version: "test-server 0".into(),
            limits: Some(Limits {
                max_message_bytes: self.config.max_message_bytes,
                max_items_per_query: self.config.max_items_per_query,
                max_concurrent_queries: self.config.max_concurrent_queries,
            }),
            collections,
        }))
    }

    async fn evaluate_oprf(
        &self,
        request: Request<OprfRequest>,
    ) -> Result<Response<OprfResponse>, Status> {
        let request = request.into_inner();
        let db = self.db(request.collection)?;
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
        let collection = Collection::try_from(request.collection);
        self.db(request.collection)?;
        let query = Query::from_wire(&request.query)
            .map_err(|e| Status::invalid_argument(format!("query: {e}")))?;
        self.stats.queries.fetch_add(1, Ordering::SeqCst);
        match collection {
            Ok(Collection::Credentials) => &self.stats.credential_queries,
            _ => &self.stats.password_queries,
        }
        .fetch_add(1, Ordering::SeqCst);
        let dbs = Arc::clone(&self.dbs);
        let which = request.collection;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let db = if which == Collection::Credentials as i32 {
                &dbs.credentials
            } else {
                &dbs.passwords
            };
            let outcome = db.answer(&query, |part| {
                tx.blocking_send(Ok(QueryResponsePart {
                    result_part: part.to_wire(),
                }))
                .map_err(|_| psi_core::Error::Io("client went away".into()))
            });
            if let Err(e) = outcome {
                let _ = tx.blocking_send(Err(Status::invalid_argument(e.to_string())));
            }
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
    serde_json::json!({ "checked": vault.entries.len(), "results": results })
}
