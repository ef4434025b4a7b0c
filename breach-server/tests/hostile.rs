//! Hostile clients against a real server on loopback (the library's
//! `serve`): clients that stop reading their answers, a database whose
//! answer workers fail, and per-connection stream limits. Each test fails
//! on a server without the corresponding bound. Run with `--release`.
//!
//! The database here is built for many result parts (small bins, many
//! items), so an answer is far larger than the HTTP/2 flow-control window
//! of a client that stops reading.

use std::time::Duration;

use breach_proto::encoding::Label;
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use breach_server::bounds::Bounds;
use breach_server::psi_db::{CollectionDb, Tier, TierDb};
use breach_server::server::{self, ServeConfig, ServerHandle};
use breach_server::service::Limits;
use breach_server::store::Collection;
use psi_core::wire::Codec;
use psi_core::{OprfKey, PsiParams, Receiver, ResultPart, SenderDb};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

mod common;
use common::build_query;

const PWD: pb::Collection = pb::Collection::Passwords;
/// Items in the test database: with 2 items per bin and 3 hash functions
/// over 2048 bins, about 30 result parts of ~250 kB each.
const ITEMS: usize = 24_000;
/// A bound on every wait in these tests, far above what a working server
/// needs: a hang shows up as a failure, never as a stuck test.
const HANG: Duration = Duration::from_secs(120);

fn params() -> PsiParams {
    let mut p =
        PsiParams::from_json(include_str!("../../psi-core/params/test-small.json")).unwrap();
    p.max_items_per_bin = 2;
    p.query_powers = vec![1];
    p.label_byte_count = Label::V1_LEN;
    p
}

fn item(i: usize) -> Vec<u8> {
    format!("breached-password-{i}").into_bytes()
}

/// The passwords database: `ITEMS` items, each labeled with count `i + 1`;
/// with `regenerate` false its bundles have no cached polynomials, so
/// every answer worker fails.
fn database(regenerate: bool) -> CollectionDb {
    let mut db = SenderDb::new(params(), OprfKey::generate().unwrap()).unwrap();
    let items: Vec<Vec<u8>> = (0..ITEMS).map(item).collect();
    let labels: Vec<Vec<u8>> = (0..ITEMS)
        .map(|i| {
            Label {
                count: i as u64 + 1,
            }
            .to_bytes()
            .to_vec()
        })
        .collect();
    let pairs: Vec<(&[u8], Option<&[u8]>)> = items
        .iter()
        .zip(&labels)
        .map(|(i, l)| (i.as_slice(), Some(l.as_slice())))
        .collect();
    let prepared = db.prepare(&pairs).unwrap();
    db.insert_prepared(prepared).unwrap();
    if regenerate {
        db.regenerate(|_, _| {}).unwrap();
    }
    assert!(db.result_part_count() >= 16, "{}", db.result_part_count());
    CollectionDb {
        collection: Collection::Passwords,
        generation: 1,
        tiers: vec![TierDb {
            tier: Tier::Full,
            db,
        }],
    }
}

/// Limits that let one address (every test client is 127.0.0.1) run many
/// queries, with `bounds`.
fn limits(bounds: Bounds) -> Limits {
    Limits {
        max_concurrent_queries: 8,
        max_concurrent_queries_per_client: 8,
        query_admission_wait: Duration::from_millis(200),
        queries_per_minute: 10_000,
        query_burst: 10_000,
        bounds,
        ..Limits::default()
    }
}

async fn start(db: CollectionDb, limits: Limits) -> ServerHandle {
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        limits,
        ..ServeConfig::default()
    };
    server::serve(vec![db], &config).await.unwrap()
}

async fn connect(handle: &ServerHandle) -> BreachCheckClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{}", handle.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    BreachCheckClient::new(channel).max_decoding_message_size(64 << 20)
}

/// A connection whose HTTP/2 windows are the protocol's minimum, so a call
/// that is not read stalls the server's sending after 64 kB.
async fn connect_small_window(handle: &ServerHandle) -> BreachCheckClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{}", handle.local_addr()))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .http2_adaptive_window(false)
        .connect()
        .await
        .unwrap();
    BreachCheckClient::new(channel).max_decoding_message_size(64 << 20)
}

/// Starts a `Query` for `items` and returns its response stream unread.
async fn open_query(
    client: &mut BreachCheckClient<Channel>,
    items: &[&[u8]],
) -> Result<tonic::Streaming<pb::QueryResponsePart>, tonic::Status> {
    let receiver = Receiver::new(params()).unwrap();
    let (query, _) = build_query(client, PWD, &receiver, items).await;
    client
        .query(pb::QueryRequest {
            username_bucket: None,
            collection: PWD as i32,
            query: query.to_wire(),
        })
        .await
        .map(|r| r.into_inner())
}

/// A full check of `items`: the breach count of each (`None` if absent).
async fn check(client: &mut BreachCheckClient<Channel>, items: &[&[u8]]) -> Vec<Option<u64>> {
    let receiver = Receiver::new(params()).unwrap();
    let (query, state) = build_query(client, PWD, &receiver, items).await;
    let mut stream = client
        .query(pb::QueryRequest {
            username_bucket: None,
            collection: PWD as i32,
            query: query.to_wire(),
        })
        .await
        .unwrap()
        .into_inner();
    let parts = common::read_answer(&mut stream).await;
    assert!(!parts.is_empty());
    assert!(parts.iter().all(|p| p.total_parts as usize == parts.len()));
    receiver
        .decode(&state, &parts)
        .unwrap()
        .into_iter()
        .map(|r| {
            r.matched.then(|| {
                Label::from_bytes(r.label.as_deref().unwrap())
                    .unwrap()
                    .count
            })
        })
        .collect()
}

/// Reads a stream to its end: `Ok(parts)` or the status that ended it.
async fn drain(
    mut stream: tonic::Streaming<pb::QueryResponsePart>,
) -> Result<usize, tonic::Status> {
    let mut n = 0;
    while stream.message().await?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Clients that open a query and never read it do not block other
/// clients' OPRF calls and queries (on a server where answer workers
/// block on a full channel, the shared rayon pool stalls and both hang).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_do_not_block_others() {
    let bounds = Bounds {
        answer_threads: 2,
        answer_window: 2,
        send_timeout: Duration::from_secs(600),
        ..Bounds::default()
    };
    let server = start(database(true), limits(bounds)).await;
    // Three stalled queries, each on its own connection.
    let mut stalled = Vec::new();
    for i in 0..3 {
        let mut c = connect_small_window(&server).await;
        let name = item(i);
        let stream = open_query(&mut c, &[name.as_slice()]).await.unwrap();
        stalled.push((c, stream));
    }
    // Long enough for every stalled answer to fill whatever it can.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut client = connect(&server).await;
    let present = item(7);
    let outcome = tokio::time::timeout(HANG, async {
        check(&mut client, &[present.as_slice(), b"never-breached"]).await
    })
    .await
    .expect("a reading client is answered while others stall");
    assert_eq!(outcome, [Some(8), None]);
    // The stalled clients can still read their whole answers.
    for (_c, stream) in stalled {
        let parts = tokio::time::timeout(HANG, drain(stream))
            .await
            .unwrap()
            .unwrap();
        assert!(parts >= 16, "{parts}");
    }
    server.shutdown().await.unwrap();
}

/// A query whose client stops reading ends with DEADLINE_EXCEEDED after
/// the send timeout and frees its slot: with one query slot, the next
/// query is admitted (it would be refused with RESOURCE_EXHAUSTED while
/// the stalled one held the slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_answer_times_out_and_frees_its_slot() {
    let bounds = Bounds {
        answer_threads: 1,
        send_timeout: Duration::from_secs(1),
        ..Bounds::default()
    };
    let limits = Limits {
        max_concurrent_queries: 1,
        max_concurrent_queries_per_client: 1,
        ..limits(bounds)
    };
    let server = start(database(true), limits).await;
    let mut staller = connect_small_window(&server).await;
    let name = item(1);
    let stalled = open_query(&mut staller, &[name.as_slice()]).await.unwrap();
    let mut client = connect(&server).await;
    let present = item(41);
    // Admission waits 200 ms: retry until the stalled query's slot is
    // freed by its send timeout (a server without one never frees it).
    let answer = tokio::time::timeout(HANG, async {
        loop {
            let receiver = Receiver::new(params()).unwrap();
            let (query, state) =
                build_query(&mut client, PWD, &receiver, &[present.as_slice()]).await;
            match client
                .query(pb::QueryRequest {
                    username_bucket: None,
                    collection: PWD as i32,
                    query: query.to_wire(),
                })
                .await
            {
                Ok(resp) => {
                    let mut parts = Vec::new();
                    let mut s = resp.into_inner();
                    while let Some(p) = s.message().await.unwrap() {
                        if p.trailer.is_none() {
                            parts.push(ResultPart::from_wire(&p.result_part).unwrap());
                        }
                    }
                    break receiver.decode(&state, &parts).unwrap();
                }
                Err(s) if s.code() == Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(s) => panic!("unexpected {s:?}"),
            }
        }
    })
    .await
    .expect("the stalled query's slot is freed");
    assert!(answer[0].matched);
    // The stalled call itself ended with DEADLINE_EXCEEDED, never a clean
    // (incomplete) end.
    let end = tokio::time::timeout(HANG, drain(stalled)).await.unwrap();
    assert_eq!(end.unwrap_err().code(), Code::DeadlineExceeded);
    server.shutdown().await.unwrap();
}

/// A client's `grpc-timeout` shorter than the server's maximum ends its
/// unread query with DEADLINE_EXCEEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_deadline_is_honoured() {
    let bounds = Bounds {
        answer_threads: 1,
        send_timeout: Duration::from_secs(600),
        ..Bounds::default()
    };
    let server = start(database(true), limits(bounds)).await;
    let mut client = connect_small_window(&server).await;
    let receiver = Receiver::new(params()).unwrap();
    let name = item(3);
    let (query, _) = build_query(&mut client, PWD, &receiver, &[name.as_slice()]).await;
    let mut request = tonic::Request::new(pb::QueryRequest {
        username_bucket: None,
        collection: PWD as i32,
        query: query.to_wire(),
    });
    request.set_timeout(Duration::from_secs(2));
    let stream = client.query(request).await.unwrap().into_inner();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = tokio::time::timeout(HANG, drain(stream)).await.unwrap();
    let code = end.unwrap_err().code();
    assert!(
        matches!(code, Code::DeadlineExceeded | Code::Cancelled),
        "{code:?}"
    );
    server.shutdown().await.unwrap();
}

/// Answer workers that fail (here: a database whose bundles lack their
/// polynomials) give INTERNAL with a generic message, never a clean empty
/// or partial answer, nor INVALID_ARGUMENT (the query was fine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_answer_workers_give_internal() {
    let server = start(database(false), limits(Bounds::default())).await;
    let mut client = connect(&server).await;
    let name = item(5);
    let result = tokio::time::timeout(HANG, async {
        match open_query(&mut client, &[name.as_slice()]).await {
            Err(s) => Err(s),
            Ok(stream) => drain(stream).await,
        }
    })
    .await
    .unwrap();
    let status = result.expect_err("a failed answer is never a clean stream");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(status.message(), "internal server error");
    // The server keeps serving.
    let info = client.get_parameters(pb::GetParametersRequest {}).await;
    assert!(info.is_ok());
    server.shutdown().await.unwrap();
}

/// One connection holds at most `max_streams_per_connection` calls: the
/// server announces the limit in its HTTP/2 SETTINGS (h2 enforces it by
/// refusing further streams), while other connections are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_connection_are_bounded() {
    let bounds = Bounds {
        max_streams_per_connection: 3,
        ..Bounds::default()
    };
    let server = start(database(true), limits(bounds)).await;
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (_send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    // The server's SETTINGS arrive with the first frames it sends.
    let limit = tokio::time::timeout(HANG, async {
        loop {
            let n = connection.max_concurrent_send_streams();
            if n != usize::MAX {
                break n;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), &mut connection).await;
        }
    })
    .await
    .expect("the server sends its settings");
    assert_eq!(limit, 3);
    let mut fresh = connect(&server).await;
    assert!(
        fresh
            .get_parameters(pb::GetParametersRequest {})
            .await
            .is_ok()
    );
    server.shutdown().await.unwrap();
}
