//! Scheduling query answers: a bounded rayon pool of its own, a small
//! window of bundle jobs per query pulled by the transport, send timeouts
//! and per-call deadlines.
//!
//! psi-core answers a query as independent parts
//! ([`psi_core::PreparedQuery::answer_part`]); this module decides when
//! each part is computed and how long the server waits for the client:
//!
//! - **Own pool.** Answers run on a rayon pool of
//!   [`Bounds::answer_threads`](crate::bounds::Bounds::answer_threads)
//!   threads, separate from the pool OPRF evaluation uses (rayon's global
//!   pool), so queries can never starve `EvaluateOprf`, and no answer job
//!   ever blocks a pool thread waiting for a client.
//! - **Pull-based window.** For each query at most
//!   [`Bounds::answer_window`](crate::bounds::Bounds::answer_window) parts
//!   exist at once (computing, computed, or offered to the transport and
//!   not yet taken); the next part is scheduled only when the transport
//!   has taken one (gRPC's HTTP/2 flow control stops taking parts when the
//!   client stops reading). A client that stops reading therefore stalls
//!   only its own query and pins at most the window.
//! - **Send timeout.** A part the transport has not taken within
//!   [`Bounds::send_timeout`](crate::bounds::Bounds::send_timeout) ends the
//!   call with `DEADLINE_EXCEEDED`: the part is dropped, jobs not started
//!   are skipped, and the query's slot is freed once running jobs finish.
//! - **Deadline.** The whole call (admission, decoding, every part) ends
//!   with `DEADLINE_EXCEEDED` at the call's deadline: the client's
//!   `grpc-timeout` when it sent a shorter one, else
//!   [`Bounds::max_call_duration`](crate::bounds::Bounds::max_call_duration).
//! - **Failures are loud.** A part that fails or whose job panics ends the
//!   stream with `INTERNAL` (details in the log); a stream only ends
//!   cleanly after every part (each carrying the part count) was taken.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use breach_proto::v1 as pb;
use psi_core::wire::Codec;
use psi_core::{PreparedQuery, SenderDb};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant as TokioInstant;
use tokio_stream::Stream;
use tonic::Status;

use crate::bounds::Bounds;
use crate::error::{Error, Result};
use crate::limits::QueryPermit;
use crate::psi_db::CollectionDb;

/// The streamed answer of `Query`.
pub type QueryStream = Pin<Box<dyn Stream<Item = Result<pb::QueryResponsePart, Status>> + Send>>;

/// Runs query answers on a pool of their own (see the
/// [module documentation](self)).
#[derive(Debug)]
pub struct Answerer {
    pool: rayon::ThreadPool,
    bounds: Bounds,
}

/// One tier's database inside a collection held by a running query (so a
/// swap of the catalog does not pull it away mid-answer).
struct TierRef {
    collection: Arc<CollectionDb>,
    tier: usize,
}

impl Deref for TierRef {
    type Target = SenderDb;
    fn deref(&self) -> &SenderDb {
        &self.collection.tiers[self.tier].db
    }
}

type Prepared = PreparedQuery<TierRef>;

impl Answerer {
    /// A pool of `bounds.answer_threads` threads (the number of cores when
    /// 0), named `answer-N`.
    pub fn new(bounds: &Bounds) -> Result<Self> {
        let threads = bounds.answer_threads();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("answer-{i}"))
            .build()
            .map_err(|e| Error::Config(format!("answer pool of {threads} threads: {e}")))?;
        Ok(Self {
            pool,
            bounds: bounds.clone(),
        })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` on the pool; a panic becomes [`Error::WorkerFailed`].
    /// `permit` is held until `f` is done, so a query's slot stays taken
    /// while any of its work runs, even after its call has ended.
    async fn run<T: Send + 'static>(
        &self,
        permit: Arc<QueryPermit>,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            let _permit = permit;
            let _ = tx.send(catch(f));
        });
        rx.await
            .map_err(|_| Error::WorkerFailed("an answer job was dropped unrun".into()))?
    }

    /// Decodes `query` on the pool, prepares it against its tier of `db`
    /// and returns the stream of its parts. Errors in the query fail the
    /// call itself; later failures end the stream with a status.
    pub(crate) async fn answer(
        self: &Arc<Self>,
        db: Arc<CollectionDb>,
        query: Vec<u8>,
        permit: QueryPermit,
        deadline: TokioInstant,
        peer: Option<SocketAddr>,
        shard: u32,
    ) -> Result<QueryStream, Status> {
        let permit = Arc::new(permit);
        let collection = db.collection;
        let started = Instant::now();
        let prepare = self.run(permit.clone(), move || {
            let q = psi_core::Query::from_wire(&query)?;
            drop(query);
            // The query names its tier by its parameters' fingerprint.
            let tier = db
                .tiers
                .iter()
                .position(|t| t.db.params().fingerprint().as_slice() == q.params_fingerprint)
                .ok_or(Error::StaleParameters { collection })?;
            let name = db.tiers[tier].tier.name();
            let prepared = PreparedQuery::new(
                TierRef {
                    collection: db,
                    tier,
                },
                &q,
            )?;
            Ok((Arc::new(prepared), name))
        });
        let (prepared, tier) = match tokio::time::timeout_at(deadline, prepare).await {
            Ok(r) => r.map_err(Status::from)?,
            Err(_) => return Err(deadline_exceeded()),
        };
        let handoff = Arc::new(Handoff::default());
        let stream = PartStream {
            handoff: handoff.clone(),
        };
        let producer = Producer {
            answerer: self.clone(),
            prepared,
            permit,
            handoff,
            cancelled: Arc::new(AtomicBool::new(false)),
            deadline,
            shard,
        };
        tokio::spawn(async move {
            let _in_flight = crate::metrics::QueryInFlight::start();
            match producer.run().await {
                Ok(()) => {
                    crate::metrics::query_answered(collection, tier, started.elapsed());
                    tracing::info!(%collection, tier, peer = ?peer, elapsed = ?started.elapsed(), "query answered");
                }
                Err(Ended::ClientGone) => {
                    tracing::info!(%collection, peer = ?peer, "query abandoned by the client");
                }
                Err(Ended::SendTimeout) => {
                    tracing::info!(%collection, peer = ?peer, "query ended: the client did not read its answer in time");
                }
                Err(Ended::Deadline) => {
                    tracing::info!(%collection, peer = ?peer, "query ended: deadline exceeded");
                }
                Err(Ended::Failed) => {}
            }
        });
        Ok(Box::pin(stream))
    }
}

/// Runs `f`, turning a panic into [`Error::WorkerFailed`] (rayon would
/// abort the process on a panic in a spawned job).
fn catch<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".into());
        Err(Error::WorkerFailed(format!("answer job panicked: {what}")))
    })
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("the call's deadline passed before the answer was complete")
}

/// Why a producer stopped early.
enum Ended {
    ClientGone,
    SendTimeout,
    Deadline,
    Failed,
}

/// Computes one query's parts on the pool, a window at a time, and hands
/// them to the transport in order.
struct Producer {
    answerer: Arc<Answerer>,
    prepared: Arc<Prepared>,
    permit: Arc<QueryPermit>,
    handoff: Arc<Handoff>,
    /// Set when the producer stops: jobs not started yet do nothing.
    cancelled: Arc<AtomicBool>,
    deadline: TokioInstant,
    /// This server's shard index, tagged on every message.
    shard: u32,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

type Job = oneshot::Receiver<Result<psi_core::ResultPart>>;

impl Producer {
    fn spawn(&self, part: usize) -> Job {
        let (tx, rx) = oneshot::channel();
        let prepared = self.prepared.clone();
        let permit = self.permit.clone();
        let cancelled = self.cancelled.clone();
        self.answerer.pool.spawn(move || {
            let _permit = permit;
            if cancelled.load(Ordering::Relaxed) {
                return;
            }
            let _ = tx.send(catch(|| Ok(prepared.answer_part(part)?)));
        });
        rx
    }

    async fn run(self) -> std::result::Result<(), Ended> {
        let total = self.prepared.part_count();
        let window = self.answerer.bounds.answer_window.max(1);
        let send_timeout = self.answerer.bounds.send_timeout;
        let mut next = 0;
        let mut offered = 0u32;
        let mut in_flight: VecDeque<Job> = VecDeque::with_capacity(window);
        loop {
            // The part being offered counts in the window: at most
            // `window` parts exist at once.
            while in_flight.len() < window && next < total {
                in_flight.push_back(self.spawn(next));
                next += 1;
            }
            let Some(job) = in_flight.pop_front() else {
                // Every part was taken: the trailer declares how many.
                let trailer = pb::QueryResponsePart {
                    shard: self.shard,
                    shards: 1,
                    trailer: Some(pb::ShardTrailer {
                        parts: total as u32,
                    }),
                    ..Default::default()
                };
                self.deliver(trailer, send_timeout).await?;
                self.handoff.finish(None);
                return Ok(());
            };
            let part = match tokio::time::timeout_at(self.deadline, job).await {
                Err(_) => return Err(self.fail(deadline_exceeded(), Ended::Deadline)),
                Ok(Err(_)) => Err(Error::WorkerFailed(
                    "an answer job ended without a result".into(),
                )),
                Ok(Ok(r)) => r,
            };
            let part = match part {
                Ok(p) => p,
                Err(e) => {
                    // Logged with its details by the status conversion.
                    return Err(self.fail(Status::from(e), Ended::Failed));
                }
            };
            let item = pb::QueryResponsePart {
                result_part: part.to_wire(),
                shard: self.shard,
                shards: 1,
                trailer: None,
                part: offered,
            };
            offered += 1;
            self.deliver(item, send_timeout).await?;
        }
    }

    /// Offers one message to the transport: waits until it is taken, the
    /// send timeout or the deadline passes, or the client goes away.
    async fn deliver(
        &self,
        item: pb::QueryResponsePart,
        send_timeout: std::time::Duration,
    ) -> std::result::Result<(), Ended> {
        let wait_until = self.deadline.min(TokioInstant::now() + send_timeout);
        match self.handoff.offer(Ok(item), wait_until).await {
            Offer::Taken => Ok(()),
            Offer::Gone => Err(Ended::ClientGone),
            Offer::TimedOut if wait_until == self.deadline => {
                Err(self.fail(deadline_exceeded(), Ended::Deadline))
            }
            Offer::TimedOut => {
                let status = Status::deadline_exceeded(format!(
                    "the client took no part of the answer for {} s",
                    send_timeout.as_secs_f64()
                ));
                Err(self.fail(status, Ended::SendTimeout))
            }
        }
    }

    fn fail(&self, status: Status, why: Ended) -> Ended {
        self.handoff.finish(Some(status));
        why
    }
}

/// Outcome of offering a part to the transport.
enum Offer {
    Taken,
    Gone,
    TimedOut,
}

/// A one-item hand-over point between a producer and the response stream:
/// the producer offers a part and waits until the stream has given it to
/// the transport, and can take it back after a timeout (so an unread part
/// is freed).
#[derive(Default)]
struct Handoff {
    state: Mutex<HandoffState>,
    taken: Notify,
}

#[derive(Default)]
struct HandoffState {
    item: Option<Result<pb::QueryResponsePart, Status>>,
    finished: bool,
    stream_dropped: bool,
    waker: Option<Waker>,
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandoffState> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn offer(
        &self,
        item: Result<pb::QueryResponsePart, Status>,
        until: TokioInstant,
    ) -> Offer {
        {
            let mut s = self.lock();
            if s.stream_dropped {
                return Offer::Gone;
            }
            s.item = Some(item);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
        loop {
            let notified = self.taken.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.lock();
                if s.stream_dropped {
                    return Offer::Gone;
                }
                if s.item.is_none() {
                    return Offer::Taken;
                }
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                let mut s = self.lock();
                if s.item.is_none() {
                    return Offer::Taken;
                }
                s.item = None;
                return Offer::TimedOut;
            }
        }
    }

    /// Ends the stream, after `last` (an error status) if given.
    fn finish(&self, last: Option<Status>) {
        let mut s = self.lock();
        if let Some(status) = last {
            s.item = Some(Err(status));
        }
        s.finished = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// The response stream: yields what the producer offers.
struct PartStream {
    handoff: Arc<Handoff>,
}

impl Stream for PartStream {
    type Item = Result<pb::QueryResponsePart, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut s = self.handoff.lock();
        if let Some(item) = s.item.take() {
            if item.is_err() {
                s.finished = true;
            }
            drop(s);
            self.handoff.taken.notify_one();
            return Poll::Ready(Some(item));
        }
        if s.finished {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for PartStream {
    fn drop(&mut self) {
        self.handoff.lock().stream_dropped = true;
        self.handoff.taken.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_is_an_internal_error() {
        let r: Result<()> = catch(|| panic!("boom"));
        match r {
            Err(e @ Error::WorkerFailed(_)) => {
                assert!(e.to_string().contains("boom"), "{e}");
                assert_eq!(Status::from(e).code(), tonic::Code::Internal);
            }
            other => panic!("expected WorkerFailed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_untaken_part_times_out_and_is_dropped() {
        let handoff = Arc::new(Handoff::default());
        let stream = PartStream {
            handoff: handoff.clone(),
        };
        let until = TokioInstant::now() + std::time::Duration::from_millis(50);
        let item = Ok(pb::QueryResponsePart {
            result_part: vec![1; 1000],
            ..Default::default()
        });
        assert!(matches!(handoff.offer(item, until).await, Offer::TimedOut));
        assert!(handoff.lock().item.is_none(), "the part is freed");
        handoff.finish(Some(deadline_exceeded()));
        let mut stream = Box::pin(stream);
        use tokio_stream::StreamExt;
        let first = stream.next().await.expect("the status");
        assert_eq!(first.unwrap_err().code(), tonic::Code::DeadlineExceeded);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_dropped_stream_stops_the_producer() {
        let handoff = Arc::new(Handoff::default());
        drop(PartStream {
            handoff: handoff.clone(),
        });
        let until = TokioInstant::now() + std::time::Duration::from_secs(60);
        let item = Ok(pb::QueryResponsePart::default());
        assert!(matches!(handoff.offer(item, until).await, Offer::Gone));
    }
}
