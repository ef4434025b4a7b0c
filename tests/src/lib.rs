//! Harness for the end-to-end tests: finds the real `breach-server` and
//! `breach-client` binaries, runs them with deadlines, starts a server on
//! a fixture store (killed on drop), and records loopback traffic through
//! a capturing TCP proxy.
//!
//! The binaries are looked up next to the test executable
//! (`target/<profile>/`), so build them with the same profile first:
//!
//! ```sh
//! cargo build --release -p breach-server -p breach-client
//! cargo test --release -p e2e-tests
//! ```
#![forbid(unsafe_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Deadline for a server to print `ready on ADDR` (it binds, then loads the
/// PSI databases, building missing ones; generous for a loaded machine).
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Deadline for one `import`, `build` or client run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The vault formats with a fixture export and a known answer.
pub const VAULT_FORMATS: [&str; 7] = [
    "chrome",
    "firefox",
    "safari",
    "bitwarden",
    "1password",
    "keepassxc",
    "lastpass",
];

/// The breach dumps in `fixtures/data/breach/`.
pub const BREACH_FILES: [&str; 3] = ["combo-1.txt", "combo-2.txt", "pwned-passwords.txt"];

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives inside the workspace")
        .to_path_buf()
}

/// `fixtures/data/`.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures/data")
}

/// `fixtures/data/vaults/<format>.csv`.
pub fn vault_path(format: &str) -> PathBuf {
    fixtures_dir().join("vaults").join(format!("{format}.csv"))
}

/// The parsed `fixtures/data/vaults/<format>.expected.json`.
pub fn expected_report(format: &str) -> serde_json::Value {
    let path = fixtures_dir()
        .join("vaults")
        .join(format!("{format}.expected.json"));
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Path of a workspace binary built with the same profile as the running
/// test: `current_exe()` is `target/<profile>/deps/<test>-<hash>`, the
/// binaries are in `target/<profile>/`.
///
/// Panics with the command to run when the binary is missing, or when a
/// file it is built from (per cargo's dep-info) is newer than it: a stale
/// binary would test old code.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is in target/<profile>/deps/");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let profile = if profile_dir.ends_with("release") {
        " --release"
    } else {
        ""
    };
    let build = format!("cargo build{profile} -p breach-server -p breach-client");
    let built = match fs::metadata(&path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) => panic!(
            "{} not found ({e}).\n`cargo test -p e2e-tests` builds only the libraries of its \
             dependencies, not their binaries; run `{build}` first.",
            path.display()
        ),
    };
    if let Some(newer) = newer_input(&path, built) {
        panic!(
            "{} is older than {}: it would test stale code; run `{build}` first.",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A file `binary` was built from that is newer than it, if any. The list
/// is cargo's dep-info file next to the binary (`<binary>.d`, Makefile
/// syntax): exactly the files whose change makes cargo rebuild it, so
/// `cargo build` always clears this condition.
fn newer_input(binary: &Path, built: SystemTime) -> Option<PathBuf> {
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let text = fs::read_to_string(dep_info).ok()?;
    // Line 1 is `binary: deps...`; the rest are empty rules per dep.
    let (_, deps) = text.lines().next()?.split_once(": ")?;
    // Split at spaces that are not escaped as `\ `.
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| *n == ' ' || *n == '\\') => {
                current.push(chars.next().unwrap_or(' '));
            }
            ' ' => paths.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    paths.push(current);
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .find(|p| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > built)
        })
}

/// What a finished process printed and how it ended.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` to completion with `stdin` as its input (empty when `None`),
/// killing it and panicking after `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let input = stdin.unwrap_or_default().to_vec();
    let mut child_stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || {
        // The child may exit without reading everything: ignore EPIPE.
        let _ = child_stdin.write_all(&input);
    });
    let out = drain(child.stdout.take().expect("stdout is piped"));
    let err = drain(child.stderr.take().expect("stderr is piped"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{shown} did not finish within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// A `breach-server` command with a clean environment for logging.
pub fn server_command() -> Command {
    let mut cmd = Command::new(binary("breach-server"));
    cmd.env_remove("RUST_LOG").current_dir(workspace_root());
    cmd
}

/// Runs `breach-server ARGS`, panicking with its stderr unless it succeeds.
pub fn server_ok(args: &[&str]) -> String {
    let mut cmd = server_command();
    cmd.args(args);
    let out = run_with_timeout(cmd, None, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "breach-server {args:?} failed ({}):\n{}",
        out.status,
        out.stderr_text()
    );
    out.stdout_text()
}

/// Runs `breach-client ARGS` with `stdin` as its input.
pub fn client(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(binary("breach-client"));
    cmd.args(args).current_dir(workspace_root());
    run_with_timeout(cmd, stdin, COMMAND_TIMEOUT)
}

/// Imports every fixture breach dump into a new store under `dir` and
/// builds its PSI databases with the real binary; returns the store path.
pub fn build_fixture_store(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    let s = store.to_str().expect("temporary paths are UTF-8");
    let files: Vec<String> = BREACH_FILES
        .iter()
        .map(|f| {
            fixtures_dir()
                .join("breach")
                .join(f)
                .to_str()
                .expect("fixture paths are UTF-8")
                .to_owned()
        })
        .collect();
    let mut args = vec!["import", "--store", s];
    args.extend(files.iter().map(String::as_str));
    server_ok(&args);
    let built = server_ok(&["build", "--store", s]);
    assert!(
        built.contains("credentials:") && built.contains("passwords:"),
        "build reported both collections:\n{built}"
    );
    store
}

/// A running `breach-server serve` process, killed (and reaped) on drop,
/// also when the test panics.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `breach-server serve --store STORE --listen 127.0.0.1:0 EXTRA`
    /// (EXTRA may give its own `--listen`) with stderr in `log`, and waits
    /// (up to [`SERVER_START_TIMEOUT`]) for the `ready on ADDR` line.
    pub fn serve(store: &Path, extra: &[&str], log: PathBuf) -> ServerProcess {
        let mut args: Vec<std::ffi::OsString> =
            vec!["serve".into(), "--store".into(), store.into()];
        if !extra.contains(&"--listen") {
            args.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        args.extend(extra.iter().map(Into::into));
        Self::start(&args, log)
    }

    /// Starts `breach-server front --listen 127.0.0.1:0 --shard URL... EXTRA`
    /// and waits for its `ready on ADDR` line (every shard serving with
    /// consistent parameters).
    pub fn front(shards: &[String], extra: &[&str], log: PathBuf) -> ServerProcess {
        let mut args: Vec<std::ffi::OsString> =
            vec!["front".into(), "--listen".into(), "127.0.0.1:0".into()];
        for url in shards {
            args.extend(["--shard".into(), url.into()]);
        }
        args.extend(extra.iter().map(Into::into));
        Self::start(&args, log)
    }

    /// Starts `breach-server ARGS` with stderr in `log` and waits (up to
    /// [`SERVER_START_TIMEOUT`]) for its `ready on ADDR` line.
    pub fn start(args: &[std::ffi::OsString], log: PathBuf) -> ServerProcess {
        let log_file = fs::File::create(&log).expect("create the server log");
        let mut cmd = server_command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = cmd.spawn().expect("start breach-server");
        let stdout = child.stdout.take().expect("stdout is piped");
        // Guard before waiting, so a panic below still kills the child.
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(addr) = line.strip_prefix("ready on ") {
                    let _ = tx.send(addr.trim().to_owned());
                    sent = true;
                }
                // Keep draining so the server never blocks on a full pipe.
            }
        });
        let addr = match rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(addr) => addr,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "server did not print `ready on` within {SERVER_START_TIMEOUT:?}; log:\n{}",
                server.log_text()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                "server exited before it was ready ({:?}); log:\n{}",
                server.child.try_wait(),
                server.log_text()
            ),
        };
        server.addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("`ready on {addr}`: not an address: {e}"));
        assert_ne!(server.addr.port(), 0, "the real port is printed");
        server
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for `--server`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGHUP (look for new databases now) with `kill(1)`.
    pub fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed: {status}");
    }

    /// Kills the process with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL failed: {status}");
        let _ = self.child.wait();
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `breach-client check --json` on `vault` against `url` (with
/// `--format FORMAT` when given); returns the output and, when stdout is
/// JSON, its value.
pub fn check_json(
    url: &str,
    vault: &Path,
    format: Option<&str>,
) -> (Output, Option<serde_json::Value>) {
    check_json_with(url, &[], vault, format)
}

/// [`check_json`] with extra client arguments (e.g. `--ca-cert PEM`).
pub fn check_json_with(
    url: &str,
    extra: &[&str],
    vault: &Path,
    format: Option<&str>,
) -> (Output, Option<serde_json::Value>) {
    let vault = vault.to_str().expect("fixture paths are UTF-8");
    let mut args = vec!["check", "--json", "--timeout", "300", "--server", url];
    args.extend(extra);
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    args.push(vault);
    let out = client(&args, None);
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

/// Asserts that the client's report for fixture vault `format` is exactly
/// the known answer and that it exited 1 (every fixture vault has
/// breached entries).
pub fn assert_fixture_answer(url: &str, format: &str, explicit_format: bool) {
    fixture_answer(url, &[], format, explicit_format);
}

/// [`assert_fixture_answer`] (format detected) with extra client
/// arguments, e.g. `--ca-cert PEM` for an `https://` URL.
pub fn assert_fixture_answer_at(url: &str, extra: &[&str], format: &str) {
    fixture_answer(url, extra, format, false);
}

fn fixture_answer(url: &str, extra: &[&str], format: &str, explicit_format: bool) {
    let expected = expected_report(format);
    let (out, json) = check_json_with(
        url,
        extra,
        &vault_path(format),
        explicit_format.then_some(format),
    );
    assert_eq!(
        out.code(),
        Some(1),
        "{format} (explicit format: {explicit_format}): exit status; stderr:\n{}",
        out.stderr_text()
    );
    let mut json = json.unwrap_or_else(|| {
        panic!(
            "{format}: stdout is not JSON:\n{}\nstderr:\n{}",
            out.stdout_text(),
            out.stderr_text()
        )
    });
    // Rows not checked (empty passwords, non-login rows) are reported as
    // the vault reader counts them; the rest is the known answer.
    let skipped = json
        .as_object_mut()
        .and_then(|o| o.remove("skipped"))
        .unwrap_or(serde_json::Value::Null);
    let vault = breach_client::vault::read_vault_file(vault_path(format), None)
        .unwrap_or_else(|e| panic!("{format}: {e}"));
    let want_skipped = if vault.skipped.is_none() {
        serde_json::Value::Null
    } else {
        serde_json::json!({
            "empty_password": vault.skipped.empty_password,
            "not_a_login": vault.skipped.not_a_login,
        })
    };
    assert_eq!(skipped, want_skipped, "{format}: skipped rows");
    assert_eq!(
        json, expected,
        "{format} (explicit format: {explicit_format}): report differs from the known answer"
    );
}

/// How often `password` was seen in the fixture corpus, recomputed from
/// the dump files by the import rules of `fixtures/README.md`: combo lines
/// (split at the first `:`, non-empty canonical username, at most 4,096
/// bytes, valid UTF-8) whose password is exactly `password`, plus the
/// counts of valid Pwned Passwords lines with its SHA-1.
pub fn reference_password_seen(password: &str) -> u64 {
    let breach = fixtures_dir().join("breach");
    let mut seen = 0u64;
    for name in ["combo-1.txt", "combo-2.txt"] {
        let bytes = fs::read(breach.join(name)).expect("read combo file");
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some((user, pw)) = line.split_once(':') else {
                continue;
            };
            if line.len() <= 4096
                && !breach_proto::encoding::canonical_username(user).is_empty()
                && pw == password
            {
                seen += 1;
            }
        }
    }
    let want = hex_upper(&breach_proto::encoding::password_sha1(password));
    let hibp = fs::read_to_string(breach.join("pwned-passwords.txt")).expect("read hash list");
    for line in hibp.lines() {
        let Some((hash, count)) = line.trim().split_once(':') else {
            continue;
        };
        if hash.eq_ignore_ascii_case(&want)
            && !count.is_empty()
            && count.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = count.parse::<u64>()
        {
            seen += n;
        }
    }
    seen
}

/// Upper-case hex.
pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Lower-case hex.
pub fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes one proxied TCP connection carried.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    /// Client to server.
    pub upstream: Vec<u8>,
    /// Server to client.
    pub downstream: Vec<u8>,
}

/// A TCP proxy on `127.0.0.1` in front of `target` that records every byte
/// in both directions, per connection. A byte is recorded before it is
/// forwarded, so whatever a peer received is in the capture.
pub struct CaptureProxy {
    addr: SocketAddr,
    captures: Arc<Mutex<Vec<Arc<Mutex<Capture>>>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl CaptureProxy {
    /// Listens on an ephemeral loopback port and forwards to `target`.
    pub fn start(target: SocketAddr) -> CaptureProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let captures: Arc<Mutex<Vec<Arc<Mutex<Capture>>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let captures = Arc::clone(&captures);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for inbound in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(inbound) = inbound else { continue };
                    let Ok(outbound) = TcpStream::connect(target) else {
                        continue;
                    };
                    let capture = Arc::new(Mutex::new(Capture::default()));
                    captures
                        .lock()
                        .expect("capture list lock")
                        .push(Arc::clone(&capture));
                    pump(&inbound, &outbound, Arc::clone(&capture), true);
                    pump(&outbound, &inbound, capture, false);
                }
            })
        };
        CaptureProxy {
            addr,
            captures,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://ADDR` of the proxy, for `--server`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of what every connection carried so far.
    pub fn captures(&self) -> Vec<Capture> {
        self.captures
            .lock()
            .expect("capture list lock")
            .iter()
            .map(|c| c.lock().expect("capture lock").clone())
            .collect()
    }
}

impl Drop for CaptureProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Copies `from` to `to` on a new thread, appending each chunk to the
/// capture before forwarding it; half-closes `to` at end of stream.
fn pump(from: &TcpStream, to: &TcpStream, capture: Arc<Mutex<Capture>>, upstream: bool) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut c = capture.lock().expect("capture lock");
                let dir = if upstream {
                    &mut c.upstream
                } else {
                    &mut c.downstream
                };
                dir.extend_from_slice(&buf[..n]);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
