//! The gRPC service end to end: a real server on loopback (the binary, and
//! the library's `serve`), a tonic client running psi-core's `Receiver`,
//! the fixture breach corpus. Run with `--release`: PSI is slow unoptimized.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use breach_proto::encoding::{credential_item, password_item};
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use breach_server::import::{ImportOptions, import_file};
use breach_server::psi_db::{self, BuildAction, BuildOptions};
use breach_server::server::{self, ServeConfig};
use breach_server::service::Limits;
use breach_server::store::{Collection, Store};
use psi_core::wire::Codec;
use psi_core::{OprfClient, OprfResponse, PsiParams, Receiver};
use tonic::Code;
use tonic::transport::Channel;

mod common;
use common::{ServerProcess, bin, build_query, check_with, params};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data/breach")
        .join(name)
}

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("breach-server runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn connect(addr: &str) -> BreachCheckClient<Channel> {
    BreachCheckClient::connect(format!("http://{addr}"))
        .await
        .expect("connects")
        .max_decoding_message_size(64 << 20)
}

/// The parameters of `tier` of `collection`.
async fn tier_params(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    tier: &str,
) -> PsiParams {
    let resp = client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .unwrap()
        .into_inner();
    let c = resp
        .collections
        .iter()
        .find(|c| c.collection == collection as i32 && c.tier == tier)
        .expect("tier served");
    PsiParams::from_wire(&c.psi_params).unwrap()
}

/// Runs OPRF + query for `items`; the breach count of each, `None` if not breached.
async fn check(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    items: &[[u8; 32]],
) -> Vec<Option<u64>> {
    let p = params(client, collection, items.len()).await;
    check_with(client, collection, p, items).await
}

/// A valid query for `collection`, serialized.
async fn some_query(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
) -> Vec<u8> {
    let receiver = Receiver::new(params(client, collection, 1).await).unwrap();
    let (query, _) = build_query(client, collection, &receiver, &[b"x".as_slice()]).await;
    query.to_wire()
}

async fn query_status(
    client: &mut BreachCheckClient<Channel>,
    collection: i32,
    query: Vec<u8>,
) -> Code {
    match client
        .query(pb::QueryRequest {
            collection,
            query,
            username_bucket: None,
        })
        .await
    {
        Err(s) => s.code(),
        Ok(resp) => {
            let mut stream = resp.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Code::Ok,
                    Err(s) => return s.code(),
                }
            }
        }
    }
}

async fn oprf_status(client: &mut BreachCheckClient<Channel>, req: pb::OprfRequest) -> Code {
    match client.evaluate_oprf(req).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

fn blinded(n: usize) -> Vec<Vec<u8>> {
    let items: Vec<Vec<u8>> = (0..n).map(|i| format!("probe-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let (_state, elements) = OprfClient::blind(&refs).unwrap();
    elements.iter().map(|e| e.to_vec()).collect()
}

const PWD: pb::Collection = pb::Collection::Passwords;
const CRED: pb::Collection = pb::Collection::Credentials;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_builds_serves_and_survives_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let files = ["combo-1.txt", "combo-2.txt", "pwned-passwords.txt"].map(fixture);
    let mut args = vec!["import", "--store", s];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    run_ok(&args);

    let out = run_ok(&["build", "--store", s]);
    assert!(out.contains("credentials: built from scratch"), "{out}");
    assert!(out.contains("passwords: built from scratch"), "{out}");
    assert!(run_ok(&["build", "--store", s]).contains("passwords: up to date"));
    for c in Collection::ALL {
        let key = psi_db::key_path(&store, c);
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        assert_eq!(fs::read(&key).unwrap().len(), 32);
    }
    let stats = run_ok(&["stats", "--store", s]);
    assert!(stats.contains("credentials: up to date"), "{stats}");
    assert!(stats.contains("2480 items"), "{stats}");
    assert!(stats.contains("4041 items"), "{stats}");
    assert!(stats.contains("n=8192 log q=200"), "{stats}");
    assert!(
        stats.contains("small tier (queries of one item)")
            && stats.contains("full tier (queries of up to 1024 items)"),
        "{stats}"
    );

    // At debug level, so that the log check at the end sees every line the
    // request handlers can write.
    let server = ServerProcess::start_logging(
        &[
            "--store",
            s,
            "--max-message-bytes",
            "8388608",
            "--oprf-burst",
            "3000",
            "--oprf-rate",
            "1",
        ],
        dir.path().join("serve.log"),
        "debug",
    );
    let mut client = connect(&server.addr).await;

    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "breach.v1.BreachCheck".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Known answers (fixtures/data/breach/answers.json "examples").
    let creds = [
        credential_item("noahpetrov87@post.example", "s-Pv!!sepDpLU"),
        credential_item("José_Haddad@mail.example ", "Flower03"),
        credential_item("bob.novak@post.example", "bayern:3893"),
        credential_item("bob.novak@post.example", "bayern:3894"),
        credential_item("nobody@nowhere.example", "not breached at all"),
    ];
    assert_eq!(
        check(&mut client, CRED, &creds).await,
        [Some(5), Some(4), Some(3), None, None]
    );
    let pwds = [
        password_item("dragon"),
        password_item("Guitar7990"),
        password_item(" pepper06 "),
        password_item("pepper06"),
        password_item("correct horse battery staple 9f8e"),
    ];
    let pwd_counts = check(&mut client, PWD, &pwds).await;
    assert_eq!(pwd_counts[..3], [Some(30_488_234), Some(1947), Some(18)]);
    assert_eq!(pwd_counts[4], None);

    // Malformed requests: INVALID_ARGUMENT, and the server keeps serving.
    let bad_collection = pb::OprfRequest {
        collection: 0,
        blinded_elements: blinded(1),
    };
    assert_eq!(
        oprf_status(&mut client, bad_collection).await,
        Code::InvalidArgument
    );
    let unknown_collection = pb::OprfRequest {
        collection: 77,
        blinded_elements: blinded(1),
    };
    assert_eq!(
        oprf_status(&mut client, unknown_collection).await,
        Code::InvalidArgument
    );
    let short_element = pb::OprfRequest {
        collection: PWD as i32,
        blinded_elements: vec![vec![1; 31]],
    };
    assert_eq!(
        oprf_status(&mut client, short_element).await,
        Code::InvalidArgument
    );
    let not_a_point = pb::OprfRequest {
        collection: PWD as i32,
        blinded_elements: vec![vec![0xff; 32]],
    };
    assert_eq!(
        oprf_status(&mut client, not_a_point).await,
        Code::InvalidArgument
    );
    let too_many = pb::OprfRequest {
        collection: PWD as i32,
        blinded_elements: vec![vec![0; 32]; 2049],
    };
    assert_eq!(
        oprf_status(&mut client, too_many).await,
        Code::InvalidArgument
    );

    let good = some_query(&mut client, CRED).await;
    assert!(
        good.len() < 8 << 20,
        "a query fits the test limit: {}",
        good.len()
    );
    for garbage in [
        Vec::new(),
        b"definitely not a query".to_vec(),
        good[..good.len() / 2].to_vec(),
        good[..good.len() - 1].to_vec(),
        [good.as_slice(), &[0]].concat(),
    ] {
        assert_eq!(
            query_status(&mut client, CRED as i32, garbage).await,
            Code::InvalidArgument
        );
    }
    // Sixteen bytes of ones inside the last ciphertext's packed residues
    // hold at least one whole coefficient of all ones (at most 61 bits),
    // which is at least its prime: out of range, always refused.
    let mut out_of_range = good.clone();
    out_of_range[good.len() - 100..good.len() - 84].fill(0xff);
    let status = client
        .query(pb::QueryRequest {
            username_bucket: None,
            collection: CRED as i32,
            query: out_of_range,
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A well-formed query for other parameters.
    let mut other_params = good.clone();
    other_params[2] ^= 1; // first byte of the parameter fingerprint
    assert_eq!(
        query_status(&mut client, CRED as i32, other_params.clone()).await,
        Code::FailedPrecondition
    );
    let status = client
        .query(pb::QueryRequest {
            username_bucket: None,
            collection: CRED as i32,
            query: other_params,
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("fetch the parameters again"),
        "{status:?}"
    );
    // A good query naming no collection.
    assert_eq!(
        query_status(&mut client, 0, good.clone()).await,
        Code::InvalidArgument
    );
    // Over the message size limit.
    let oversized = vec![0u8; 9 << 20];
    assert_eq!(
        query_status(&mut client, CRED as i32, oversized).await,
        Code::ResourceExhausted
    );

    // OPRF rate: a burst of 3000 elements per client address (not per
    // connection), refilled at 1/s; 11 were used above.
    let big = pb::OprfRequest {
        collection: PWD as i32,
        blinded_elements: blinded(2048),
    };
    let sent_elements = big.blinded_elements[..3].to_vec();
    assert_eq!(oprf_status(&mut client, big.clone()).await, Code::Ok);
    assert_eq!(oprf_status(&mut client, big).await, Code::ResourceExhausted);
    // A new connection does not bring a new budget.
    let mut other_connection = connect(&server.addr).await;
    let status = other_connection
        .evaluate_oprf(pb::OprfRequest {
            collection: PWD as i32,
            blinded_elements: blinded(1000),
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(pushback_ms(&status) > 0);

    // Still serving good queries, on this connection and a new one.
    assert_eq!(check(&mut client, CRED, &creds[..1]).await, [Some(5)]);
    let mut fresh = connect(&server.addr).await;
    assert_eq!(check(&mut fresh, PWD, &pwds[1..2]).await, [Some(1947)]);

    let log = server.terminate();
    // The log was written at debug level and saw the requests above (so
    // the absence checks below are not vacuous)...
    assert!(log.contains("EvaluateOprf"), "{log}");
    assert!(log.contains("request rejected"), "{log}");
    assert!(log.contains("query answered"), "{log}");
    // ...but none of what the server holds or received: the OPRF keys it
    // read (hex either case, or bytes as a debug list), the blinded
    // elements and query bytes clients sent.
    for c in Collection::ALL {
        let key = fs::read(psi_db::key_path(&store, c)).unwrap();
        assert!(!log.contains(&hex::encode(&key)));
        assert!(!log.to_lowercase().contains(&hex::encode(&key[..8])));
        assert!(!log.contains(format!("{:?}", &key[..6]).trim_end_matches(']')));
    }
    for element in &sent_elements {
        assert!(!log.to_lowercase().contains(&hex::encode(&element[..8])));
        assert!(!log.contains(format!("{:?}", &element[..6]).trim_end_matches(']')));
    }
    assert!(!log.contains("definitely not a query"));
    assert!(
        !log.to_lowercase()
            .contains(&hex::encode(&good[good.len() - 200..good.len() - 192]))
    );
}

/// The `grpc-retry-pushback-ms` hint of a status, which must be there.
fn pushback_ms(status: &tonic::Status) -> u64 {
    status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .unwrap_or_else(|| panic!("no retry hint on {status:?}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// An `EvaluateOprf` of `n` elements, with `x-forwarded-for` when given.
async fn oprf_from(
    client: &mut BreachCheckClient<Channel>,
    n: usize,
    forwarded_for: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(pb::OprfRequest {
        collection: PWD as i32,
        blinded_elements: blinded(n),
    });
    if let Some(f) = forwarded_for {
        request
            .metadata_mut()
            .insert("x-forwarded-for", f.parse().unwrap());
    }
    client.evaluate_oprf(request).await.map(|_| ())
}

/// Per-client limits end to end: the budget is the address's, not the
/// connection's; queries (even garbage) are charged; refusals carry a
/// parseable retry hint; a forwarding header counts only when configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_per_client_address_and_queries_cost_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let mut store = Store::open(&store_dir).unwrap();
    import(&mut store, "combo-1.txt");
    drop(store);
    let dbs = {
        let d = store_dir.clone();
        tokio::task::spawn_blocking(move || {
            server::load_collections(
                &d,
                &BuildOptions {
                    progress: false,
                    force: false,
                },
            )
            .unwrap()
        })
        .await
        .unwrap()
    };
    let limits = Limits {
        oprf_elements_per_sec: 1,
        oprf_burst: 3000,
        queries_per_minute: 1,
        query_burst: 3,
        ..Limits::default()
    };
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        limits: limits.clone(),
        ..ServeConfig::default()
    };
    let handle = server::serve(dbs, &config).await.unwrap();
    let addr = handle.local_addr().to_string();

    // Many connections from one address share one OPRF budget, and a
    // forwarding header is ignored when not configured (clients forge it).
    for i in 0..3 {
        let mut c = connect(&addr).await;
        let forged = format!("192.0.2.{i}");
        oprf_from(&mut c, 1000, Some(&forged)).await.unwrap();
    }
    let mut c = connect(&addr).await;
    let refused = oprf_from(&mut c, 1000, Some("192.0.2.99"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("this client's OPRF rate limit"),
        "{}",
        refused.message()
    );
    // 1000 elements at 1/s: most of 1000 s to wait.
    let hint = pushback_ms(&refused);
    assert!((900_000..=1_000_000).contains(&hint), "{hint}");

    // Queries are charged, garbage or not: 3 per client, then refused.
    for _ in 0..3 {
        let mut c = connect(&addr).await;
        assert_eq!(
            query_status(&mut c, CRED as i32, b"garbage".to_vec()).await,
            Code::InvalidArgument
        );
    }
    let mut c = connect(&addr).await;
    let refused = c
        .query(pb::QueryRequest {
            username_bucket: None,
            collection: CRED as i32,
            query: b"garbage".to_vec(),
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("query rate limit"),
        "{}",
        refused.message()
    );
    assert!(pushback_ms(&refused) > 1000);
    handle.shutdown().await.unwrap();

    // Behind a proxy: with the header configured, its rightmost entry is
    // the client; a missing header falls back to the socket address.
    let dbs = {
        let d = store_dir.clone();
        tokio::task::spawn_blocking(move || {
            server::load_collections(&d, &BuildOptions::default()).unwrap()
        })
        .await
        .unwrap()
    };
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        limits: Limits {
            client_ip_header: Some("x-forwarded-for".into()),
            ..limits
        },
        ..ServeConfig::default()
    };
    let handle = server::serve(dbs, &config).await.unwrap();
    let mut c = connect(&handle.local_addr().to_string()).await;
    oprf_from(&mut c, 2048, Some("203.0.113.5, 192.0.2.10"))
        .await
        .unwrap();
    oprf_from(&mut c, 2048, Some("203.0.113.5, 192.0.2.11"))
        .await
        .unwrap();
    oprf_from(&mut c, 2048, None).await.unwrap();
    // The same rightmost entry is the same client, whatever is to its left.
    let refused = oprf_from(&mut c, 2048, Some("198.51.100.1, 192.0.2.10"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // Malformed: the socket address, whose budget is used up as well.
    let refused = oprf_from(&mut c, 2048, Some("192.0.2.12, unknown"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    handle.shutdown().await.unwrap();
}

/// Calls `f` until it succeeds, sleeping for the server's retry hint after
/// each `RESOURCE_EXHAUSTED` (as a well-behaved client does); counts the
/// retries. Any other error, or more than 30 retries, fails the test.
async fn with_retries<T, F, Fut>(retries: &mut u32, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    loop {
        match f().await {
            Ok(v) => return v,
            Err(s) if s.code() == Code::ResourceExhausted && *retries < 30 => {
                *retries += 1;
                tokio::time::sleep(Duration::from_millis(pushback_ms(&s))).await;
            }
            Err(s) => panic!("gave up after {retries} retries: {s:?}"),
        }
    }
}

/// A vault check as the client does it: per collection, rounds of up to
/// 1024 items (one EvaluateOprf, one Query each), retrying on the server's
/// hint. Returns the matches per collection and the retries needed.
async fn vault_check(
    addr: String,
    vault: Vec<(pb::Collection, Vec<[u8; 32]>)>,
) -> (Vec<usize>, u32) {
    let mut client = connect(&addr).await;
    let mut retries = 0;
    let mut matches = Vec::new();
    for (collection, items) in vault {
        let receiver = std::sync::Arc::new(
            Receiver::new(params(&mut client, collection, 1024).await).unwrap(),
        );
        let mut matched = 0;
        for round in items.chunks(1024) {
            let refs: Vec<&[u8]> = round.iter().map(|i| i.as_slice()).collect();
            let (req, pending) = receiver.oprf_request(&refs).unwrap();
            let blinded_elements: Vec<Vec<u8>> = req.elements.iter().map(|e| e.to_vec()).collect();
            let resp = with_retries(&mut retries, || {
                let mut c = client.clone();
                let blinded_elements = blinded_elements.clone();
                async move {
                    c.evaluate_oprf(pb::OprfRequest {
                        collection: collection as i32,
                        blinded_elements,
                    })
                    .await
                }
            })
            .await
            .into_inner();
            let resp = OprfResponse {
                elements: resp
                    .evaluated_elements
                    .iter()
                    .map(|e| e.as_slice().try_into().unwrap())
                    .collect(),
            };
            let r = receiver.clone();
            let (query, state) =
                tokio::task::spawn_blocking(move || r.create_query(pending, &resp).unwrap())
                    .await
                    .unwrap();
            let query = query.to_wire();
            let mut stream = with_retries(&mut retries, || {
                let mut c = client.clone();
                let query = query.clone();
                async move {
                    c.query(pb::QueryRequest {
                        username_bucket: None,
                        collection: collection as i32,
                        query,
                    })
                    .await
                }
            })
            .await
            .into_inner();
            let parts = common::read_answer(&mut stream).await;
            let r = receiver.clone();
            let results = tokio::task::spawn_blocking(move || r.decode(&state, &parts).unwrap())
                .await
                .unwrap();
            matched += results.iter().filter(|m| m.matched).count();
        }
        matches.push(matched);
    }
    (matches, retries)
}

/// The default limits admit normal use from one address (loopback) with a
/// client that retries on the hint: 8 simultaneous checks of a 60-entry
/// vault and a 10,000-entry vault check, all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_admit_8_small_vaults_and_a_10000_entry_vault_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let mut store = Store::open(&store_dir).unwrap();
    import(&mut store, "combo-1.txt");
    drop(store);
    let dbs = {
        let d = store_dir.clone();
        tokio::task::spawn_blocking(move || {
            server::load_collections(&d, &BuildOptions::default()).unwrap()
        })
        .await
        .unwrap()
    };
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        limits: Limits::default(),
        ..ServeConfig::default()
    };
    let handle = server::serve(dbs, &config).await.unwrap();
    let addr = handle.local_addr().to_string();
    let breached_pair = credential_item("bob.novak@post.example", "bayern:3893");
    let breached_password = password_item("dragon");
    let vault = |entries: usize, tag: &str| {
        let mut creds: Vec<[u8; 32]> = (0..entries)
            .map(|i| {
                credential_item(
                    &format!("{tag}-{i}@vault.example"),
                    &format!("pw-{tag}-{i}"),
                )
            })
            .collect();
        let mut pwds: Vec<[u8; 32]> = (0..entries)
            .map(|i| password_item(&format!("pw-{tag}-{i}")))
            .collect();
        creds[entries / 2] = breached_pair;
        pwds[entries / 3] = breached_password;
        vec![(CRED, creds), (PWD, pwds)]
    };
    let mut checks = tokio::task::JoinSet::new();
    checks.spawn(vault_check(addr.clone(), vault(10_000, "big")));
    for i in 0..8 {
        checks.spawn(vault_check(addr.clone(), vault(60, &format!("small{i}"))));
    }
    let mut total_retries = 0;
    while let Some(result) = checks.join_next().await {
        let (matches, retries) = result.unwrap();
        assert_eq!(
            matches,
            [1, 1],
            "each vault holds one breached pair and password"
        );
        total_retries += retries;
    }
    eprintln!("all 9 vault checks succeeded after {total_retries} retries in all");
    handle.shutdown().await.unwrap();
}

fn import(store: &mut Store, name: &str) {
    import_file(store, fixture(name), &ImportOptions::default()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_serve_refreshes_after_import() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let mut store = Store::open(&store_dir).unwrap();
    import(&mut store, "combo-1.txt");
    import(&mut store, "combo-2.txt");
    let dragon = password_item("dragon");
    let combo_only = store
        .lookup(Collection::Passwords, &dragon)
        .unwrap()
        .unwrap();

    let build = |force: bool| {
        let dir = store_dir.clone();
        tokio::task::spawn_blocking(move || {
            server::build_all(
                &dir,
                &BuildOptions {
                    progress: false,
                    force,
                },
            )
            .unwrap()
        })
    };
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        limits: Limits::default(),
        ..ServeConfig::default()
    };

    let built = build(false).await.unwrap();
    assert!(
        built
            .iter()
            .all(|(_, r)| matches!(r.action, BuildAction::Full { .. }))
    );
    for (_, report) in &built {
        let tiers: Vec<_> = report.tiers.iter().map(|t| t.tier).collect();
        assert_eq!(tiers, psi_db::Tier::ALL);
    }
    let generations: Vec<(Collection, u64)> = built
        .iter()
        .map(|(db, _)| (db.collection, db.generation))
        .collect();
    let handle = server::serve(built.into_iter().map(|(db, _)| db).collect(), &config)
        .await
        .unwrap();
    let mut client = connect(&handle.local_addr().to_string()).await;
    assert_eq!(check(&mut client, PWD, &[dragon]).await, [Some(combo_only)]);

    // Both tiers of both collections are listed, and each answers.
    let listed = client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .unwrap()
        .into_inner()
        .collections;
    let mut seen: Vec<(i32, String, u64, u64)> = listed
        .iter()
        .map(|c| {
            (
                c.collection,
                c.tier.clone(),
                c.max_query_items,
                c.generation,
            )
        })
        .collect();
    seen.sort();
    let generation = |c: Collection| generations.iter().find(|g| g.0 == c).unwrap().1;
    let mut expected = Vec::new();
    for (pc, c) in [
        (CRED, Collection::Credentials),
        (PWD, Collection::Passwords),
    ] {
        expected.push((pc as i32, "full".to_string(), 1024, generation(c)));
        expected.push((pc as i32, "small".to_string(), 1, generation(c)));
    }
    expected.sort();
    assert_eq!(seen, expected);
    let small = tier_params(&mut client, PWD, "small").await;
    let full = tier_params(&mut client, PWD, "full").await;
    assert_ne!(small.fingerprint(), full.fingerprint());
    assert_eq!(
        check_with(&mut client, PWD, small.clone(), &[dragon]).await,
        [Some(combo_only)]
    );
    assert_eq!(
        check_with(
            &mut client,
            PWD,
            full,
            &[password_item("not breached"), dragon]
        )
        .await,
        [None, Some(combo_only)]
    );
    let pair = credential_item("bob.novak@post.example", "bayern:3893");
    let small_cred = tier_params(&mut client, CRED, "small").await;
    assert_eq!(
        check_with(&mut client, CRED, small_cred, &[pair]).await,
        [Some(3)]
    );
    // A query for parameters no tier has (as after a rebuild with new
    // parameters) is refused as stale.
    let receiver = Receiver::new(small).unwrap();
    let (mut query, _) = build_query(&mut client, PWD, &receiver, &[dragon.as_slice()]).await;
    assert_eq!(
        query_status(&mut client, PWD as i32, query.to_wire()).await,
        Code::Ok
    );
    query.params_fingerprint[31] ^= 1;
    assert_eq!(
        query_status(&mut client, PWD as i32, query.to_wire()).await,
        Code::FailedPrecondition
    );
    handle.shutdown().await.unwrap();

    // The pure loader reads what was saved, without the store.
    for c in Collection::ALL {
        let loaded = psi_db::load(&store_dir, c).unwrap().unwrap();
        assert_eq!(loaded.generation, generation(c));
        assert_eq!(
            psi_db::saved_generation(&store_dir, c).unwrap(),
            Some(generation(c))
        );
        let tiers: Vec<_> = loaded.tiers.iter().map(|t| t.tier).collect();
        assert_eq!(tiers, psi_db::Tier::ALL);
    }

    // A new import makes the passwords stale; the credentials are untouched.
    import(&mut store, "pwned-passwords.txt");
    let store_again = Store::open(&store_dir).unwrap();
    assert!(psi_db::is_stale(&store_again, Collection::Passwords).unwrap());
    assert!(!psi_db::is_stale(&store_again, Collection::Credentials).unwrap());
    let built = build(false).await.unwrap();
    for (db, report) in &built {
        match report.collection {
            Collection::Credentials => assert_eq!(report.action, BuildAction::UpToDate),
            Collection::Passwords => match report.action {
                BuildAction::Incremental {
                    added,
                    updated,
                    removed,
                } => {
                    assert_eq!(added, 4041 - 2141);
                    assert!(updated >= 300, "{updated}");
                    assert_eq!(removed, 0);
                }
                ref other => panic!("expected an incremental refresh, got {other:?}"),
            },
        }
        assert_eq!(
            db.generation,
            store_again.generation(db.collection).unwrap()
        );
    }
    let handle = server::serve(built.into_iter().map(|(db, _)| db).collect(), &config)
        .await
        .unwrap();
    let mut client = connect(&handle.local_addr().to_string()).await;
    assert_eq!(
        check(&mut client, PWD, &[dragon, password_item("Guitar7990")]).await,
        [Some(30_488_234), Some(1947)]
    );
    handle.shutdown().await.unwrap();

    // A forced rebuild gives the same answers from scratch.
    let built = build(true).await.unwrap();
    assert!(
        built
            .iter()
            .all(|(_, r)| matches!(r.action, BuildAction::Full { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_store_serves_the_bundled_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Run from an unrelated directory: the corpus is inside the binary.
    let server = ServerProcess::start_in(
        &["--data-dir", data.to_str().unwrap()],
        dir.path().join("serve.log"),
        dir.path(),
    );
    let mut client = connect(&server.addr).await;
    let pair = credential_item("bob.novak@post.example", "bayern:3893");
    assert_eq!(check(&mut client, CRED, &[pair]).await, [Some(3)]);
    server.terminate();
    assert!(data.join("demo/psi/passwords.senderdb").is_file());
    // What it built is saved and up to date, so the next start only loads it.
    let store = Store::open(data.join("demo")).unwrap();
    for c in Collection::ALL {
        assert!(!psi_db::is_stale(&store, c).unwrap());
    }
}

#[test]
fn loader_reports_missing_and_outdated_files() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let mut store = Store::open(&store_dir).unwrap();
    import(&mut store, "combo-1.txt");
    assert!(
        psi_db::load(&store_dir, Collection::Passwords)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        psi_db::saved_generation(&store_dir, Collection::Passwords).unwrap(),
        None
    );
    server::build_all(&store_dir, &BuildOptions::default()).unwrap();
    // A file of the previous format: a clear error, and `build` replaces it.
    let path = psi_db::db_path(&store_dir, Collection::Passwords);
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let e = psi_db::load(&store_dir, Collection::Passwords).unwrap_err();
    assert!(e.to_string().contains("breach-server build"), "{e}");
    assert!(psi_db::is_stale(&store, Collection::Passwords).unwrap());
    let built = server::build_all(&store_dir, &BuildOptions::default()).unwrap();
    let (_, report) = built
        .iter()
        .find(|(db, _)| db.collection == Collection::Passwords)
        .unwrap();
    assert!(
        matches!(report.action, BuildAction::Full { .. }),
        "{report:?}"
    );
    assert!(
        psi_db::load(&store_dir, Collection::Passwords)
            .unwrap()
            .is_some()
    );
    // A damaged database inside the file is refused, not served.
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 1;
    fs::write(&path, &bytes).unwrap();
    assert!(psi_db::load(&store_dir, Collection::Passwords).is_err());
}
