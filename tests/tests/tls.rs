//! TLS with the real binaries: `breach-server dev-cert`, `serve --tls-cert
//! --tls-key`, and `breach-client --server https://… --ca-cert`, as the
//! README shows it; a plaintext client on the TLS port and a client that
//! does not trust the certificate get clear errors. Run with `--release`.
#![forbid(unsafe_code)]

use e2e_tests::{ServerProcess, assert_fixture_answer_at, build_fixture_store, client, server_ok};

#[test]
fn dev_cert_serve_tls_and_check_over_https() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = build_fixture_store(dir.path());
    let tls = dir.path().join("tls");
    let tls_dir = tls.to_str().expect("temporary paths are UTF-8");
    let said = server_ok(&["dev-cert", "--out", tls_dir]);
    assert!(
        said.contains("--ca-cert"),
        "dev-cert says how to use it:\n{said}"
    );
    let cert = tls.join("server.pem");
    let key = tls.join("server-key.pem");
    let ca = tls.join("ca.pem");
    let server = ServerProcess::serve(
        &store,
        &[
            "--tls-cert",
            cert.to_str().expect("UTF-8"),
            "--tls-key",
            key.to_str().expect("UTF-8"),
        ],
        dir.path().join("serve.log"),
    );
    let port = server.addr().port();
    let https = format!("https://localhost:{port}");
    let ca = ca.to_str().expect("UTF-8");

    // The whole check over TLS gives the known answer.
    assert_fixture_answer_at(&https, &["--ca-cert", ca], "chrome");

    // One password over TLS, by IP address (the certificate names
    // 127.0.0.1 too).
    let out = client(
        &[
            "check-password",
            "--json",
            "--server",
            &format!("https://127.0.0.1:{port}"),
            "--ca-cert",
            ca,
        ],
        Some(b"password\n"),
    );
    assert!(
        matches!(out.code(), Some(0 | 1)),
        "check-password over TLS: {}",
        out.stderr_text()
    );

    // Plaintext against the TLS port: told to use https.
    let out = client(
        &["check-password", "--server", &server.url()],
        Some(b"password\n"),
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("https://"),
        "plaintext client on a TLS port: {}",
        out.stderr_text()
    );

    // Without the dev CA the certificate is not trusted, and the message
    // says how to fix it.
    let out = client(&["check-password", "--server", &https], Some(b"password\n"));
    assert_eq!(out.code(), Some(2), "{}", out.stderr_text());
    let err = out.stderr_text();
    assert!(
        err.contains("not trusted") && err.contains("--ca-cert"),
        "untrusted certificate: {err}"
    );
}
