//! The whole product on loopback: `breach-server import` + `build` +
//! `serve` on the fixture breach corpus, then the real `breach-client`
//! binary on every fixture vault, a clean vault, a malformed vault and
//! single passwords. Run with `--release` (PSI is slow unoptimized).
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use e2e_tests::{
    ServerProcess, VAULT_FORMATS, assert_fixture_answer, build_fixture_store, check_json, client,
    fixtures_dir, reference_password_seen,
};

/// A password no breach corpus holds: 128 bits from std's randomly keyed
/// hasher.
fn random_password() -> String {
    let word = || {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    format!("e2e-{:016x}{:016x}", word(), word())
}

fn check_password(url: &str, password: &str) -> (Option<i32>, String, String) {
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

#[test]
fn full_flow_import_build_serve_check() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = build_fixture_store(dir.path());
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    let url = server.url();

    // Every fixture vault: format detected from the header, then named.
    for format in VAULT_FORMATS {
        assert_fixture_answer(&url, format, false);
        assert_fixture_answer(&url, format, true);
    }

    // A vault with nothing breached exits 0 and reports zeros.
    let clean = dir.path().join("clean.csv");
    let passwords: Vec<String> = (0..3).map(|_| random_password()).collect();
    let mut csv = String::from("name,url,username,password,note\n");
    for (i, pw) in passwords.iter().enumerate() {
        // A breached username (answers.json) with a password nobody used.
        let user = ["bob.novak@post.example", "nobody@e2e.invalid", "dragon"][i];
        csv.push_str(&format!("site{i},https://site{i}.example/,{user},{pw},\n"));
        assert_eq!(reference_password_seen(pw), 0);
    }
    std::fs::write(&clean, csv).expect("write the clean vault");
    let (out, json) = check_json(&url, &clean, None);
    assert_eq!(out.code(), Some(0), "clean vault: {}", out.stderr_text());
    let json = json.expect("clean vault: JSON on stdout");
    assert_eq!(json["checked"], 3);
    let results = json["results"].as_array().expect("results array");
    assert_eq!(results.len(), 3);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["entry"], i + 1);
        assert_eq!(r["credential_breached"], false, "{r}");
        assert_eq!(r["breach_count"], 0, "{r}");
        assert_eq!(r["password_breached"], false, "{r}");
        assert_eq!(r["password_seen"], 0, "{r}");
    }

    // A malformed vault: exit 2, the file and the line on stderr, no report.
    let broken = dir.path().join("broken-export.csv");
    std::fs::write(
        &broken,
        "name,url,username,password,note\n\
         a,https://a.example/,alice,pw-one,\n\
         b,https://b.example/,bob,pw-two,\n\
         c,https://c.example/,carol\n",
    )
    .expect("write the malformed vault");
    let (out, _) = check_json(&url, &broken, None);
    assert_eq!(
        out.code(),
        Some(2),
        "malformed vault: {}",
        out.stderr_text()
    );
    let stderr = out.stderr_text();
    assert!(stderr.contains("broken-export.csv"), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", out.stdout_text());

    // Single passwords on stdin: the answers.json examples, whose counts
    // are recomputed here from the dump files.
    let answers: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures_dir().join("breach/answers.json")).expect("read answers.json"),
    )
    .expect("answers.json is JSON");
    let examples = answers["examples"].as_array().expect("examples");
    for what in [
        "password only in pwned-passwords.txt",
        "password in most combo lines",
    ] {
        let example = examples
            .iter()
            .find(|e| e["what"] == what)
            .unwrap_or_else(|| panic!("answers.json example `{what}`"));
        let password = example["password"].as_str().expect("password");
        let seen = reference_password_seen(password);
        assert_eq!(example["password_seen"], seen, "{what}: reference count");
        assert!(seen > 0);
        let (code, stdout, stderr) = check_password(&url, password);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        assert_eq!(
            stdout,
            format!("{{\"password_breached\":true,\"password_seen\":{seen}}}\n"),
            "{what}"
        );
    }
    let random = random_password();
    let (code, stdout, stderr) = check_password(&url, &random);
    assert_eq!(code, Some(0), "random password: {stderr}");
    assert_eq!(
        stdout, "{\"password_breached\":false,\"password_seen\":0}\n",
        "random password"
    );

    let mut server = server;
    assert!(server.is_running(), "log:\n{}", server.log_text());
}
