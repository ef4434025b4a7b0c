//! A running `breach-server` against hostile input: malformed, truncated
//! and oversized gRPC requests (typed tonic client and raw bytes through
//! a pass-through codec), and raw TCP garbage. Every probe must end in an
//! error status or a closed connection, and afterwards the real
//! `breach-client` binary must still get the known answers.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use bytes::{Buf, BufMut};
use e2e_tests::{
    ServerProcess, assert_fixture_answer, build_fixture_store, client, reference_password_seen,
};
use psi_core::wire::Codec as _;
use psi_core::{OprfResponse, PsiParams, Receiver};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

const CRED: pb::Collection = pb::Collection::Credentials;
const PWD: pb::Collection = pb::Collection::Passwords;

/// Sends and receives message bodies as raw bytes, so a request can be
/// bytes that are not protobuf at all.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect_timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connect to the server")
}

/// The status of a unary call whose request body is `body`, raw.
async fn raw_unary_status(channel: &Channel, method: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = PathAndQuery::from_static(method);
    match grpc.unary(tonic::Request::new(body), path, RawCodec).await {
        Ok(_) => tonic::Status::ok("answered"),
        Err(status) => status,
    }
}

async fn oprf_code(client: &mut BreachCheckClient<Channel>, req: pb::OprfRequest) -> Code {
    match client.evaluate_oprf(req).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// The final status of a Query call (the error may come in the stream).
async fn query_code(
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

/// A well-formed serialized PSI query for `collection` (one item).
async fn valid_query(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
) -> Vec<u8> {
    let resp = client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .expect("GetParameters")
        .into_inner();
    let params = resp
        .collections
        .iter()
        .find(|c| c.collection == collection as i32)
        .expect("collection served");
    let receiver = Receiver::new(PsiParams::from_wire(&params.psi_params).expect("params decode"))
        .expect("receiver");
    let (req, pending) = receiver
        .oprf_request(&[b"e2e probe".as_slice()])
        .expect("OPRF request");
    let evaluated = client
        .evaluate_oprf(pb::OprfRequest {
            collection: collection as i32,
            blinded_elements: req.elements.iter().map(|e| e.to_vec()).collect(),
        })
        .await
        .expect("EvaluateOprf")
        .into_inner();
    let resp = OprfResponse {
        elements: evaluated
            .evaluated_elements
            .iter()
            .map(|e| e.as_slice().try_into().expect("32-byte element"))
            .collect(),
    };
    receiver
        .create_query(pending, &resp)
        .expect("query")
        .0
        .to_wire()
}

/// Writes `bytes` to a fresh connection (half-closing it when `half_close`)
/// and returns once the server has closed it; panics if it stays open for
/// a minute. Returns what the server sent before closing.
fn tcp_probe(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("TCP connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    // The server may close before everything is written: that is fine.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return got, // reset: closed too
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server kept a connection open after {} bytes of junk",
            bytes.len()
        );
    }
}

/// Whether `bytes` start with an HTTP/2 frame header of type GOAWAY (7)
/// somewhere among its frames.
fn has_goaway(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest[3] == 7 {
            return true;
        }
        rest = &rest[(9 + len).min(rest.len())..];
    }
    false
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = build_fixture_store(dir.path());
    let mut server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    let addr = server.addr();

    let ch = channel(addr).await;
    let mut client = BreachCheckClient::new(ch.clone()).max_decoding_message_size(64 << 20);
    let limits = client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .expect("GetParameters")
        .into_inner()
        .limits
        .expect("limits are reported");
    let max_message = usize::try_from(limits.max_message_bytes).expect("fits usize");
    let max_items = usize::try_from(limits.max_items_per_query).expect("fits usize");
    assert!(max_message > 0 && max_items > 0, "{limits:?}");

    // --- Typed requests with bad contents: INVALID_ARGUMENT.
    let bad_oprf = [
        ("no collection", 0, vec![vec![0u8; 32]]),
        ("unknown collection", 77, vec![vec![0u8; 32]]),
        ("31-byte element", PWD as i32, vec![vec![1u8; 31]]),
        ("33-byte element", PWD as i32, vec![vec![1u8; 33]]),
        ("not a group element", PWD as i32, vec![vec![0xff; 32]]),
        ("empty element", CRED as i32, vec![Vec::new()]),
        (
            "more elements than allowed",
            PWD as i32,
            vec![vec![0u8; 32]; max_items + 1],
        ),
    ];
    for (what, collection, blinded_elements) in bad_oprf {
        let code = oprf_code(
            &mut client,
            pb::OprfRequest {
                collection,
                blinded_elements,
            },
        )
        .await;
        assert_eq!(code, Code::InvalidArgument, "EvaluateOprf, {what}");
    }

    let good = valid_query(&mut client, CRED).await;
    assert!(good.len() > 64, "a real query has a body: {}", good.len());
    let bad_queries = [
        ("empty query", Vec::new()),
        ("text", b"definitely not a PSI query".to_vec()),
        ("header only", good[..16].to_vec()),
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("trailing byte", [good.as_slice(), &[0]].concat()),
    ];
    for (what, query) in bad_queries {
        let code = query_code(&mut client, CRED as i32, query).await;
        assert_eq!(code, Code::InvalidArgument, "Query, {what}");
    }
    assert_eq!(
        query_code(&mut client, 0, good.clone()).await,
        Code::InvalidArgument,
        "Query naming no collection"
    );

    // --- Oversized: one byte over the advertised limit.
    let code = query_code(&mut client, CRED as i32, vec![0u8; max_message + 1]).await;
    assert_eq!(
        code,
        Code::ResourceExhausted,
        "Query over the message limit"
    );

    // --- Raw bodies that are not valid protobuf for the method.
    let raw_probes: [(&str, &'static str, Vec<u8>); 4] = [
        (
            "invalid wire type",
            "/breach.v1.BreachCheck/EvaluateOprf",
            vec![0x0f; 64],
        ),
        (
            "length prefix past the end",
            "/breach.v1.BreachCheck/EvaluateOprf",
            // field 2 (bytes), claimed length 100, 3 bytes present
            vec![0x12, 100, 1, 2, 3],
        ),
        (
            "truncated varint",
            "/breach.v1.BreachCheck/Query",
            vec![0x08, 0xff, 0xff],
        ),
        (
            "random bytes",
            "/breach.v1.BreachCheck/Query",
            (0u32..4096)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
    ];
    // A body that is not the method's protobuf is rejected before the
    // service sees it; the server rewrites prost's INTERNAL to
    // INVALID_ARGUMENT, like every other malformed request.
    for (what, method, body) in raw_probes {
        let status = raw_unary_status(&ch, method, body).await;
        let ok = status.code() == Code::InvalidArgument;
        assert!(ok, "{method} with {what}: {status:?}");
    }
    let status = raw_unary_status(&ch, "/breach.v1.BreachCheck/NoSuchMethod", vec![]).await;
    assert_eq!(
        status.code(),
        Code::Unimplemented,
        "unknown method: {status:?}"
    );

    // The same connection still answers.
    let good_again = valid_query(&mut client, PWD).await;
    assert_eq!(
        query_code(&mut client, PWD as i32, good_again).await,
        Code::Ok
    );

    // --- Raw TCP: the server drops the connection, and keeps running.
    let garbage: Vec<u8> = (0u32..8192)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    tcp_probe(addr, &garbage, false);
    tcp_probe(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
    tcp_probe(addr, &PREFACE[..10], true); // truncated preface, then EOF
    tcp_probe(addr, &[], true); // nothing at all
    // A valid preface, then a frame header claiming a 16 MiB SETTINGS
    // frame (over the default 16 KiB frame size): FRAME_SIZE_ERROR.
    let oversized_frame = [PREFACE, &[0xff, 0xff, 0xff, 0x04, 0, 0, 0, 0, 0]].concat();
    let answer = tcp_probe(addr, &oversized_frame, false);
    assert!(
        has_goaway(&answer),
        "oversized frame answered with GOAWAY: {answer:02x?}"
    );
    // A valid preface, then junk where frames belong, then EOF. (Without
    // the EOF the server waits for the rest of the frame the junk
    // announces: HTTP/2 has no per-frame deadline.)
    let junk_frames = [PREFACE, &garbage[..512]].concat();
    tcp_probe(addr, &junk_frames, true);
    // A truncated frame: valid preface, half a SETTINGS frame, EOF.
    let half_frame = [PREFACE, &[0, 0, 12, 0x04, 0, 0, 0, 0, 0, 0, 3]].concat();
    tcp_probe(addr, &half_frame, true);

    drop(client);
    drop(ch);
    assert!(
        server.is_running(),
        "server died; log:\n{}",
        server.log_text()
    );

    // --- The real client still gets the known answers.
    let url = server.url();
    let blocking = tokio::task::spawn_blocking(move || {
        assert_fixture_answer(&url, "chrome", false);
        assert_fixture_answer(&url, "bitwarden", true);
        let seen = reference_password_seen("Guitar7990");
        assert!(seen > 0, "Guitar7990 is in the fixture hash list");
        let out = client_password(&url, "Guitar7990");
        assert_eq!(out.0, Some(1), "{}", out.2);
        assert_eq!(
            out.1,
            format!("{{\"password_breached\":true,\"password_seen\":{seen}}}\n")
        );
    });
    blocking.await.expect("client checks");
    assert!(server.is_running(), "log:\n{}", server.log_text());
}

fn client_password(url: &str, password: &str) -> (Option<i32>, String, String) {
    let out = client(
        &[
            "check-password",
            "--json",
            "--timeout",
            "300",
            "--server",
            url,
        ],
        Some(format!("{password}\n").as_bytes()),
    );
    (out.code(), out.stdout_text(), out.stderr_text())
}
