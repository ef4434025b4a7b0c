//! The `breach-server` command line: what the user typed ([`Cli`]) and
//! what it does ([`run`]).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::HumanBytes;

use crate::error::{Error, Result};
use crate::import::{self, Format, ImportOptions, ImportReport, Outcome};
use crate::store::{Collection, DB_FILE_NAME, Store};

const AFTER_HELP: &str = "\
Examples:
  # Import a combo list and a Pwned Passwords list into ./store
  breach-server import --store ./store leaks/combo.txt pwned-passwords-sha1.txt

  # Force the format (auto-detection looks at the first non-empty line)
  breach-server import --store ./store --format csv export.csv

  # What the store holds
  breach-server stats --store ./store

Set RUST_LOG=info for more detail on stderr.";

/// Command-line arguments of `breach-server`.
#[derive(Debug, Parser)]
#[command(
    name = "breach-server",
    version,
    about = "Private password-breach checking service: breach store and importers",
    long_about = "Private password-breach checking service.\n\n\
        The server keeps breached username/password pairs and breached passwords \
        in a local SQLite store, as one-way 32-byte items (see breach-proto's \
        encoding) with a count of how often each was seen. Clients check their \
        credentials against it with an OPRF and homomorphic-encryption PSI, so \
        the server never sees what they check.\n\n\
        `import` loads breach dumps into the store; `stats` shows what it holds.",
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
    /// Show what the store holds: items per collection, size, imports.
    #[command(after_help = "Example:\n  breach-server stats --store ./store")]
    Stats(StatsArgs),
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
        Command::Stats(args) => stats(&args, &mut out),
    }
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
    w(out).map_err(stdout_err)
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
