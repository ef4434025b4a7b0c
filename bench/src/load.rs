//! `breach-bench load`: N concurrent clients (the `breach-client`
//! library, one task and one connection each) run vault and password
//! checks against one server on loopback for a bounded time, and the
//! result is a Markdown table: checks per minute, latency percentiles,
//! errors by gRPC status, and the server's peak RSS.
//!
//! Without `--server`, it starts `breach-server serve --data-dir DIR`
//! (the bundled demo corpus) once per client count, so each row's peak
//! RSS is that run's own. Every client comes from 127.0.0.1, one client
//! address to the server: the started server gets per-address rate limits
//! raised out of the way (`--oprf-rate`, `--query-rate`, ...), and keeps
//! its default concurrency bounds (4 queries at once, 1 s admission
//! wait), so excess load shows up as `RESOURCE_EXHAUSTED` refusals.
//! Clients never retry (a refusal is counted and the client moves on to
//! its next check after a short pause), and every check has a deadline,
//! so the run is bounded in count and in time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use breach_client::{CheckOptions, RetryPolicy, Vault};

use crate::procs::{self, Binaries, ServerProcess};

/// Arguments of `breach-bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Concurrent clients; several values run one after the other
    #[arg(long, value_name = "N", num_args = 1.., default_values_t = [1usize, 4, 16, 64])]
    pub clients: Vec<usize>,
    /// Seconds each client count runs
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// A running server to load (http://127.0.0.1:PORT; loopback only);
    /// without it a demo server is started per client count
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Deadline of one check, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub check_timeout: u64,
    /// Where the started server keeps its demo data [default: a
    /// temporary folder]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also write the Markdown report to this file
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Outcome of one check.
struct Sample {
    kind: &'static str,
    latency: Duration,
    /// `OK` or the failure's gRPC status code (or client-side reason).
    outcome: String,
}

/// One row of the report.
struct Row {
    clients: usize,
    elapsed: Duration,
    samples: Vec<Sample>,
    peak_rss: Option<u64>,
}

/// A small vault of the demo corpus (the Chrome fixture export).
fn demo_vault() -> Result<Vault> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/vaults/chrome.csv");
    breach_client::read_vault_file(&path, None)
        .with_context(|| format!("reading {}", path.display()))
}

/// Passwords checked alone, cycling.
const PASSWORDS: [&str; 4] = [
    "password1",
    "bayern:3893",
    "correct horse battery",
    "letmein",
];

fn classify(e: &breach_client::Error) -> String {
    use breach_client::Error as E;
    match e {
        E::Rpc { status, .. } | E::GaveUp { status, .. } => format!("{:?}", status.code()),
        E::CallTimeout { .. } | E::Timeout(_) => "client deadline".into(),
        E::Connect { .. } => "connect".into(),
        other => format!("other: {other}"),
    }
}

/// Runs `clients` clients against `url` for `duration`, each on a thread
/// of its own with a single-threaded runtime (the client's futures are not
/// `Send`).
fn run_clients(
    url: &str,
    clients: usize,
    duration: Duration,
    check_timeout: Duration,
) -> Result<(Vec<Sample>, Duration)> {
    let vault = Arc::new(demo_vault()?);
    let options = CheckOptions {
        timeout: Some(check_timeout),
        call_timeout: check_timeout,
        retry: RetryPolicy::never(),
        ..CheckOptions::default()
    };
    let started = Instant::now();
    let stop_at = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (url, vault, options) = (url.to_string(), vault.clone(), options.clone());
        tasks.push(std::thread::spawn(move || -> Result<Vec<Sample>> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a client runtime")?;
            let mut samples = Vec::new();
            runtime.block_on(async {
                let mut i = c;
                while Instant::now() < stop_at {
                    let t = Instant::now();
                    let (kind, outcome) = if i % 2 == 0 {
                        let r = breach_client::check_vault(&url, &vault, &options).await;
                        (
                            "vault",
                            r.map_or_else(|e| classify(&e), |_| "OK".to_string()),
                        )
                    } else {
                        let pw = PASSWORDS[(i / 2) % PASSWORDS.len()];
                        let r = breach_client::check_password(&url, pw, &options).await;
                        (
                            "password",
                            r.map_or_else(|e| classify(&e), |_| "OK".to_string()),
                        )
                    };
                    let refused = outcome != "OK";
                    samples.push(Sample {
                        kind,
                        latency: t.elapsed(),
                        outcome,
                    });
                    if refused {
                        // A refused client backs off briefly (no retry of the
                        // same check: each refusal is counted).
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    i += 1;
                }
            });
            Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        let client = t
            .join()
            .map_err(|_| anyhow::anyhow!("a load client panicked"))?;
        samples.extend(client?);
    }
    Ok((samples, started.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn table(rows: &[Row], server: &str, duration: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Load: {server}, {duration} s per row, clients never retry; latency of successful checks \
         (vault: Chrome fixture, 23 logins, both collections; password: one password).\n"
    );
    let _ = writeln!(
        out,
        "| clients | checks/min (ok) | vault ok | password ok | p50 | p95 | p99 | refused quickly (max latency) | errors by status | server peak RSS |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let ok: Vec<&Sample> = r.samples.iter().filter(|s| s.outcome == "OK").collect();
        let mut lat: Vec<Duration> = ok.iter().map(|s| s.latency).collect();
        lat.sort();
        let per_min = ok.len() as f64 * 60.0 / r.elapsed.as_secs_f64();
        let mut errors: BTreeMap<&str, usize> = BTreeMap::new();
        for s in r.samples.iter().filter(|s| s.outcome != "OK") {
            *errors.entry(s.outcome.as_str()).or_default() += 1;
        }
        let refusal_max = r
            .samples
            .iter()
            .filter(|s| s.outcome == "ResourceExhausted")
            .map(|s| s.latency)
            .max();
        let errors = if errors.is_empty() {
            "none".to_string()
        } else {
            errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.clients,
            per_min,
            ok.iter().filter(|s| s.kind == "vault").count(),
            ok.iter().filter(|s| s.kind == "password").count(),
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.95)),
            ms(percentile(&lat, 0.99)),
            refusal_max.map_or("-".into(), ms),
            errors,
            r.peak_rss.map_or("-".into(), |b| format!(
                "{:.0} MiB",
                b as f64 / (1024.0 * 1024.0)
            )),
        );
    }
    out
}

/// Server flags of the started server: per-address rates out of the way
/// (every load client is 127.0.0.1), concurrency bounds at their defaults.
const SERVER_FLAGS: [&str; 12] = [
    "--oprf-rate",
    "1000000",
    "--oprf-burst",
    "10000000",
    "--global-oprf-rate",
    "1000000",
    "--global-oprf-burst",
    "10000000",
    "--query-rate",
    "1000000",
    "--query-burst",
    "1000000",
];

/// `breach-bench load`.
pub fn run(args: &LoadArgs, bins: Option<&Binaries>) -> Result<()> {
    let duration = Duration::from_secs(args.duration);
    let check_timeout = Duration::from_secs(args.check_timeout);
    let tmp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = TempDir::new()?;
            tmp.0.clone()
        }
    };
    if args.clients.iter().any(|&n| n == 0 || n > 1024) {
        bail!("--clients must be in 1..=1024");
    }
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let (url, mut server) = match &args.server {
            Some(url) => {
                let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
                if !loopback.iter().any(|p| url.starts_with(p)) {
                    bail!("--server must be a loopback http:// address, not {url}");
                }
                (url.clone(), None)
            }
            None => {
                let bins = bins.context("no breach-server binary to start")?;
                let log = data_dir.join(format!("serve-{clients}.log"));
                let mut flags = vec![
                    "--data-dir",
                    data_dir.to_str().context("data dir is not UTF-8")?,
                ];
                flags.extend(SERVER_FLAGS);
                let server =
                    ServerProcess::start_with(bins, &flags, &log, Duration::from_secs(600))?;
                (format!("http://{}", server.addr()), Some(server))
            }
        };
        eprintln!(
            "load: {clients} clients for {} s against {url}",
            args.duration
        );
        let (samples, elapsed) = run_clients(&url, clients, duration, check_timeout)?;
        let peak_rss = match &mut server {
            Some(s) => {
                s.check_alive()?;
                Some(procs::memory(s.pid())?.peak_rss)
            }
            None => None,
        };
        rows.push(Row {
            clients,
            elapsed,
            samples,
            peak_rss,
        });
    }
    let server = match &args.server {
        Some(url) => url.clone(),
        None => "breach-server serve on the demo corpus (fresh process per row)".into(),
    };
    let report = table(&rows, &server, args.duration);
    print!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("breach-bench-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
