//! Oversized requests are refused before they are decoded: a real
//! `breach-server serve` child on loopback, its memory read from `/proc`.
//! Alone in its test binary so nothing else runs beside it.

use std::time::Duration;

use bytes::{Buf, BufMut};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Endpoint;

mod common;
use common::ServerProcess;

/// Sends and receives message bodies as raw bytes.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Peak resident memory of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// A 32 MiB `EvaluateOprf` request of 16 million empty elements (what the
/// message limit allowed, and hundreds of MB once decoded) is refused with
/// RESOURCE_EXHAUSTED, and the server's peak memory barely moves: it never
/// buffered or decoded the request. A well-formed request still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_oprf_request_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        &["--data-dir", data.to_str().unwrap()],
        dir.path().join("serve.log"),
    );
    let before = peak_rss(server.pid());
    let channel = Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.clone())
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    // Field 1 (collection) = PASSWORDS, then 16 Mi empty blinded elements
    // (field 2, length 0).
    let mut body = vec![0x08, 0x02];
    body.extend(std::iter::repeat_n([0x12u8, 0x00], (32 << 20) / 2 - 8).flatten());
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/breach.v1.BreachCheck/EvaluateOprf");
    for _ in 0..3 {
        grpc.ready().await.unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(120),
            grpc.unary(tonic::Request::new(body.clone()), path.clone(), Raw),
        )
        .await
        .expect("answered");
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("limit"), "{status:?}");
    }
    let after = peak_rss(server.pid());
    // Decoding one such request takes over 400 MB (16 Mi empty vectors of
    // 24 bytes, plus the 32 MiB buffer); refusing it early, a few MB.
    assert!(
        after - before < 64 << 20,
        "peak RSS grew from {before} to {after} bytes"
    );
    // The server still answers a legal request on the same connection.
    let mut client = breach_proto::v1::breach_check_client::BreachCheckClient::new(channel);
    let params = client
        .get_parameters(breach_proto::v1::GetParametersRequest {})
        .await;
    assert!(params.is_ok());
    server.terminate();
}
