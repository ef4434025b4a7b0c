//! Runs the real `breach-server` binary on temporary stores.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use breach_proto::encoding::{credential_item, password_item};
use breach_server::store::{Collection, Store};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breach-server"));
    cmd.env_remove("RUST_LOG");
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("breach-server runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dump(store: &Path) -> Vec<(Collection, [u8; 32], u64)> {
    let store = Store::open(store).unwrap();
    let mut all = Vec::new();
    for c in Collection::ALL {
        store
            .for_each_item(c, |item, count| all.push((c, *item, count)))
            .unwrap();
    }
    all
}

#[test]
fn import_then_reimport_then_stats() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let combo = dir.path().join("combo.txt");
    fs::write(&combo, "alice:s3cret\r\nno-colon\r\nBob:s3cret\n").unwrap();
    let hibp = dir.path().join("pwned.txt");
    fs::write(
        &hibp,
        "E38AD214943DAAD1D64C102FAEC29DE4AFE9DA3D:4\nbad:line\n",
    )
    .unwrap();
    let (s, c, h) = (
        store.to_str().unwrap(),
        combo.to_str().unwrap(),
        hibp.to_str().unwrap(),
    );

    let out = run(&["import", "--store", s, c, h]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("imported as combo: 3 lines, 2 accepted, 1 malformed"),
        "{text}"
    );
    assert!(text.contains("line 2: no `:`"), "{text}");
    assert!(
        text.contains("imported as hibp: 2 lines, 1 accepted, 1 malformed"),
        "{text}"
    );
    // Nothing from a line is ever printed.
    assert!(
        !text.contains("s3cret") && !text.contains("no-colon"),
        "{text}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));

    let before = dump(&store);
    let out = run(&["import", "--store", s, "--format", "combo", c]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains(
            "already imported, skipped (re-importing the same file does not double counts)"
        ),
        "{}",
        stdout(&out)
    );
    assert_eq!(dump(&store), before);

    let st = Store::open(&store).unwrap();
    assert_eq!(
        st.lookup(Collection::Credentials, &credential_item("bob", "s3cret"))
            .unwrap(),
        Some(1)
    );
    // "s3cret" is in two combo lines; E38AD214... is SHA-1("password1").
    assert_eq!(
        st.lookup(Collection::Passwords, &password_item("s3cret"))
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        st.lookup(Collection::Passwords, &password_item("password1"))
            .unwrap(),
        Some(4)
    );
    drop(st);

    let out = run(&["stats", "--store", s]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("credentials"), "{text}");
    assert!(text.contains("imports: 2 finished, 0 unfinished"), "{text}");
    let creds_line = text.lines().find(|l| l.starts_with("credentials")).unwrap();
    assert_eq!(creds_line.split_whitespace().nth(1), Some("2"), "{text}");
    let pw_line = text.lines().find(|l| l.starts_with("passwords")).unwrap();
    assert_eq!(pw_line.split_whitespace().nth(1), Some("2"), "{text}");
}

#[test]
fn errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = run(&["stats", "--store", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at"));
    assert!(!missing.exists(), "stats must not create a store");

    let store = dir.path().join("s");
    let out = run(&[
        "import",
        "--store",
        store.to_str().unwrap(),
        dir.path().join("absent.txt").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.txt"));

    let out = run(&["import", "--store", store.to_str().unwrap()]);
    assert!(!out.status.success(), "FILE is required");
}

#[test]
fn help_teaches() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("Examples:") && text.contains("breach-server import --store"));
    let out = run(&["import", "--help"]);
    let text = stdout(&out);
    assert!(text.contains("--format") && text.contains("hibp") && text.contains("resumes"));
}

/// Kills the importer with SIGKILL while it runs, re-runs it, and checks
/// the store equals one clean import. Where the kill lands depends on
/// timing; the test holds wherever it lands (also before the first or
/// after the last commit).
#[test]
fn kill_dash_nine_then_resume_equals_clean_import() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.txt");
    let mut content = String::new();
    for i in 0..60_000 {
        content.push_str(&format!("user{}:pw{}\n", i % 7919, i % 1009));
    }
    fs::write(&file, content).unwrap();
    let f = file.to_str().unwrap();

    let clean = dir.path().join("clean");
    let out = run(&[
        "import",
        "--store",
        clean.to_str().unwrap(),
        "--batch-lines",
        "500",
        f,
    ]);
    assert!(out.status.success(), "{out:?}");

    let killed = dir.path().join("killed");
    let k = killed.to_str().unwrap();
    for delay_ms in [150, 300] {
        let mut child = bin()
            .args(["import", "--store", k, "--batch-lines", "500", f])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // Child::kill sends SIGKILL on Unix.
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = run(&["import", "--store", k, "--batch-lines", "500", f]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("imported as combo")
            || text.contains("resumed interrupted import")
            || text.contains("already imported"),
        "{text}"
    );
    assert_eq!(dump(&killed), dump(&clean));
}
