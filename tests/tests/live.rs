//! Live updates with the real binaries: `import` + `build` on the store of
//! a running `serve` while clients keep checking. No check may fail, and a
//! credential imported meanwhile is reported breached once the server has
//! swapped the new database in. Run with `--release`.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_tests::{ServerProcess, assert_fixture_answer, check_json, server_ok};

/// How long the swap may take to show after `build` returns (file event or
/// SIGHUP, then loading a small database); generous for a loaded machine.
const SWAP_DEADLINE: Duration = Duration::from_secs(60);

/// A username and password no fixture holds.
fn fresh_credential(tag: &str) -> (String, String) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (
        format!("{tag}-{nanos}@live.e2e.invalid"),
        format!("live-update-{tag}-{nanos:x}-Zq"),
    )
}

/// A one-entry Chrome export holding the credential.
fn write_vault(path: &Path, user: &str, password: &str) {
    std::fs::write(
        path,
        format!("name,url,username,password,note\nlive,https://live.example/,{user},{password},\n"),
    )
    .expect("write the vault");
}

/// Imports `user:password` into the store as a new combo file and builds.
fn import_and_build(dir: &Path, store: &str, user: &str, password: &str) -> String {
    let combo = dir.join(format!("new-leak-{user}.txt"));
    std::fs::write(&combo, format!("{user}:{password}\n")).expect("write the combo file");
    server_ok(&[
        "import",
        "--store",
        store,
        combo.to_str().expect("temporary paths are UTF-8"),
    ]);
    server_ok(&["build", "--store", store])
}

/// Checks the one-entry vault; `Some(true)` when the pair is reported
/// breached, `Some(false)` when not, panics on any failure.
fn pair_breached(url: &str, vault: &Path) -> bool {
    let (out, json) = check_json(url, vault, None);
    let json =
        json.unwrap_or_else(|| panic!("check failed ({:?}):\n{}", out.code(), out.stderr_text()));
    json["results"][0]["credential_breached"]
        .as_bool()
        .expect("credential_breached is a boolean")
}

#[test]
fn import_and_build_while_serving_swaps_without_failed_checks() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = e2e_tests::build_fixture_store(dir.path());
    let s = store
        .to_str()
        .expect("temporary paths are UTF-8")
        .to_owned();
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));
    let url = server.url();

    let (user, password) = fresh_credential("watch");
    let vault = dir.path().join("new.csv");
    write_vault(&vault, &user, &password);
    assert!(
        !pair_breached(&url, &vault),
        "not breached before the import"
    );

    // Clients check the fixture vault in a loop: its known answer holds
    // before, during and after the swap (the new pair touches none of it).
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, done, url) = (stop.clone(), done.clone(), url.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert_fixture_answer(&url, "chrome", false);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let built = import_and_build(dir.path(), &s, &user, &password);
    assert!(built.contains("credentials:"), "{built}");
    let before_swap = done.load(Ordering::Relaxed);
    let started = Instant::now();
    while !pair_breached(&url, &vault) {
        assert!(
            started.elapsed() < SWAP_DEADLINE,
            "the new credential was not served within {SWAP_DEADLINE:?}; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Some checks run on the new database too.
    let after_swap = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < after_swap + 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for c in checkers {
        c.join().expect("no check failed during the update");
    }
    let total = done.load(Ordering::Relaxed);
    assert!(
        total >= 2,
        "checks ran during the update ({total}, {before_swap} before the swap)"
    );
    let log = server.log_text();
    assert!(log.contains("database in service"), "swap logged:\n{log}");
}

#[test]
fn sighup_reloads_and_a_corrupt_file_keeps_the_old_database() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = e2e_tests::build_fixture_store(dir.path());
    let s = store
        .to_str()
        .expect("temporary paths are UTF-8")
        .to_owned();
    // No file watch and a poll far away: only SIGHUP can trigger a reload.
    let mut server = ServerProcess::serve(
        &store,
        &["--no-file-watch", "--reload-poll", "86400"],
        dir.path().join("serve.log"),
    );
    let url = server.url();

    // A corrupt database renamed into place (as a broken build would) is
    // refused; the old one keeps answering correctly.
    let db = store.join("psi/credentials.senderdb");
    let good = std::fs::read(&db).expect("read the database");
    let tmp = store.join("psi/credentials.senderdb.corrupt");
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(&tmp, &bad).expect("write the corrupt copy");
    std::fs::rename(&tmp, &db).expect("rename it into place");
    server.sighup();
    let started = Instant::now();
    while !server.log_text().contains("unusable") {
        assert!(
            started.elapsed() < SWAP_DEADLINE,
            "corrupt file not noticed:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_fixture_answer(&url, "chrome", false);
    assert!(server.is_running());

    // A real new generation is picked up on SIGHUP alone.
    let (user, password) = fresh_credential("hup");
    let vault = dir.path().join("new.csv");
    write_vault(&vault, &user, &password);
    import_and_build(dir.path(), &s, &user, &password);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !pair_breached(&url, &vault),
        "without a file watch or poll nothing changes before SIGHUP"
    );
    server.sighup();
    let started = Instant::now();
    while !pair_breached(&url, &vault) {
        assert!(
            started.elapsed() < SWAP_DEADLINE,
            "SIGHUP did not reload:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_fixture_answer(&url, "chrome", false);
}
