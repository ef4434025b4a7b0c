//! Operating the server: TLS and mutual TLS with `dev-cert` certificates,
//! gRPC reflection, per-collection health, Prometheus metrics, JSON logs,
//! host names in `--listen`, CLI error messages. Servers bind 127.0.0.1
//! (or `localhost`) only. Run with `--release`: PSI is slow unoptimized.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use breach_proto::encoding::password_item;
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use breach_server::health::{self, HealthState};
use breach_server::import::{ImportOptions, import_file};
use breach_server::live::Catalog;
use breach_server::psi_db::{BuildOptions, CollectionDb};
use breach_server::server::{self, ServeConfig, ServerHandle};
use breach_server::store::{Collection, Store};
use breach_server::tls::{self, TlsFiles};
use prost::Message;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod common;
use common::{ServerProcess, bin};

const PWD: pb::Collection = pb::Collection::Passwords;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data/breach")
        .join(name)
}

/// A store with the fixture combo list and its PSI databases built, shared
/// by the tests of this file (built once).
fn store_dir() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &STORE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let store_dir = dir.path().join("store");
            let mut store = Store::open(&store_dir).unwrap();
            import_file(
                &mut store,
                fixture("combo-1.txt"),
                &ImportOptions::default(),
            )
            .unwrap();
            server::build_all(&store_dir, &BuildOptions::default()).unwrap();
            (dir, store_dir)
        })
        .1
}

async fn load(collections: &[Collection]) -> Vec<CollectionDb> {
    let wanted = collections.to_vec();
    tokio::task::spawn_blocking(move || {
        server::load_collections(store_dir(), &BuildOptions::default())
            .unwrap()
            .into_iter()
            .filter(|db| wanted.contains(&db.collection))
            .collect()
    })
    .await
    .unwrap()
}

async fn serve_with(collections: &[Collection], config: ServeConfig) -> ServerHandle {
    server::serve(load(collections).await, &config)
        .await
        .unwrap()
}

fn local_config() -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".into(),
        ..ServeConfig::default()
    }
}

fn tls_config(dir: &Path, mutual: bool) -> ServeConfig {
    let files = TlsFiles {
        cert: dir.join(tls::dev_files::SERVER_CERT),
        key: dir.join(tls::dev_files::SERVER_KEY),
        client_ca: mutual.then(|| dir.join(tls::dev_files::CA_CERT)),
    };
    ServeConfig {
        tls: Some(files.load().unwrap()),
        ..local_config()
    }
}

async fn tls_channel(
    url: String,
    ca_dir: &Path,
    domain: Option<&str>,
    identity: Option<&Path>,
) -> Result<Channel, tonic::transport::Error> {
    let ca = fs::read(ca_dir.join(tls::dev_files::CA_CERT)).unwrap();
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(d) = domain {
        tls = tls.domain_name(d);
    }
    if let Some(dir) = identity {
        tls = tls.identity(Identity::from_pem(
            fs::read(dir.join(tls::dev_files::CLIENT_CERT)).unwrap(),
            fs::read(dir.join(tls::dev_files::CLIENT_KEY)).unwrap(),
        ));
    }
    Channel::from_shared(url)
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
}

async fn parameters(channel: Channel) -> Result<pb::GetParametersResponse, tonic::Status> {
    BreachCheckClient::new(channel)
        .get_parameters(pb::GetParametersRequest {})
        .await
        .map(|r| r.into_inner())
}

/// Runs OPRF + query for `passwords` on the tier a client would pick;
/// the breach count of each, `None` if not breached.
async fn check_passwords(channel: Channel, passwords: &[&str]) -> Vec<Option<u64>> {
    let mut client = BreachCheckClient::new(channel).max_decoding_message_size(64 << 20);
    let params = common::params(&mut client, PWD, passwords.len()).await;
    let items: Vec<[u8; 32]> = passwords.iter().map(|p| password_item(p)).collect();
    common::check_with(&mut client, PWD, params, &items).await
}

/// A breached password of `combo-1.txt` and its count, read from the store.
fn breached_password() -> (&'static str, u64) {
    let store = Store::open(store_dir()).unwrap();
    let count = store
        .lookup(Collection::Passwords, &password_item("dragon"))
        .unwrap()
        .expect("dragon is in combo-1.txt");
    ("dragon", count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_dev_cert_serves_and_refuses_plaintext_and_other_cas() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("tls");
    tls::write_dev_cert(&certs, false).unwrap();
    let other = tmp.path().join("other");
    tls::write_dev_cert(&other, false).unwrap();

    let handle = serve_with(&[Collection::Passwords], tls_config(&certs, false)).await;
    let port = handle.local_addr().port();

    // By IP address (SAN 127.0.0.1) and by name (SAN localhost): a full check.
    let by_ip = tls_channel(format!("https://127.0.0.1:{port}"), &certs, None, None)
        .await
        .unwrap();
    let (pw, count) = breached_password();
    assert_eq!(
        check_passwords(by_ip, &[pw, "not breached at all 8d1f"]).await,
        [Some(count), None]
    );
    let by_name = tls_channel(
        format!("https://127.0.0.1:{port}"),
        &certs,
        Some("localhost"),
        None,
    )
    .await
    .unwrap();
    assert!(parameters(by_name).await.is_ok());

    // A plaintext client on the TLS port fails.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(parameters(plain).await.is_err());
    }

    // A client trusting another CA refuses the server's certificate.
    let wrong_ca = tls_channel(format!("https://127.0.0.1:{port}"), &other, None, None).await;
    match wrong_ca {
        Err(_) => {}
        Ok(ch) => assert!(parameters(ch).await.is_err()),
    }

    // A name the certificate does not cover is refused too.
    let wrong_name = tls_channel(
        format!("https://127.0.0.1:{port}"),
        &certs,
        Some("breach.example.com"),
        None,
    )
    .await;
    match wrong_name {
        Err(_) => {}
        Ok(ch) => assert!(parameters(ch).await.is_err()),
    }
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("tls");
    tls::write_dev_cert(&certs, false).unwrap();
    let other = tmp.path().join("other");
    tls::write_dev_cert(&other, false).unwrap();
    let handle = serve_with(&[Collection::Passwords], tls_config(&certs, true)).await;
    let url = format!("https://127.0.0.1:{}", handle.local_addr().port());

    let with_cert = tls_channel(url.clone(), &certs, None, Some(&certs))
        .await
        .unwrap();
    let resp = parameters(with_cert).await.unwrap();
    // One collection, in two tiers.
    assert_eq!(resp.collections.len(), 2);

    // No client certificate: the handshake fails (at connect or first call).
    match tls_channel(url.clone(), &certs, None, None).await {
        Err(_) => {}
        Ok(ch) => assert!(parameters(ch).await.is_err()),
    }
    // A client certificate from another CA is refused as well.
    match tls_channel(url, &certs, None, Some(&other)).await {
        Err(_) => {}
        Ok(ch) => assert!(parameters(ch).await.is_err()),
    }
    handle.shutdown().await.unwrap();
}

/// Lists the services and resolves the file of `breach.v1.BreachCheck` and
/// of the health service with one reflection API version.
macro_rules! reflect {
    ($pb:path, $channel:expr) => {{
        use r::server_reflection_request::MessageRequest;
        use r::server_reflection_response::MessageResponse;
        use $pb as r;
        let mut client = r::server_reflection_client::ServerReflectionClient::new($channel);
        let requests = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("breach.v1.BreachCheck".into()),
            MessageRequest::FileContainingSymbol("grpc.health.v1.Health".into()),
            MessageRequest::FileByFilename("breach/v1/breach.proto".into()),
        ]
        .map(|m| r::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        });
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let mut services = Vec::new();
        let mut files: Vec<prost_types::FileDescriptorProto> = Vec::new();
        while let Some(resp) = responses.message().await.unwrap() {
            match resp.message_response.unwrap() {
                MessageResponse::ListServicesResponse(l) => {
                    services.extend(l.service.into_iter().map(|s| s.name));
                }
                MessageResponse::FileDescriptorResponse(f) => {
                    for bytes in f.file_descriptor_proto {
                        files.push(prost_types::FileDescriptorProto::decode(&bytes[..]).unwrap());
                    }
                }
                other => panic!("unexpected reflection response {other:?}"),
            }
        }
        (services, files)
    }};
}

fn check_reflection(services: &[String], files: &[prost_types::FileDescriptorProto]) {
    for s in [
        "breach.v1.BreachCheck",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.iter().any(|x| x == s), "{s} not in {services:?}");
    }
    let breach = files
        .iter()
        .find(|f| f.name() == "breach/v1/breach.proto")
        .expect("breach.proto resolved");
    assert_eq!(breach.package(), "breach.v1");
    let svc = breach
        .service
        .iter()
        .find(|s| s.name() == "BreachCheck")
        .unwrap();
    let methods: Vec<&str> = svc.method.iter().map(|m| m.name()).collect();
    assert_eq!(methods, ["GetParameters", "EvaluateOprf", "Query"]);
    assert!(
        breach
            .message_type
            .iter()
            .any(|m| m.name() == "QueryRequest")
    );
    let health = files
        .iter()
        .find(|f| f.package() == "grpc.health.v1")
        .expect("health proto resolved");
    assert!(health.service.iter().any(|s| s.name() == "Health"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_api_v1_and_v1alpha() {
    let handle = serve_with(&[Collection::Passwords], local_config()).await;
    let channel = Channel::from_shared(format!("http://{}", handle.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (services, files) = reflect!(tonic_reflection::pb::v1, channel.clone());
    check_reflection(&services, &files);
    let (services, files) = reflect!(tonic_reflection::pb::v1alpha, channel);
    check_reflection(&services, &files);
    handle.shutdown().await.unwrap();
}

async fn health_client(addr: &str) -> HealthClient<Channel> {
    HealthClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

async fn health_of(client: &mut HealthClient<Channel>, service: &str) -> Result<i32, tonic::Code> {
    client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_collection_and_the_service() {
    let serving = Ok(ServingStatus::Serving as i32);
    let not_serving = Ok(ServingStatus::NotServing as i32);
    let creds = health::collection_service(Collection::Credentials);
    let pwds = health::collection_service(Collection::Passwords);
    assert_eq!(creds, "breach.v1.BreachCheck/credentials");
    assert_eq!(pwds, "breach.v1.BreachCheck/passwords");

    let handle = serve_with(&Collection::ALL, local_config()).await;
    let mut client = health_client(&handle.local_addr().to_string()).await;
    for s in ["", health::SERVICE, &creds, &pwds] {
        assert_eq!(health_of(&mut client, s).await, serving, "{s:?}");
    }
    assert_eq!(
        health_of(&mut client, "breach.v1.BreachCheck/nothing").await,
        Err(tonic::Code::NotFound)
    );

    // What the live-update code does around a swap.
    let state: HealthState = handle.health().clone();
    state.set_collection(Collection::Credentials, false).await;
    assert!(!state.all_serving().await);
    assert_eq!(health_of(&mut client, &creds).await, not_serving);
    assert_eq!(health_of(&mut client, &pwds).await, serving);
    assert_eq!(health_of(&mut client, health::SERVICE).await, not_serving);
    assert_eq!(health_of(&mut client, "").await, not_serving);
    state.set_collection(Collection::Credentials, true).await;
    assert!(state.all_serving().await);
    assert_eq!(health_of(&mut client, health::SERVICE).await, serving);
    handle.shutdown().await.unwrap();

    // A server configured with one collection: the other is unknown.
    let handle = serve_with(&[Collection::Passwords], local_config()).await;
    let mut client = health_client(&handle.local_addr().to_string()).await;
    assert_eq!(health_of(&mut client, &pwds).await, serving);
    assert_eq!(health_of(&mut client, health::SERVICE).await, serving);
    assert_eq!(
        health_of(&mut client, &creds).await,
        Err(tonic::Code::NotFound)
    );
    handle.shutdown().await.unwrap();
}

/// `serve` binds before loading: until a collection has a database it is
/// NOT_SERVING and its requests get UNAVAILABLE; health follows the
/// catalog as databases are swapped in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_catalog_while_loading() {
    let serving = Ok(ServingStatus::Serving as i32);
    let not_serving = Ok(ServingStatus::NotServing as i32);
    let creds = health::collection_service(Collection::Credentials);
    let pwds = health::collection_service(Collection::Passwords);
    let catalog = std::sync::Arc::new(Catalog::new(&Collection::ALL));
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let handle = server::serve_on(listener, catalog.clone(), &local_config())
        .await
        .unwrap();
    let addr = handle.local_addr().to_string();
    let mut client = health_client(&addr).await;
    let watcher = client.clone();
    let eventually = |want: Result<i32, tonic::Code>, service: String| {
        let mut client = watcher.clone();
        async move {
            for _ in 0..200 {
                if health_of(&mut client, &service).await == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{service:?} never became {want:?}");
        }
    };
    for s in ["", health::SERVICE, &creds, &pwds] {
        assert_eq!(health_of(&mut client, s).await, not_serving, "{s:?}");
    }
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut breach = BreachCheckClient::new(channel);
    let status = breach
        .evaluate_oprf(pb::OprfRequest {
            collection: pb::Collection::Passwords as i32,
            blinded_elements: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("loading"), "{status:?}");

    let mut dbs = load(&Collection::ALL).await;
    let passwords = dbs.pop().unwrap();
    assert_eq!(passwords.collection, Collection::Passwords);
    catalog.install(passwords).unwrap();
    eventually(serving, pwds.clone()).await;
    assert_eq!(health_of(&mut client, &creds).await, not_serving);
    assert_eq!(health_of(&mut client, health::SERVICE).await, not_serving);
    catalog.install(dbs.pop().unwrap()).unwrap();
    eventually(serving, health::SERVICE.to_string()).await;
    assert_eq!(health_of(&mut client, &creds).await, serving);
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_state_starts_not_serving_until_loaded() {
    let (state, service) = HealthState::new(Collection::ALL).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let mut client = health_client(&addr.to_string()).await;
    let not_serving = Ok(ServingStatus::NotServing as i32);
    for c in Collection::ALL {
        let s = health::collection_service(c);
        assert_eq!(health_of(&mut client, &s).await, not_serving, "{s}");
    }
    assert_eq!(health_of(&mut client, "").await, not_serving);
    state.set_collection(Collection::Passwords, true).await;
    assert_eq!(health_of(&mut client, health::SERVICE).await, not_serving);
    state.set_collection(Collection::Credentials, true).await;
    assert_eq!(
        health_of(&mut client, health::SERVICE).await,
        Ok(ServingStatus::Serving as i32)
    );
    state.shutting_down().await;
    assert_eq!(health_of(&mut client, "").await, not_serving);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_accepts_host_names_and_names_a_busy_address() {
    let handle = serve_with(
        &[Collection::Passwords],
        ServeConfig {
            listen: "localhost:0".into(),
            ..ServeConfig::default()
        },
    )
    .await;
    let addr = handle.local_addr();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);

    // The same address again: in use, and the message says which.
    let busy = addr.to_string();
    let e = server::bind(&busy).await.unwrap_err().to_string();
    assert!(e.contains(&busy) && e.contains("in use"), "{e}");
    handle.shutdown().await.unwrap();

    for bad in ["nonsense", "localhost", "localhost:http", ":50051"] {
        let e = server::bind(bad).await.unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains("HOST:PORT"), "{e}");
    }
    let e = server::bind("no-such-host.invalid:0")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-host.invalid"), "{e}");
}

// ---- the binary ---------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            (series == name || series.starts_with(&format!("{name}{{")))
                && labels.iter().all(|lab| series.contains(lab))
        })
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_logs_are_json() {
    let tmp = tempfile::tempdir().unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let store = store_dir().to_str().unwrap().to_string();
    let server = ServerProcess::spawn(
        &[
            "--log-format",
            "json",
            "serve",
            "--store",
            &store,
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &metrics_addr,
        ],
        tmp.path().join("serve.log"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (pw, count) = breached_password();
    let secret = "correct horse battery staple 41c7";
    assert_eq!(
        check_passwords(channel.clone(), &[pw, secret, "x"]).await,
        [Some(count), None, None]
    );
    let mut client = BreachCheckClient::new(channel.clone());
    client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .unwrap();
    // Two refused calls: an unspecified collection, wrong element sizes.
    for req in [
        pb::OprfRequest {
            collection: 0,
            blinded_elements: vec![vec![0; 32]],
        },
        pb::OprfRequest {
            collection: PWD as i32,
            blinded_elements: vec![vec![0; 5]],
        },
    ] {
        let status = client.evaluate_oprf(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    // A stream the client abandons (a health Watch) counts as CANCELLED
    // once the server notices.
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: health::SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    drop(watch);
    let watch_cancelled = [
        r#"rpc="grpc.health.v1.Health/Watch""#,
        r#"code="CANCELLED""#,
    ];
    let mut text = scrape(&metrics_addr);
    for _ in 0..100 {
        if sample(&text, "breach_requests_total", &watch_cancelled).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(&metrics_addr);
    }
    assert_eq!(
        sample(&text, "breach_requests_total", &watch_cancelled),
        Some(1.0),
        "{text}"
    );
    let rq = "breach_requests_total";
    assert_eq!(
        sample(&text, rq, &[r#"rpc="GetParameters""#, r#"code="OK""#]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, rq, &[r#"rpc="EvaluateOprf""#, r#"code="OK""#]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            rq,
            &[r#"rpc="EvaluateOprf""#, r#"code="INVALID_ARGUMENT""#]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, rq, &[r#"rpc="Query""#, r#"code="OK""#]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "breach_oprf_elements_total",
            &[r#"collection="passwords""#]
        ),
        Some(3.0)
    );
    let q = [r#"collection="passwords""#, r#"tier="full""#];
    assert_eq!(
        sample(&text, "breach_query_duration_seconds_count", &q),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "breach_query_duration_seconds_bucket",
            &[q[0], q[1], r#"le="+Inf""#]
        ),
        Some(1.0)
    );
    assert!(sample(&text, "breach_query_duration_seconds_sum", &q).unwrap() > 0.0);
    assert_eq!(sample(&text, "breach_queries_in_flight", &[]), Some(0.0));
    for line in [
        "# TYPE breach_requests_total counter",
        "# TYPE breach_query_duration_seconds histogram",
        "# TYPE breach_queries_in_flight gauge",
        "# HELP breach_requests_total gRPC calls finished",
        "# HELP breach_oprf_elements_total OPRF elements evaluated",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }

    // Logs: one JSON object per line, with the request's metadata only.
    let log = server.terminate();
    let mut answered = 0;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        if v["message"] == "query answered" {
            assert_eq!(v["collection"], "passwords", "{line}");
            answered += 1;
        }
    }
    assert_eq!(answered, 1, "{log}");
    for leak in [secret, pw] {
        assert!(!log.contains(leak), "{leak:?} logged:\n{log}");
    }
}

#[test]
fn cli_errors_name_the_file_or_address_once() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("tls");
    let out = bin()
        .args(["dev-cert", "--out", certs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let cert = certs.join("server.pem");
    let key = certs.join("server-key.pem");
    let serve_line = format!(
        "breach-server serve --tls-cert {} --tls-key {}",
        cert.display(),
        key.display()
    );
    assert!(stdout.contains(&serve_line), "{stdout}");
    assert!(
        stdout.contains("https://localhost:50051 --ca-cert"),
        "{stdout}"
    );

    // Not overwritten without --force.
    let out = bin()
        .args(["dev-cert", "--out", certs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--force"), "{stderr}");

    let stderr_of = |args: &[&str]| {
        let out = bin().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    // A missing key file: named once, its cause once.
    let missing = tmp.path().join("missing-key.pem");
    let e = stderr_of(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(e.matches("missing-key.pem").count(), 1, "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");

    // A busy port: fails at once, naming the address.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let e = stderr_of(&["serve", "--store", "/nonexistent-store", "--listen", &addr]);
    assert!(e.contains(&addr) && e.contains("in use"), "{e}");
    // The same for the metrics address, before any store is opened.
    let e = stderr_of(&[
        "serve",
        "--store",
        "/nonexistent-store",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        &addr,
    ]);
    assert!(
        e.contains(&addr) && e.contains("--metrics-listen") && e.contains("in use"),
        "{e}"
    );

    // With JSON logs the failure is a JSON line too.
    let e = stderr_of(&[
        "--log-format",
        "json",
        "stats",
        "--store",
        "/nonexistent-store",
    ]);
    let v: serde_json::Value = serde_json::from_str(e.trim()).unwrap_or_else(|_| panic!("{e}"));
    assert_eq!(v["level"], "ERROR", "{e}");
    assert!(
        v["error"].as_str().unwrap().contains("/nonexistent-store"),
        "{e}"
    );

    // A missing store is reported once, too.
    let e = stderr_of(&[
        "stats",
        "--store",
        tmp.path().join("nope").to_str().unwrap(),
    ]);
    assert_eq!(e.lines().filter(|l| l.contains("nope")).count(), 1, "{e}");
}
