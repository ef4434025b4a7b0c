//! `https://` servers: a TLS server started here (certificate made with
//! rcgen, signed by a test CA) answers a check when the client trusts the
//! CA; an unknown CA, `http://` against the TLS port and `https://`
//! against a plaintext port each give a clear message, in the library and
//! in the binary.
#![allow(missing_docs)]

mod common;

use std::process::{Command, Stdio};

use breach_client::{CheckOptions, Error, check_password, check_vault, read_vault_file};
use common::{ServerConfig, expected_report, fixtures_dir, runtime, start_server, test_pki};

fn with_ca(pem: &str) -> CheckOptions {
    CheckOptions {
        ca_certificate: Some(pem.as_bytes().to_vec()),
        ..CheckOptions::default()
    }
}

#[test]
fn check_over_tls_with_the_ca() {
    let (ca, identity) = test_pki();
    let server = start_server(ServerConfig {
        tls: Some(identity),
        ..ServerConfig::default()
    });
    let vault = read_vault_file(fixtures_dir().join("vaults/keepassxc.csv"), None).unwrap();
    for url in [
        server.https_url(),
        format!("https://127.0.0.1:{}", server.addr.port()),
    ] {
        let report = runtime()
            .block_on(check_vault(&url, &vault, &with_ca(&ca)))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            expected_report(&vault),
            "{url}"
        );
    }
}

#[test]
fn untrusted_certificates_say_so() {
    let (_, identity) = test_pki();
    let (other_ca, _) = test_pki();
    let server = start_server(ServerConfig {
        tls: Some(identity),
        ..ServerConfig::default()
    });
    // Another CA, then only the system's roots.
    for options in [with_ca(&other_ca), CheckOptions::default()] {
        let err = runtime()
            .block_on(check_password(&server.https_url(), "hunter2", &options))
            .expect_err("untrusted");
        let text = err.to_string();
        assert!(
            matches!(&err, Error::UntrustedCertificate { .. }) || matches!(&err, Error::Tls { .. }),
            "{err:?}"
        );
        assert!(text.contains("--ca-cert"), "{text}");
        if let Error::UntrustedCertificate { .. } = err {
            assert!(text.contains("not trusted"), "{text}");
            // Another CA under the same name fails on the signature.
            assert!(
                text.contains("not signed by a trusted certificate authority")
                    || text.contains("its signature does not verify"),
                "{text}"
            );
        }
    }
    // A file without a certificate.
    let err = runtime()
        .block_on(check_password(
            &server.https_url(),
            "hunter2",
            &with_ca("not a PEM"),
        ))
        .expect_err("no certificate");
    assert!(matches!(&err, Error::Tls { .. }), "{err:?}");
}

#[test]
fn scheme_mismatches_are_explained() {
    let (ca, identity) = test_pki();
    let tls = start_server(ServerConfig {
        tls: Some(identity),
        ..ServerConfig::default()
    });
    let plain = start_server(ServerConfig::default());

    let http_to_tls = format!("http://localhost:{}", tls.addr.port());
    let err = runtime()
        .block_on(check_password(
            &http_to_tls,
            "hunter2",
            &CheckOptions::default(),
        ))
        .expect_err("TLS port");
    assert!(matches!(&err, Error::WrongScheme { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("expects TLS"), "{text}");
    assert!(text.contains(&tls.https_url()), "{text}");

    let err = runtime()
        .block_on(check_password(&plain.https_url(), "hunter2", &with_ca(&ca)))
        .expect_err("plaintext port");
    assert!(matches!(&err, Error::WrongScheme { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not speak TLS"), "{text}");
    assert!(
        text.contains(&format!("http://localhost:{}", plain.addr.port())),
        "{text}"
    );

    // A CA certificate with an http:// URL is a mistake too.
    let err = runtime()
        .block_on(check_password(&plain.url(), "hunter2", &with_ca(&ca)))
        .expect_err("http with a CA");
    assert!(matches!(&err, Error::InvalidUrl { .. }), "{err:?}");
}

#[test]
fn the_binary_over_tls() {
    let (ca, identity) = test_pki();
    let server = start_server(ServerConfig {
        tls: Some(identity),
        ..ServerConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca).unwrap();
    let corpus = common::corpus();
    let (pw, _) = corpus.combo_passwords.iter().next().unwrap();
    let seen = corpus.password_seen(pw);
    let run = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_breach-client"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pw}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let url = server.https_url();
    let (code, stdout, stderr) = run(&[
        "check-password",
        "--json",
        "--server",
        &url,
        "--ca-cert",
        ca_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stdout,
        format!("{{\"password_breached\":true,\"password_seen\":{seen}}}\n")
    );

    let (code, _, stderr) = run(&["check-password", "--server", &url]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--ca-cert"), "{stderr}");

    let http = format!("http://localhost:{}", server.addr.port());
    let (code, _, stderr) = run(&["check-password", "--server", &http]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("expects TLS"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(!stderr.contains("transport error (Unknown)"), "{stderr}");

    let missing = dir.path().join("missing.pem");
    let (code, _, stderr) = run(&[
        "check-password",
        "--server",
        &url,
        "--ca-cert",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("cannot read the CA certificate"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
}
