//! The library check against an in-process server: known answers of the
//! fixture vaults, duplicates, rounds split by the server's limit, errors.
//! PSI is slow unoptimized: run with `cargo test --release`.
#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use breach_client::{
    CheckOptions, Client, Error, Progress, RetryPolicy, VaultFormat, check_password, check_vault,
    read_vault, read_vault_file,
};
use breach_proto::encoding::{credential_item, password_item};
use common::{ServerConfig, corpus, expected_report, fixtures_dir, runtime, start_server};

#[test]
fn fixture_vaults_match_known_answers() {
    let server = start_server(ServerConfig::default());
    let client = runtime()
        .block_on(Client::connect(&server.url(), &CheckOptions::default()))
        .expect("connect");
    assert_eq!(client.server_version(), "test-server 0");
    let mut skipped_somewhere = false;
    for format in VaultFormat::ALL {
        let dir = fixtures_dir().join("vaults");
        let vault = read_vault_file(dir.join(format!("{format}.csv")), None).expect("vault");
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{format}.expected.json"))).expect("answers"),
        )
        .expect("json");
        let report = runtime()
            .block_on(client.check_vault(&vault, &CheckOptions::default()))
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        // The known answers list the entries; rows left out are counted
        // beside them.
        let mut expected = expected;
        if !vault.skipped.is_none() {
            expected["skipped"] = serde_json::to_value(vault.skipped).unwrap();
            skipped_somewhere = true;
        }
        assert_eq!(serde_json::to_value(&report).unwrap(), expected, "{format}");
        assert_eq!(report.skipped, vault.skipped, "{format}");
        // The fixtures cover every case: pairs, passwords only, clean.
        assert!(report.results.iter().any(|r| r.credential_breached));
        assert!(
            report
                .results
                .iter()
                .any(|r| r.password_breached && !r.credential_breached)
        );
        assert!(report.results.iter().any(|r| !r.is_breached()));
    }
    assert!(skipped_somewhere, "no fixture vault has a row to skip");
    // Each vault: one round per collection.
    assert_eq!(server.stats.queries.load(Ordering::SeqCst), 14);
}

#[test]
fn json_parameters_and_one_shot_check() {
    let server = start_server(ServerConfig {
        params_as_json: true,
        ..ServerConfig::default()
    });
    let path = fixtures_dir().join("vaults/bitwarden.csv");
    let vault = read_vault_file(&path, None).expect("vault");
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &CheckOptions::default()))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );
}

/// A Chrome export of `(url, username, password)` rows.
fn chrome_csv(rows: &[(String, String, String)]) -> String {
    let mut csv = String::from("name,url,username,password,note\n");
    for (url, user, pw) in rows {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        writeln!(csv, "x,{},{},{},", q(url), q(user), q(pw)).unwrap();
    }
    csv
}

/// 30 breached pairs from the corpus (some repeated, some with the
/// username spelled differently), 12 passwords breached under another
/// username, 14 clean entries: 60 rows, 45 distinct credentials.
fn big_vault_rows() -> Vec<(String, String, String)> {
    let corpus = corpus();
    let mut rows = Vec::new();
    let pairs: Vec<&(String, String)> = corpus.pairs.keys().step_by(41).take(30).collect();
    for (i, (user, pw)) in pairs.iter().enumerate() {
        let shown = if i % 3 == 0 {
            format!("  {}\u{a0}", user.to_uppercase())
        } else {
            user.clone()
        };
        rows.push((format!("https://site{i}.example/"), shown, pw.clone()));
    }
    for i in 0..4 {
        // Same credentials again, under other sites.
        let (user, pw) = pairs[i * 5];
        rows.push((format!("https://dup{i}.example/"), user.clone(), pw.clone()));
    }
    for (i, pw) in corpus
        .combo_passwords
        .keys()
        .step_by(97)
        .take(12)
        .enumerate()
    {
        rows.push((
            format!("https://reuse{i}.example/"),
            format!("not-in-any-breach-{i}@example.invalid"),
            pw.clone(),
        ));
    }
    for i in 0..14 {
        rows.push((
            format!("https://clean{i}.example/"),
            format!("clean-user-{i}"),
            format!("Cl3an-and-long-{i}-{}", i * 7919),
        ));
    }
    rows
}

#[test]
fn large_vault_is_split_into_rounds() {
    let limit = 8u64;
    let server = start_server(ServerConfig {
        max_items_per_query: limit,
        max_concurrent_queries: 1,
        ..ServerConfig::default()
    });
    let rows = big_vault_rows();
    let vault = read_vault(chrome_csv(&rows).as_bytes(), None).expect("vault");
    assert_eq!(vault.entries.len(), 60);

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let options = CheckOptions {
        progress: Some(Arc::new(move |e: Progress| sink.lock().unwrap().push(e))),
        ..CheckOptions::default()
    };
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &options))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );

    // Duplicates and respelled usernames collapse to one item each.
    let distinct = |items: Vec<[u8; 32]>| items.into_iter().collect::<HashSet<_>>().len();
    let distinct_credentials = distinct(rows.iter().map(|r| credential_item(&r.1, &r.2)).collect());
    let distinct_passwords = distinct(rows.iter().map(|r| password_item(&r.2)).collect());
    assert!(distinct_credentials < 60 && distinct_credentials > 40);
    let rounds = |n: usize| n.div_ceil(limit as usize);
    let stats = &server.stats;
    assert_eq!(
        stats.credential_queries.load(Ordering::SeqCst),
        rounds(distinct_credentials)
    );
    assert_eq!(
        stats.password_queries.load(Ordering::SeqCst),
        rounds(distinct_passwords)
    );
    assert_eq!(
        stats.oprf_requests.load(Ordering::SeqCst),
        rounds(distinct_credentials) + rounds(distinct_passwords)
    );
    assert_eq!(
        stats.largest_oprf_batch.load(Ordering::SeqCst),
        limit as usize
    );

    // Every duplicate maps back to each of its entries.
    for i in 0..4 {
        let original = &report.results[i * 5];
        let dup = &report.results[30 + i];
        assert!(dup.credential_breached);
        assert_eq!(dup.breach_count, original.breach_count);
        assert_eq!(dup.password_seen, original.password_seen);
    }
    let breached = report.results.iter().filter(|r| r.is_breached()).count();
    assert!(breached >= 46, "{breached}");

    // Progress: rounds planned equal rounds done.
    let events = events.lock().unwrap();
    let planned: usize = events
        .iter()
        .map(|e| match e {
            Progress::RoundsPlanned(n) => *n,
            _ => 0,
        })
        .sum();
    let done = events
        .iter()
        .filter(|e| matches!(e, Progress::RoundDone { .. }))
        .count();
    assert_eq!(
        planned,
        rounds(distinct_credentials) + rounds(distinct_passwords)
    );
    assert_eq!(done, planned);
}

#[test]
fn client_side_round_limit() {
    let server = start_server(ServerConfig::default());
    let path = fixtures_dir().join("vaults/chrome.csv");
    let vault = read_vault_file(&path, None).expect("vault");
    let options = CheckOptions {
        max_items_per_round: Some(5),
        ..CheckOptions::default()
    };
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &options))
        .expect("check");
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        expected_report(&vault)
    );
    assert!(server.stats.largest_oprf_batch.load(Ordering::SeqCst) <= 5);
    assert!(server.stats.queries.load(Ordering::SeqCst) >= 2 * 21usize.div_ceil(5) - 2);
}

#[test]
fn single_passwords() {
    let server = start_server(ServerConfig::default());
    let corpus = corpus();
    let (pw, _) = corpus
        .combo_passwords
        .iter()
        .max_by_key(|(_, c)| **c)
        .expect("passwords");
    let r = runtime()
        .block_on(check_password(&server.url(), pw, &CheckOptions::default()))
        .expect("check");
    assert!(r.password_breached);
    assert_eq!(r.password_seen, corpus.password_seen(pw));

    let r = runtime()
        .block_on(check_password(
            &server.url(),
            "correct horse battery staple 8d1f",
            &CheckOptions::default(),
        ))
        .expect("check");
    assert!(!r.password_breached);
    assert_eq!(r.password_seen, 0);

    let err = runtime()
        .block_on(check_password(&server.url(), "", &CheckOptions::default()))
        .unwrap_err();
    assert!(matches!(err, Error::EmptyPassword));
}

#[test]
fn empty_vault_needs_no_query() {
    let server = start_server(ServerConfig::default());
    let vault = read_vault("name,url,username,password,note\n".as_bytes(), None).unwrap();
    let report = runtime()
        .block_on(check_vault(&server.url(), &vault, &CheckOptions::default()))
        .expect("check");
    assert_eq!(report.to_json(), r#"{"checked":0,"results":[]}"#);
    assert_eq!(server.stats.queries.load(Ordering::SeqCst), 0);
}

#[test]
fn server_errors_are_reported() {
    let vault = read_vault_file(fixtures_dir().join("vaults/chrome.csv"), None).unwrap();
    let server = start_server(ServerConfig {
        fail_with: Some("maintenance window until 03:00".into()),
        ..ServerConfig::default()
    });
    // UNAVAILABLE is retried; without retries it is reported at once.
    let no_retries = CheckOptions {
        retry: RetryPolicy::never(),
        ..CheckOptions::default()
    };
    let err = runtime()
        .block_on(check_vault(&server.url(), &vault, &no_retries))
        .unwrap_err();
    assert!(
        matches!(&err, Error::GaveUp { rpc, attempts: 1, .. } if rpc == "GetParameters"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("maintenance window until 03:00"),
        "{err}"
    );
    assert_eq!(server.stats.get_parameters.load(Ordering::SeqCst), 1);

    let server = start_server(ServerConfig {
        without_passwords: true,
        ..ServerConfig::default()
    });
    let err = runtime()
        .block_on(check_vault(&server.url(), &vault, &CheckOptions::default()))
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingCollection("passwords")),
        "{err:?}"
    );

    // Nothing listens on a port we just freed.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = runtime()
        .block_on(check_vault(
            &format!("http://{addr}"),
            &vault,
            &CheckOptions::default(),
        ))
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");

    for bad in ["127.0.0.1:50051", "ftp://x", "not a url", "http://:80"] {
        let err = runtime()
            .block_on(check_vault(bad, &vault, &CheckOptions::default()))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{bad}: {err:?}");
    }
}
