//! `breach-client`: checks a password-manager export (or one password)
//! against a breach server without revealing it. See `breach-client --help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    breach_client::cli::run()
}
