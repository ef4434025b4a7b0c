//! Behaving well under load: a deadline on every call, and retries with
//! exponential backoff and jitter when the server is busy.
//!
//! A call the server refuses with `RESOURCE_EXHAUSTED` (rate limit, too
//! many concurrent queries) or `UNAVAILABLE` (restarting, overloaded,
//! connection lost) is retried after a wait. The wait is the server's
//! `grpc-retry-pushback-ms` hint when it sends one (plus a little jitter, so
//! that clients told the same thing do not all come back at once), else an
//! exponential backoff with jitter ([`backon`]). As in gRPC's retry design
//! (A6), a negative or unparseable pushback means "do not retry". Every wait
//! is charged to one budget per check ([`RetryPolicy::budget`]), so a
//! check that cannot get through gives up in bounded time, saying what
//! failed, after how many attempts, and the server's last message.
//!
//! Retrying is safe here: every call is idempotent (the same blinded
//! points, the same encrypted query), and a retried call shows the server
//! nothing new.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// The metadata key of gRPC's server pushback (A6): milliseconds to wait
/// before retrying; negative or unparseable means "do not retry".
pub const PUSHBACK_KEY: &str = "grpc-retry-pushback-ms";

/// How calls the server refused for load are retried.
///
/// `RetryPolicy::default()` waits from 0.2 s doubling up to 10 s between
/// attempts (or what the server asks), at most 64 attempts per call and at
/// most 300 s of waiting in all per check (wall-clock time with some call
/// waiting): enough for a 10,000-entry vault under a default server's OPRF
/// rate limit, or for several checks sharing one server's query slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry when the server gives no hint; doubles
    /// (with jitter) on every further retry.
    pub first_backoff: Duration,
    /// Longest backoff between two attempts when the server gives no hint.
    /// A server's pushback is honoured even when longer (within `budget`).
    pub max_backoff: Duration,
    /// Most attempts of one call (the first one included).
    pub max_attempts: u32,
    /// Most time spent waiting between attempts over a whole check: wall-
    /// clock time during which some call waits (calls waiting side by side
    /// count once). `Duration::ZERO` disables retries.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_attempts: 64,
            budget: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries: every refusal is reported at once.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            budget: Duration::ZERO,
            ..RetryPolicy::default()
        }
    }
}

/// Whether a status is worth retrying: the server refused for load or
/// could not be reached.
pub fn is_retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::ResourceExhausted | tonic::Code::Unavailable
    )
}

/// The server's retry hint in a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushback {
    /// Retry after this long.
    After(Duration),
    /// The server asked not to retry (negative or unparseable value).
    DoNotRetry,
}

/// Reads `grpc-retry-pushback-ms` from a status's metadata (where tonic
/// puts the trailers of a failed call); `None` when absent.
pub fn pushback(status: &tonic::Status) -> Option<Pushback> {
    let value = status.metadata().get(PUSHBACK_KEY)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok());
    Some(match parsed {
        Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
        _ => Pushback::DoNotRetry,
    })
}

/// The waiting allowance of one check, shared by all its calls. What is
/// counted is wall-clock time during which at least one call waits, so two
/// collections waiting side by side spend the budget once, not twice.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    policy: RetryPolicy,
    waits: Arc<Mutex<Waits>>,
}

#[derive(Debug, Default)]
struct Waits {
    /// Calls waiting now.
    waiting: usize,
    /// Since when some call has been waiting (when `waiting > 0`).
    since: Option<tokio::time::Instant>,
    /// Time with some call waiting, closed intervals only.
    total: Duration,
}

impl RetryBudget {
    pub(crate) fn new(policy: RetryPolicy) -> RetryBudget {
        RetryBudget {
            policy,
            waits: Arc::new(Mutex::new(Waits::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waits> {
        lock(&self.waits)
    }

    /// Time spent with at least one call waiting, so far.
    fn waited(&self) -> Duration {
        let w = self.lock();
        w.total + w.since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// Whether a wait of `wait` more still fits in the budget.
    fn fits(&self, wait: Duration) -> bool {
        self.waited() + wait <= self.policy.budget
    }

    /// Sleeps `wait`, counted as waiting (also when cancelled midway).
    #[cfg(test)]
    async fn sleep(&self, wait: Duration) {
        counted_sleep(Arc::clone(&self.waits), wait).await
    }

    /// A sleeper for [`backon`] (which wants `'static`) counting its waits.
    fn sleeper(&self) -> impl Fn(Duration) -> CountedSleep + 'static {
        let waits = Arc::clone(&self.waits);
        move |wait| Box::pin(counted_sleep(Arc::clone(&waits), wait))
    }
}

type CountedSleep = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn lock(waits: &Mutex<Waits>) -> std::sync::MutexGuard<'_, Waits> {
    waits.lock().unwrap_or_else(|p| p.into_inner())
}

async fn counted_sleep(waits: Arc<Mutex<Waits>>, wait: Duration) {
    struct Counted(Arc<Mutex<Waits>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            let mut w = lock(&self.0);
            w.waiting -= 1;
            if w.waiting == 0
                && let Some(since) = w.since.take()
            {
                w.total += since.elapsed();
            }
        }
    }
    {
        let mut w = lock(&waits);
        if w.waiting == 0 {
            w.since = Some(tokio::time::Instant::now());
        }
        w.waiting += 1;
    }
    let _counted = Counted(waits);
    tokio::time::sleep(wait).await;
}

/// One failed attempt of a call.
#[derive(Debug)]
pub(crate) enum AttemptError<E> {
    /// The server (or the transport) answered with this status.
    Status(tonic::Status),
    /// No answer within the per-call deadline.
    Deadline,
    /// A local failure (bad answer, ...): never retried.
    Other(E),
}

/// Why a call failed for good.
#[derive(Debug)]
pub(crate) enum CallError<E> {
    /// Not retryable, or retries were not allowed: the last status.
    Status(tonic::Status),
    /// Retryable, but the client gave up: the last status and why.
    GaveUp {
        status: tonic::Status,
        attempts: u32,
        waited: Duration,
        reason: String,
    },
    /// No answer within the per-call deadline.
    Deadline,
    /// A local failure.
    Other(E),
}

/// Runs `attempt` until it succeeds, fails for good, or the policy says
/// stop. Each attempt is bounded by `deadline`. `on_wait` hears of every
/// wait (for progress displays).
pub(crate) async fn call<T, E, Fut>(
    budget: &RetryBudget,
    deadline: Duration,
    mut attempt: impl FnMut() -> Fut,
    on_wait: impl Fn(Duration, &tonic::Status),
) -> Result<T, CallError<E>>
where
    Fut: Future<Output = Result<T, AttemptError<E>>>,
{
    let policy = budget.policy;
    let attempts = AtomicU32::new(0);
    let waited_ms = AtomicU64::new(0);
    let stop: Mutex<Option<String>> = Mutex::new(None);
    let stop_because = |why: String| {
        if let Ok(mut slot) = stop.lock() {
            *slot = Some(why);
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_backoff)
        .with_max_delay(policy.max_backoff.max(policy.first_backoff))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize);
    let outcome = (|| {
        attempts.fetch_add(1, Ordering::SeqCst);
        let fut = attempt();
        async move {
            let started = tokio::time::Instant::now();
            match tokio::time::timeout(deadline, fut).await {
                // The server enforces the deadline too (grpc-timeout):
                // tonic's server cancels the call when it passes.
                Err(_) => Err(AttemptError::Deadline),
                Ok(Err(AttemptError::Status(s)))
                    if s.code() == tonic::Code::DeadlineExceeded
                        || (s.code() == tonic::Code::Cancelled
                            && started.elapsed() >= deadline) =>
                {
                    Err(AttemptError::Deadline)
                }
                Ok(result) => result,
            }
        }
    })
    .retry(backoff)
    .sleep(budget.sleeper())
    .when(|e: &AttemptError<E>| matches!(e, AttemptError::Status(s) if is_retryable(s.code())))
    .adjust(|e: &AttemptError<E>, backoff: Option<Duration>| {
        let AttemptError::Status(status) = e else {
            return None;
        };
        if policy.budget.is_zero() || policy.max_attempts <= 1 {
            stop_because("retries are disabled".to_owned());
            return None;
        }
        let Some(backoff) = backoff else {
            stop_because(format!("{} attempts", policy.max_attempts));
            return None;
        };
        let wait = match pushback(status) {
            Some(Pushback::DoNotRetry) => {
                stop_because("the server asked not to retry".to_owned());
                return None;
            }
            // Up to 10% (and 50 ms) more than asked, so that clients told
            // the same thing do not all come back at the same instant.
            Some(Pushback::After(asked)) => {
                let spread = (asked.as_millis() as u64 / 10).max(50);
                asked + Duration::from_millis(fastrand::u64(0..=spread))
            }
            None => backoff,
        };
        if !budget.fits(wait) {
            stop_because(format!(
                "the retry budget of {} s of waiting is used up",
                policy.budget.as_secs_f64()
            ));
            return None;
        }
        waited_ms.fetch_add(wait.as_millis() as u64, Ordering::SeqCst);
        Some(wait)
    })
    .notify(|e: &AttemptError<E>, wait| {
        if let AttemptError::Status(status) = e {
            on_wait(wait, status);
        }
    })
    .await;
    match outcome {
        Ok(value) => Ok(value),
        Err(AttemptError::Deadline) => Err(CallError::Deadline),
        Err(AttemptError::Other(e)) => Err(CallError::Other(e)),
        Err(AttemptError::Status(status)) => {
            let reason = stop.lock().ok().and_then(|mut s| s.take());
            match reason {
                Some(reason) if is_retryable(status.code()) => Err(CallError::GaveUp {
                    status,
                    attempts: attempts.load(Ordering::SeqCst),
                    waited: Duration::from_millis(waited_ms.load(Ordering::SeqCst)),
                    reason,
                }),
                _ => Err(CallError::Status(status)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn with_pushback(value: &str) -> tonic::Status {
        let mut status = tonic::Status::resource_exhausted("busy");
        status
            .metadata_mut()
            .insert(PUSHBACK_KEY, MetadataValue::try_from(value).unwrap());
        status
    }

    #[test]
    fn pushback_values() {
        assert_eq!(
            pushback(&with_pushback("250")),
            Some(Pushback::After(Duration::from_millis(250)))
        );
        assert_eq!(
            pushback(&with_pushback("0")),
            Some(Pushback::After(Duration::ZERO))
        );
        assert_eq!(pushback(&with_pushback("-1")), Some(Pushback::DoNotRetry));
        assert_eq!(pushback(&with_pushback("soon")), Some(Pushback::DoNotRetry));
        assert_eq!(pushback(&with_pushback("1.5")), Some(Pushback::DoNotRetry));
        assert_eq!(pushback(&tonic::Status::unavailable("down")), None);
    }

    #[test]
    fn budget_counts_overlapping_waits_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let budget = RetryBudget::new(RetryPolicy {
            budget: Duration::from_secs(2),
            ..RetryPolicy::default()
        });
        rt.block_on(async {
            // Two calls waiting side by side: one second of budget.
            tokio::join!(
                budget.sleep(Duration::from_secs(1)),
                budget.sleep(Duration::from_millis(500))
            );
            assert_eq!(budget.waited(), Duration::from_secs(1));
            // Time not spent waiting is not counted.
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert_eq!(budget.waited(), Duration::from_secs(1));
            assert!(budget.fits(Duration::from_millis(1000)));
            assert!(!budget.fits(Duration::from_millis(1001)));
            // A wait cut short counts as far as it went.
            let _ = tokio::time::timeout(
                Duration::from_millis(300),
                budget.sleep(Duration::from_secs(10)),
            )
            .await;
            assert_eq!(budget.waited(), Duration::from_millis(1300));
        });
    }

    #[test]
    fn retryable_codes() {
        assert!(is_retryable(tonic::Code::ResourceExhausted));
        assert!(is_retryable(tonic::Code::Unavailable));
        assert!(!is_retryable(tonic::Code::FailedPrecondition));
        assert!(!is_retryable(tonic::Code::InvalidArgument));
        assert!(!is_retryable(tonic::Code::DeadlineExceeded));
    }

    fn run<T>(
        policy: RetryPolicy,
        answers: Vec<Result<T, tonic::Status>>,
    ) -> (Result<T, CallError<()>>, usize) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let budget = RetryBudget::new(policy);
        let answers = Mutex::new(answers.into_iter());
        let calls = AtomicU32::new(0);
        let result = rt.block_on(call(
            &budget,
            Duration::from_secs(5),
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                let next = answers
                    .lock()
                    .unwrap()
                    .next()
                    .expect("an answer per attempt");
                async move { next.map_err(AttemptError::Status) }
            },
            |_, _| {},
        ));
        (result, calls.load(Ordering::SeqCst) as usize)
    }

    #[test]
    fn retries_then_succeeds() {
        let (r, calls) = run(
            RetryPolicy::default(),
            vec![
                Err(with_pushback("30")),
                Err(tonic::Status::unavailable("restarting")),
                Ok(7),
            ],
        );
        assert_eq!(r.ok(), Some(7));
        assert_eq!(calls, 3);
    }

    #[test]
    fn negative_pushback_stops() {
        let (r, calls) = run::<u8>(RetryPolicy::default(), vec![Err(with_pushback("-1"))]);
        assert_eq!(calls, 1);
        match r {
            Err(CallError::GaveUp {
                attempts, reason, ..
            }) => {
                assert_eq!(attempts, 1);
                assert!(reason.contains("asked not to retry"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_codes_are_not_retried() {
        let (r, calls) = run::<u8>(
            RetryPolicy::default(),
            vec![Err(tonic::Status::invalid_argument("bad"))],
        );
        assert_eq!(calls, 1);
        assert!(matches!(r, Err(CallError::Status(s)) if s.code() == tonic::Code::InvalidArgument));
    }

    #[test]
    fn attempts_and_budget_bound_the_retries() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let (r, calls) = run::<u8>(
            policy,
            (0..3)
                .map(|_| Err(tonic::Status::unavailable("x")))
                .collect(),
        );
        assert_eq!(calls, 3);
        assert!(
            matches!(r, Err(CallError::GaveUp { attempts: 3, ref reason, .. }) if reason.contains("3 attempts"))
        );

        let policy = RetryPolicy {
            budget: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        let (r, calls) = run::<u8>(policy, (0..3).map(|_| Err(with_pushback("1500"))).collect());
        assert_eq!(calls, 2);
        assert!(
            matches!(r, Err(CallError::GaveUp { attempts: 2, ref reason, .. }) if reason.contains("budget"))
        );

        let (r, calls) = run::<u8>(RetryPolicy::never(), vec![Err(with_pushback("10"))]);
        assert_eq!(calls, 1);
        assert!(
            matches!(r, Err(CallError::GaveUp { ref reason, .. }) if reason.contains("disabled"))
        );
    }
}
