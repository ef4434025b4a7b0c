//! breach-server request handling below gRPC: the protobuf body of an
//! `EvaluateOprf` or `Query` call (first byte picks the method), decoded
//! as tonic would, then handed to the service's handler exactly as the
//! transport does. Every outcome is a response or a gRPC status; a
//! status is never `UNKNOWN` or `INTERNAL` for a bad request, and a
//! panic is a crash.
#![no_main]

use breach_fuzz::{RUNTIME, SERVICE};
use breach_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use pb::breach_check_server::BreachCheck;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::{Code, Request};

fn expected(status: &tonic::Status) {
    assert!(
        matches!(
            status.code(),
            Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::ResourceExhausted
                | Code::Unavailable
                | Code::OutOfRange
        ),
        "unexpected status for a bad request: {status:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&method, body)) = data.split_first() else {
        return;
    };
    RUNTIME.block_on(async {
        match method % 2 {
            0 => {
                let Ok(req) = pb::OprfRequest::decode(body) else {
                    return;
                };
                let n = req.blinded_elements.len();
                match SERVICE.evaluate_oprf(Request::new(req)).await {
                    Ok(resp) => assert_eq!(resp.into_inner().evaluated_elements.len(), n),
                    Err(status) => expected(&status),
                }
            }
            _ => {
                let Ok(req) = pb::QueryRequest::decode(body) else {
                    return;
                };
                match SERVICE.query(Request::new(req)).await {
                    Ok(resp) => {
                        let mut stream = resp.into_inner();
                        while let Some(part) = stream.next().await {
                            if let Err(status) = part {
                                expected(&status);
                            }
                        }
                    }
                    Err(status) => expected(&status),
                }
            }
        }
    });
});
