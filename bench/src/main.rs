//! `breach-bench`: the end-to-end benchmark of the breach checker.
//!
//! Generates a deterministic breach corpus (`--pairs` credential pairs, as
//! many distinct passwords), imports it with `breach-server import`, builds
//! the PSI databases with `breach-server build`, serves them with
//! `breach-server serve` on loopback, and times the real `breach-client`
//! binary checking a 300-entry Chrome export and a single password. Every
//! answer is checked against the generator's ground truth. Bytes on the
//! wire are counted by a TCP proxy; server memory is read from `/proc`.
//! The result is a Markdown table.
#![forbid(unsafe_code)]

mod data;
mod load;
mod procs;
mod proxy;

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::data::Vault;
use crate::procs::{Binaries, ServerProcess, ServerTimes};
use crate::proxy::{Proxy, Traffic};

/// Targets from the issue.
const TARGET_VAULT_SECS: f64 = 1.0;
const TARGET_PASSWORD_SECS: f64 = 0.2;
const TARGET_STARTUP_SECS: f64 = 5.0;
/// Server memory with both tiers of both collections.
const TARGET_RSS_BYTES: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;
/// APSI with Intel HEXL: one labeled 2^20 x 1024 query, and one labeled
/// 2^20 x 1 query, both about 0.9 s.
const APSI_HEXL_SECS: f64 = 0.9;

const MARKER: &str = "breach-bench.json";
const MIB: f64 = 1024.0 * 1024.0;

const AFTER_HELP: &str = "\
Examples:
  # The issue's benchmark: 2^20 pairs, 2^20 passwords, 3 timed runs each
  cargo run --release -p breach-bench -- --runs 3

  # A cheap smoke run
  cargo run --release -p breach-bench -- --pairs 20000 --runs 1

  # Keep the generated store and reuse it next time (skips generate/import/build)
  cargo run --release -p breach-bench -- --keep --report BENCH.md

Before running, it builds breach-server and breach-client with the same
profile into the same target directory (unless --no-build), so the binaries
measured match the sources. Fails (exit 1) if any answer is wrong.";

/// End-to-end benchmark of breach-server + breach-client over loopback.
#[derive(Debug, Parser)]
#[command(name = "breach-bench", version, after_help = AFTER_HELP)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Credential pairs in the generated store (also its number of
    /// distinct passwords)
    #[arg(long, value_name = "N", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(data::MIN_PAIRS..=(1u64 << 26)))]
    pairs: u64,
    /// Timed runs of each check (the median is reported)
    #[arg(long, value_name = "K", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Where the corpus, store, vault and server log go [default:
    /// TARGET/breach-bench/pairs-N next to this binary's profile folder]
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Keep the work dir afterwards; a later run with the same --pairs
    /// reuses its corpus, store and PSI databases
    #[arg(long)]
    keep: bool,
    /// Folder holding breach-server and breach-client [default: this
    /// binary's folder]
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Do not run `cargo build` for breach-server and breach-client first
    #[arg(long)]
    no_build: bool,
    /// Also write the Markdown report to this file
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Longest wait for the server to load its databases, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    startup_timeout: u64,
    /// After the timed runs, re-import this many of the store's pairs
    /// (raising their counts; the vault's are left alone) into the served
    /// store, run `build`, and measure the live swap (time and server
    /// memory while two databases are held); 0 skips it
    #[arg(long, value_name = "N", default_value_t = 1000)]
    live_update: u64,
}

/// Other benchmarks.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Load test: N concurrent clients run vault and password checks
    /// against one server on loopback for a bounded time; reports checks
    /// per minute, latency percentiles, errors by gRPC status and the
    /// server's peak RSS
    Load(load::LoadArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match &args.command {
        Some(Sub::Load(load_args)) => run_load(&args, load_args),
        None => run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("breach-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the work dir holds, recorded in its marker file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Spec {
    generator_version: u32,
    seed: u64,
    pairs: u64,
    hibp_every: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Marker {
    spec: Spec,
    generate_secs: f64,
    combo_bytes: u64,
    hibp_lines: u64,
    import_secs: Option<f64>,
    credentials: Option<u64>,
    passwords: Option<u64>,
    build_secs: Option<f64>,
    build_output: Option<String>,
}

/// `breach-bench load`: builds the binaries like the main benchmark
/// (unless `--no-build`) when it has to start a server.
fn run_load(args: &Args, load_args: &load::LoadArgs) -> Result<()> {
    if load_args.server.is_some() {
        return load::run(load_args, None);
    }
    let exe = std::env::current_exe().context("locating this binary")?;
    let exe_dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no folder", exe.display()))?
        .to_path_buf();
    if !args.no_build {
        procs::cargo_build(&exe_dir)?;
    }
    let bins = Binaries::in_dir(args.bin_dir.as_deref().unwrap_or(&exe_dir))?;
    load::run(load_args, Some(&bins))
}

fn run(args: &Args) -> Result<()> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let exe_dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no folder", exe.display()))?
        .to_path_buf();
    if exe_dir.file_name().is_some_and(|n| n == "debug") {
        eprintln!("warning: this is a debug build; benchmark with --release");
    }
    if !args.no_build {
        procs::cargo_build(&exe_dir)?;
    }
    let bins = Binaries::in_dir(args.bin_dir.as_deref().unwrap_or(&exe_dir))?;
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => exe_dir
            .parent()
            .unwrap_or(&exe_dir)
            .join("breach-bench")
            .join(format!("pairs-{}", args.pairs)),
    };
    let spec = Spec {
        generator_version: data::GENERATOR_VERSION,
        seed: data::SEED,
        pairs: args.pairs,
        hibp_every: data::HIBP_EVERY,
    };
    let bench = Bench {
        args,
        bins,
        work: work.clone(),
        store: work.join("store"),
    };
    let result = bench.run(&spec);
    match &result {
        Ok(()) if !args.keep => {
            fs::remove_dir_all(&work)
                .with_context(|| format!("removing the work dir {}", work.display()))?;
        }
        Ok(()) => eprintln!("work dir kept: {}", work.display()),
        Err(_) => eprintln!("work dir left for inspection: {}", work.display()),
    }
    result
}

struct Bench<'a> {
    args: &'a Args,
    bins: Binaries,
    work: PathBuf,
    store: PathBuf,
}

/// One stage's wall time and whether it was reused from an earlier run.
#[derive(Clone, Copy, Debug)]
struct Stage {
    secs: f64,
    reused: bool,
}

impl Bench<'_> {
    fn run(&self, spec: &Spec) -> Result<()> {
        let (marker, stages) = self.prepare(spec)?;
        let vault = data::vault(spec.pairs);
        let vault_csv = self.work.join("vault.csv");
        data::write_vault_csv(&vault_csv, &vault)?;

        eprintln!("starting breach-server serve (loads the PSI databases)");
        let mut server = ServerProcess::start(
            &self.bins,
            &self.store,
            &self.work.join("server.log"),
            Duration::from_secs(self.args.startup_timeout),
        )?;
        let after_load = procs::memory(server.pid())?;
        eprintln!(
            "ready on {} after {:.1}s, peak RSS so far {:.0} MiB",
            server.addr(),
            server.startup.as_secs_f64(),
            after_load.peak_rss as f64 / MIB
        );
        let startup_secs = server.startup.as_secs_f64();
        let listening_secs = server.listening.as_secs_f64();
        let direct = format!("http://{}", server.addr());

        // Bytes on the wire, through the counting proxy. These runs also
        // warm the server up; they are checked but not timed.
        let proxy = Proxy::start(server.addr())?;
        let via_proxy = format!("http://{}", proxy.addr());
        let before = proxy.traffic();
        self.vault_check(&via_proxy, &vault_csv, &vault)?;
        let vault_bytes = diff(proxy.settle(Duration::from_secs(10))?, before);
        let before = proxy.traffic();
        self.password_check(&via_proxy, &vault)?;
        let password_bytes = diff(proxy.settle(Duration::from_secs(10))?, before);
        drop(proxy);
        eprintln!(
            "wire: vault {} up / {} down, password {} up / {} down",
            vault_bytes.up, vault_bytes.down, password_bytes.up, password_bytes.down
        );

        let mut log_offset = fs::metadata(server.log())?.len();
        let mut vault_runs = Vec::new();
        for k in 0..self.args.runs {
            let wall = self.vault_check(&direct, &vault_csv, &vault)?;
            let (log, end) = procs::read_log_from(server.log(), log_offset)?;
            log_offset = end;
            let times = procs::parse_server_times(&log);
            eprintln!(
                "vault check {}/{}: {:.3}s (server: {})",
                k + 1,
                self.args.runs,
                wall.as_secs_f64(),
                describe(&times)
            );
            vault_runs.push((wall, times));
        }
        let mut password_runs = Vec::new();
        for k in 0..self.args.runs {
            let wall = self.password_check(&direct, &vault)?;
            let (log, end) = procs::read_log_from(server.log(), log_offset)?;
            log_offset = end;
            let times = procs::parse_server_times(&log);
            eprintln!(
                "password check {}/{}: {:.3}s (server: {})",
                k + 1,
                self.args.runs,
                wall.as_secs_f64(),
                describe(&times)
            );
            password_runs.push((wall, times));
        }
        server.check_alive()?;
        let memory = procs::memory(server.pid())?;
        let update = match self.args.live_update {
            0 => None,
            n => Some(self.live_update(&mut server, &direct, &vault, n)?),
        };
        drop(server);

        let report = Report {
            marker,
            stages,
            update,
            startup: Startup {
                listening_secs,
                secs: startup_secs,
                peak_rss_after_load: after_load.peak_rss,
            },
            vault_runs,
            password_runs,
            vault_bytes,
            password_bytes,
            peak_rss: memory.peak_rss,
            rss_now: memory.rss,
            store_bytes: dir_size(&self.store),
            psi_bytes: dir_size(&self.store.join("psi")),
            runs: self.args.runs,
        };
        let markdown = report.markdown();
        println!("{markdown}");
        if let Some(path) = &self.args.report {
            fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Generates, imports and builds as needed, reusing what the work
    /// dir's marker says is already done for the same `spec`.
    fn prepare(&self, spec: &Spec) -> Result<(Marker, [Stage; 3])> {
        let marker_path = self.work.join(MARKER);
        let old: Option<Marker> = fs::read(&marker_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut marker = match old {
            Some(m) if m.spec == *spec => {
                eprintln!("reusing corpus in {}", self.work.display());
                m
            }
            other => {
                if self.work.exists() {
                    let empty = fs::read_dir(&self.work)?.next().is_none();
                    ensure!(
                        empty || other.is_some() || marker_path.exists(),
                        "{} is not empty and is not a breach-bench work dir; pick another --work-dir",
                        self.work.display()
                    );
                    fs::remove_dir_all(&self.work)
                        .with_context(|| format!("clearing {}", self.work.display()))?;
                }
                fs::create_dir_all(&self.work)
                    .with_context(|| format!("creating {}", self.work.display()))?;
                eprintln!(
                    "generating {} credential pairs in {}",
                    spec.pairs,
                    self.work.display()
                );
                let started = Instant::now();
                data::write_combo(&self.work.join("combo.txt"), spec.pairs)?;
                let hibp_lines = data::write_hibp(&self.work.join("hibp.txt"), spec.pairs)?;
                let m = Marker {
                    spec: spec.clone(),
                    generate_secs: started.elapsed().as_secs_f64(),
                    combo_bytes: fs::metadata(self.work.join("combo.txt"))?.len(),
                    hibp_lines,
                    import_secs: None,
                    credentials: None,
                    passwords: None,
                    build_secs: None,
                    build_output: None,
                };
                save_marker(&marker_path, &m)?;
                m
            }
        };
        let generate = Stage {
            secs: marker.generate_secs,
            reused: false,
        };

        let import = match marker.import_secs {
            Some(secs) => Stage { secs, reused: true },
            None => {
                if self.store.exists() {
                    // A half-done import from an interrupted run: start
                    // over so the time is that of one clean import.
                    fs::remove_dir_all(&self.store)?;
                }
                eprintln!("breach-server import");
                let started = Instant::now();
                let out = self.server_cmd(&[
                    "import".as_ref(),
                    "--store".as_ref(),
                    self.store.as_os_str(),
                    self.work.join("combo.txt").as_os_str(),
                    self.work.join("hibp.txt").as_os_str(),
                ])?;
                let secs = started.elapsed().as_secs_f64();
                eprint!("{out}");
                let (credentials, passwords) = parse_store_counts(&out)?;
                ensure!(
                    credentials == spec.pairs && passwords == spec.pairs,
                    "the store holds {credentials} credential pairs and {passwords} passwords, \
                     expected {} of each",
                    spec.pairs
                );
                marker.import_secs = Some(secs);
                marker.credentials = Some(credentials);
                marker.passwords = Some(passwords);
                marker.build_secs = None;
                save_marker(&marker_path, &marker)?;
                Stage {
                    secs,
                    reused: false,
                }
            }
        };

        let build = match marker.build_secs {
            Some(secs) => Stage { secs, reused: true },
            None => {
                let psi = self.store.join("psi");
                if psi.exists() {
                    fs::remove_dir_all(&psi)?;
                }
                eprintln!("breach-server build (OPRF-hashes every item; the long part)");
                let started = Instant::now();
                let out = self.server_cmd(&[
                    "build".as_ref(),
                    "--store".as_ref(),
                    self.store.as_os_str(),
                ])?;
                let secs = started.elapsed().as_secs_f64();
                eprint!("{out}");
                marker.build_secs = Some(secs);
                marker.build_output = Some(out);
                save_marker(&marker_path, &marker)?;
                Stage {
                    secs,
                    reused: false,
                }
            }
        };
        Ok((marker, [generate, import, build]))
    }

    /// Runs a `breach-server` subcommand to completion; its stdout.
    fn server_cmd(&self, args: &[&std::ffi::OsStr]) -> Result<String> {
        let out = Command::new(&self.bins.server)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", self.bins.server.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "breach-server {:?} failed ({}):\n{stdout}",
            args.first(),
            out.status
        );
        Ok(stdout)
    }

    /// `breach-client check --json --server URL vault.csv`, checked against
    /// the ground truth; its wall time.
    fn vault_check(&self, url: &str, csv: &Path, vault: &Vault) -> Result<Duration> {
        let started = Instant::now();
        let out = Command::new(&self.bins.client)
            .args(["check", "--json", "--server", url])
            .arg(csv)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.bins.client.display()))?;
        let wall = started.elapsed();
        // Exit 1: something was found (the vault has breached entries).
        ensure!(
            out.status.code() == Some(1),
            "breach-client check exited with {} (expected 1, breaches found):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        verify_vault(&out.stdout, vault)?;
        Ok(wall)
    }

    /// `breach-client check-password --json` with a breached password on
    /// stdin, checked; its wall time.
    fn password_check(&self, url: &str, vault: &Vault) -> Result<Duration> {
        let started = Instant::now();
        let mut child = Command::new(&self.bins.client)
            .args(["check-password", "--json", "--server", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.bins.client.display()))?;
        {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            writeln!(stdin, "{}", vault.breached_password)?;
        }
        let out = child.wait_with_output()?;
        let wall = started.elapsed();
        ensure!(
            out.status.code() == Some(1),
            "breach-client check-password exited with {} (expected 1, found):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        #[derive(Deserialize)]
        struct Answer {
            password_breached: bool,
            password_seen: u64,
        }
        let answer: Answer = serde_json::from_slice(&out.stdout)
            .context("check-password --json printed something else than its JSON answer")?;
        ensure!(
            answer.password_breached && answer.password_seen == vault.breached_password_seen,
            "WRONG ANSWER: check-password said breached={} seen={}, expected breached=true seen={}",
            answer.password_breached,
            answer.password_seen,
            vault.breached_password_seen
        );
        Ok(wall)
    }
}

impl Bench<'_> {
    /// Re-imports `n` pairs of the store (raising their counts, so the
    /// PSI parameters stay and `build` is incremental) into the served
    /// store and builds, while the server keeps serving; waits for both
    /// collections to be swapped, then checks that an updated pair's counts
    /// went up by one.
    fn live_update(
        &self,
        server: &mut ServerProcess,
        url: &str,
        vault: &Vault,
        n: u64,
    ) -> Result<LiveUpdate> {
        let batch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let pairs = self.args.pairs;
        let indices = data::update_indices(pairs, n, batch, vault);
        let combo = self.work.join(format!("update-{batch}.txt"));
        let mut text = String::new();
        for &i in &indices {
            let _ = writeln!(text, "{}:{}", data::username(i), data::password(i));
        }
        fs::write(&combo, text).with_context(|| format!("writing {}", combo.display()))?;
        let probe = indices[indices.len() / 2];
        let csv = self.work.join("update-vault.csv");
        fs::write(
            &csv,
            format!(
                "name,url,username,password,note\nprobe,https://probe.example/,{},{},\n",
                data::username(probe),
                data::password(probe)
            ),
        )?;
        let counts = || -> Result<(u64, u64)> {
            let out = Command::new(&self.bins.client)
                .args(["check", "--json", "--server", url])
                .arg(&csv)
                .stdin(Stdio::null())
                .output()?;
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).with_context(|| {
                    format!(
                        "checking an updated pair: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                })?;
            let r = &json["results"][0];
            Ok((
                r["breach_count"].as_u64().unwrap_or(0),
                r["password_seen"].as_u64().unwrap_or(0),
            ))
        };
        let before = counts()?;
        let log_offset = fs::metadata(server.log())?.len();
        let rss_before = procs::memory(server.pid())?.rss;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = procs::sample_rss(server.pid(), Duration::from_millis(20), stop.clone());
        eprintln!("live update: re-importing {n} pairs and building while serving");
        let started = Instant::now();
        self.server_cmd(&[
            "import".as_ref(),
            "--store".as_ref(),
            self.store.as_os_str(),
            combo.as_os_str(),
        ])?;
        let import_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();
        self.server_cmd(&["build".as_ref(), "--store".as_ref(), self.store.as_os_str()])?;
        let build_secs = started.elapsed().as_secs_f64();
        let built = Instant::now();
        loop {
            let (log, _) = procs::read_log_from(server.log(), log_offset)?;
            if log.matches("database in service").count() >= 2 {
                break;
            }
            server.check_alive()?;
            ensure!(
                built.elapsed() < Duration::from_secs(self.args.startup_timeout),
                "the server did not swap both collections in after the build"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let swap_secs = built.elapsed().as_secs_f64();
        // The old databases are freed when their last query ends.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rss_peak = sampler
            .join()
            .map_err(|_| anyhow!("the memory sampler panicked"))?;
        let rss_after = procs::memory(server.pid())?.rss;
        let after = counts()?;
        ensure!(
            before.0 >= 1 && after == (before.0 + 1, before.1 + 1),
            "WRONG ANSWER: an updated pair counted {before:?} (pair, password) before the \
             update and {after:?} after; expected one more of each"
        );
        eprintln!(
            "live update: import {import_secs:.1}s, build {build_secs:.1}s, swapped {swap_secs:.2}s \
             later; RSS {:.0} -> peak {:.0} -> {:.0} MiB",
            rss_before as f64 / MIB,
            rss_peak as f64 / MIB,
            rss_after as f64 / MIB
        );
        Ok(LiveUpdate {
            pairs: n,
            import_secs,
            build_secs,
            swap_secs,
            rss_before,
            rss_peak,
            rss_after,
        })
    }
}

fn save_marker(path: &Path, marker: &Marker) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(marker)?;
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// `store DIR: X credential pairs, Y passwords` from `import`'s output.
fn parse_store_counts(out: &str) -> Result<(u64, u64)> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("store ") && l.ends_with(" passwords"))
        .ok_or_else(|| anyhow!("no store summary in the import output:\n{out}"))?;
    let (_, counts) = line
        .rsplit_once(": ")
        .ok_or_else(|| anyhow!("unexpected summary `{line}`"))?;
    let numbers: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    match numbers[..] {
        [credentials, passwords] => Ok((credentials, passwords)),
        _ => bail!("unexpected summary `{line}`"),
    }
}

/// Checks `check --json` output against the ground truth.
fn verify_vault(stdout: &[u8], vault: &Vault) -> Result<()> {
    #[derive(Deserialize)]
    struct Report {
        checked: usize,
        results: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        entry: usize,
        url: String,
        username: String,
        credential_breached: bool,
        breach_count: u64,
        password_breached: bool,
        password_seen: u64,
    }
    let report: Report = serde_json::from_slice(stdout)
        .context("check --json printed something else than its JSON report")?;
    ensure!(
        report.checked == vault.entries.len() && report.results.len() == vault.entries.len(),
        "WRONG ANSWER: {} entries checked, {} results, expected {}",
        report.checked,
        report.results.len(),
        vault.entries.len()
    );
    let mut wrong = Vec::new();
    for (got, want) in report.results.iter().zip(&vault.entries) {
        let ok = got.entry == want.record
            && got.url == want.url
            && got.username == want.username
            && got.credential_breached == (want.breach_count > 0)
            && got.breach_count == want.breach_count
            && got.password_breached == (want.password_seen > 0)
            && got.password_seen == want.password_seen;
        if !ok {
            wrong.push(format!(
                "entry {} ({:?}): got pair={}x{} password={}x{}, expected pair count {} \
                 password count {}",
                got.entry,
                want.kind,
                got.credential_breached,
                got.breach_count,
                got.password_breached,
                got.password_seen,
                want.breach_count,
                want.password_seen
            ));
        }
    }
    ensure!(
        wrong.is_empty(),
        "WRONG ANSWER for {} of {} entries:\n{}",
        wrong.len(),
        vault.entries.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    Ok(())
}

fn diff(after: Traffic, before: Traffic) -> Traffic {
    Traffic {
        up: after.up - before.up,
        down: after.down - before.down,
        connections: after.connections - before.connections,
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn describe(times: &ServerTimes) -> String {
    let mut s = String::new();
    for (n, d) in &times.oprf {
        let _ = write!(s, "OPRF {n} {:.1}ms, ", d.as_secs_f64() * 1e3);
    }
    for (c, d) in &times.queries {
        let _ = write!(s, "query {c} {:.3}s, ", d.as_secs_f64());
    }
    s.trim_end_matches(", ").to_owned()
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

struct Startup {
    /// Spawn to `listening on` (bound).
    listening_secs: f64,
    /// Spawn to `ready on` (bound, both PSI databases loaded).
    secs: f64,
    peak_rss_after_load: u64,
}

/// Figures of the live-update stage.
struct LiveUpdate {
    pairs: u64,
    import_secs: f64,
    build_secs: f64,
    /// From `build` returning to both collections swapped in.
    swap_secs: f64,
    rss_before: u64,
    /// Largest resident set sampled from the start of the import until
    /// after the swap.
    rss_peak: u64,
    rss_after: u64,
}

struct Report {
    marker: Marker,
    update: Option<LiveUpdate>,
    stages: [Stage; 3],
    startup: Startup,
    vault_runs: Vec<(Duration, ServerTimes)>,
    password_runs: Vec<(Duration, ServerTimes)>,
    vault_bytes: Traffic,
    password_bytes: Traffic,
    peak_rss: u64,
    rss_now: u64,
    store_bytes: u64,
    psi_bytes: u64,
    runs: u32,
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.1} s")
    }
}

fn bytes(b: u64) -> String {
    format!("{b} B ({:.2} MiB)", b as f64 / MIB)
}

fn walls(runs: &[(Duration, ServerTimes)]) -> Vec<f64> {
    runs.iter().map(|(d, _)| d.as_secs_f64()).collect()
}

/// Median over runs of the longest server query of each run (the vault's
/// two collections are queried concurrently).
fn server_query(runs: &[(Duration, ServerTimes)], collection: Option<&str>) -> f64 {
    median(
        runs.iter()
            .map(|(_, t)| {
                t.queries
                    .iter()
                    .filter(|(c, _)| collection.is_none_or(|want| c == want))
                    .map(|(_, d)| d.as_secs_f64())
                    .fold(0.0, f64::max)
            })
            .collect(),
    )
}

fn server_oprf(runs: &[(Duration, ServerTimes)]) -> f64 {
    median(
        runs.iter()
            .map(|(_, t)| t.oprf.iter().map(|(_, d)| d.as_secs_f64()).sum())
            .collect(),
    )
}

fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let simd: Vec<&str> = ["avx2", "avx512f", "avx512ifma"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    format!("{model} ({})", simd.join(", "))
}

impl Report {
    fn markdown(&self) -> String {
        let m = &self.marker;
        let [generate, import, build] = self.stages;
        let stage = |s: Stage| {
            if s.reused {
                format!("{} (reused from an earlier run)", secs(s.secs))
            } else {
                secs(s.secs)
            }
        };
        let vault_med = median(walls(&self.vault_runs));
        let pw_med = median(walls(&self.password_runs));
        let vault_min = walls(&self.vault_runs)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        let vault_max = walls(&self.vault_runs).into_iter().fold(0.0, f64::max);
        let pw_min = walls(&self.password_runs)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        let pw_max = walls(&self.password_runs).into_iter().fold(0.0, f64::max);
        let rss = self.peak_rss as f64;
        let verdict = |ok: bool| if ok { "yes" } else { "**no**" };
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

        let mut s = String::new();
        let _ = writeln!(
            s,
            "## breach-bench: {} credential pairs, {} passwords\n",
            m.credentials.unwrap_or(0),
            m.passwords.unwrap_or(0)
        );
        let _ = writeln!(
            s,
            "Machine: {} logical cores, {}. Medians of {} runs over loopback; \
             each run is a fresh `breach-client` process (connection, BFV key \
             generation, OPRF, query, decryption).\n",
            cores,
            cpu_model(),
            self.runs
        );
        let _ = writeln!(
            s,
            "| measure | value | target | ratio to target | meets | APSI+HEXL | ratio to APSI+HEXL |"
        );
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- |");
        let _ = writeln!(
            s,
            "| store: credential pairs | {} | 2^20 = 1048576 | | | | |",
            m.credentials.unwrap_or(0)
        );
        let _ = writeln!(
            s,
            "| store: passwords | {} | 2^20 = 1048576 | | | | |",
            m.passwords.unwrap_or(0)
        );
        let _ = writeln!(
            s,
            "| generate corpus ({:.1} MiB combo, {} hibp lines) | {} | | | | | |",
            m.combo_bytes as f64 / MIB,
            m.hibp_lines,
            stage(generate)
        );
        let _ = writeln!(
            s,
            "| `breach-server import` | {} | | | | | |",
            stage(import)
        );
        let _ = writeln!(s, "| `breach-server build` | {} | | | | | |", stage(build));
        let _ = writeln!(
            s,
            "| `breach-server serve`: listening (bound) | {} | | | | | |",
            secs(self.startup.listening_secs)
        );
        let _ = writeln!(
            s,
            "| **`serve` start-up**: ready (every PSI database loaded, answering) | **{}** | 5 s | {:.2} | {} | | |",
            secs(self.startup.secs),
            self.startup.secs / TARGET_STARTUP_SECS,
            verdict(self.startup.secs <= TARGET_STARTUP_SECS)
        );
        let _ = writeln!(
            s,
            "| **vault check**, 300 entries, median (min–max) | **{}** ({:.3}–{:.3}) | 1 s | {:.2} | {} | 0.9 s | {:.2} |",
            secs(vault_med),
            vault_min,
            vault_max,
            vault_med / TARGET_VAULT_SECS,
            verdict(vault_med <= TARGET_VAULT_SECS),
            vault_med / APSI_HEXL_SECS
        );
        let _ = writeln!(
            s,
            "| **password check**, median (min–max) | **{}** ({:.3}–{:.3}) | 0.2 s | {:.2} | {} | 0.9 s | {:.2} |",
            secs(pw_med),
            pw_min,
            pw_max,
            pw_med / TARGET_PASSWORD_SECS,
            verdict(pw_med <= TARGET_PASSWORD_SECS),
            pw_med / APSI_HEXL_SECS
        );
        let _ = writeln!(
            s,
            "| vault check bytes up (client → server) | {} | | | | | |",
            bytes(self.vault_bytes.up)
        );
        let _ = writeln!(
            s,
            "| vault check bytes down (server → client) | {} | | | | | |",
            bytes(self.vault_bytes.down)
        );
        let _ = writeln!(
            s,
            "| password check bytes up | {} | | | | | |",
            bytes(self.password_bytes.up)
        );
        let _ = writeln!(
            s,
            "| password check bytes down | {} | | | | | |",
            bytes(self.password_bytes.down)
        );
        let _ = writeln!(
            s,
            "| **server peak RSS** (VmHWM, after all runs, before the live update) | **{:.0} MiB** | 4096 MiB | {:.2} | {} | | |",
            rss / MIB,
            rss / TARGET_RSS_BYTES,
            verdict(rss <= TARGET_RSS_BYTES)
        );
        let _ = writeln!(
            s,
            "| server peak RSS after loading, before any query | {:.0} MiB | | | | | |",
            self.startup.peak_rss_after_load as f64 / MIB
        );
        let _ = writeln!(
            s,
            "| server RSS after all runs (current) | {:.0} MiB | | | | | |",
            self.rss_now as f64 / MIB
        );
        let _ = writeln!(
            s,
            "| store on disk (SQLite + PSI databases) | {:.0} MiB (PSI databases {:.0} MiB) | | | | | |",
            self.store_bytes as f64 / MIB,
            self.psi_bytes as f64 / MIB
        );
        if let Some(u) = &self.update {
            let _ = writeln!(
                s,
                "| live update: `import` re-counting {} pairs while serving | {} | | | | | |",
                u.pairs,
                secs(u.import_secs)
            );
            let _ = writeln!(
                s,
                "| live update: `build` (incremental) while serving | {} | | | | | |",
                secs(u.build_secs)
            );
            let _ = writeln!(
                s,
                "| live update: `build` done to both collections swapped in | {} | | | | | |",
                secs(u.swap_secs)
            );
            let _ = writeln!(
                s,
                "| **server RSS during the swap** (before / sampled peak / after) | {:.0} / **{:.0}** / {:.0} MiB | | | | | |",
                u.rss_before as f64 / MIB,
                u.rss_peak as f64 / MIB,
                u.rss_after as f64 / MIB
            );
        }

        let _ = writeln!(
            s,
            "\nWhere the time goes (medians, from the server's log; the vault's two \
             collections are queried concurrently):\n"
        );
        let _ = writeln!(s, "| | vault check | password check |");
        let _ = writeln!(s, "| --- | --- | --- |");
        let _ = writeln!(
            s,
            "| end to end (client process wall time) | {} | {} |",
            secs(vault_med),
            secs(pw_med)
        );
        let _ = writeln!(
            s,
            "| server: OPRF evaluation (sum of calls) | {} | {} |",
            secs(server_oprf(&self.vault_runs)),
            secs(server_oprf(&self.password_runs))
        );
        let _ = writeln!(
            s,
            "| server: answering the credentials query | {} | – |",
            secs(server_query(&self.vault_runs, Some("credentials")))
        );
        let _ = writeln!(
            s,
            "| server: answering the passwords query | {} | {} |",
            secs(server_query(&self.vault_runs, Some("passwords"))),
            secs(server_query(&self.password_runs, Some("passwords")))
        );
        let vault_rest = median(
            self.vault_runs
                .iter()
                .map(|(d, t)| {
                    d.as_secs_f64()
                        - t.queries
                            .iter()
                            .map(|(_, q)| q.as_secs_f64())
                            .fold(0.0, f64::max)
                })
                .collect(),
        );
        let pw_rest = median(
            self.password_runs
                .iter()
                .map(|(d, t)| {
                    d.as_secs_f64()
                        - t.queries
                            .iter()
                            .map(|(_, q)| q.as_secs_f64())
                            .fold(0.0, f64::max)
                })
                .collect(),
        );
        let _ = writeln!(
            s,
            "| rest: client (start, keys, encryption, decryption), OPRF, transfers | {} | {} |",
            secs(vault_rest),
            secs(pw_rest)
        );
        if let Some(out) = &m.build_output {
            let _ = writeln!(s, "\n`breach-server build` said:\n\n```text\n{}```", out);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn store_counts() {
        let out = "combo.txt: imported as combo: 5 lines\nstore /x: 5000 credential pairs, 5000 passwords\n";
        assert_eq!(parse_store_counts(out).unwrap(), (5000, 5000));
        assert!(parse_store_counts("nothing").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
