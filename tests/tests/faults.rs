//! Fault injection with the real binaries: `kill -9` during import, build
//! and serve; a full disk (a file-size limit, `RLIMIT_FSIZE`, with
//! `SIGXFSZ` ignored so writes fail with `EFBIG` as on a full disk) during
//! import and build; a read-only store (a read-only bind mount in a user
//! namespace); damaged databases and keys. After each fault: a clear error,
//! the store intact, nothing lost (counts exact, answers unchanged), and
//! the next run completes. Run with `--release`.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::{
    COMMAND_TIMEOUT, Output, ServerProcess, assert_fixture_answer, binary, build_fixture_store,
    check_json, run_with_timeout, server_command, server_ok,
};

/// How long a fault may take to show (a store reaching the state where the
/// kill is meant to land); generous for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(240);

/// A combo file of `pairs` distinct credentials, each written twice (in
/// two halves, so the second sighting lands in a later batch), plus one
/// malformed line: `2 * pairs + 1` lines. Usernames are lower-case ASCII
/// (already canonical), so distinct lines are distinct pairs.
fn write_combo(path: &Path, tag: &str, pairs: usize) {
    let mut text = String::with_capacity(pairs * 2 * 40);
    for round in 0..2 {
        for i in 0..pairs {
            text.push_str(&format!(
                "{tag}user{i}@faults.invalid:pw-{tag}-{i}-{}\n",
                i % 7
            ));
        }
        if round == 0 {
            text.push_str("a line with no separator\n");
        }
    }
    fs::write(path, text).expect("write the combo file");
}

/// `(credential pairs, passwords)` of a store, from `stats`.
fn counts(store: &Path) -> (u64, u64) {
    let out = server_ok(&["stats", "--store", store.to_str().expect("UTF-8 path")]);
    let count = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(name))
                    .then(|| words.next())
                    .flatten()
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("no {name} count in stats:\n{out}"))
    };
    (count("credentials"), count("passwords"))
}

fn stats(store: &Path) -> String {
    server_ok(&["stats", "--store", store.to_str().expect("UTF-8 path")])
}

/// Starts `breach-server ARGS` in the background, output to files in `dir`.
fn spawn(dir: &Path, name: &str, args: &[&str]) -> Child {
    let mut cmd = server_command();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join(format!("{name}.out"))).expect("stdout file"))
        .stderr(fs::File::create(dir.join(format!("{name}.err"))).expect("stderr file"));
    cmd.spawn().expect("start breach-server")
}

/// `kill -9`s `child`, which must still be running, and reaps it.
fn kill9(child: &mut Child, what: &str) {
    assert!(
        child.try_wait().expect("wait").is_none(),
        "{what} finished before the kill: the fault did not land (make the input larger)"
    );
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let status = child.wait().expect("reap");
    assert!(
        status.code().is_none(),
        "{what} was killed by the signal: {status}"
    );
}

/// Waits until `cond` holds, panicking with `what` after [`DEADLINE`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `breach-server ARGS` with a file-size limit of `bytes` and `SIGXFSZ`
/// ignored: a write past the limit fails with `EFBIG`, as on a full disk.
fn with_file_size_limit(bytes: u64, args: &[&str]) -> Output {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--fsize={bytes}"))
        .args(["sh", "-c", "trap '' XFSZ; exec \"$@\"", "sh"])
        .arg(binary("breach-server"))
        .args(args)
        .env_remove("RUST_LOG")
        .current_dir(e2e_tests::workspace_root());
    run_with_timeout(cmd, None, COMMAND_TIMEOUT)
}

/// The bytes of every file in the store's `psi/` folder, by name.
fn psi_files(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(store.join("psi"))
        .expect("psi folder")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

/// A one-entry Chrome export of `user:password`.
fn vault(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join(format!("vault-{user}.csv"));
    fs::write(
        &path,
        format!("name,url,username,password,note\nx,https://x.example/,{user},{password},\n"),
    )
    .expect("write the vault");
    path
}

/// Whether the server at `url` reports `vault`'s one entry breached.
fn breached(url: &str, vault: &Path) -> bool {
    let (out, json) = check_json(url, vault, None);
    let json = json.unwrap_or_else(|| panic!("check failed:\n{}", out.stderr_text()));
    json["results"][0]["credential_breached"]
        .as_bool()
        .expect("a boolean")
}

#[test]
fn kill_9_during_import_then_rerun_completes_with_exact_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let combo = dir.path().join("big.txt");
    let pairs = 150_000;
    write_combo(&combo, "k", pairs);
    let c = combo.to_str().expect("UTF-8 path");

    // The reference: the same file imported without interruption.
    let reference = dir.path().join("reference");
    let r = reference.to_str().expect("UTF-8 path");
    server_ok(&["import", "--store", r, c]);
    let want = counts(&reference);
    assert_eq!(want.0, pairs as u64, "distinct pairs");

    let store = dir.path().join("store");
    let s = store.to_str().expect("UTF-8 path");
    let mut child = spawn(
        dir.path(),
        "import",
        &["import", "--store", s, "--batch-lines", "5000", c],
    );
    // Kill once some batches are committed and the import is unfinished.
    wait_for("a committed batch of the import", || {
        store.join("breach.sqlite3").is_file()
            && server_command()
                .args(["stats", "--store", s])
                .output()
                .is_ok_and(|o| {
                    let text = String::from_utf8_lossy(&o.stdout);
                    text.contains("UNFINISHED at line") && !text.contains("UNFINISHED at line 0 ")
                })
    });
    kill9(&mut child, "import");
    let interrupted = stats(&store);
    assert!(interrupted.contains("1 unfinished"), "{interrupted}");
    let partial = counts(&store);
    assert!(
        partial.0 < want.0,
        "the kill landed mid-import: {partial:?}"
    );

    // Re-running resumes and ends with exactly the uninterrupted counts.
    let out = server_ok(&["import", "--store", s, c]);
    assert!(
        out.contains("resumed interrupted import after line"),
        "{out}"
    );
    assert_eq!(counts(&store), want);
    assert!(stats(&store).contains("0 unfinished"));
    // And once more: already imported, nothing doubles.
    assert!(server_ok(&["import", "--store", s, c]).contains("already imported"));
    assert_eq!(counts(&store), want);
}

#[test]
fn kill_9_during_build_keeps_the_old_database_served_and_the_next_build_completes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = build_fixture_store(dir.path());
    let s = store.to_str().expect("UTF-8 path").to_owned();
    let before = psi_files(&store);
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    let url = server.url();

    // New data large enough for a build of several seconds.
    let combo = dir.path().join("more.txt");
    write_combo(&combo, "b", 60_000);
    server_ok(&["import", "--store", &s, combo.to_str().expect("UTF-8 path")]);
    let new_pair = vault(dir.path(), "buser7@faults.invalid", "pw-b-7-0");

    let mut build = spawn(dir.path(), "build", &["build", "--store", &s]);
    let tmp_name = format!(".senderdb.{}.tmp", build.id());
    wait_for("the build's temporary database file", || {
        fs::read_dir(store.join("psi"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(&tmp_name))
            })
            .unwrap_or(false)
    });
    kill9(&mut build, "build");

    // The served databases are untouched and still answer as before.
    let after: Vec<(String, Vec<u8>)> = psi_files(&store)
        .into_iter()
        .filter(|(n, _)| !n.ends_with(&tmp_name))
        .collect();
    assert_eq!(names(&after), names(&before));
    assert!(after == before, "the saved databases changed");
    assert_fixture_answer(&url, "chrome", false);
    assert!(!breached(&url, &new_pair));

    // The next build completes, removes the dead build's temporary file,
    // and the server swaps the new databases in.
    let out = server_ok(&["build", "--store", &s]);
    assert!(
        out.contains("credentials:") && out.contains("passwords:"),
        "{out}"
    );
    let files = psi_files(&store);
    assert!(
        files.iter().all(|(n, _)| !n.ends_with(".tmp")),
        "temporary files left: {:?}",
        names(&files)
    );
    wait_for("the new databases in service", || breached(&url, &new_pair));
    assert_fixture_answer(&url, "lastpass", false);
}

#[test]
fn kill_9_during_serve_then_a_restart_serves_the_same_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = build_fixture_store(dir.path());
    let vaults = ["chrome", "bitwarden", "keepassxc"];
    let answers = |url: &str| -> Vec<serde_json::Value> {
        vaults
            .iter()
            .map(|f| {
                let (out, json) = check_json(url, &e2e_tests::vault_path(f), None);
                json.unwrap_or_else(|| panic!("{f}: {}", out.stderr_text()))
            })
            .collect()
    };
    let mut server = ServerProcess::serve(&store, &[], dir.path().join("serve-1.log"));
    let first = answers(&server.url());
    // Killed while a check may be running.
    let url = server.url();
    let running =
        std::thread::spawn(move || check_json(&url, &e2e_tests::vault_path("firefox"), None));
    server.kill9();
    let _ = running.join();
    assert!(!server.is_running());
    let before = psi_files(&store);

    let server = ServerProcess::serve(&store, &[], dir.path().join("serve-2.log"));
    assert_eq!(answers(&server.url()), first);
    for f in vaults {
        assert_fixture_answer(&server.url(), f, false);
    }
    assert!(
        psi_files(&store) == before,
        "a restart changed the databases"
    );
}

#[test]
fn full_disk_during_import_is_a_clear_error_and_the_store_stays_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let combo = dir.path().join("big.txt");
    let pairs = 60_000;
    write_combo(&combo, "f", pairs);
    let c = combo.to_str().expect("UTF-8 path");
    let store = dir.path().join("store");
    let s = store.to_str().expect("UTF-8 path");
    // A store with something in it first.
    let small = dir.path().join("small.txt");
    write_combo(&small, "s", 100);
    server_ok(&["import", "--store", s, small.to_str().expect("UTF-8 path")]);
    let base = counts(&store);

    // 3 MB of file size: the store (about 10 MB for these pairs) cannot grow.
    let out = with_file_size_limit(
        3 << 20,
        &["import", "--store", s, "--batch-lines", "5000", c],
    );
    assert_eq!(out.code(), Some(1), "stderr:\n{}", out.stderr_text());
    let err = out.stderr_text();
    assert!(
        err.contains(&format!("{s}/breach.sqlite3")),
        "names the store file: {err}"
    );
    assert!(
        err.contains("the disk is full") || err.contains("file-size limit"),
        "says the disk may be full: {err}"
    );
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "one line: {err}"
    );

    // Intact: it opens, keeps what it had (and the whole batches before the
    // failure), and the re-run completes with exact counts.
    let partial = counts(&store);
    assert!(
        partial.0 >= base.0 && partial.0 < base.0 + pairs as u64,
        "{partial:?}"
    );
    server_ok(&["import", "--store", s, c]);
    let done = counts(&store);
    assert_eq!(done.0, base.0 + pairs as u64);
    assert!(stats(&store).contains("0 unfinished"));
}

#[test]
fn full_disk_during_build_is_a_clear_error_and_the_old_database_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = build_fixture_store(dir.path());
    let s = store.to_str().expect("UTF-8 path").to_owned();
    let combo = dir.path().join("more.txt");
    write_combo(&combo, "d", 3_000);
    server_ok(&["import", "--store", &s, combo.to_str().expect("UTF-8 path")]);
    let before = psi_files(&store);
    let largest = before.iter().map(|(_, b)| b.len()).max().expect("files") as u64;

    // Room for the store's own small writes, not for a new database file.
    let out = with_file_size_limit(largest / 4, &["build", "--store", &s]);
    assert_eq!(out.code(), Some(1), "stderr:\n{}", out.stderr_text());
    let err = out.stderr_text();
    assert!(err.contains(".senderdb"), "names the file: {err}");
    assert!(
        err.contains("too large") || err.contains("full"),
        "says why: {err}"
    );
    // The saved databases are exactly as before; no temporary file is left.
    assert!(psi_files(&store) == before, "the saved databases changed");

    // Without the limit the build completes and serves the new items.
    server_ok(&["build", "--store", &s]);
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    assert!(breached(
        &server.url(),
        &vault(dir.path(), "duser5@faults.invalid", "pw-d-5-5")
    ));
    assert_fixture_answer(&server.url(), "chrome", false);
}

/// Runs `breach-server ARGS` with `store` mounted read-only (a bind mount
/// in a new user and mount namespace); `None` where this system allows no
/// user namespaces.
fn on_read_only_store(store: &Path, args: &[&str]) -> Option<Output> {
    let probe = Command::new("unshare")
        .args(["--map-root-user", "--mount", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--map-root-user", "--mount", "sh", "-c"])
        .arg("mount --bind -o ro \"$1\" \"$1\" && shift && exec \"$@\"")
        .arg("sh")
        .arg(store)
        .arg(binary("breach-server"))
        .args(args)
        .env_remove("RUST_LOG")
        .current_dir(e2e_tests::workspace_root());
    Some(run_with_timeout(cmd, None, COMMAND_TIMEOUT))
}

#[test]
fn read_only_store_is_a_clear_error_for_import_and_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = build_fixture_store(dir.path());
    let s = store.to_str().expect("UTF-8 path").to_owned();
    let combo = dir.path().join("more.txt");
    write_combo(&combo, "r", 50);
    let c = combo.to_str().expect("UTF-8 path");
    let before_counts = counts(&store);
    let before = psi_files(&store);

    let Some(out) = on_read_only_store(&store, &["import", "--store", &s, c]) else {
        eprintln!("SKIPPED: no user namespaces here for a read-only bind mount");
        return;
    };
    assert_eq!(out.code(), Some(1), "import: {}", out.stderr_text());
    let err = out.stderr_text();
    assert!(err.contains(&s), "import names the store: {err}");
    assert!(
        err.to_lowercase().contains("read-only file system"),
        "import: {err}"
    );

    // A stale database to build, then a build on the read-only store.
    server_ok(&["import", "--store", &s, c]);
    let after_import = psi_files(&store);
    let out = on_read_only_store(&store, &["build", "--store", &s]).expect("namespaces work");
    assert_eq!(out.code(), Some(1), "build: {}", out.stderr_text());
    let err = out.stderr_text();
    assert!(err.contains(&s), "build names the store: {err}");
    assert!(
        err.to_lowercase().contains("read-only file system"),
        "build: {err}"
    );
    assert!(psi_files(&store) == after_import && after_import == before);
    assert_eq!(counts(&store).0, before_counts.0 + 50);
    // The writable store builds.
    server_ok(&["build", "--store", &s]);
}

/// `serve --store STORE` must refuse to start: returns its stderr.
fn serve_refused(store: &Path) -> String {
    let mut cmd = server_command();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(store);
    let out = run_with_timeout(cmd, None, COMMAND_TIMEOUT);
    assert_eq!(
        out.code(),
        Some(1),
        "serve exit status; stderr:\n{}",
        out.stderr_text()
    );
    assert!(
        !out.stdout_text().contains("ready on"),
        "{}",
        out.stdout_text()
    );
    out.stderr_text()
}

#[test]
fn serve_refuses_damaged_or_missing_keys_and_databases_and_never_repairs_them() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = build_fixture_store(dir.path());
    let psi = store.join("psi");
    let db = psi.join("credentials.senderdb");
    let key = psi.join("passwords.oprf-key");
    let good_db = fs::read(&db).expect("read");
    let good_key = fs::read(&key).expect("read");
    let before = psi_files(&store);

    // A database with one byte changed in its body (a section checksum).
    let mut bad = good_db.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    fs::write(&db, &bad).expect("write");
    let err = serve_refused(&store);
    assert!(
        err.contains("credentials.senderdb") && err.contains("checksum"),
        "{err}"
    );
    assert!(err.contains("breach-server build --store"), "{err}");
    assert_eq!(
        fs::read(&db).expect("read"),
        bad,
        "serve never rewrites a database"
    );
    // Truncated, then missing.
    fs::write(&db, &good_db[..good_db.len() - 10]).expect("write");
    let err = serve_refused(&store);
    assert!(err.contains("credentials.senderdb"), "{err}");
    fs::remove_file(&db).expect("remove");
    let err = serve_refused(&store);
    assert!(
        err.contains("credentials.senderdb") && err.contains("missing"),
        "{err}"
    );
    assert!(!db.exists(), "serve never builds");
    fs::write(&db, &good_db).expect("restore");

    // A key with one byte changed is another key: refused, not adopted.
    let mut other = good_key.clone();
    other[3] ^= 0x01;
    fs::write(&key, &other).expect("write");
    let err = serve_refused(&store);
    assert!(
        err.contains("passwords.senderdb") && err.contains("another OPRF key"),
        "{err}"
    );
    // A deleted key is refused, never replaced.
    fs::remove_file(&key).expect("remove");
    let err = serve_refused(&store);
    assert!(
        err.contains("passwords.oprf-key") && err.contains("missing"),
        "{err}"
    );
    assert!(!key.exists(), "serve never creates a key");
    fs::write(&key, &good_key).expect("restore");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");

    // A psi/ folder others can enter is refused like a key file.
    fs::set_permissions(&psi, fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = serve_refused(&store);
    assert!(
        err.contains("psi") && err.contains("755") && err.contains("chmod 700"),
        "{err}"
    );
    fs::set_permissions(&psi, fs::Permissions::from_mode(0o700)).expect("chmod");
    assert!(psi_files(&store) == before, "restored exactly");

    // Restored, it serves. A stale database (the store moved on) is served
    // as it is, with a warning, and not rebuilt.
    let combo = dir.path().join("more.txt");
    write_combo(&combo, "z", 20);
    server_ok(&[
        "import",
        "--store",
        store.to_str().expect("UTF-8"),
        combo.to_str().expect("UTF-8"),
    ]);
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    assert_fixture_answer(&server.url(), "chrome", false);
    assert!(!breached(
        &server.url(),
        &vault(dir.path(), "zuser3@faults.invalid", "pw-z-3-3")
    ));
    let log = server.log_text();
    assert!(
        log.contains("older than the store") && log.contains("breach-server build"),
        "{log}"
    );
    assert!(psi_files(&store) == before, "serve never rebuilds");
}
