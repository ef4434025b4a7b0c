//! Prometheus metrics: the exporter behind `serve --metrics-listen ADDR`,
//! the description of every metric the server records, and the recording
//! helpers the service calls.
//!
//! Metrics are recorded through the [`metrics`] facade; without an
//! installed exporter (the default) recording is a no-op. [`install`]
//! installs `metrics-exporter-prometheus`' recorder for the whole process
//! (so once per process) and its HTTP listener, which answers any path
//! (`/metrics` by convention) with the Prometheus text format.
//!
//! | metric | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `breach_requests_total` | counter | `rpc`, `code` | gRPC calls finished, by method and status code |
//! | `breach_query_duration_seconds` | histogram | `collection`, `tier` | time to answer a `Query` |
//! | `breach_oprf_elements_total` | counter | `collection` | OPRF elements evaluated |
//! | `breach_queries_in_flight` | gauge | | `Query` calls being answered |
//! | `breach_rate_limited_total` | counter | `rpc`, `reason` | requests refused by a rate limit |
//! | `breach_db_generation` | gauge | `collection` | store generation of the database served |
//! | `breach_db_items` | gauge | `collection`, `tier` | items in the database served |
//! | `breach_db_load_seconds` | gauge | `collection` | time the last database load took |
//!
//! `rpc` is the method name for `breach.v1.BreachCheck` (`GetParameters`,
//! `EvaluateOprf`, `Query`) and `service/method` for the standard services
//! (`grpc.health.v1.Health/Check`, ...); any other path counts as
//! `other`, so clients cannot grow the label set. `code` is the canonical
//! gRPC status name (`OK`, `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, ...);
//! a call the client abandoned before its status was sent counts as
//! `CANCELLED`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tonic::codegen::http;

use crate::error::{Error, Result};
use crate::store::Collection;

/// Counter: finished gRPC calls, by `rpc` and status `code`.
pub const REQUESTS_TOTAL: &str = "breach_requests_total";
/// Histogram (seconds): time to answer a query, by `collection` and `tier`.
pub const QUERY_DURATION_SECONDS: &str = "breach_query_duration_seconds";
/// Counter: OPRF elements evaluated, by `collection`.
pub const OPRF_ELEMENTS_TOTAL: &str = "breach_oprf_elements_total";
/// Gauge: queries being answered.
pub const QUERIES_IN_FLIGHT: &str = "breach_queries_in_flight";
/// Counter: requests refused by a rate limit, by `rpc` and `reason`.
pub const RATE_LIMITED_TOTAL: &str = "breach_rate_limited_total";
/// Gauge: store generation of the database served, by `collection`.
pub const DB_GENERATION: &str = "breach_db_generation";
/// Gauge: items in the database served, by `collection` and `tier`.
pub const DB_ITEMS: &str = "breach_db_items";
/// Gauge (seconds): how long the last load of a database took, by `collection`.
pub const DB_LOAD_SECONDS: &str = "breach_db_load_seconds";

/// Bucket bounds of [`QUERY_DURATION_SECONDS`]: small-tier queries take
/// tens of milliseconds, full-tier ones a few hundred.
pub const QUERY_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder for this process and starts its HTTP
/// listener on `listen`; describes every metric. Must run inside a tokio
/// runtime (the listener and the recorder's upkeep run on it).
///
/// Fails if `listen` cannot be bound (the message names it) or if a
/// recorder is already installed in this process.
pub fn install(listen: SocketAddr) -> Result<()> {
    let builder = PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(
            Matcher::Full(QUERY_DURATION_SECONDS.to_string()),
            QUERY_DURATION_BUCKETS,
        )
        .map_err(|e| Error::Metrics(e.to_string()))?;
    let (recorder, exporter) = builder.build().map_err(|e| {
        use metrics_exporter_prometheus::BuildError as B;
        match e {
            B::FailedToCreateHTTPListener(reason) => Error::Listen {
                addr: format!("{listen} (--metrics-listen)"),
                reason,
            },
            other => Error::Metrics(other.to_string()),
        }
    })?;
    metrics::set_global_recorder(recorder).map_err(|_| {
        Error::Metrics("a metrics recorder is already installed in this process".into())
    })?;
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            tracing::error!(error = ?e, "the metrics HTTP listener stopped");
        }
    });
    describe();
    // Present from the first scrape, before any query.
    metrics::gauge!(QUERIES_IN_FLIGHT).set(0.0);
    tracing::info!(%listen, "Prometheus metrics on http://{listen}/metrics");
    Ok(())
}

/// Describes every metric (help text and unit) to the installed recorder.
/// [`install`] calls it; call it again after installing another recorder.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "gRPC calls finished, by method (rpc) and gRPC status code (code)"
    );
    metrics::describe_histogram!(
        QUERY_DURATION_SECONDS,
        Unit::Seconds,
        "Time to decode and answer a PSI query, by collection and parameter tier"
    );
    metrics::describe_counter!(
        OPRF_ELEMENTS_TOTAL,
        Unit::Count,
        "OPRF elements evaluated, by collection"
    );
    metrics::describe_gauge!(
        QUERIES_IN_FLIGHT,
        Unit::Count,
        "PSI queries being answered now"
    );
    metrics::describe_counter!(
        RATE_LIMITED_TOTAL,
        Unit::Count,
        "Requests refused by a rate or concurrency limit, by method (rpc) and reason"
    );
    metrics::describe_gauge!(
        DB_GENERATION,
        Unit::Count,
        "Store generation of the PSI database being served, by collection"
    );
    metrics::describe_gauge!(
        DB_ITEMS,
        Unit::Count,
        "Items in the PSI database being served, by collection and tier"
    );
    metrics::describe_gauge!(
        DB_LOAD_SECONDS,
        Unit::Seconds,
        "How long the last load of a collection's PSI database took"
    );
}

/// Records `elements` OPRF elements evaluated for `collection`.
pub fn oprf_evaluated(collection: Collection, elements: usize) {
    metrics::counter!(OPRF_ELEMENTS_TOTAL, "collection" => collection.name())
        .increment(elements as u64);
}

/// Records the time a query for `collection` at `tier` took to answer.
pub fn query_answered(collection: Collection, tier: &str, elapsed: Duration) {
    metrics::histogram!(
        QUERY_DURATION_SECONDS,
        "collection" => collection.name(),
        "tier" => tier.to_owned()
    )
    .record(elapsed.as_secs_f64());
}

/// Counts a query in [`QUERIES_IN_FLIGHT`] while it lives.
#[derive(Debug)]
#[must_use = "the query counts as in flight only while this is alive"]
pub struct QueryInFlight(());

impl QueryInFlight {
    /// Starts counting.
    pub fn start() -> Self {
        metrics::gauge!(QUERIES_IN_FLIGHT).increment(1.0);
        Self(())
    }
}

impl Drop for QueryInFlight {
    fn drop(&mut self) {
        metrics::gauge!(QUERIES_IN_FLIGHT).decrement(1.0);
    }
}

/// The `rpc` label of a request path (bounded set; see the module docs).
pub fn rpc_label(path: &str) -> &'static str {
    match path {
        "/breach.v1.BreachCheck/GetParameters" => "GetParameters",
        "/breach.v1.BreachCheck/EvaluateOprf" => "EvaluateOprf",
        "/breach.v1.BreachCheck/Query" => "Query",
        "/grpc.health.v1.Health/Check" => "grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch" => "grpc.health.v1.Health/Watch",
        "/grpc.health.v1.Health/List" => "grpc.health.v1.Health/List",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" => {
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        }
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" => {
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        }
        _ => "other",
    }
}

/// The canonical name of a gRPC status code given as its decimal value.
fn code_label(value: &[u8]) -> &'static str {
    match value {
        b"0" => "OK",
        b"1" => "CANCELLED",
        b"2" => "UNKNOWN",
        b"3" => "INVALID_ARGUMENT",
        b"4" => "DEADLINE_EXCEEDED",
        b"5" => "NOT_FOUND",
        b"6" => "ALREADY_EXISTS",
        b"7" => "PERMISSION_DENIED",
        b"8" => "RESOURCE_EXHAUSTED",
        b"9" => "FAILED_PRECONDITION",
        b"10" => "ABORTED",
        b"11" => "OUT_OF_RANGE",
        b"12" => "UNIMPLEMENTED",
        b"13" => "INTERNAL",
        b"14" => "UNAVAILABLE",
        b"15" => "DATA_LOSS",
        b"16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Counts one finished call once: from the response headers (trailers-only
/// responses, i.e. errors before any message), else from the trailers, else
/// as `CANCELLED` when the response is dropped before them.
#[derive(Debug)]
struct CallOutcome {
    rpc: &'static str,
    recorded: bool,
}

impl CallOutcome {
    fn record(&mut self, code: &'static str) {
        if !self.recorded {
            self.recorded = true;
            metrics::counter!(REQUESTS_TOTAL, "rpc" => self.rpc, "code" => code).increment(1);
        }
    }

    fn record_from(&mut self, headers: &http::HeaderMap) -> bool {
        match headers.get("grpc-status") {
            Some(v) => {
                self.record(code_label(v.as_bytes()));
                true
            }
            None => false,
        }
    }
}

impl Drop for CallOutcome {
    fn drop(&mut self) {
        self.record("CANCELLED");
    }
}

/// Tower layer counting every call in [`REQUESTS_TOTAL`], including those
/// refused before a handler runs (too large, undecodable, unknown method).
/// Put it outside any layer that rewrites status codes, so it counts the
/// codes clients see.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMetricsLayer;

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics { inner }
    }
}

/// The service of [`RequestMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RequestMetrics<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RequestMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<CountedBody<ResBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let mut outcome = CallOutcome {
            rpc: rpc_label(request.uri().path()),
            recorded: false,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(r) => r,
                Err(e) => {
                    outcome.record("INTERNAL");
                    return Err(e);
                }
            };
            outcome.record_from(response.headers());
            Ok(response.map(|inner| CountedBody { inner, outcome }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its call when the trailers pass.
    #[derive(Debug)]
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        outcome: CallOutcome,
    }
}

impl<B: http_body::Body> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.outcome.record_from(trailers);
                }
            }
            Poll::Ready(Some(Err(_))) => this.outcome.record("INTERNAL"),
            Poll::Ready(None) => this.outcome.record("UNKNOWN"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(rpc_label("/breach.v1.BreachCheck/Query"), "Query");
        assert_eq!(rpc_label("/breach.v1.BreachCheck/Nope"), "other");
        assert_eq!(rpc_label("/anything/at/all"), "other");
        assert_eq!(code_label(b"8"), "RESOURCE_EXHAUSTED");
        assert_eq!(code_label(b"0"), "OK");
        assert_eq!(code_label(b"99"), "UNKNOWN");
    }
}
