//! The processes the benchmark drives: finding (and building) the
//! `breach-server` and `breach-client` binaries, the server child process
//! (killed on drop), `/proc` memory figures and the server's log.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// Paths of the two binaries under test.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `breach-server`.
    pub server: PathBuf,
    /// `breach-client`.
    pub client: PathBuf,
}

impl Binaries {
    /// The binaries in `dir`; an error if either is missing.
    pub fn in_dir(dir: &Path) -> Result<Binaries> {
        let bins = Binaries {
            server: dir.join("breach-server"),
            client: dir.join("breach-client"),
        };
        for path in [&bins.server, &bins.client] {
            if !path.is_file() {
                bail!(
                    "{} not found; build it with `cargo build --release -p breach-server \
                     -p breach-client` or pass --bin-dir",
                    path.display()
                );
            }
        }
        Ok(bins)
    }
}

/// Runs `cargo build` for both binaries into the target directory this
/// benchmark was built in (`exe_dir` is `TARGET/PROFILE`), with the same
/// profile, so the binaries measured match the sources. Uses the `CARGO`
/// variable Cargo sets for `cargo run`; without it (started directly),
/// builds nothing and says so.
pub fn cargo_build(exe_dir: &Path) -> Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        eprintln!(
            "not started by cargo: using breach-server and breach-client as they are \
             (run through `cargo run` to rebuild them first)"
        );
        return Ok(());
    };
    let profile = exe_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("cannot tell the profile from {}", exe_dir.display()))?;
    let target_dir = exe_dir
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", exe_dir.display()))?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.toml");
    let profile_arg = if profile == "debug" { "dev" } else { profile };
    eprintln!("building breach-server and breach-client ({profile})");
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bins", "-p", "breach-server", "-p"])
        .arg("breach-client")
        .arg("--profile")
        .arg(profile_arg)
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of breach-server and breach-client failed ({status})");
    }
    Ok(())
}

/// A `breach-server serve` child process; killed (and reaped) on drop.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// Time from spawning to the `listening on` line (bound).
    pub listening: Duration,
    /// Time from spawning to the `ready on` line (every PSI database
    /// loaded and answering).
    pub startup: Duration,
}

impl ServerProcess {
    /// Starts `serve --store STORE --listen 127.0.0.1:0`, logging to `log`
    /// (service debug logs on, for per-request durations), and waits at
    /// most `timeout` for `ready on ADDR`.
    pub fn start(
        bins: &Binaries,
        store: &Path,
        log: &Path,
        timeout: Duration,
    ) -> Result<ServerProcess> {
        let store = store.to_str().context("store path is not UTF-8")?;
        Self::start_with(bins, &["--store", store], log, timeout)
    }

    /// Starts `serve ARGS --listen 127.0.0.1:0` (see [`Self::start`]).
    pub fn start_with(
        bins: &Binaries,
        args: &[&str],
        log: &Path,
        timeout: Duration,
    ) -> Result<ServerProcess> {
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let mut child = Command::new(&bins.server)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info,breach_server::service=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bins.server.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // From here on, `server` kills the child if anything fails.
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: log.to_path_buf(),
            listening: Duration::ZERO,
            startup: Duration::ZERO,
        };
        let (tx, rx) = mpsc::channel();
        let (listening_tx, listening_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        if line.starts_with("listening on ") {
                            let _ = listening_tx.send(started.elapsed());
                        }
                        if let Some(addr) = line.strip_prefix("ready on ") {
                            break Some(addr.trim().to_owned());
                        }
                    }
                    _ => break None,
                }
            };
            let _ = tx.send(addr);
            // Keep draining stdout so the server never blocks on it.
            for _ in lines {}
        });
        let addr = match rx.recv_timeout(timeout) {
            Ok(Some(addr)) => addr,
            Ok(None) => bail!(
                "breach-server exited before it was ready; its log:\n{}",
                tail(&server.log, 20)
            ),
            Err(_) => bail!("breach-server was not ready after {timeout:?}"),
        };
        server.startup = started.elapsed();
        server.listening = listening_rx.try_recv().unwrap_or(server.startup);
        server.addr = addr
            .parse()
            .with_context(|| format!("bad address `{addr}` from breach-server"))?;
        Ok(server)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// An error if the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "breach-server exited ({status}); its log:\n{}",
                tail(&self.log, 20)
            );
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a text file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Memory figures of a process from `/proc/PID/status`, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Peak resident set size (`VmHWM`).
    pub peak_rss: u64,
    /// Current resident set size (`VmRSS`).
    pub rss: u64,
}

/// Samples the resident set size of process `pid` every `every` until
/// `stop` is set; returns the largest sample (bytes).
pub fn sample_rss(
    pid: u32,
    every: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(m) = memory(pid) {
                peak = peak.max(m.rss);
            }
            thread::sleep(every);
        }
        peak
    })
}

/// Reads [`Memory`] of process `pid`.
pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| anyhow!("{path} has no {name}"))?;
        let kib: u64 = line
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("{path}: bad {name}{line}"))?;
        Ok(kib * 1024)
    };
    Ok(Memory {
        peak_rss: field("VmHWM:")?,
        rss: field("VmRSS:")?,
    })
}

/// Server-side durations logged while one client run was going on.
#[derive(Clone, Debug, Default)]
pub struct ServerTimes {
    /// `EvaluateOprf` calls: (elements, duration).
    pub oprf: Vec<(u64, Duration)>,
    /// Answered queries: (collection, duration from decoding the query to
    /// the last result part handed to the transport).
    pub queries: Vec<(String, Duration)>,
}

/// Reads the server log from `offset`, returning what it holds past it and
/// the new end offset.
pub fn read_log_from(path: &Path, offset: u64) -> Result<(String, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok((text.clone(), offset + text.len() as u64))
}

/// Extracts [`ServerTimes`] from log lines (tracing's plain format:
/// `... EvaluateOprf peer=.. elements=N elapsed=1.2ms` and
/// `... query answered collection=passwords peer=.. elapsed=350ms`).
pub fn parse_server_times(log: &str) -> ServerTimes {
    let mut times = ServerTimes::default();
    for line in log.lines() {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_owned)
        };
        let Some(elapsed) = field("elapsed=").and_then(|e| parse_duration(&e)) else {
            continue;
        };
        if line.contains("EvaluateOprf") {
            let n = field("elements=").and_then(|n| n.parse().ok()).unwrap_or(0);
            times.oprf.push((n, elapsed));
        } else if line.contains("query answered") {
            let c = field("collection=").unwrap_or_default();
            times.queries.push((c, elapsed));
        }
    }
    times
}

/// Parses a `Duration`'s `Debug` form (`1.5s`, `350.2ms`, `12µs`, `80ns`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("µs") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(value * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("12µs"), Some(Duration::from_micros(12)));
        assert_eq!(parse_duration("80ns"), Some(Duration::from_nanos(80)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn log_lines() {
        let log = "2026-01-01T00:00:00Z DEBUG breach_server::service: EvaluateOprf \
                   peer=Some(127.0.0.1:5) elements=300 elapsed=12.5ms\n\
                   2026-01-01T00:00:00Z  INFO breach_server::service: query answered \
                   collection=passwords peer=Some(127.0.0.1:5) elapsed=1.25s\n\
                   unrelated line elapsed=3s\n";
        let t = parse_server_times(log);
        assert_eq!(t.oprf, vec![(300, Duration::from_micros(12_500))]);
        assert_eq!(
            t.queries,
            vec![("passwords".to_owned(), Duration::from_millis(1250))]
        );
    }

    #[test]
    fn own_memory() {
        let m = memory(std::process::id()).unwrap();
        assert!(m.peak_rss >= m.rss && m.rss > 0);
    }
}
