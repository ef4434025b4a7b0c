//! Runs the `breach-bench` binary end to end on a small store (5000 pairs,
//! one run) and checks that it succeeds and prints its table. Run with
//! `--release`.
//!
//! `cargo test` keeps the target directory locked while tests run, so the
//! benchmark cannot `cargo build` the server and client itself here; the
//! test passes `--no-build` and needs `breach-server` and `breach-client`
//! already built next to it (`cargo build --release -p breach-server -p
//! breach-client`, or `cargo test --release --workspace`, which builds them).

use std::path::Path;
use std::process::Command;

#[test]
fn small_benchmark_prints_the_table() {
    let exe = Path::new(env!("CARGO_BIN_EXE_breach-bench"));
    let bin_dir = exe.parent().expect("the binary has a folder");
    for name in ["breach-server", "breach-client"] {
        assert!(
            bin_dir.join(name).is_file(),
            "{name} is not built in {}: run `cargo build --release -p breach-server -p \
             breach-client` first (cargo test cannot build it from inside a test)",
            bin_dir.display()
        );
    }
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("report.md");
    let out = Command::new(exe)
        .args(["--pairs", "5000", "--runs", "1", "--no-build", "--work-dir"])
        .arg(work.path().join("bench"))
        .arg("--report")
        .arg(&report)
        .env_remove("RUST_LOG")
        .output()
        .expect("breach-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "breach-bench failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for needle in [
        "| store: credential pairs | 5000 |",
        "| store: passwords | 5000 |",
        "**vault check**, 300 entries",
        "**password check**",
        "vault check bytes up",
        "**server peak RSS**",
        "server: answering the passwords query",
    ] {
        assert!(
            stdout.contains(needle),
            "`{needle}` missing from:\n{stdout}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&report).unwrap().trim(),
        stdout.trim()
    );
    // Without --keep the work dir is removed.
    assert!(!work.path().join("bench").exists());
}

#[test]
fn help_lists_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_breach-bench"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in ["--pairs", "--runs", "--work-dir", "--keep"] {
        assert!(help.contains(option), "{option} missing from --help");
    }
}
