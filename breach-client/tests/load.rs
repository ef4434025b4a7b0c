//! The client under load and through database swaps, against the
//! in-process server: retries honouring `grpc-retry-pushback-ms`, a client
//! that gives up within its budget with a clear message, UNAVAILABLE
//! retried, the per-call deadline, parameters refetched after
//! FAILED_PRECONDITION, and the tier chosen per collection.
//! PSI is slow unoptimized: run with `cargo test --release`.
#![allow(missing_docs)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breach_client::{
    CheckOptions, Client, Error, Progress, RetryPolicy, check_password, check_vault,
    read_vault_file,
};
use common::{
    Refusal, ServerConfig, TierSpec, databases, expected_report, fixtures_dir,
    other_tier_databases, rebuilt_databases, runtime, start_server,
};

/// A password of the corpus and how often it was seen.
fn breached_password() -> (String, u64) {
    let corpus = common::corpus();
    let (pw, _) = corpus
        .combo_passwords
        .iter()
        .next()
        .expect("a breached password");
    (pw.clone(), corpus.password_seen(pw))
}

fn chrome_vault() -> breach_client::Vault {
    read_vault_file(fixtures_dir().join("vaults/chrome.csv"), None).expect("vault")
}

/// Options whose retries wait little, so tests stay short.
fn quick_retries() -> CheckOptions {
    CheckOptions {
        retry: RetryPolicy {
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_attempts: 10,
            budget: Duration::from_secs(20),
        },
        call_timeout: Duration::from_secs(60),
        ..CheckOptions::default()
    }
}

fn recording(options: CheckOptions) -> (CheckOptions, Arc<Mutex<Vec<Progress>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let options = CheckOptions {
        progress: Some(Arc::new(move |e| sink.lock().unwrap().push(e))),
        ..options
    };
    (options, events)
}

#[test]
fn resource_exhausted_with_pushback_is_waited_out() {
    for rpc in ["EvaluateOprf", "Query", "GetParameters"] {
        let server = start_server(ServerConfig {
            refusal: Some(Refusal {
                rpc,
                code: tonic::Code::ResourceExhausted,
                message: "OPRF rate limit: retry later",
                pushback: Some("50"),
                times: 3,
            }),
            ..ServerConfig::default()
        });
        let vault = chrome_vault();
        let (options, events) = recording(quick_retries());
        let report = runtime()
            .block_on(check_vault(&server.url(), &vault, &options))
            .unwrap_or_else(|e| panic!("{rpc}: {e}"));
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            expected_report(&vault),
            "{rpc}"
        );
        assert_eq!(server.stats.refused.load(Ordering::SeqCst), 3, "{rpc}");
        // Each wait honoured the pushback (50 ms plus jitter), not a backoff.
        let waits: Vec<Duration> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Progress::Waiting {
                    rpc: r,
                    wait,
                    message,
                } => {
                    assert_eq!(*r, rpc);
                    assert!(message.contains("OPRF rate limit"), "{message}");
                    Some(*wait)
                }
                _ => None,
            })
            .collect();
        assert_eq!(waits.len(), 3, "{rpc}");
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_millis(50) && *w <= Duration::from_millis(100)),
            "{waits:?}"
        );
    }
}

#[test]
fn unavailable_is_retried_with_backoff() {
    let server = start_server(ServerConfig {
        refusal: Some(Refusal {
            rpc: "Query",
            code: tonic::Code::Unavailable,
            message: "server restarting",
            pushback: None,
            times: 2,
        }),
        ..ServerConfig::default()
    });
    let vault = chrome_vault();
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &quick_retries()))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );
    assert_eq!(server.stats.refused.load(Ordering::SeqCst), 2);
}

#[test]
fn a_server_that_always_refuses_is_given_up_on_clearly() {
    let server = start_server(ServerConfig {
        refusal: Some(Refusal {
            rpc: "EvaluateOprf",
            code: tonic::Code::ResourceExhausted,
            message: "server busy: 4 queries already running; retry later",
            pushback: Some("300"),
            times: usize::MAX,
        }),
        ..ServerConfig::default()
    });
    let vault = chrome_vault();
    let options = CheckOptions {
        retry: RetryPolicy {
            budget: Duration::from_secs(2),
            ..quick_retries().retry
        },
        ..quick_retries()
    };
    let err = runtime()
        .block_on(check_vault(&server.url(), &vault, &options))
        .expect_err("never succeeds");
    let Error::GaveUp {
        rpc,
        attempts,
        waited,
        reason,
        status,
    } = &err
    else {
        panic!("{err}");
    };
    assert!(rpc.starts_with("EvaluateOprf"), "{rpc}");
    assert!(*attempts >= 2, "{attempts}");
    assert!(*waited <= Duration::from_secs(2), "{waited:?}");
    assert!(reason.contains("budget"), "{reason}");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let text = err.to_string();
    assert!(text.contains("gave up after"), "{text}");
    assert!(text.contains("attempts"), "{text}");
    assert!(
        text.contains("server busy: 4 queries already running"),
        "{text}"
    );
    // Both collections together stayed within the one budget.
    let refused = server.stats.refused.load(Ordering::SeqCst);
    assert!(refused <= 2 * 10, "{refused}");

    // A negative pushback means: do not retry.
    let server = start_server(ServerConfig {
        refusal: Some(Refusal {
            rpc: "GetParameters",
            code: tonic::Code::ResourceExhausted,
            message: "go away",
            pushback: Some("-1"),
            times: usize::MAX,
        }),
        ..ServerConfig::default()
    });
    let err = runtime()
        .block_on(check_vault(&server.url(), &vault, &quick_retries()))
        .expect_err("refused");
    assert!(
        matches!(&err, Error::GaveUp { attempts: 1, reason, .. } if reason.contains("asked not to retry")),
        "{err}"
    );
    assert_eq!(server.stats.refused.load(Ordering::SeqCst), 1);
}

#[test]
fn a_stalled_call_hits_the_deadline() {
    let server = start_server(ServerConfig {
        stall: Some("Query"),
        ..ServerConfig::default()
    });
    let options = CheckOptions {
        call_timeout: Duration::from_secs(1),
        ..quick_retries()
    };
    let err = runtime()
        .block_on(check_password(&server.url(), "hunter2", &options))
        .expect_err("stalled");
    assert!(
        matches!(&err, Error::CallTimeout { rpc, after } if rpc == "Query (passwords)" && *after == Duration::from_secs(1)),
        "{err}"
    );
    assert!(
        err.to_string().contains("did not finish within 1 s"),
        "{err}"
    );
}

#[test]
fn stale_parameters_are_fetched_again_and_the_check_redone() {
    // The first query finds the database rebuilt with other parameters
    // and another OPRF key: the client must refetch and redo the OPRF.
    let server = start_server(ServerConfig {
        generations: vec![
            vec![TierSpec::legacy(databases())],
            vec![TierSpec::legacy(rebuilt_databases())],
        ],
        swaps: 1,
        ..ServerConfig::default()
    });
    let vault = chrome_vault();
    let (options, events) = recording(quick_retries());
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &options))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );
    // Connecting, then once or (both collections at once) twice more.
    let fetches = server.stats.get_parameters.load(Ordering::SeqCst);
    assert!((2..=3).contains(&fetches), "{fetches}");
    assert!(server.stats.stale_queries.load(Ordering::SeqCst) >= 1);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::ParametersChanged { .. }))
    );

    // A library client reused across a swap refetches too.
    let server = start_server(ServerConfig {
        generations: vec![
            vec![TierSpec::legacy(databases())],
            vec![TierSpec::legacy(rebuilt_databases())],
        ],
        swaps: 1,
        ..ServerConfig::default()
    });
    let client = runtime()
        .block_on(Client::connect(&server.url(), &quick_retries()))
        .expect("connect");
    let (pw, count) = breached_password();
    let r = runtime()
        .block_on(client.check_password(&pw, &quick_retries()))
        .expect("check");
    assert!(r.password_breached);
    assert_eq!(r.password_seen, count);
}

#[test]
fn parameters_changing_twice_are_reported() {
    let server = start_server(ServerConfig {
        generations: vec![
            vec![TierSpec::legacy(databases())],
            vec![TierSpec::legacy(rebuilt_databases())],
        ],
        swaps: usize::MAX,
        ..ServerConfig::default()
    });
    let err = runtime()
        .block_on(check_password(&server.url(), "hunter2", &quick_retries()))
        .expect_err("always stale");
    assert!(
        matches!(
            &err,
            Error::StaleParameters {
                collection: "passwords",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("changed its passwords parameters twice"),
        "{err}"
    );
    assert_eq!(server.stats.get_parameters.load(Ordering::SeqCst), 2);
}

#[test]
fn the_smallest_tier_that_fits_is_used() {
    let server = start_server(ServerConfig {
        generations: vec![vec![
            TierSpec {
                name: "full",
                max_query_items: 4096,
                dbs: databases(),
            },
            TierSpec {
                name: "small",
                max_query_items: 4,
                dbs: other_tier_databases(),
            },
        ]],
        ..ServerConfig::default()
    });
    let (pw, count) = breached_password();
    let (options, events) = recording(quick_retries());
    let r = runtime()
        .block_on(check_password(&server.url(), &pw, &options))
        .expect("check");
    assert!(r.password_breached);
    assert_eq!(r.password_seen, count);
    assert_eq!(*server.stats.tiers_queried.lock().unwrap(), ["small"]);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::TierChosen { tier, items: 1, .. } if tier == "small"))
    );

    // A vault does not fit the small tier: the full one answers it.
    server.stats.tiers_queried.lock().unwrap().clear();
    let vault = chrome_vault();
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &quick_retries()))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );
    assert_eq!(
        *server.stats.tiers_queried.lock().unwrap(),
        ["full", "full"]
    );

    // Past the largest tier: the largest, in several rounds.
    server.stats.tiers_queried.lock().unwrap().clear();
    let server_small = start_server(ServerConfig {
        generations: vec![vec![
            TierSpec {
                name: "full",
                max_query_items: 8,
                dbs: databases(),
            },
            TierSpec {
                name: "small",
                max_query_items: 2,
                dbs: other_tier_databases(),
            },
        ]],
        ..ServerConfig::default()
    });
    let report = runtime()
        .block_on(check_vault(&server_small.url(), &vault, &quick_retries()))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );
    let tiers = server_small.stats.tiers_queried.lock().unwrap().clone();
    assert!(
        tiers.len() > 2 && tiers.iter().all(|t| t == "full"),
        "{tiers:?}"
    );
}
