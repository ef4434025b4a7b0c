//! A sharded deployment with the real binaries on loopback: `keygen`,
//! `import --shard I/N`, `build --keys --expected-items`, four `serve`
//! processes and a `front`. Its answers must be exactly the single
//! server's (the fixture vaults' known answers); a killed shard must fail
//! checks with UNAVAILABLE naming it (never a partial answer), and its
//! restart must bring the answers back; misconfigured shards are refused
//! at start-up by name.

use std::path::{Path, PathBuf};

use e2e_tests::{
    BREACH_FILES, ServerProcess, VAULT_FORMATS, assert_fixture_answer, client, fixtures_dir,
    reference_password_seen, server_command, server_ok, vault_path,
};

const SHARDS: u32 = 4;

fn dumps() -> Vec<String> {
    BREACH_FILES
        .iter()
        .map(|f| {
            fixtures_dir()
                .join("breach")
                .join(f)
                .to_str()
                .expect("UTF-8 paths")
                .to_owned()
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 paths")
}

/// Imports every fixture dump as shard `i` of `n` into `dir/shard-i`,
/// with `import_extra` (e.g. routing flags); builds it with `build_extra`.
fn shard_store(dir: &Path, i: u32, n: u32, import_extra: &[&str], build_extra: &[&str]) -> PathBuf {
    let store = dir.join(format!("shard-{i}"));
    let spec = format!("{i}/{n}");
    let mut args = vec!["import", "--store", s(&store), "--shard", &spec];
    args.extend(import_extra);
    let files = dumps();
    args.extend(files.iter().map(String::as_str));
    let out = server_ok(&args);
    assert!(out.contains(&format!("shard {spec}")), "{out}");
    let mut args = vec!["build", "--store", s(&store)];
    args.extend(build_extra);
    server_ok(&args);
    store
}

fn keygen(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    let out = server_ok(&["keygen", "--out", s(&keys)]);
    assert!(out.contains("credentials.oprf-key"), "{out}");
    keys
}

/// Items per shard the parameters are sized for: more than any fixture
/// shard holds (about 1,000 passwords and 640 pairs of 4,041 and 2,480).
const EXPECTED: &str = "3000";

fn serve_shards(dir: &Path, stores: &[PathBuf]) -> Vec<ServerProcess> {
    stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            ServerProcess::serve(
                store,
                &["--client-ip-header", "x-forwarded-for"],
                dir.join(format!("shard-{i}.log")),
            )
        })
        .collect()
}

#[test]
fn four_shards_behind_a_front_answer_like_one_server_and_fail_whole() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let build = ["--keys", s(&keys), "--expected-items", EXPECTED];
    let stores: Vec<PathBuf> = (0..SHARDS)
        .map(|i| shard_store(dir.path(), i, SHARDS, &[], &build))
        .collect();

    // Every item is on exactly one shard: the shards' counts add up to
    // the single store's.
    let single = e2e_tests::build_fixture_store(&dir.path().join("single"));
    let count = |store: &Path, what: &str| -> u64 {
        let stats = server_ok(&["stats", "--store", s(store)]);
        let line = stats
            .lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("{what} in {stats}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    for what in ["credentials ", "passwords "] {
        let total: u64 = stores.iter().map(|st| count(st, what)).sum();
        assert_eq!(total, count(&single, what), "{what}");
    }
    let stats = server_ok(&["stats", "--store", s(&stores[2])]);
    assert!(stats.contains("shard: shard 2/4"), "{stats}");

    let mut shards = serve_shards(dir.path(), &stores);
    let urls: Vec<String> = shards.iter().map(ServerProcess::url).collect();
    let front = ServerProcess::front(
        &urls,
        &["--poll-interval", "0.2"],
        dir.path().join("front.log"),
    );

    // Exactly the single server's known answers, for every vault format.
    for format in VAULT_FORMATS {
        assert_fixture_answer(&front.url(), format, false);
    }
    let seen = reference_password_seen("Guitar7990");
    assert!(seen > 0);
    let out = client(
        &["check-password", "--json", "--server", &front.url()],
        Some(b"Guitar7990\n"),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("check-password: {}", out.stderr_text());
    });
    assert_eq!(json["password_seen"], seen, "{json}");

    // A killed shard: the whole check fails, naming the shard.
    shards[2].kill();
    let vault = vault_path("chrome");
    let out = client(
        &[
            "check",
            "--retry-budget",
            "0",
            "--server",
            &front.url(),
            s(&vault),
        ],
        None,
    );
    assert_eq!(out.code(), Some(2), "stderr:\n{}", out.stderr_text());
    let err = out.stderr_text();
    assert!(err.contains("shard 2"), "the shard is named: {err}");
    assert!(
        out.stdout.is_empty() || !out.stdout_text().contains("not breached"),
        "no partial report: {}",
        out.stdout_text()
    );

    // Its restart, on the same address, brings the answers back (the
    // client's retries wait for the front to see it serving again).
    let listen = shards[2].addr().to_string();
    shards[2] = ServerProcess::serve(
        &stores[2],
        &["--client-ip-header", "x-forwarded-for", "--listen", &listen],
        dir.path().join("shard-2-restarted.log"),
    );
    assert_fixture_answer(&front.url(), "chrome", false);
    let log = front.log_text();
    assert!(
        log.contains("shard 2"),
        "the front logged the outage: {log}"
    );
}

#[test]
fn username_routing_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let import = ["--route-username-bits", "3", "--keys", s(&keys)];
    let build = ["--keys", s(&keys), "--expected-items", EXPECTED];
    let stores: Vec<PathBuf> = (0..SHARDS)
        .map(|i| shard_store(dir.path(), i, SHARDS, &import, &build))
        .collect();
    let shards = serve_shards(dir.path(), &stores);
    let urls: Vec<String> = shards.iter().map(ServerProcess::url).collect();

    // Routed by bucket: each credential query goes to one shard.
    let routed = ServerProcess::front(
        &urls,
        &["--route-username-bits", "3", "--poll-interval", "0.2"],
        dir.path().join("front-routed.log"),
    );
    for format in ["bitwarden", "lastpass"] {
        assert_fixture_answer(&routed.url(), format, false);
    }
    // The same shards behind a front that broadcasts: same answers.
    let broadcast = ServerProcess::front(
        &urls,
        &["--poll-interval", "0.2"],
        dir.path().join("front-broadcast.log"),
    );
    assert_fixture_answer(&broadcast.url(), "bitwarden", false);

    // A routing front over shards split by item hash would miss pairs:
    // refused at start-up, naming the shard.
    let plain: Vec<PathBuf> = (0..2)
        .map(|i| {
            shard_store(
                &dir.path().join("plain"),
                i,
                2,
                &[],
                &["--keys", s(&keys), "--expected-items", EXPECTED],
            )
        })
        .collect();
    let plain_shards = serve_shards(&dir.path().join("plain"), &plain);
    let plain_urls: Vec<String> = plain_shards.iter().map(ServerProcess::url).collect();
    let err = front_fails(&plain_urls, &["--route-username-bits", "3"]);
    assert!(
        err.contains("shard 0") && err.contains("--route-username-bits 3"),
        "{err}"
    );
}

/// Runs a front that must refuse to start; returns its stderr.
fn front_fails(urls: &[String], extra: &[&str]) -> String {
    let mut cmd = server_command();
    cmd.args(["front", "--listen", "127.0.0.1:0", "--poll-interval", "0.2"]);
    for u in urls {
        cmd.args(["--shard", u]);
    }
    cmd.args(extra);
    let out = e2e_tests::run_with_timeout(cmd, None, e2e_tests::COMMAND_TIMEOUT);
    assert!(
        !out.status.success(),
        "the front started: {}",
        out.stdout_text()
    );
    assert!(
        !out.stdout_text().contains("ready on"),
        "{}",
        out.stdout_text()
    );
    out.stderr_text()
}

#[test]
fn misconfigured_shards_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let good = ["--keys", s(&keys), "--expected-items", EXPECTED];
    let a = dir.path().join("a");
    let stores = vec![
        shard_store(&a, 0, 2, &[], &good),
        shard_store(&a, 1, 2, &[], &good),
    ];
    let shards = serve_shards(&a, &stores);
    let urls: Vec<String> = shards.iter().map(ServerProcess::url).collect();

    // Listed out of order.
    let swapped = vec![urls[1].clone(), urls[0].clone()];
    let err = front_fails(&swapped, &[]);
    assert!(
        err.contains("shard 0") && err.contains("listed as shard 0/2"),
        "{err}"
    );

    // Shard 1 built with its own key instead of the shared one.
    let b = dir.path().join("b");
    let own_key = shard_store(&b, 1, 2, &[], &["--expected-items", EXPECTED]);
    let other = ServerProcess::serve(&own_key, &[], b.join("own-key.log"));
    let err = front_fails(&[urls[0].clone(), other.url()], &[]);
    assert!(err.contains("shard 1") && err.contains("OPRF key"), "{err}");

    // Shard 1 sized for other parameters.
    let c = dir.path().join("c");
    let resized = shard_store(
        &c,
        1,
        2,
        &[],
        &["--keys", s(&keys), "--expected-items", "200000"],
    );
    let other = ServerProcess::serve(&resized, &[], c.join("resized.log"));
    let err = front_fails(&[urls[0].clone(), other.url()], &[]);
    assert!(
        err.contains("shard 1") && err.contains("--expected-items"),
        "{err}"
    );

    // Keys and stores refuse to be mixed up.
    let again = server_command()
        .args(["keygen", "--out", s(&keys)])
        .output()
        .unwrap();
    assert!(!again.status.success(), "keygen never replaces keys");
    let out = server_command()
        .args(["build", "--store", s(&own_key), "--keys", s(&keys)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--force"), "{err}");
    let out = server_command()
        .args(["import", "--store", s(&stores[0]), "--shard", "1/2"])
        .arg(&dumps()[0])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("shard 0/2"), "{err}");
}

#[test]
fn the_front_reaches_its_shards_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    server_ok(&["dev-cert", "--out", s(&tls)]);
    let keys = keygen(dir.path());
    let build = ["--keys", s(&keys), "--expected-items", EXPECTED];
    let stores: Vec<PathBuf> = (0..2)
        .map(|i| shard_store(dir.path(), i, 2, &[], &build))
        .collect();
    let cert = tls.join("server.pem");
    let key = tls.join("server-key.pem");
    let shards: Vec<ServerProcess> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            ServerProcess::serve(
                store,
                &["--tls-cert", s(&cert), "--tls-key", s(&key)],
                dir.path().join(format!("tls-shard-{i}.log")),
            )
        })
        .collect();
    // The certificate names localhost, so the shards are reached by name.
    let urls: Vec<String> = shards
        .iter()
        .map(|p| format!("https://localhost:{}", p.addr().port()))
        .collect();
    let ca = tls.join("ca.pem");

    // Without the shards' CA the front refuses to start.
    let mut cmd = server_command();
    cmd.args(["front", "--listen", "127.0.0.1:0"]);
    for u in &urls {
        cmd.args(["--shard", u]);
    }
    let out = e2e_tests::run_with_timeout(cmd, None, e2e_tests::COMMAND_TIMEOUT);
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("--shard-ca"),
        "{}",
        out.stderr_text()
    );

    let front = ServerProcess::front(
        &urls,
        &["--shard-ca", s(&ca), "--poll-interval", "0.2"],
        dir.path().join("tls-front.log"),
    );
    assert_fixture_answer(&front.url(), "firefox", false);
}
