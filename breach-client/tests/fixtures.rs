//! The committed vault fixtures parse to exactly the entries their known
//! answers list (entry number, URL, username), in every format.

use std::path::PathBuf;

use breach_client::vault::{VaultFormat, read_vault_file};

fn vaults_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/vaults")
}

#[test]
fn fixture_vaults_match_expected_entries() {
    for format in VaultFormat::ALL {
        let csv = vaults_dir().join(format!("{format}.csv"));
        let json = vaults_dir().join(format!("{format}.expected.json"));
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).expect("expected.json")).expect("json");
        let results = expected["results"].as_array().expect("results");

        for given in [None, Some(format)] {
            let vault = read_vault_file(&csv, given).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(vault.format, format, "{}", csv.display());
            assert_eq!(vault.entries.len(), results.len(), "{format}");
            assert_eq!(expected["checked"], results.len());
            for (entry, want) in vault.entries.iter().zip(results) {
                assert_eq!(want["entry"], entry.record, "{format}");
                assert_eq!(
                    want["url"],
                    entry.url.as_str(),
                    "{format} #{}",
                    entry.record
                );
                assert_eq!(
                    want["username"],
                    entry.username.as_str(),
                    "{format} #{}",
                    entry.record
                );
                assert!(!entry.password.expose().is_empty());
            }
        }
    }
}
