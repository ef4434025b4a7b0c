//! `breach-server`: parses the command line, sets up logging and hands it
//! to [`breach_server::cli::run`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use breach_server::logging::LogFormat;
use clap::Parser;

fn main() -> ExitCode {
    let cli = breach_server::cli::Cli::parse();
    let log_format = cli.log_format;
    breach_server::logging::init(log_format);
    match breach_server::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if log_format == LogFormat::Json {
                // Keep stderr all JSON lines for the log shipper.
                tracing::error!(error = format!("{e:#}"), "breach-server failed");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
