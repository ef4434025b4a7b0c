//! A default server under the load one user (one address) can make, with
//! the real binaries: 8 simultaneous checks of a 60-entry vault and one
//! check of a 10,000-entry vault, all at once. The server's per-client
//! budgets and query slots refuse some calls with RESOURCE_EXHAUSTED and a
//! retry hint; the client waits and retries, so every check succeeds with
//! the right answer. Run with `--release`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use e2e_tests::{ServerProcess, build_fixture_store, check_json};

/// A Chrome export of `entries` logins nobody breached, except entry 1
/// (a breached pair of the fixture corpus) and entry 2 (a clean username
/// with a breached password).
fn write_vault(dir: &Path, tag: &str, entries: usize) -> PathBuf {
    let mut csv = String::from("name,url,username,password,note\n");
    csv.push_str("breached,https://a.example/,bob.novak@post.example,bayern:3893,\n");
    csv.push_str(&format!(
        "weak,https://b.example/,{tag}-weak@vault.invalid,dragon,\n"
    ));
    for i in 2..entries {
        csv.push_str(&format!(
            "site{i},https://s{i}.example/,{tag}-{i}@vault.invalid,Vault-{tag}-{i}-pw,\n"
        ));
    }
    let path = dir.join(format!("{tag}.csv"));
    std::fs::write(&path, csv).expect("write the vault");
    path
}

#[test]
fn eight_small_vaults_and_a_10000_entry_vault_at_once_all_succeed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = build_fixture_store(dir.path());
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    let url = server.url();
    let mut vaults = vec![(write_vault(dir.path(), "big", 10_000), 10_000)];
    for i in 0..8 {
        vaults.push((write_vault(dir.path(), &format!("small{i}"), 60), 60));
    }
    let checks: Vec<_> = vaults
        .into_iter()
        .map(|(path, entries)| {
            let url = url.clone();
            std::thread::spawn(move || (check_json(&url, &path, None), entries))
        })
        .collect();
    for check in checks {
        let ((out, json), entries) = check.join().expect("checking thread");
        assert_eq!(
            out.code(),
            Some(1),
            "{entries}-entry vault: something is breached; stderr:\n{}",
            out.stderr_text()
        );
        let json = json.expect("JSON report");
        assert_eq!(json["checked"], entries, "{entries}-entry vault");
        let results = json["results"].as_array().expect("results");
        assert_eq!(results.len(), entries, "{entries}-entry vault");
        assert_eq!(results[0]["credential_breached"], true, "{}", results[0]);
        assert_eq!(results[1]["credential_breached"], false, "{}", results[1]);
        assert_eq!(results[1]["password_breached"], true, "{}", results[1]);
        for r in &results[2..] {
            assert_eq!(r["credential_breached"], false, "{r}");
            assert_eq!(r["password_breached"], false, "{r}");
        }
    }
    // The load did make the server refuse and the clients wait.
    let log = server.log_text();
    assert!(
        log.contains("request rejected"),
        "no call was refused, so this test did not exercise the limits:\n{log}"
    );
}
