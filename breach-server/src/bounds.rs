//! Resource bounds against hostile or broken clients: the answer pool and
//! window, send timeouts, call deadlines, HTTP/2 connection settings, and
//! per-method request size limits checked before a request is decoded.
//!
//! # What a client can pin
//!
//! - **Connections and streams.** Each connection carries at most
//!   [`Bounds::max_streams_per_connection`] calls at once (HTTP/2
//!   `SETTINGS_MAX_CONCURRENT_STREAMS`); dead peers are found by HTTP/2
//!   keepalive pings ([`Bounds::keepalive_interval`], answered within
//!   [`Bounds::keepalive_timeout`]) and TCP keepalive; every connection is
//!   closed after [`Bounds::max_connection_age`] (running calls get
//!   [`Bounds::max_call_duration`] to finish), so idle connections do not
//!   live forever.
//! - **Requests.** An `EvaluateOprf` body larger than
//!   `max_items_per_query` elements can be is refused with
//!   `RESOURCE_EXHAUSTED` as soon as that many bytes have arrived
//!   ([`oprf_request_limit`]); a `Query` body larger than
//!   [`Bounds::max_query_bytes`] likewise. Neither is buffered or decoded
//!   past its limit.
//! - **Calls.** Every call ends at its deadline: the client's
//!   `grpc-timeout` if shorter, else [`Bounds::max_call_duration`]
//!   (`CANCELLED` for unary calls, tonic's convention; `DEADLINE_EXCEEDED`
//!   for a `Query` stream).
//! - **Answers.** See [`crate::answering`]: an own pool, at most
//!   [`Bounds::answer_window`] parts per query, [`Bounds::send_timeout`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::codegen::http;

use crate::error::{Error, Result};

/// Header of the client's deadline (gRPC over HTTP/2).
pub const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// Bounds on connections, calls and answers; part of
/// [`Limits`](crate::limits::Limits). The defaults are what `serve` uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Bounds {
    /// Threads answering queries (a rayon pool of their own, apart from
    /// the OPRF pool); 0 means one per core.
    pub answer_threads: usize,
    /// Most result parts of one query computed or waiting for the client
    /// at once (2 to 4 keeps every core busy with a few queries while an
    /// unread query pins little).
    pub answer_window: usize,
    /// How long a computed part may wait for the client to take it before
    /// the call ends with `DEADLINE_EXCEEDED`.
    pub send_timeout: Duration,
    /// Longest any call may run; a shorter `grpc-timeout` from the client
    /// is honoured.
    pub max_call_duration: Duration,
    /// Largest `Query` request body, in bytes (the message limit applies
    /// too, whichever is smaller).
    pub max_query_bytes: usize,
    /// Calls one HTTP/2 connection may have open at once.
    pub max_streams_per_connection: u32,
    /// Interval of HTTP/2 keepalive pings.
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection
    /// is closed.
    pub keepalive_timeout: Duration,
    /// Connections are closed (gracefully) after this long.
    pub max_connection_age: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            answer_threads: 0,
            answer_window: 2,
            send_timeout: Duration::from_secs(30),
            max_call_duration: Duration::from_secs(120),
            max_query_bytes: 32 << 20,
            max_streams_per_connection: 32,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_connection_age: Duration::from_secs(3600),
        }
    }
}

impl Bounds {
    /// Threads of the answer pool (resolving 0 to the number of cores).
    pub fn answer_threads(&self) -> usize {
        match self.answer_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Checks the bounds for consistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.answer_threads > 1024 {
            return bad("answer threads must be at most 1024");
        }
        if !(1..=64).contains(&self.answer_window) {
            return bad("answer window must be in 1..=64");
        }
        if self.send_timeout.is_zero() || self.max_call_duration.is_zero() {
            return bad("send timeout and max call duration must be positive");
        }
        if self.max_query_bytes < 1024 {
            return bad("max query bytes must be at least 1024");
        }
        if self.max_streams_per_connection == 0 {
            return bad("max streams per connection must be at least 1");
        }
        if self.keepalive_interval.is_zero()
            || self.keepalive_timeout.is_zero()
            || self.max_connection_age.is_zero()
        {
            return bad("keepalive and connection age must be positive");
        }
        Ok(())
    }

    /// The deadline of a call that sent `grpc_timeout` (if any): the
    /// earlier of that and [`Self::max_call_duration`] from now.
    pub fn call_deadline(&self, grpc_timeout: Option<&str>) -> tokio::time::Instant {
        let max = self.max_call_duration;
        let d = grpc_timeout
            .and_then(parse_grpc_timeout)
            .map_or(max, |t| t.min(max));
        tokio::time::Instant::now() + d
    }
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The largest legal `EvaluateOprf` request body: a 5-byte gRPC frame
/// header, the collection field (at most 11 bytes) and `max_items`
/// elements of 32 bytes with their 2-byte tag and length (4 allowed, for
/// encoders that pad lengths).
pub fn oprf_request_limit(max_items: usize) -> usize {
    5 + 16 + max_items * (psi_core::oprf::ELEMENT_BYTES + 4)
}

/// Path of the OPRF method.
const OPRF_PATH: &str = "/breach.v1.BreachCheck/EvaluateOprf";
/// Path of the query method.
const QUERY_PATH: &str = "/breach.v1.BreachCheck/Query";

/// Tower layer refusing request bodies of the OPRF and query methods
/// past their limits, as the bytes arrive (before tonic buffers or
/// decodes them).
#[derive(Clone, Copy, Debug)]
pub struct RequestSizeLayer {
    oprf: usize,
    query: usize,
}

impl RequestSizeLayer {
    /// Limits of `EvaluateOprf` and `Query` bodies, in bytes.
    pub fn new(oprf: usize, query: usize) -> Self {
        Self { oprf, query }
    }
}

impl<S> tower::Layer<S> for RequestSizeLayer {
    type Service = RequestSize<S>;
    fn layer(&self, inner: S) -> RequestSize<S> {
        RequestSize {
            inner,
            limits: *self,
        }
    }
}

/// Service of [`RequestSizeLayer`].
#[derive(Clone, Debug)]
pub struct RequestSize<S> {
    inner: S,
    limits: RequestSizeLayer,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for RequestSize<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let (limit, method) = match req.uri().path() {
            OPRF_PATH => (self.limits.oprf, "EvaluateOprf"),
            QUERY_PATH => (self.limits.query, "Query"),
            _ => return self.inner.call(req),
        };
        let req = req.map(|body| {
            tonic::body::Body::new(LimitedBody {
                inner: body,
                limit,
                seen: 0,
                method,
            })
        });
        self.inner.call(req)
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with `RESOURCE_EXHAUSTED` once more than
    /// `limit` bytes arrived or a gRPC frame header announces a message
    /// larger than that.
    struct LimitedBody<B> {
        #[pin]
        inner: B,
        limit: usize,
        seen: usize,
        method: &'static str,
    }
}

fn too_large(method: &str, limit: usize) -> tonic::Status {
    tonic::Status::resource_exhausted(format!(
        "{method} request larger than its limit of {limit} bytes"
    ))
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes, Error = tonic::Status>,
{
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        let frame = match std::task::ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        if let Some(data) = frame.data_ref() {
            // The first frame usually holds the gRPC message header
            // (compression flag, 4-byte big-endian length).
            if *this.seen == 0 && data.len() >= 5 {
                let announced = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
                if announced.saturating_add(5) > *this.limit {
                    return Poll::Ready(Some(Err(too_large(this.method, *this.limit))));
                }
            }
            *this.seen = this.seen.saturating_add(data.len());
            if *this.seen > *this.limit {
                return Poll::Ready(Some(Err(too_large(this.method, *this.limit))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("123456789S"), None, "at most 8 digits");
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("-5S"), None);
    }

    #[test]
    fn the_deadline_is_the_shorter_one() {
        let b = Bounds::default();
        let now = tokio::time::Instant::now();
        let short = b.call_deadline(Some("1S"));
        assert!(short <= now + Duration::from_secs(2));
        let long = b.call_deadline(Some("10H"));
        assert!(long <= tokio::time::Instant::now() + b.max_call_duration);
        assert!(b.call_deadline(None) > now + Duration::from_secs(60));
    }

    #[test]
    fn the_oprf_limit_fits_the_largest_legal_request() {
        use breach_proto::v1 as pb;
        use prost::Message;
        let req = pb::OprfRequest {
            collection: pb::Collection::Passwords as i32,
            blinded_elements: vec![vec![0xff; 32]; 2048],
        };
        let body = 5 + req.encoded_len();
        assert!(body <= oprf_request_limit(2048), "{body}");
        assert!(oprf_request_limit(2048) < 80 * 1024);
    }

    #[test]
    fn defaults_are_valid() {
        Bounds::default().validate().unwrap();
        let bad = Bounds {
            answer_window: 0,
            ..Bounds::default()
        };
        assert!(bad.validate().is_err());
    }
}
