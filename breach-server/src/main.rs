//! `breach-server`: parses the command line, sets up logging and hands it
//! to [`breach_server::cli::run`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = breach_server::cli::Cli::parse();
    breach_server::logging::init(cli.log_format);
    match breach_server::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
