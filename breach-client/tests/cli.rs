//! The real `breach-client` binary against an in-process server: output,
//! JSON shape, exit status, error messages, help.
//! PSI is slow unoptimized: run with `cargo test --release`.
#![allow(missing_docs)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use breach_client::{Skipped, read_vault_file};
use common::{ServerConfig, corpus, fixtures_dir, start_server};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_breach-client"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run breach-client")
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn breach-client");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// The expected `--json` line written out field by field, so field order
/// and formatting are checked too, not just the values.
fn expected_json_line(expected: &serde_json::Value, skipped: Skipped) -> String {
    let results: Vec<String> = expected["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{{\"entry\":{},\"url\":{},\"username\":{},\"credential_breached\":{},\
                 \"breach_count\":{},\"password_breached\":{},\"password_seen\":{}}}",
                r["entry"],
                r["url"],
                r["username"],
                r["credential_breached"],
                r["breach_count"],
                r["password_breached"],
                r["password_seen"]
            )
        })
        .collect();
    let skipped = if skipped.is_none() {
        String::new()
    } else {
        format!(
            ",\"skipped\":{{\"empty_password\":{},\"not_a_login\":{}}}",
            skipped.empty_password, skipped.not_a_login
        )
    };
    format!(
        "{{\"checked\":{},\"results\":[{}]{skipped}}}\n",
        expected["checked"],
        results.join(",")
    )
}

#[test]
fn json_output_is_exact_and_exit_is_1() {
    let server = start_server(ServerConfig::default());
    for format in ["chrome", "keepassxc", "lastpass"] {
        let dir = fixtures_dir().join("vaults");
        let csv = dir.join(format!("{format}.csv"));
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{format}.expected.json"))).unwrap(),
        )
        .unwrap();
        let out = run(&[
            "check",
            "--server",
            &server.url(),
            "--format",
            format,
            "--json",
            csv.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let skipped = read_vault_file(&csv, None).unwrap().skipped;
        assert_eq!(stdout, expected_json_line(&expected, skipped), "{format}");
        // Entry numbers skip the non-login rows, as the records do.
        let entries: Vec<u64> = expected["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["entry"].as_u64().unwrap())
            .collect();
        assert!(entries.windows(2).all(|w| w[0] < w[1]));
        assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    }
}

#[test]
fn table_output_never_shows_passwords() {
    let server = start_server(ServerConfig::default());
    let csv = fixtures_dir().join("vaults/bitwarden.csv");
    let out = run(&["check", "--server", &server.url(), csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("USERNAME+PASSWORD"), "{stdout}");
    assert!(stdout.contains("FOUND ("), "{stdout}");
    assert!(stdout.contains("21 entries checked"), "{stdout}");
    let vault = read_vault_file(&csv, None).unwrap();
    for e in &vault.entries {
        let pw = e.password.expose();
        if pw.len() >= 6 && !e.url.contains(pw) && !e.username.contains(pw) {
            assert!(
                !stdout.contains(pw),
                "password of entry {} printed",
                e.record
            );
        }
    }
    // Every breached entry's site is listed.
    let breached = vault.entries.iter().filter(|e| {
        corpus().breach_count(&e.username, e.password.expose()) > 0
            || corpus().password_seen(e.password.expose()) > 0
    });
    for e in breached {
        let shown: String = e.url.chars().take(20).collect();
        assert!(stdout.contains(&shown), "{} missing:\n{stdout}", e.url);
    }
}

#[test]
fn clean_vault_exits_0() {
    let server = start_server(ServerConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clean.csv");
    std::fs::write(
        &path,
        "name,url,username,password,note\n\
         a,https://a.example/,nobody-7f3a@example.invalid,\"Qx9!never-breached-51\",\n\
         b,https://b.example/,nobody-7f3b@example.invalid,\"Qx9!never-breached-52\",\n",
    )
    .unwrap();
    let out = run(&["check", "--server", &server.url(), path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 entries checked"));

    let out = run(&[
        "check",
        "--server",
        &server.url(),
        "--json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checked"], 2);
    assert_eq!(v["results"][1]["entry"], 2);
    assert_eq!(v["results"][1]["breach_count"], 0);
}

#[test]
fn vault_errors_name_file_and_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.csv");
    std::fs::write(
        &path,
        "name,url,username,password,note\n\
         a,https://a.example/,alice,pw1,\n\
         b,https://b.example/,bob\n",
    )
    .unwrap();
    // No server is needed: the file is read first.
    let out = run(&[
        "check",
        "--server",
        "http://127.0.0.1:9",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(out.stdout.is_empty());

    let missing = dir.path().join("missing.csv");
    let out = run(&["check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("missing.csv"), "{stderr}");
    // The cause is printed once.
    let cause = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    let os_error = "(os error 2)";
    assert_eq!(stderr.matches(os_error).count(), 1, "{stderr} ({cause})");

    let unknown = dir.path().join("unknown.csv");
    std::fs::write(&unknown, "a,b,c\n1,2,3\n").unwrap();
    let out = run(&["check", unknown.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown.csv: line 1"), "{stderr}");

    // Usage errors exit 2 too (clap).
    let out = run(&["check", "--format", "netscape", unknown.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn server_errors_exit_2_with_the_status_message() {
    let csv = fixtures_dir().join("vaults/chrome.csv");
    let server = start_server(ServerConfig {
        fail_with: Some("maintenance window until 03:00".into()),
        ..ServerConfig::default()
    });
    // UNAVAILABLE is retried within the budget, then reported.
    let out = run(&[
        "check",
        "--server",
        &server.url(),
        "--retry-budget",
        "1",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("maintenance window until 03:00"),
        "{stderr}"
    );
    assert!(stderr.contains("GetParameters gave up after"), "{stderr}");
    assert!(
        server
            .stats
            .get_parameters
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2
    );
    assert!(out.stdout.is_empty());

    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{addr}");
    let out = run(&["check", "--server", &url, csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}

#[test]
fn check_password_from_stdin() {
    let server = start_server(ServerConfig::default());
    let corpus = corpus();
    let (pw, _) = corpus
        .combo_passwords
        .iter()
        .find(|(p, _)| !p.contains('\n') && !p.ends_with(' ') && !p.starts_with(' '))
        .unwrap();
    let seen = corpus.password_seen(pw);

    let out = run_with_stdin(
        &["check-password", "--server", &server.url(), "--json"],
        format!("{pw}\r\nsecond line is ignored\n").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{{\"password_breached\":true,\"password_seen\":{seen}}}\n")
    );

    // Only the line ending is stripped: a trailing space is part of the password.
    let out = run_with_stdin(
        &["check-password", "--server", &server.url()],
        format!("{pw} \n").as_bytes(),
    );
    let expected_code = if corpus.password_seen(&format!("{pw} ")) > 0 {
        1
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(expected_code));
    assert!(!text(&out.stdout).contains(pw.as_str()));

    let out = run_with_stdin(&["check-password", "--server", &server.url()], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no password"));
}

#[test]
fn help_explains_what_is_sent() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "What is sent",
        "What is never sent",
        "Examples:",
        "check-password",
        "Exit status: 0 nothing found, 1 something found, 2 error",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    let out = run(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "--server",
        "--format",
        "1password",
        "--json",
        "--timeout",
        "--retry-budget",
        "--ca-cert",
        "https://",
        "Examples:",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn timeout_ends_a_stalled_check_with_exit_2() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let csv = fixtures_dir().join("vaults/chrome.csv");
    let started = std::time::Instant::now();
    let out = run(&[
        "check",
        "--server",
        &url,
        "--timeout",
        "1",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("did not finish within") || stderr.contains("cannot connect"),
        "{stderr}"
    );
}

#[test]
fn rows_left_out_are_counted() {
    let server = start_server(ServerConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chrome.csv");
    std::fs::write(
        &path,
        "name,url,username,password,note\n\
         a,https://a.example/,alice,correct horse battery staple 1,\n\
         b,https://b.example/,bob,,\n\
         c,https://c.example/,carol,,\n",
    )
    .unwrap();
    let out = run(&["check", "--server", &server.url(), path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1 entry checked")
            && stdout.contains("2 rows not checked: 2 logins have an empty password."),
        "{stdout}"
    );
    let out = run(&[
        "check",
        "--json",
        "--server",
        &server.url(),
        path.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checked"], 1);
    assert_eq!(json["skipped"]["empty_password"], 2);
    assert_eq!(json["skipped"]["not_a_login"], 0);
}
