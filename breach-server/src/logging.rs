//! Log output of the `breach-server` binary: human-readable text or JSON
//! lines for log shippers, on stderr, filtered by `RUST_LOG` (default
//! `info`).
//!
//! Whatever the format, the service logs only the method, collection,
//! sizes, peer address, elapsed time and outcome of requests: never
//! request contents, items, OPRF elements, keys or passwords.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level.
    Json,
}

/// Installs the global tracing subscriber writing to stderr. Call once,
/// first thing in `main`; a second call leaves the first subscriber in
/// place.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
