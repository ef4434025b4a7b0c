//! The `breach-client` command line: argument parsing, the checked
//! configuration built from it, output and exit status.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zeroize::Zeroizing;

use crate::check::{CheckOptions, DEFAULT_SERVER, Progress, check_password, check_vault};
use crate::retry::RetryPolicy;
use crate::vault::{VaultFormat, read_vault_file};

/// Exit status: nothing was found in the breach data.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: at least one credential or password was found.
pub const EXIT_BREACHED: u8 = 1;
/// Exit status: the check could not be done (bad file, server error, ...).
pub const EXIT_ERROR: u8 = 2;

const ABOUT: &str = "Checks saved passwords against a breach server without revealing them";

const LONG_ABOUT: &str = "\
Checks saved passwords against a breach server without revealing them.

Each login of a password-manager export is checked twice: is this
username+password pair in a known breach, and has this password been seen
in breaches at all (under any username)? The answer comes with how often.

What is sent: the client hashes every credential and password, blinds the
hashes with fresh random numbers (an oblivious PRF, RFC 9497) and sends the
blinded points; then it sends its query encrypted under a homomorphic (BFV)
key made for this run. The server computes on the ciphertexts without being
able to read them and sends encrypted answers only this client can open.

What is never sent: usernames, passwords, hashes of either, or the secret
key. The server does not learn what was checked or whether anything
matched; it sees only about how many entries were checked. Passwords are
never printed or logged.";

const AFTER_HELP: &str = "\
Examples:
  breach-client check ~/Downloads/Chrome\\ Passwords.csv
  breach-client check --server http://breach.internal:50051 --format bitwarden export.csv
  breach-client check --server https://localhost:50051 --ca-cert dev-cert/ca.pem vault.csv
  breach-client check --json vault.csv > report.json
  breach-client check-password                 (asks for the password, not echoed)
  printf '%s\\n' \"$PW\" | breach-client check-password --json

Servers: http://HOST:PORT, or https://HOST:PORT for TLS (the system's
trusted roots, plus --ca-cert for a server with its own CA).

Under load: each call to the server has a deadline (--timeout, default
60 s). When the server is busy (RESOURCE_EXHAUSTED) or unavailable, the
client waits as long as the server asks (or backs off exponentially, with
jitter) and tries again, up to --retry-budget seconds of waiting in all
(default 300; 0 never retries), then says what failed and the server's last
message. When the server swaps in a database with other parameters, the
client fetches them again and redoes that part of the check once.

Exit status: 0 nothing found, 1 something found, 2 error.

Delete the export file when you are done: it holds every password in clear.";

/// What the user typed (clap's view). [`run`] turns it into checked settings.
#[derive(Debug, Parser)]
#[command(
    name = "breach-client",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every login of a password-manager CSV export.
    #[command(after_help = "\
Examples:
  breach-client check passwords.csv
  breach-client check --format 1password --server http://10.0.0.5:50051 1Password.csv
  breach-client check --json --timeout 120 vault.csv
  breach-client check --server https://breach.example:50051 --ca-cert ca.pem vault.csv

The table lists only entries found in breach data, then a summary line,
and how many rows were not checked and why (an empty password, or not a
login: notes, cards, identities).
--json prints every entry: {\"checked\": N, \"results\": [{\"entry\", \"url\",
\"username\", \"credential_breached\", \"breach_count\", \"password_breached\",
\"password_seen\"}]}, entry being the record number in the file (header not
counted), then, only when rows were left out, \"skipped\": {\"empty_password\":
N, \"not_a_login\": M}. Exit status: 0 nothing found, 1 something found, 2 error.")]
    Check(CheckArgs),
    /// Check one password, typed at a hidden prompt or read from stdin.
    #[command(after_help = "\
Examples:
  breach-client check-password
  printf '%s\\n' \"$PW\" | breach-client check-password --json

When stdin is a terminal the password is asked for without echo;
otherwise the first line of stdin is used (without its line ending; spaces
are kept). Only the passwords collection is queried.
Exit status: 0 not found, 1 found, 2 error.")]
    CheckPassword(PasswordArgs),
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Breach server URL: http://HOST:PORT, or https://HOST:PORT for TLS
    #[arg(long, value_name = "URL", default_value = DEFAULT_SERVER)]
    server: String,
    /// Extra CA certificate (PEM) to trust for an https:// server, on top of
    /// the system's roots (e.g. the ca.pem of `breach-server dev-cert`)
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Deadline of each call to the server (and of connecting), in seconds
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        default_value = "60"
    )]
    timeout: Duration,
    /// Most seconds spent waiting to retry calls the server refused because
    /// it was busy or unavailable, over the whole check; 0 never retries
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_budget,
        default_value = "300"
    )]
    retry_budget: Duration,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Export format; auto detects it from the CSV header
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "auto",
        value_parser = PossibleValuesParser::new(
            ["auto", "chrome", "firefox", "safari", "bitwarden", "1password", "keepassxc", "lastpass"]
        )
    )]
    format: String,
    /// Print the full report as JSON on stdout
    #[arg(long)]
    json: bool,
    /// The exported CSV file
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Debug, Args)]
struct PasswordArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the answer as JSON on stdout
    #[arg(long)]
    json: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0 * 365.0) {
        return Err(format!("`{text}`: expected a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_budget(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    parse_seconds(text)
}

/// Parses the process arguments, runs the command, prints the answer and
/// returns the exit status. Errors go to stderr, results to stdout.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let _ = writeln!(io::stderr(), "breach-client: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs parsed arguments; `Ok` carries the exit status.
pub fn run_cli(cli: Cli) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Check(args) => {
            let format = match args.format.as_str() {
                "auto" => None,
                name => Some(name.parse::<VaultFormat>()?),
            };
            let vault = read_vault_file(&args.file, format)?;
            let progress = Spinner::new();
            let options = options(&args.server, &progress)?;
            let report = runtime.block_on(check_vault(&args.server.server, &vault, &options));
            progress.finish();
            let report = report?;
            let mut out = io::stdout().lock();
            if args.json {
                writeln!(out, "{}", report.to_json())?;
            } else {
                write!(out, "{}", report.to_table())?;
            }
            out.flush()?;
            Ok(if report.any_breached() {
                EXIT_BREACHED
            } else {
                EXIT_CLEAN
            })
        }
        Command::CheckPassword(args) => {
            let password = read_password()?;
            let progress = Spinner::new();
            let options = options(&args.server, &progress)?;
            let report = runtime.block_on(check_password(&args.server.server, &password, &options));
            progress.finish();
            let report = report?;
            let mut out = io::stdout().lock();
            if args.json {
                writeln!(out, "{}", report.to_json())?;
            } else {
                write!(out, "{}", report.to_text())?;
            }
            out.flush()?;
            Ok(if report.password_breached {
                EXIT_BREACHED
            } else {
                EXIT_CLEAN
            })
        }
    }
}

fn options(server: &ServerArgs, progress: &Spinner) -> anyhow::Result<CheckOptions> {
    let ca_certificate = match &server.ca_cert {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    let retry = if server.retry_budget.is_zero() {
        RetryPolicy::never()
    } else {
        RetryPolicy {
            budget: server.retry_budget,
            ..RetryPolicy::default()
        }
    };
    Ok(CheckOptions {
        timeout: None,
        call_timeout: server.timeout,
        retry,
        ca_certificate,
        max_items_per_round: None,
        progress: progress.callback(),
    })
}

/// The password for `check-password`: a hidden prompt on a terminal, else
/// the first line of stdin without its line ending (`\n` or `\r\n`).
fn read_password() -> anyhow::Result<Zeroizing<String>> {
    let stdin = io::stdin();
    let password = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("Password to check (not shown): ")
                .context("cannot read the password from the terminal")?,
        )
    } else {
        let mut line = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        line
    };
    if password.is_empty() {
        bail!("no password given (empty input)");
    }
    Ok(password)
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    fn new() -> Spinner {
        if !io::stderr().is_terminal() {
            return Spinner { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:24}] {pos}/{len} rounds {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("connecting");
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner { bar: Some(bar) }
    }

    fn callback(&self) -> Option<Arc<dyn Fn(Progress) + Send + Sync>> {
        let bar = self.bar.clone()?;
        Some(Arc::new(move |event| match event {
            Progress::Connected { .. } => bar.set_message("encrypting and querying"),
            Progress::RoundsPlanned(n) => bar.inc_length(n as u64),
            Progress::RoundDone { .. } => bar.inc(1),
            Progress::Waiting { rpc, wait, .. } => bar.set_message(format!(
                "server busy ({rpc}), retrying in {:.1} s",
                wait.as_secs_f64()
            )),
            Progress::ParametersChanged { .. } => {
                bar.set_message("the server's database changed, checking again")
            }
            Progress::TierChosen { .. } => {}
        }))
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::DEFAULT_CALL_TIMEOUT;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("soon").is_err());
        assert_eq!(parse_budget("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_budget("90").unwrap(), Duration::from_secs(90));
        assert!(parse_budget("-1").is_err());
    }

    #[test]
    fn defaults_match_the_library() {
        let cli = Cli::parse_from(["breach-client", "check", "vault.csv"]);
        let Command::Check(args) = cli.command else {
            panic!("check");
        };
        assert_eq!(args.server.timeout, DEFAULT_CALL_TIMEOUT);
        assert_eq!(args.server.retry_budget, RetryPolicy::default().budget);
    }
}
