//! The `breach-server` command line: what the user typed ([`Cli`]) and
//! what it does ([`run`]).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::HumanBytes;

use crate::bounds::Bounds;
use crate::demo;
use crate::error::{Error, Result};
use crate::front;
use crate::import::{self, Format, ImportOptions, ImportReport, Outcome};
use crate::live::{self, Catalog, ReloadConfig, Reloader};
use crate::logging::LogFormat;
use crate::psi_db::{self, BuildAction, BuildOptions, BuildReport, servable};
use crate::server::{self, ServeConfig};
use crate::service::Limits;
use crate::service::blocking;
use crate::store::{Collection, DB_FILE_NAME, Deployment, Store, UsernameRouting};
use crate::store_error;
use crate::tls::{self, TlsFiles};
use breach_proto::sharding::{MAX_USERNAME_BITS, ShardSpec};

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

  # TLS with a development certificate for localhost
  breach-server dev-cert --out ./tls
  breach-server serve --tls-cert ./tls/server.pem --tls-key ./tls/server-key.pem

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

  # Behind a reverse proxy that appends the client address to X-Forwarded-For
  breach-server serve --store ./store --client-ip-header x-forwarded-for

  # TLS, mutual TLS, Prometheus metrics, JSON logs
  breach-server serve --tls-cert server.pem --tls-key server-key.pem
  breach-server serve --tls-cert server.pem --tls-key server-key.pem --tls-client-ca clients-ca.pem
  breach-server serve --metrics-listen 127.0.0.1:9090     # curl http://127.0.0.1:9090/metrics
  breach-server --log-format json serve

On start it prints `listening on ADDR` (the real port when --listen asks for
port 0) on stdout, then `ready on ADDR` once every database is loaded.
After `import` + `build` on the same store, the new databases are swapped in
without a restart (`kill -HUP PID` makes it look at once). Ctrl-C or SIGTERM
stops it after running requests finish.
Health (grpc.health.v1.Health): `breach.v1.BreachCheck/credentials` and
`breach.v1.BreachCheck/passwords` are SERVING while that collection has a
database loaded; `breach.v1.BreachCheck` and \"\" when all of them are.
gRPC server reflection (v1 and v1alpha) lets grpcurl list and describe the API.";

const FRONT_HELP: &str = "\
Examples:
  # Four shards on this machine, one front
  breach-server keygen --out ./keys
  for i in 0 1 2 3; do
    breach-server import --store ./shard-$i --shard $i/4 dump.txt
    breach-server build --store ./shard-$i --keys ./keys --expected-items 1000000
    breach-server serve --store ./shard-$i --listen 127.0.0.1:$((50061 + i)) \\
        --client-ip-header x-forwarded-for &
  done
  breach-server front --listen 127.0.0.1:50051 --shard http://127.0.0.1:50061 \\
      --shard http://127.0.0.1:50062 --shard http://127.0.0.1:50063 --shard http://127.0.0.1:50064

  # TLS to the shards and to clients
  breach-server front --shard https://shard-0.internal:50051 ... --shard-ca shards-ca.pem \\
      --tls-cert front.pem --tls-key front-key.pem";

const DEV_CERT_HELP: &str = "\
Example:
  breach-server dev-cert --out ./tls
  breach-server serve --tls-cert ./tls/server.pem --tls-key ./tls/server-key.pem
  breach-client check-password --server https://localhost:50051 --ca-cert ./tls/ca.pem";

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
    /// Log format on stderr: `text`, or `json` (one object per line) for
    /// log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
            Binds first (printing `listening on ADDR`), then loads the saved PSI \
            databases of --store without recomputing anything; a database that is \
            missing or older than the store is built (as `build` would) and swapped \
            in when done. Once every collection is served it prints `ready on ADDR`; \
            until then gRPC health says NOT_SERVING and requests get UNAVAILABLE.\n\n\
            Live updates: while it serves, `import` + `build` on the same store write \
            a new database next to the one in use; the server notices it (file watch, \
            a poll every --reload-poll seconds, or SIGHUP), loads it beside the old \
            one and swaps without dropping a request: queries already running finish \
            on the old database. Memory holds both during the swap.\n\n\
            Without --store it serves the breach corpus \
            bundled in the binary, imported on first run into DATA_DIR/demo \
            (DATA_DIR: --data-dir, else $XDG_DATA_HOME/breach-check, else \
            ~/.local/share/breach-check).\n\n\
            Limits are per client (IPv4 address or IPv6 /64, whatever the number of \
            connections) and server-wide. Requests over them get RESOURCE_EXHAUSTED \
            (too large, no query slot free within --query-wait-ms, OPRF or query rate) \
            with a grpc-retry-pushback-ms hint, or INVALID_ARGUMENT (malformed, too \
            many items); the server keeps serving.",
        after_help = SERVE_HELP
    )]
    Serve(Box<ServeArgs>),
    /// Show what the store holds: items per collection, imports, PSI databases.
    #[command(
        long_about = "Show what the store holds: items per collection, size, imports, \
            and for each PSI database the parameters in use, whether it is stale, and \
            its sizes (loading a database recomputes its bundles, so this takes as \
            long as loading it for `serve`).",
        after_help = "Example:\n  breach-server stats --store ./store"
    )]
    Stats(StatsArgs),
    /// Write a development CA and a TLS certificate for localhost.
    #[command(
        long_about = "Write a development CA and a TLS certificate for localhost.\n\n\
            Writes into DIR: ca.pem (the CA certificate clients trust with \
            --ca-cert), server.pem and server-key.pem (a certificate for DNS name \
            localhost and IP addresses 127.0.0.1 and ::1, signed by that CA, for \
            `serve --tls-cert/--tls-key`), and client.pem and client-key.pem (a \
            client certificate for trying mutual TLS with `serve --tls-client-ca \
            DIR/ca.pem`). Keys are ECDSA P-256, written with mode 0600; the \
            certificates are valid for 365 days. The CA's key is not kept, so \
            nothing else can be signed with it. Existing files are not replaced \
            unless --force is given.\n\n\
            For development and tests only: production servers need a \
            certificate from a CA their clients already trust.",
        after_help = DEV_CERT_HELP
    )]
    DevCert(DevCertArgs),
    /// Create the shared keys of a sharded deployment.
    #[command(
        long_about = "Create the shared keys of a sharded deployment.\n\n\
            Writes into DIR (created with mode 0700): credentials.oprf-key and \
            passwords.oprf-key (one OPRF key per collection, shared by every shard: \
            a client does one OPRF round whichever shard holds its items) and \
            username-routing.key (the hash key of `import --route-username-bits`). \
            32 bytes each from the OS random number generator, mode 0600. Existing \
            keys are never replaced.\n\n\
            Give DIR to `build --keys DIR` on every shard. Keep it like any secret \
            key: whoever holds the OPRF keys can test guesses against the \
            databases offline.",
        after_help = "Example:\n  \
            breach-server keygen --out ./keys\n  \
            breach-server import --store ./shard-0 --shard 0/4 dump.txt\n  \
            breach-server build --store ./shard-0 --keys ./keys --expected-items 1000000"
    )]
    Keygen(KeygenArgs),
    /// Serve the breach check from several shards, as one service.
    #[command(
        long_about = "Serve the breach check from several shards, as one service.\n\n\
            A stateless front: no store, no key, no data. It serves the same gRPC API as \
            `serve`, so clients need no new option. GetParameters answers with the \
            shards' parameters, polled every --poll-interval seconds and checked \
            identical on every shard (same PSI parameters from `build \
            --expected-items`, same OPRF key from `build --keys`, each shard's \
            `import --shard I/N` matching its place in the --shard list). \
            EvaluateOprf goes to one shard. Query goes to every shard at once and \
            each shard's answer streams back, tagged with the shard; the client \
            decodes them all with its one key. If any shard cannot answer, the whole \
            check fails with UNAVAILABLE naming the shard: never a partial answer.\n\n\
            Prints `listening on ADDR`, then `ready on ADDR` once every shard serves \
            consistently; a reachable shard that disagrees stops it at start-up with \
            a message naming the shard. Health follows the shards (`liveness` is \
            always SERVING). Per-client limits apply here; the client address goes \
            to the shards in x-forwarded-for, so run the shards with \
            `--client-ip-header x-forwarded-for` and reachable only from the front.",
        after_help = FRONT_HELP
    )]
    Front(Box<FrontArgs>),
}

/// Arguments of `breach-server front`.
#[derive(Debug, Args)]
pub struct FrontArgs {
    /// A shard's URL, http://HOST:PORT or https://HOST:PORT; give one per
    /// shard, shard 0 first.
    #[arg(long = "shard", value_name = "URL", required = true)]
    pub shards: Vec<String>,
    /// CA certificate (PEM) of the shards' TLS certificates, for https:// shards.
    #[arg(long, value_name = "PEM")]
    pub shard_ca: Option<PathBuf>,
    /// Route credential queries by K bits of a keyed hash of the username:
    /// clients reveal K bits per credential, and only that bucket's shards
    /// are asked (the shards must be imported with --route-username-bits K).
    /// Off by default: every query goes to every shard and reveals nothing.
    #[arg(long, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USERNAME_BITS)))]
    pub route_username_bits: Option<u32>,
    /// Seconds between polls of the shards' parameters and health.
    #[arg(long, value_name = "SECONDS", default_value_t = front::DEFAULT_POLL_INTERVAL.as_secs_f64(),
          value_parser = parse_poll)]
    pub poll_interval: f64,
    /// Seconds to wait for a shard's answer to a poll or an OPRF call.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_poll)]
    pub shard_timeout: f64,
    /// Listening, TLS, metrics and limits.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Arguments of `breach-server keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Folder to write the keys into (created with mode 0700).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Arguments of `breach-server dev-cert`.
#[derive(Debug, Args)]
pub struct DevCertArgs {
    /// Directory to write the certificates and keys into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
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
    /// Use the shared OPRF keys in this folder (made by `keygen`) instead
    /// of the store's own: every shard of a deployment builds with the
    /// same keys. They are copied into STORE/psi/ (mode 0600). A store
    /// that already has other keys is refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Size the PSI parameters for this many items per shard instead of
    /// the items held, so that every shard serves identical parameters:
    /// `N` for both collections, or `credentials=N` / `passwords=N`
    /// (repeat the flag). Remembered by the store for later builds; a
    /// collection holding more is refused. `0` clears it.
    #[arg(long, value_name = "[COLLECTION=]N")]
    pub expected_items: Vec<ExpectedItems>,
}

/// One `--expected-items` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedItems {
    /// The collection, or both when `None`.
    pub collection: Option<Collection>,
    /// Items per shard (0: size for the items held again).
    pub items: u64,
}

impl std::str::FromStr for ExpectedItems {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (collection, n) = match s.split_once('=') {
            None => (None, s),
            Some((c, n)) => {
                let c = Collection::ALL
                    .into_iter()
                    .find(|x| x.name() == c.trim())
                    .ok_or_else(|| {
                        format!("unknown collection {c:?} (credentials or passwords)")
                    })?;
                (Some(c), n)
            }
        };
        let items = n
            .trim()
            .replace('_', "")
            .parse::<u64>()
            .map_err(|_| format!("{n:?} is not a number of items"))?;
        Ok(Self { collection, items })
    }
}

/// Arguments of `breach-server serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Store directory, served as it is: its keys and PSI databases must
    /// exist (run `build` first); a stale database is served with a
    /// warning. Without it, the bundled demo corpus is served (built on
    /// first run).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Where the demo store lives when --store is not given.
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub data_dir: Option<PathBuf>,
    /// Listening, TLS, metrics and limits.
    #[command(flatten)]
    pub net: NetArgs,
    /// Seconds between looks at the database files when no file event
    /// arrives (a file watch notices new databases at once where the file
    /// system supports it; SIGHUP forces a look).
    #[arg(long, value_name = "SECONDS", default_value_t = live::DEFAULT_POLL_INTERVAL.as_secs_f64(),
          value_parser = parse_poll)]
    pub reload_poll: f64,
    /// Do not watch the database folder for changes (for file systems
    /// whose events are unreliable); new databases are then noticed by the
    /// poll and SIGHUP only.
    #[arg(long)]
    pub no_file_watch: bool,
}

fn parse_poll(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.05..=86_400.0).contains(&v) => Ok(v),
        Ok(_) => Err("must be between 0.05 and 86400 seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// How a server or a front listens and what it allows clients.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Address to listen on, HOST:PORT (a host name, an IPv4 address, or an
    /// IPv6 address in brackets); port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", default_value = server::DEFAULT_LISTEN)]
    pub listen: String,
    /// Serve over TLS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM; must not be readable by others).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP on this address (off by default).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Most blinded elements in one EvaluateOprf request.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_items_per_query)]
    pub max_items_per_query: usize,
    /// Most queries answered at once on the server.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_queries)]
    pub max_concurrent_queries: usize,
    /// Most queries answered at once for one client (IPv4 address or IPv6 /64).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_queries_per_client)]
    pub max_concurrent_queries_per_client: usize,
    /// How long a query may wait for a free slot before RESOURCE_EXHAUSTED (0: refuse at once).
    #[arg(long, value_name = "MS", default_value_t = Limits::default().query_admission_wait.as_millis() as u64)]
    pub query_wait_ms: u64,
    /// OPRF elements per second each client may have evaluated, on average
    /// (the sustained password-guessing bound per IPv4 address or IPv6 /64).
    #[arg(long, value_name = "N", default_value_t = Limits::default().oprf_elements_per_sec)]
    pub oprf_rate: u32,
    /// OPRF elements a client may use at once (at least --max-items-per-query).
    #[arg(long, value_name = "N", default_value_t = Limits::default().oprf_burst)]
    pub oprf_burst: u32,
    /// Queries per minute each client may make, on average.
    #[arg(long, value_name = "N", default_value_t = Limits::default().queries_per_minute)]
    pub query_rate: u32,
    /// Queries a client may make at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().query_burst)]
    pub query_burst: u32,
    /// OPRF elements per second for all clients together.
    #[arg(long, value_name = "N", default_value_t = Limits::default().global_oprf_elements_per_sec)]
    pub global_oprf_rate: u32,
    /// OPRF elements all clients together may use at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().global_oprf_burst)]
    pub global_oprf_burst: u32,
    /// Most clients tracked per rate budget; new clients beyond it share one budget.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_tracked_clients)]
    pub max_tracked_clients: usize,
    /// Behind a reverse proxy: take the client address from the rightmost entry
    /// of this header (e.g. x-forwarded-for), which the proxy must append.
    /// Off by default: the header is then ignored, since clients can forge it.
    #[arg(long, value_name = "NAME")]
    pub client_ip_header: Option<String>,
    /// Threads answering queries, a pool apart from OPRF evaluation's
    /// (0: one per core).
    #[arg(long, value_name = "N", default_value_t = Bounds::default().answer_threads)]
    pub answer_threads: usize,
    /// Result parts of one query computed or waiting for the client at
    /// once; the next part starts only when the client has taken one.
    #[arg(long, value_name = "N", default_value_t = Bounds::default().answer_window)]
    pub answer_window: usize,
    /// Seconds a computed part may wait for the client to read it before
    /// the call ends with DEADLINE_EXCEEDED.
    #[arg(long, value_name = "SECONDS", default_value_t = Bounds::default().send_timeout.as_secs())]
    pub send_timeout: u64,
    /// Longest any call may run, in seconds (a shorter grpc-timeout from
    /// the client is honoured).
    #[arg(long, value_name = "SECONDS", default_value_t = Bounds::default().max_call_duration.as_secs())]
    pub max_call_seconds: u64,
    /// Largest Query request, in bytes (EvaluateOprf requests are limited
    /// to what --max-items-per-query elements take).
    #[arg(long, value_name = "BYTES", default_value_t = Bounds::default().max_query_bytes)]
    pub max_query_bytes: usize,
    /// Calls one HTTP/2 connection may have open at once.
    #[arg(long, value_name = "N", default_value_t = Bounds::default().max_streams_per_connection)]
    pub max_streams_per_connection: u32,
    /// Seconds between HTTP/2 keepalive pings (a ping unanswered for
    /// --keepalive-timeout closes the connection).
    #[arg(long, value_name = "SECONDS", default_value_t = Bounds::default().keepalive_interval.as_secs())]
    pub keepalive_interval: u64,
    /// Seconds a keepalive ping may go unanswered.
    #[arg(long, value_name = "SECONDS", default_value_t = Bounds::default().keepalive_timeout.as_secs())]
    pub keepalive_timeout: u64,
    /// Seconds after which a connection is closed gracefully (running
    /// calls get --max-call-seconds to finish).
    #[arg(long, value_name = "SECONDS", default_value_t = Bounds::default().max_connection_age.as_secs())]
    pub max_connection_age: u64,
}

impl ServeArgs {
    /// The checked configuration.
    pub fn config(&self) -> Result<ServeConfig> {
        self.net.config()
    }
}

impl NetArgs {
    /// The checked configuration.
    pub fn config(&self) -> Result<ServeConfig> {
        let limits = Limits {
            max_message_bytes: self.max_message_bytes,
            max_items_per_query: self.max_items_per_query,
            max_concurrent_queries: self.max_concurrent_queries,
            max_concurrent_queries_per_client: self.max_concurrent_queries_per_client,
            query_admission_wait: std::time::Duration::from_millis(self.query_wait_ms),
            oprf_elements_per_sec: self.oprf_rate,
            oprf_burst: self.oprf_burst,
            queries_per_minute: self.query_rate,
            query_burst: self.query_burst,
            global_oprf_elements_per_sec: self.global_oprf_rate,
            global_oprf_burst: self.global_oprf_burst,
            max_tracked_clients: self.max_tracked_clients,
            client_ip_header: self.client_ip_header.clone(),
            bounds: Bounds {
                answer_threads: self.answer_threads,
                answer_window: self.answer_window,
                send_timeout: Duration::from_secs(self.send_timeout),
                max_call_duration: Duration::from_secs(self.max_call_seconds),
                max_query_bytes: self.max_query_bytes,
                max_streams_per_connection: self.max_streams_per_connection,
                keepalive_interval: Duration::from_secs(self.keepalive_interval),
                keepalive_timeout: Duration::from_secs(self.keepalive_timeout),
                max_connection_age: Duration::from_secs(self.max_connection_age),
            },
        };
        limits.validate()?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }
                .load()?,
            ),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "--tls-cert and --tls-key must be given together".into(),
                ));
            }
        };
        Ok(ServeConfig {
            listen: self.listen.clone(),
            limits,
            tls,
            metrics_listen: self.metrics_listen,
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
    /// Keep only the items of shard I of N (sharded deployments: every
    /// shard imports the same files into its own store). The store
    /// remembers its shard; later imports may omit this.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardSpec>,
    /// Split credential pairs by K bits of a keyed hash of the username
    /// (for `front --route-username-bits K`); needs --keys for the hash key.
    #[arg(long, value_name = "K", requires_all = ["shard", "keys"],
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USERNAME_BITS)))]
    pub route_username_bits: Option<u32>,
    /// Folder made by `keygen` (for its username-routing key).
    #[arg(long, value_name = "DIR", requires = "route_username_bits")]
    pub keys: Option<PathBuf>,
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
        Command::Import(args) => {
            import(&args, &mut out).map_err(|e| store_error::explain(&args.store, e))
        }
        Command::Build(args) => {
            build(&args, &mut out).map_err(|e| store_error::explain(&args.store, e))
        }
        Command::Serve(args) => serve(&args, &mut out),
        Command::Stats(args) => {
            stats(&args, &mut out).map_err(|e| store_error::explain(&args.store, e))
        }
        Command::DevCert(args) => dev_cert(&args, &mut out),
        Command::Keygen(args) => keygen(&args, &mut out),
        Command::Front(args) => run_front(&args, &mut out),
    }
}

fn run_front(args: &FrontArgs, out: &mut impl Write) -> Result<()> {
    let config = front::FrontConfig {
        serve: args.net.config()?,
        shards: args.shards.clone(),
        shard_ca: args.shard_ca.clone(),
        route_username_bits: args.route_username_bits,
        poll_interval: Duration::from_secs_f64(args.poll_interval),
        shard_timeout: Duration::from_secs_f64(args.shard_timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Transport(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut handle = front::start(&config).await?;
        let addr = handle.local_addr();
        if let Some(m) = args.net.metrics_listen {
            writeln!(out, "metrics on http://{m}/metrics").map_err(stdout_err)?;
        }
        writeln!(out, "listening on {addr}").map_err(stdout_err)?;
        out.flush().map_err(stdout_err)?;
        tokio::select! {
            r = handle.wait_ready() => r?,
            r = server::shutdown_signal() => return r,
        }
        tracing::info!(
            shards = config.shards.len(),
            "ready: every shard serves with consistent parameters"
        );
        if let Err(e) = writeln!(out, "ready on {addr}").and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write `ready on` to stdout");
        }
        handle.run_until(server::shutdown_signal()).await
    })
}

fn keygen(args: &KeygenArgs, out: &mut impl Write) -> Result<()> {
    let files = psi_db::keygen(&args.out)?;
    for f in &files {
        writeln!(out, "wrote {} (mode 0600)", f.display()).map_err(stdout_err)?;
    }
    writeln!(
        out,
        "use it on every shard: breach-server build --store STORE --keys {} --expected-items N",
        args.out.display()
    )
    .map_err(stdout_err)
}

fn dev_cert(args: &DevCertArgs, out: &mut impl Write) -> Result<()> {
    let written = tls::write_dev_cert(&args.out, args.force)?;
    let d = |p: &std::path::Path| p.display().to_string();
    writeln!(
        out,
        "wrote {} (CA), {} and {} (server, for localhost, 127.0.0.1, ::1), \
         {} and {} (client, for mutual TLS); valid {} days\n\
         serve:  breach-server serve --tls-cert {} --tls-key {}\n\
         check:  breach-client check-password --server https://localhost:50051 --ca-cert {}",
        d(&written.ca_cert),
        d(&written.server_cert),
        d(&written.server_key),
        d(&written.client_cert),
        d(&written.client_key),
        tls::DEV_CERT_DAYS,
        d(&written.server_cert),
        d(&written.server_key),
        d(&written.ca_cert),
    )
    .map_err(stdout_err)
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
    let mut store = Store::open(&args.store)?;
    let mut force = args.force;
    if let Some(keys) = &args.keys {
        for (c, action) in psi_db::install_keys(&args.store, keys, args.force)? {
            match action {
                psi_db::KeyInstall::Same => {}
                psi_db::KeyInstall::Installed => {
                    writeln!(out, "{c}: using the shared OPRF key of {}", keys.display())
                        .map_err(stdout_err)?;
                }
                psi_db::KeyInstall::Replaced => {
                    writeln!(
                        out,
                        "{c}: OPRF key replaced by {}'s; rebuilding",
                        keys.display()
                    )
                    .map_err(stdout_err)?;
                    force = true;
                }
            }
        }
    }
    for e in &args.expected_items {
        for c in Collection::ALL {
            if e.collection.is_none_or(|x| x == c) {
                store.set_sized_for(c, (e.items > 0).then_some(e.items))?;
            }
        }
    }
    let options = BuildOptions { force, ..options };
    let deployment = store.deployment()?;
    if deployment != Default::default() {
        writeln!(out, "store {}: {deployment}", args.store.display()).map_err(stdout_err)?;
    }
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
            "  {} tier ({}): {} bundles over {} bundle indices, {} in memory",
            t.tier,
            query_size(t.tier.max_query_items()),
            t.stats.bundles,
            t.stats.bundle_indices,
            HumanBytes(t.stats.bytes_in_memory),
        )?;
    }
    Ok(())
}

fn serve(args: &ServeArgs, out: &mut impl Write) -> Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Transport(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        // Bind first: an unusable address is reported at once, and health
        // says NOT_SERVING while the databases load.
        let listener = server::bind(&config.listen).await?;
        let catalog = Arc::new(Catalog::new(&Collection::ALL));
        // A shard says which shard it is from the start (a front polling
        // it while it loads must not take it for another one).
        if let Some(dir) = &args.store
            && dir.join(DB_FILE_NAME).is_file()
        {
            let dir = dir.clone();
            catalog.set_deployment(blocking(move || Store::open(&dir)?.deployment()).await?);
        }
        let handle = server::serve_on(listener, catalog.clone(), &config).await?;
        // A mistyped --store fails next (after the addresses, which fail
        // first), before anything is printed.
        if let Some(dir) = &args.store
            && !dir.join(DB_FILE_NAME).is_file()
        {
            return Err(Error::NoStore { path: dir.clone() });
        }
        // A store is served as it is: a missing or damaged key or database
        // stops here (see psi_db::servable); only the demo builds.
        if let Some(dir) = args.store.clone() {
            let stale = blocking(move || servable::check(&dir, &Collection::ALL)).await?;
            for s in stale {
                tracing::warn!(
                    collection = %s.collection,
                    built_from_generation = s.built_from,
                    store_generation = s.store,
                    "PSI database older than the store: serving it as it is; run \
                     `breach-server build --store DIR` to bring it up to date"
                );
            }
        }
        let addr = handle.local_addr();
        if let Some(m) = args.net.metrics_listen {
            writeln!(out, "metrics on http://{m}/metrics").map_err(stdout_err)?;
        }
        writeln!(out, "listening on {addr}").map_err(stdout_err)?;
        out.flush().map_err(stdout_err)?;

        let (store, data_dir) = (args.store.clone(), args.data_dir.clone());
        let store_dir = blocking(move || match store {
            Some(dir) => Ok(dir),
            None => {
                let data_dir = match data_dir {
                    Some(d) => d,
                    None => demo::default_data_dir()?,
                };
                tracing::info!(data_dir = %data_dir.display(), "no --store: serving the bundled demo corpus");
                demo::ensure_demo_store(&data_dir)
            }
        })
        .await?;
        let dir = store_dir.clone();
        let deployment = blocking(move || Store::open(&dir)?.deployment()).await?;
        if deployment != Deployment::default() {
            tracing::info!(%deployment, "serving one shard of a sharded deployment");
        }
        catalog.set_deployment(deployment);
        let reloader = Reloader::spawn(
            catalog.clone(),
            ReloadConfig {
                store_dir: store_dir.clone(),
                poll_interval: Duration::from_secs_f64(args.reload_poll),
                watch: !args.no_file_watch,
            },
        );
        // What is on disk serves at once. The demo then builds what is
        // missing or older than its corpus and swaps it in when done.
        reloader.check_now().await?;
        if args.store.is_some() {
            if let Some(&c) = Collection::ALL.iter().find(|&&c| catalog.get(c).is_err()) {
                let path = psi_db::db_path(&store_dir, c);
                let failure = catalog
                    .load_failure(c)
                    .unwrap_or_else(|| "did not load".into());
                let prefix = format!("{}: ", path.display());
                let reason = failure.strip_prefix(&prefix).unwrap_or(&failure).to_string();
                return Err(Error::NotServable {
                    path,
                    reason,
                    store: store_dir,
                });
            }
        } else {
            let built = blocking(move || build_outdated(&store_dir)).await;
            match built {
                Ok(0) => {}
                Ok(_) => reloader.check_now().await?,
                Err(e) if catalog.is_ready() => {
                    tracing::error!(error = %e, "building the outdated demo databases failed; serving the saved ones");
                }
                Err(e) => return Err(e),
            }
        }
        if !catalog.is_ready() {
            let missing: Vec<String> = Collection::ALL
                .iter()
                .filter(|&&c| catalog.get(c).is_err())
                .map(|c| c.to_string())
                .collect();
            return Err(Error::Config(format!(
                "no usable PSI database for {} (see the log; `breach-server build --store DIR` rebuilds)",
                missing.join(", ")
            )));
        }
        let generations: Vec<String> = catalog
            .loaded()
            .iter()
            .map(|db| format!("{} generation {}", db.collection, db.generation))
            .collect();
        // Health follows the catalog in its own task: say `ready on` once
        // it reports SERVING too, so a probe right after agrees.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !handle.health().all_serving().await && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::info!(databases = %generations.join(", "), "ready");
        // `ready on` is the last line on stdout: scripts may stop reading
        // (and close the pipe) there, so a failed write is only logged.
        if let Err(e) = writeln!(out, "ready on {addr}").and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write `ready on` to stdout");
        }
        let hup = tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot install the SIGHUP handler; file watch and polling still run");
                // Keep the reloader (owned here) running.
                return std::future::pending::<()>().await;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: looking for new databases");
                reloader.trigger();
            }
        });
        let result = handle.run_until(server::shutdown_signal()).await;
        hup.abort();
        result
    })
}

/// Builds every collection whose saved database is missing or older than
/// the store (what `build` would do); returns how many it built. Only for
/// the demo store: `serve --store` never builds.
fn build_outdated(store_dir: &std::path::Path) -> Result<usize> {
    let store = Store::open(store_dir)?;
    let mut built = 0;
    for &c in &Collection::ALL {
        if !psi_db::is_stale(&store, c)? {
            continue;
        }
        tracing::info!(collection = %c, "PSI database missing or older than the store: building it");
        let options = BuildOptions {
            progress: false,
            force: false,
        };
        let (_, report) = psi_db::refresh(&store, c, &options)?;
        tracing::info!(collection = %c, action = ?report.action, generation = report.generation, "PSI database built");
        built += 1;
    }
    Ok(built)
}

/// "queries of one item" / "queries of up to N items".
fn query_size(items: u64) -> String {
    if items == 1 {
        "queries of one item".into()
    } else {
        format!("queries of up to {items} items")
    }
}

fn stdout_err(e: io::Error) -> Error {
    Error::io("<stdout>", e)
}

fn import(args: &ImportArgs, out: &mut impl Write) -> Result<()> {
    let mut store = Store::open(&args.store)?;
    if let Some(shard) = args.shard {
        let routing = match (args.route_username_bits, &args.keys) {
            (Some(bits), Some(keys)) => Some(UsernameRouting {
                bits,
                key: psi_db::read_routing_key(keys)?,
            }),
            _ => None,
        };
        store.set_deployment(&Deployment { shard, routing })?;
    }
    let deployment = store.deployment()?;
    if deployment != Deployment::default() {
        writeln!(out, "store {}: {deployment}", args.store.display()).map_err(stdout_err)?;
    }
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
    let deployment = store.deployment()?;
    let sized_for: std::collections::BTreeMap<Collection, Option<u64>> = Collection::ALL
        .iter()
        .map(|&c| Ok((c, store.sized_for(c)?)))
        .collect::<Result<_>>()?;
    let w = |out: &mut dyn Write| -> io::Result<()> {
        writeln!(
            out,
            "store {} ({})",
            args.store.display(),
            HumanBytes(store.size_bytes().unwrap_or(0))
        )?;
        writeln!(out, "shard: {}", deployment)?;
        for c in Collection::ALL {
            if let Some(n) = sized_for.get(&c).copied().flatten() {
                writeln!(
                    out,
                    "{c}: PSI parameters sized for {n} items (--expected-items)"
                )?;
            }
        }
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
                        "\n    {tier} tier ({}): {} items, {} bundles, \
                         about {} in memory\n      \
                         parameters {}: n={} log q={} t={}, {} bins x {} hashes, \
                         {} items/bin, {} felts/item, query powers {:?}, {}-byte labels",
                        query_size(tier.max_query_items()),
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
