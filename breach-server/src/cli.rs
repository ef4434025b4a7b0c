//! The `breach-server` command line: what the user typed ([`Cli`]) and
//! what it does ([`run`]).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::HumanBytes;

use crate::demo;
use crate::error::{Error, Result};
use crate::import::{self, Format, ImportOptions, ImportReport, Outcome};
use crate::psi_db::{self, BuildAction, BuildOptions, BuildReport};
use crate::server::{self, ServeConfig};
use crate::service::Limits;
use crate::store::{Collection, DB_FILE_NAME, Store};

const AFTER_HELP: &str = "\
Examples:
  # Try it: serve the bundled demo corpus on 127.0.0.1:50051
  breach-server serve

  # Import a combo list and a Pwned Passwords list into ./store
  breach-server import --store ./store leaks/combo.txt pwned-passwords-sha1.txt

  # Build the PSI databases, then serve them
  breach-server build --store ./store
  breach-server serve --store ./store --listen 0.0.0.0:50051

  # What the store and its PSI databases hold
  breach-server stats --store ./store

Logs go to stderr; RUST_LOG=debug (or warn, ...) changes how much.";

const BUILD_HELP: &str = "\
Examples:
  # Build or refresh both collections after an import
  breach-server import --store ./store new-leak.txt
  breach-server build --store ./store

  # Throw the saved databases away and rebuild from the store
  breach-server build --store ./store --force";

const SERVE_HELP: &str = "\
Examples:
  # The bundled demo corpus (built into ~/.local/share/breach-check/demo on first run)
  breach-server serve

  # A real store, all interfaces, a free port chosen by the system
  breach-server serve --store ./store --listen 0.0.0.0:0

  # Tighter limits
  breach-server serve --store ./store --max-concurrent-queries 2 --oprf-rate 20

On start it prints `listening on ADDR` (the real port when --listen asks for
port 0) on stdout. Ctrl-C or SIGTERM stops it after running requests finish.
Health: grpc.health.v1.Health reports SERVING for breach.v1.BreachCheck.";

/// Command-line arguments of `breach-server`.
#[derive(Debug, Parser)]
#[command(
    name = "breach-server",
    version,
    about = "Private password-breach checking service: breach store, PSI databases, gRPC server",
    long_about = "Private password-breach checking service.\n\n\
        The server keeps breached username/password pairs and breached passwords \
        in a local SQLite store, as one-way 32-byte items (see breach-proto's \
        encoding) with a count of how often each was seen. Clients check their \
        credentials against it with an OPRF and homomorphic-encryption PSI, so \
        the server never sees what they check.\n\n\
        `import` loads breach dumps into the store; `build` turns it into PSI \
        sender databases; `serve` answers gRPC clients; `stats` shows what the \
        store and its databases hold. Without any setup, `serve` serves a small \
        bundled demo corpus.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `breach-server` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import breach dumps into the store.
    #[command(
        long_about = "Import breach dumps into the store.\n\n\
            Formats:\n  \
            combo  `username:password` per line, split at the first `:`; the password is \
            taken exactly as written, the username is trimmed and lower-cased. Adds 1 to \
            the pair and 1 to the password.\n  \
            hibp   Pwned Passwords `SHA1HEX:COUNT` per line. Adds COUNT to the password.\n  \
            csv    a header with `username` and `password` columns (any case, other \
            columns ignored), then one credential per record.\n\
            `auto` picks hibp if the first non-empty line is `40 hex digits:digits`, csv \
            if it is such a header, else combo.\n\n\
            Malformed lines are skipped and counted; the first 10 are shown by line \
            number (never by content). Each file is identified by the SHA-256 of its \
            content: importing the same content again is skipped, so counts are never \
            doubled. Lines are committed in batches together with the import's position, \
            so an import that was interrupted (Ctrl-C, kill, crash, power cut) resumes \
            where it stopped when you run the same command again.",
        after_help = "Examples:\n  \
            breach-server import --store ./store combo.txt\n  \
            breach-server import --store ./store --format hibp pwned-passwords-sha1-ordered-by-hash.txt"
    )]
    Import(ImportArgs),
    /// Build or refresh the PSI sender databases from the store.
    #[command(
        long_about = "Build or refresh the PSI sender databases from the store.\n\n\
            One database per collection (credential pairs, passwords), each item \
            labeled with its breach count, saved in STORE/psi/ with the store \
            generation it reflects. Each collection gets its own OPRF key, created \
            on the first build as STORE/psi/<collection>.oprf-key (mode 0600; back \
            it up with the store, never share it).\n\n\
            An up-to-date collection is left alone. A stale one (the store changed) \
            is refreshed incrementally: only new, re-counted and removed items are \
            processed and only the bin bundles they touch are recomputed. A missing \
            or unreadable database, new parameters or --force rebuild it from \
            scratch. Loading a saved database always recomputes its bundles.",
        after_help = BUILD_HELP
    )]
    Build(BuildArgs),
    /// Serve the breach check over gRPC.
    #[command(
        long_about = "Serve the breach check over gRPC (breach.v1.BreachCheck and \
            grpc.health.v1.Health).\n\n\
            Loads the PSI databases of --store, building or refreshing them first if \
            they are missing or stale. Without --store it serves the breach corpus \
            bundled in the binary, imported on first run into DATA_DIR/demo \
            (DATA_DIR: --data-dir, else $XDG_DATA_HOME/breach-check, else \
            ~/.local/share/breach-check).\n\n\
            Requests over the limits get RESOURCE_EXHAUSTED (too large, too many \
            concurrent queries, OPRF rate) or INVALID_ARGUMENT (malformed, too many \
            items); the server keeps serving.",
        after_help = SERVE_HELP
    )]
    Serve(ServeArgs),
    /// Show what the store holds: items per collection, imports, PSI databases.
    #[command(
        long_about = "Show what the store holds: items per collection, size, imports, \
            and for each PSI database the parameters in use, whether it is stale, and \
            its sizes (loading a database recomputes its bundles, so this takes as \
            long as loading it for `serve`).",
        after_help = "Example:\n  breach-server stats --store ./store"
    )]
    Stats(StatsArgs),
}

/// Arguments of `breach-server build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Store directory (as given to `import`).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Rebuild every collection from scratch, even if up to date.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `breach-server serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Store directory; without it, the bundled demo corpus is served.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Where the demo store lives when --store is not given.
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = server::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Most blinded elements in one EvaluateOprf request.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_items_per_query)]
    pub max_items_per_query: usize,
    /// Most queries answered at once (more are refused, not queued).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_queries)]
    pub max_concurrent_queries: usize,
    /// OPRF elements per second each connection may have evaluated, on average.
    #[arg(long, value_name = "N", default_value_t = Limits::default().oprf_elements_per_sec)]
    pub oprf_rate: u32,
    /// OPRF elements a connection may use at once (at least --max-items-per-query).
    #[arg(long, value_name = "N", default_value_t = Limits::default().oprf_burst)]
    pub oprf_burst: u32,
}

impl ServeArgs {
    /// The checked configuration.
    pub fn config(&self) -> Result<ServeConfig> {
        let limits = Limits {
            max_message_bytes: self.max_message_bytes,
            max_items_per_query: self.max_items_per_query,
            max_concurrent_queries: self.max_concurrent_queries,
            oprf_elements_per_sec: self.oprf_rate,
            oprf_burst: self.oprf_burst,
        };
        limits.validate()?;
        Ok(ServeConfig {
            listen: self.listen,
            limits,
        })
    }
}

/// Arguments of `breach-server import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Store directory (created if missing; the database is DIR/breach.sqlite3).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Format of the files.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Lines per transaction (an interruption loses at most this much work,
    /// which the next run redoes).
    #[arg(long, value_name = "N", default_value_t = import::DEFAULT_BATCH_LINES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_lines: u64,
    /// Files to import, in order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `breach-server stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Store directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
}

/// `--format` as typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Detect from the first non-empty line.
    Auto,
    /// `username:password` lines.
    Combo,
    /// Pwned Passwords `SHA1HEX:COUNT` lines.
    Hibp,
    /// CSV with `username` and `password` columns.
    Csv,
}

impl FormatArg {
    fn format(self) -> Option<Format> {
        match self {
            FormatArg::Auto => None,
            FormatArg::Combo => Some(Format::Combo),
            FormatArg::Hibp => Some(Format::Hibp),
            FormatArg::Csv => Some(Format::Csv),
        }
    }
}

/// Runs a parsed command line, writing its report to stdout.
pub fn run(cli: Cli) -> Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Import(args) => import(&args, &mut out),
        Command::Build(args) => build(&args, &mut out),
        Command::Serve(args) => serve(&args, &mut out),
        Command::Stats(args) => stats(&args, &mut out),
    }
}

fn build(args: &BuildArgs, out: &mut impl Write) -> Result<()> {
    let options = BuildOptions {
        progress: true,
        force: args.force,
    };
    if !args.store.join(DB_FILE_NAME).is_file() {
        return Err(Error::NoStore {
            path: args.store.clone(),
        });
    }
    let store = Store::open(&args.store)?;
    for c in Collection::ALL {
        // One collection at a time, each dropped before the next is built:
        // the peak memory is one collection's (both tiers), not both.
        let (db, report) = psi_db::refresh(&store, c, &options)?;
        drop(db);
        write_build_report(&report, out).map_err(stdout_err)?;
    }
    Ok(())
}

fn write_build_report(r: &BuildReport, out: &mut impl Write) -> io::Result<()> {
    let what = match &r.action {
        BuildAction::UpToDate => "up to date".to_string(),
        BuildAction::Full { reason } => format!("built from scratch ({reason})"),
        BuildAction::Incremental {
            added,
            updated,
            removed,
        } => format!("refreshed: {added} added, {updated} re-counted, {removed} removed"),
    };
    writeln!(
        out,
        "{}: {what}; {} items, generation {}, {} on disk, {:.1}s",
        r.collection,
        r.items,
        r.generation,
        HumanBytes(r.file_bytes),
        r.elapsed.as_secs_f64()
    )?;
    for t in &r.tiers {
        writeln!(
            out,
            "  {} tier (queries of up to {} items): {} bundles over {} bundle indices, {} in memory",
            t.tier,
            t.tier.max_query_items(),
            t.stats.bundles,
            t.stats.bundle_indices,
            HumanBytes(t.stats.bytes_in_memory),
        )?;
    }
    Ok(())
}

fn serve(args: &ServeArgs, out: &mut impl Write) -> Result<()> {
    let config = args.config()?;
    let store_dir = match &args.store {
        Some(dir) => dir.clone(),
        None => {
            let data_dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => demo::default_data_dir()?,
            };
            tracing::info!(data_dir = %data_dir.display(), "no --store: serving the bundled demo corpus");
            demo::ensure_demo_store(&data_dir)?
        }
    };
    let options = BuildOptions {
        progress: true,
        force: false,
    };
    let mut dbs = Vec::new();
    for (db, report) in server::build_all(&store_dir, &options)? {
        tracing::info!(
            collection = %report.collection,
            items = report.items,
            generation = report.generation,
            action = ?report.action,
            "PSI database loaded"
        );
        dbs.push(db);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Transport(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let handle = server::serve(dbs, &config).await?;
        writeln!(out, "listening on {}", handle.local_addr()).map_err(stdout_err)?;
        out.flush().map_err(stdout_err)?;
        handle.run_until(server::shutdown_signal()).await
    })
}

fn stdout_err(e: io::Error) -> Error {
    Error::io("<stdout>", e)
}

fn import(args: &ImportArgs, out: &mut impl Write) -> Result<()> {
    let mut store = Store::open(&args.store)?;
    let options = ImportOptions {
        format: args.format.format(),
        batch_lines: args.batch_lines,
        progress: true,
        abort_after_batches: None,
    };
    for file in &args.files {
        let report = import::import_file(&mut store, file, &options)?;
        write_report(&report, out).map_err(stdout_err)?;
    }
    let counts = store.counts()?;
    writeln!(
        out,
        "store {}: {} credential pairs, {} passwords",
        args.store.display(),
        counts.credentials,
        counts.passwords
    )
    .map_err(stdout_err)
}

fn write_report(report: &ImportReport, out: &mut impl Write) -> io::Result<()> {
    let name = report.path.display();
    let totals = format!(
        "{} lines, {} accepted, {} malformed",
        report.lines, report.accepted, report.malformed
    );
    match report.outcome {
        Outcome::AlreadyImported => {
            return writeln!(
                out,
                "{name}: already imported, skipped (re-importing the same file does not \
                 double counts)"
            );
        }
        Outcome::Imported => writeln!(out, "{name}: imported as {}: {totals}", report.format)?,
        Outcome::Resumed { from_line } => writeln!(
            out,
            "{name}: resumed interrupted import after line {from_line}, as {}: {totals}",
            report.format
        )?,
    }
    for m in &report.malformed_examples {
        writeln!(out, "  line {}: {}", m.line, m.reason)?;
    }
    let shown = report.malformed_examples.len() as u64;
    if report.malformed > shown {
        writeln!(
            out,
            "  ({} malformed lines in all{})",
            report.malformed,
            if matches!(report.outcome, Outcome::Resumed { .. }) {
                ", some before the resumption"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

fn stats(args: &StatsArgs, out: &mut impl Write) -> Result<()> {
    let db = args.store.join(DB_FILE_NAME);
    if !db.is_file() {
        return Err(Error::NoStore {
            path: args.store.clone(),
        });
    }
    let store = Store::open(&args.store)?;
    let counts = store.counts()?;
    let imports = store.imports()?;
    let w = |out: &mut dyn Write| -> io::Result<()> {
        writeln!(
            out,
            "store {} ({})",
            args.store.display(),
            HumanBytes(store.size_bytes().unwrap_or(0))
        )?;
        writeln!(
            out,
            "{:<12} {:>14} {:>11}",
            "collection", "items", "generation"
        )?;
        for c in Collection::ALL {
            let generation = store.generation(c).unwrap_or(0);
            writeln!(
                out,
                "{:<12} {:>14} {:>11}",
                c.name(),
                counts.get(c),
                generation
            )?;
        }
        let finished = imports.iter().filter(|i| i.finished_at.is_some()).count();
        writeln!(
            out,
            "imports: {finished} finished, {} unfinished (re-run `import` on those to resume)",
            imports.len() - finished
        )?;
        for i in &imports {
            let when = match i.finished_at {
                Some(t) => format!("finished {}", utc(t)),
                None => format!(
                    "UNFINISHED at line {} ({}/{})",
                    i.lines,
                    HumanBytes(i.byte_offset),
                    HumanBytes(i.file_bytes)
                ),
            };
            writeln!(
                out,
                "  {} [{}] {}: {} lines, {} accepted, {} malformed",
                i.file_name, i.format, when, i.lines, i.accepted, i.malformed
            )?;
        }
        Ok(())
    };
    w(out).map_err(stdout_err)?;
    writeln!(
        out,
        "PSI databases ({}):",
        psi_db::psi_dir(&args.store).display()
    )
    .map_err(stdout_err)?;
    for c in Collection::ALL {
        let line = match psi_db::saved_info(&args.store, c) {
            Ok(None) => format!("  {c}: none (run `breach-server build`)"),
            Ok(Some(info)) => {
                let store_generation = store.generation(c)?;
                let state = if info.generation == store_generation {
                    "up to date".to_string()
                } else {
                    format!("STALE (store is at generation {store_generation})")
                };
                let mut line = format!(
                    "  {c}: {state}, built from generation {}, {} on disk",
                    info.generation,
                    HumanBytes(info.file_bytes),
                );
                for (tier, h) in &info.tiers {
                    let p = &h.params;
                    line.push_str(&format!(
                        "\n    {tier} tier (queries of up to {} items): {} items, {} bundles, \
                         about {} in memory\n      \
                         parameters {}: n={} log q={} t={}, {} bins x {} hashes, \
                         {} items/bin, {} felts/item, query powers {:?}, {}-byte labels",
                        tier.max_query_items(),
                        h.items,
                        h.bundles,
                        HumanBytes(h.bytes_in_memory),
                        hex::encode(&p.fingerprint()[..8]),
                        p.bfv.poly_modulus_degree,
                        p.bfv.coeff_modulus_bits.iter().sum::<u32>(),
                        p.bfv.plain_modulus,
                        p.table_size,
                        p.hash_functions,
                        p.max_items_per_bin,
                        p.felts_per_item,
                        p.query_powers,
                        p.label_byte_count,
                    ));
                }
                line
            }
            Err(e) => format!("  {c}: unusable: {e}"),
        };
        writeln!(out, "{line}").map_err(stdout_err)?;
    }
    Ok(())
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant), for days since 1970-01-01 >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
