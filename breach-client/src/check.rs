//! The OPRF + labeled-PSI check against a breach server over gRPC.
//!
//! One run: `GetParameters` once; then, for each collection (credential
//! pairs, passwords alone) and independently of the other, rounds of one
//! `EvaluateOprf` and one `Query` over the deduplicated items, each round
//! holding at most as many items as the server allows per query and the PSI
//! cuckoo table holds. Both collections run concurrently.
//!
//! What leaves the process: blinded ristretto255 points (uniformly random
//! to the server), then BFV ciphertexts of the cuckoo table under a key
//! generated for this run, plus that key's relinearization keys. Never a
//! username, a password, a hash of either, or the BFV secret key. The server
//! does learn how many items each round has (so about how many entries the
//! vault holds).
//!
//! The CPU-heavy steps (key generation, blinding, query encryption,
//! decryption) run on tokio's blocking pool, so the runtime's workers stay
//! free for the network.
//!
//! Tiers: a server may serve each collection with several parameter sets
//! (`max_query_items` each, e.g. "small" and "full"); the client picks, per
//! collection, the smallest tier that holds all of that collection's items
//! in one query, else the largest tier and several rounds.
//!
//! Under load: every call has a deadline ([`CheckOptions::call_timeout`]);
//! refusals for load are retried as [`crate::retry`] describes. A query the
//! server rejects with `FAILED_PRECONDITION` was built for parameters it no
//! longer serves (it swapped in a rebuilt database): the client fetches the
//! parameters again and redoes that collection once, OPRF included.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use breach_proto::encoding::{Label, credential_item, password_item};
use breach_proto::sharding::{MAX_USERNAME_BITS, ROUTING_KEY_LEN, username_bucket};
use breach_proto::v1::breach_check_client::BreachCheckClient;
use breach_proto::v1::{self as pb, Collection};
use psi_core::wire::Codec;
use psi_core::{PsiParams, Receiver};
use tokio::sync::Semaphore;
use tonic::transport::Channel;
use zeroize::Zeroize;

use crate::answer::AnswerCollector;
use crate::report::{EntryResult, PasswordReport, Report};
use crate::retry::{self, AttemptError, CallError, RetryBudget, RetryPolicy};
use crate::transport::{self, Target};
use crate::vault::Vault;

/// The server the CLI talks to when none is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Message size limit used before the server has told its own, and when it
/// advertises none (0): large enough for any answer psi-core produces.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Default deadline of one call (and of connecting): far above what a
/// healthy server needs for the largest query, so only a stuck call hits it.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Length of one PSI item (a SHA-256 digest, see [`breach_proto::encoding`]).
type Item = [u8; breach_proto::encoding::ITEM_LEN];

/// Why a check failed. No variant carries a password or an item.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server URL cannot be used.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        /// The server URL.
        url: String,
        /// The transport error and its causes.
        detail: String,
    },
    /// TLS could not be set up (no trust roots, unreadable CA file, ...).
    #[error("TLS for {url}: {detail}")]
    Tls {
        /// The server URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The server's TLS certificate is not trusted.
    #[error(
        "the TLS certificate of {url} is not trusted: {detail}; if the server uses its own \
         certificate authority (e.g. one made by `breach-server dev-cert`), pass that CA \
         certificate with --ca-cert PEM"
    )]
    UntrustedCertificate {
        /// The server URL.
        url: String,
        /// What the verification found.
        detail: String,
    },
    /// The URL's scheme does not match what the server speaks (`http://`
    /// against a TLS port, or `https://` against a plaintext one).
    #[error("cannot talk to {url}: {hint}")]
    WrongScheme {
        /// The server URL.
        url: String,
        /// What to use instead.
        hint: String,
    },
    /// The server kept refusing a call for load (RESOURCE_EXHAUSTED or
    /// UNAVAILABLE) and the client stopped retrying.
    #[error(
        "{rpc} gave up after {attempts} {} and {:.1} s of waiting ({reason}); the server's \
         last answer: {} ({:?})",
        if *attempts == 1 { "attempt" } else { "attempts" },
        waited.as_secs_f64(),
        status.message(),
        status.code()
    )]
    GaveUp {
        /// The RPC, with the collection where there is one.
        rpc: String,
        /// Attempts made (the first one included).
        attempts: u32,
        /// Time spent waiting between attempts.
        waited: Duration,
        /// Why the client stopped (budget used up, server asked not to retry, ...).
        reason: String,
        /// The server's last status.
        status: Box<tonic::Status>,
    },
    /// A call got no answer within the per-call deadline.
    #[error(
        "{rpc} did not finish within {} s (the deadline of one call; raise it with --timeout)",
        after.as_secs_f64()
    )]
    CallTimeout {
        /// The RPC, with the collection where there is one.
        rpc: String,
        /// The deadline.
        after: Duration,
    },
    /// The server swapped a collection's parameters again while the client
    /// was redoing its check with the new ones.
    #[error(
        "the server changed its {collection} parameters twice during the check (last: {message}); \
         try again"
    )]
    StaleParameters {
        /// The collection.
        collection: &'static str,
        /// The server's last message.
        message: String,
    },
    /// The server answered an RPC with an error status.
    #[error("server error in {rpc}: {} ({:?})", status.message(), status.code())]
    Rpc {
        /// The RPC (`GetParameters`, `EvaluateOprf`, `Query`).
        rpc: &'static str,
        /// The gRPC status the server sent.
        status: Box<tonic::Status>,
    },
    /// The server does not serve a collection the check needs.
    #[error("the server does not serve the {0} collection")]
    MissingCollection(&'static str),
    /// The server's PSI parameters for a collection cannot be used.
    #[error("the server's {collection} parameters are unusable: {cause}")]
    Parameters {
        /// The collection.
        collection: &'static str,
        /// Why (part of this error's message, so not also its `source`).
        cause: psi_core::Error,
    },
    /// The server sent something that does not follow the protocol.
    #[error("invalid answer from the server ({collection}): {detail}")]
    Protocol {
        /// The collection being queried.
        collection: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A query would exceed the server's message size limit.
    #[error(
        "a {collection} query is {bytes} bytes, over the server's message limit of {limit} bytes"
    )]
    QueryTooLarge {
        /// The collection.
        collection: &'static str,
        /// Size of the encoded query.
        bytes: usize,
        /// The server's `max_message_bytes`.
        limit: usize,
    },
    /// A local PSI step failed (key generation, blinding, encryption, decryption).
    #[error("PSI ({collection}): {cause}")]
    Psi {
        /// The collection.
        collection: &'static str,
        /// The psi-core error (part of this error's message).
        cause: psi_core::Error,
    },
    /// The check did not finish in time.
    #[error("the check did not finish within {0:?}")]
    Timeout(Duration),
    /// The password to check is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// A background task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// What a running check reports, for progress displays. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Connected; the server's version string.
    Connected {
        /// As the server reports it.
        server_version: String,
    },
    /// The parameter tier chosen for a collection.
    TierChosen {
        /// The collection.
        collection: Collection,
        /// The tier's name as the server gives it ("full" for a server
        /// before tiers).
        tier: String,
        /// Items in the collection's part of the check.
        items: usize,
    },
    /// This many more rounds (one OPRF evaluation and one query each) are planned.
    RoundsPlanned(usize),
    /// One round finished.
    RoundDone {
        /// Collection of the round.
        collection: Collection,
        /// Items in the round.
        items: usize,
    },
    /// The server refused a call for load; the client waits, then retries.
    Waiting {
        /// The RPC refused.
        rpc: &'static str,
        /// How long the client waits.
        wait: Duration,
        /// The server's message.
        message: String,
    },
    /// The server swapped in a database with other parameters: the
    /// collection is checked again with the new ones.
    ParametersChanged {
        /// The collection.
        collection: Collection,
    },
}

/// Called with every [`Progress`] event.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Settings of a check. `CheckOptions::default()` has no overall
/// timeout, a 60 s deadline per call, [`RetryPolicy::default`] and no
/// extra CA.
///
/// ```
/// use std::time::Duration;
/// use breach_client::{CheckOptions, RetryPolicy};
///
/// let options = CheckOptions {
///     call_timeout: Duration::from_secs(20),
///     retry: RetryPolicy { budget: Duration::from_secs(60), ..RetryPolicy::default() },
///     ca_certificate: None, // or Some(std::fs::read("ca.pem")?)
///     ..CheckOptions::default()
/// };
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct CheckOptions {
    /// Deadline for the whole check (connection, retries and waits included).
    pub timeout: Option<Duration>,
    /// Deadline of each call to the server (each attempt), and of
    /// connecting. A call past it fails; it is not retried.
    pub call_timeout: Duration,
    /// How calls refused for load are retried.
    pub retry: RetryPolicy,
    /// An extra certificate authority to trust for `https://` servers, in
    /// PEM form, on top of the system's roots.
    pub ca_certificate: Option<Vec<u8>>,
    /// Most items per round on the client's side, on top of the server's
    /// `max_items_per_query` and the PSI table capacity. Smaller rounds
    /// leak less about vault size per query but cost more queries.
    pub max_items_per_round: Option<usize>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            retry: RetryPolicy::default(),
            ca_certificate: None,
            max_items_per_round: None,
            progress: None,
        }
    }
}

impl fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckOptions")
            .field("timeout", &self.timeout)
            .field("call_timeout", &self.call_timeout)
            .field("retry", &self.retry)
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("max_items_per_round", &self.max_items_per_round)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl CheckOptions {
    fn report(&self, event: Progress) {
        if let Some(progress) = &self.progress {
            progress(event);
        }
    }
}

/// Checks every login of `vault` against the server at `server_url`
/// (`http://host:port` or `https://host:port`): each (username, password)
/// pair in the credentials collection and each password in the passwords
/// collection.
///
/// Duplicate pairs or passwords are queried once and answered for every
/// entry that has them. Cost: one `GetParameters`, and per collection and
/// per round (`ceil(distinct items / round size)`) one OPRF evaluation and
/// one homomorphic query; the BFV key generation and encryption dominate
/// the client's CPU time. Refusals for load are retried within
/// `options.retry`'s budget, shared by the connection and the check.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use breach_client::{CheckOptions, check_vault, read_vault_file};
///
/// let vault = read_vault_file("passwords.csv", None)?;
/// let report = check_vault("http://127.0.0.1:50051", &vault, &CheckOptions::default()).await?;
/// for r in report.results.iter().filter(|r| r.credential_breached) {
///     println!("{} {}: seen {} times", r.url, r.username, r.breach_count);
/// }
/// # Ok(()) }
/// ```
pub async fn check_vault(
    server_url: &str,
    vault: &Vault,
    options: &CheckOptions,
) -> Result<Report> {
    with_timeout(options.timeout, async {
        let budget = RetryBudget::new(options.retry);
        let client = Client::connect_with(server_url, options, &budget).await?;
        client.run_vault(vault, options, &budget).await
    })
    .await
}

/// Checks one password against the server's passwords collection (with
/// the smallest tier the server offers).
///
/// ```no_run
/// # async fn demo() -> Result<(), breach_client::Error> {
/// use breach_client::{CheckOptions, check_password};
/// let r = check_password("http://127.0.0.1:50051", "hunter2", &CheckOptions::default()).await?;
/// println!("seen {} times", r.password_seen);
/// # Ok(()) }
/// ```
pub async fn check_password(
    server_url: &str,
    password: &str,
    options: &CheckOptions,
) -> Result<PasswordReport> {
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    with_timeout(options.timeout, async {
        let budget = RetryBudget::new(options.retry);
        let client = Client::connect_with(server_url, options, &budget).await?;
        client.run_password(password, options, &budget).await
    })
    .await
}

/// One tier of one collection, as `GetParameters` lists it.
#[derive(Debug, Clone)]
struct Tier {
    /// The tier's name, for messages.
    name: String,
    params: PsiParams,
    /// Items in the sender's database.
    item_count: u64,
    /// Most items one query for this tier holds; `u64::MAX` for a server
    /// before tiers (0 on the wire).
    max_query_items: u64,
}

/// The tier for a query of `items` items: the smallest whose
/// `max_query_items` covers them, else the largest (several rounds).
fn choose_tier(tiers: &[Tier], items: usize) -> Option<&Tier> {
    let items = items as u64;
    tiers
        .iter()
        .filter(|t| t.max_query_items >= items)
        .min_by_key(|t| t.max_query_items)
        .or_else(|| tiers.iter().max_by_key(|t| t.max_query_items))
}

/// What `GetParameters` said.
#[derive(Debug)]
struct ServerParams {
    server_version: String,
    max_message_bytes: usize,
    max_items_per_query: usize,
    max_concurrent_queries: usize,
    /// Per collection: its tiers.
    collections: HashMap<i32, Vec<Tier>>,
    /// Bucket bits and key, when credential queries must name the
    /// username bucket of their items.
    routing: Option<(u32, [u8; ROUTING_KEY_LEN])>,
}

impl ServerParams {
    fn from_answer(answer: pb::GetParametersResponse) -> Result<ServerParams> {
        let limits = answer.limits.unwrap_or_default();
        let max_message_bytes = match usize::try_from(limits.max_message_bytes) {
            Ok(0) => DEFAULT_MAX_MESSAGE_BYTES,
            Ok(n) => n,
            Err(_) => usize::MAX,
        };
        let max_items_per_query = match usize::try_from(limits.max_items_per_query) {
            Ok(0) | Err(_) => usize::MAX,
            Ok(n) => n,
        };
        let max_concurrent_queries = usize::try_from(limits.max_concurrent_queries)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        let mut collections: HashMap<i32, Vec<Tier>> = HashMap::new();
        for c in answer.collections {
            let Ok(kind) = Collection::try_from(c.collection) else {
                continue; // A collection this client does not know: ignore it.
            };
            let name = collection_name(kind);
            let params = decode_params(&c.psi_params).map_err(|cause| Error::Parameters {
                collection: name,
                cause,
            })?;
            collections.entry(c.collection).or_default().push(Tier {
                name: if c.tier.is_empty() {
                    "full".to_owned()
                } else {
                    c.tier
                },
                params,
                item_count: c.item_count,
                max_query_items: if c.max_query_items == 0 {
                    u64::MAX
                } else {
                    c.max_query_items
                },
            });
        }
        let routing = match answer.username_routing {
            None => None,
            Some(r) => {
                let key = <[u8; ROUTING_KEY_LEN]>::try_from(r.key.as_slice()).ok();
                match key {
                    Some(key) if (1..=MAX_USERNAME_BITS).contains(&r.bits) => Some((r.bits, key)),
                    _ => {
                        return Err(Error::Protocol {
                            collection: "credentials",
                            detail: format!(
                                "username routing of {} bits with a {}-byte key",
                                r.bits,
                                r.key.len()
                            ),
                        });
                    }
                }
            }
        };
        Ok(ServerParams {
            routing,
            server_version: answer.server_version,
            max_message_bytes,
            max_items_per_query,
            max_concurrent_queries,
            collections,
        })
    }
}

/// A connection to a breach server with its parameters, for several checks
/// in a row. [`check_vault`] and [`check_password`] use one per call.
///
/// Each check generates fresh BFV keys; nothing secret is kept between
/// checks. When the server swaps in a database with other parameters, the
/// client fetches them again by itself (shared by its clones).
#[derive(Clone)]
pub struct Client {
    grpc: BreachCheckClient<Channel>,
    params: Arc<RwLock<Arc<ServerParams>>>,
    call_timeout: Duration,
    query_slots: Arc<Semaphore>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = self.params();
        f.debug_struct("Client")
            .field("server_version", &params.server_version)
            .field("max_message_bytes", &params.max_message_bytes)
            .field("max_items_per_query", &params.max_items_per_query)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects and fetches the server's limits and parameters
    /// (`GetParameters`). Bounded by `options.timeout`; refusals for load
    /// are retried within `options.retry`.
    pub async fn connect(server_url: &str, options: &CheckOptions) -> Result<Client> {
        let budget = RetryBudget::new(options.retry);
        with_timeout(
            options.timeout,
            Self::connect_with(server_url, options, &budget),
        )
        .await
    }

    async fn connect_with(
        server_url: &str,
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> Result<Client> {
        let target = Target::parse(server_url)?;
        let channel = transport::connect(server_url, options).await?;
        let grpc = BreachCheckClient::new(channel)
            .max_decoding_message_size(DEFAULT_MAX_MESSAGE_BYTES)
            .max_encoding_message_size(DEFAULT_MAX_MESSAGE_BYTES);
        let params = fetch_params(&grpc, options, budget, Some((server_url, &target))).await?;
        options.report(Progress::Connected {
            server_version: params.server_version.clone(),
        });
        Ok(Client {
            grpc,
            query_slots: Arc::new(Semaphore::new(params.max_concurrent_queries)),
            params: Arc::new(RwLock::new(Arc::new(params))),
            call_timeout: options.call_timeout,
        })
    }

    /// The parameters as last fetched.
    fn params(&self) -> Arc<ServerParams> {
        match self.params.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Fetches the parameters again (after a FAILED_PRECONDITION).
    async fn refresh(&self, options: &CheckOptions, budget: &RetryBudget) -> Result<()> {
        let fresh = Arc::new(fetch_params(&self.grpc, options, budget, None).await?);
        match self.params.write() {
            Ok(mut p) => *p = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The server's version string, as `GetParameters` reported it.
    pub fn server_version(&self) -> String {
        self.params().server_version.clone()
    }

    /// Checks a vault; see [`check_vault`]. Bounded by `options.timeout`.
    pub async fn check_vault(&self, vault: &Vault, options: &CheckOptions) -> Result<Report> {
        let budget = RetryBudget::new(options.retry);
        with_timeout(options.timeout, self.run_vault(vault, options, &budget)).await
    }

    /// Checks one password; see [`check_password`]. Bounded by `options.timeout`.
    pub async fn check_password(
        &self,
        password: &str,
        options: &CheckOptions,
    ) -> Result<PasswordReport> {
        if password.is_empty() {
            return Err(Error::EmptyPassword);
        }
        let budget = RetryBudget::new(options.retry);
        with_timeout(
            options.timeout,
            self.run_password(password, options, &budget),
        )
        .await
    }

    async fn run_vault(
        &self,
        vault: &Vault,
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> Result<Report> {
        let credentials = Distinct::new(
            vault
                .entries
                .iter()
                .map(|e| credential_item(&e.username, e.password.expose())),
        );
        let passwords = Distinct::new(
            vault
                .entries
                .iter()
                .map(|e| password_item(e.password.expose())),
        );
        let routing = self.params().routing;
        let (cred_counts, pw_counts) = tokio::try_join!(
            async {
                match routing {
                    None => {
                        self.check_collection(
                            Collection::Credentials,
                            &credentials.items,
                            None,
                            options,
                            budget,
                        )
                        .await
                    }
                    Some((bits, key)) => {
                        let usernames = vault.entries.iter().map(|e| e.username.as_str());
                        self.check_credentials_by_bucket(
                            &credentials,
                            usernames,
                            bits,
                            &key,
                            options,
                            budget,
                        )
                        .await
                    }
                }
            },
            self.check_collection(
                Collection::Passwords,
                &passwords.items,
                None,
                options,
                budget
            ),
        )?;
        let results = vault
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let cred = cred_counts[credentials.of_input[i]];
                let pw = pw_counts[passwords.of_input[i]];
                EntryResult {
                    entry: e.record,
                    url: e.url.clone(),
                    username: e.username.clone(),
                    credential_breached: cred.is_some(),
                    breach_count: cred.unwrap_or(0),
                    password_breached: pw.is_some(),
                    password_seen: pw.unwrap_or(0),
                }
            })
            .collect();
        Ok(Report {
            checked: vault.entries.len(),
            results,
            skipped: vault.skipped,
        })
    }

    async fn run_password(
        &self,
        password: &str,
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> Result<PasswordReport> {
        let items = Distinct::new(std::iter::once(password_item(password)));
        let counts = self
            .check_collection(Collection::Passwords, &items.items, None, options, budget)
            .await?;
        Ok(PasswordReport {
            password_breached: counts[0].is_some(),
            password_seen: counts[0].unwrap_or(0),
        })
    }

    /// Credential pairs when the server routes them by username bucket:
    /// one check per bucket (each revealing only that bucket), run
    /// concurrently; counts in the order of `credentials.items`.
    async fn check_credentials_by_bucket(
        &self,
        credentials: &Distinct,
        usernames: impl Iterator<Item = &str>,
        bits: u32,
        key: &[u8; ROUTING_KEY_LEN],
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> Result<Vec<Option<u64>>> {
        let mut bucket_of = vec![0u32; credentials.items.len()];
        for (input, username) in usernames.enumerate() {
            bucket_of[credentials.of_input[input]] = username_bucket(key, bits, username);
        }
        let mut buckets: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (item, &bucket) in bucket_of.iter().enumerate() {
            buckets.entry(bucket).or_default().push(item);
        }
        let checks = buckets.into_iter().map(|(bucket, members)| async move {
            let items: Vec<Item> = members.iter().map(|&i| credentials.items[i]).collect();
            let counts = self
                .check_collection(
                    Collection::Credentials,
                    &items,
                    Some(bucket),
                    options,
                    budget,
                )
                .await?;
            Ok::<_, Error>(members.into_iter().zip(counts).collect::<Vec<_>>())
        });
        let mut counts = vec![None; credentials.items.len()];
        for (item, count) in futures::future::try_join_all(checks)
            .await?
            .into_iter()
            .flatten()
        {
            counts[item] = count;
        }
        Ok(counts)
    }

    /// [`query_collection`](Self::query_collection), redone once with
    /// fresh parameters if the server says they went stale.
    async fn check_collection(
        &self,
        collection: Collection,
        items: &[Item],
        bucket: Option<u32>,
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> Result<Vec<Option<u64>>> {
        let stale = |e: &Error| {
            matches!(e, Error::Rpc { rpc: "Query", status }
                if status.code() == tonic::Code::FailedPrecondition)
        };
        let used = self.params();
        match self
            .query_collection(collection, items, bucket, options, budget)
            .await
        {
            Err(e) if stale(&e) => {}
            other => return other,
        }
        options.report(Progress::ParametersChanged { collection });
        // The other collection may have fetched them already.
        if Arc::ptr_eq(&used, &self.params()) {
            self.refresh(options, budget).await?;
        }
        match self
            .query_collection(collection, items, bucket, options, budget)
            .await
        {
            Err(Error::Rpc { status, .. }) if status.code() == tonic::Code::FailedPrecondition => {
                Err(Error::StaleParameters {
                    collection: collection_name(collection),
                    message: status.message().to_owned(),
                })
            }
            other => other,
        }
    }

    /// Most items one round may hold for `tier`.
    fn round_capacity(&self, server: &ServerParams, tier: &Tier, options: &CheckOptions) -> usize {
        // Cuckoo hashing fails well before a full table; stay under the
        // load thresholds (about 0.5 for two hash functions, 0.92 for
        // three or more). A round whose insertion still fails is split.
        let params = &tier.params;
        let table = params.table_size;
        let cuckoo = match params.hash_functions {
            0 | 1 => table / 16,
            2 => table * 2 / 5,
            _ => table * 3 / 4,
        };
        let mut cap = cuckoo
            .min(server.max_items_per_query)
            .min(usize::try_from(tier.max_query_items).unwrap_or(usize::MAX))
            .min(options.max_items_per_round.unwrap_or(usize::MAX))
            .clamp(1, psi_core::messages::MAX_OPRF_BATCH);
        // Keep the false-positive probability of a round below 2^-40.
        while cap > 1
            && params
                .validate_for_sizes(cap as u64, tier.item_count)
                .is_err()
        {
            cap /= 2;
        }
        cap
    }

    /// Queries `items` in one collection with the parameters as last
    /// fetched; `Some(count)` for each item found.
    async fn query_collection(
        &self,
        collection: Collection,
        items: &[Item],
        bucket: Option<u32>,
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> Result<Vec<Option<u64>>> {
        let name = collection_name(collection);
        let server = self.params();
        let tiers = server
            .collections
            .get(&(collection as i32))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let tier = choose_tier(tiers, items.len()).ok_or(Error::MissingCollection(name))?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        tier.params
            .validate_for_sizes(1, tier.item_count)
            .map_err(|cause| Error::Parameters {
                collection: name,
                cause,
            })?;
        options.report(Progress::TierChosen {
            collection,
            tier: tier.name.clone(),
            items: items.len(),
        });
        let cap = self.round_capacity(&server, tier, options);
        let params = tier.params.clone();
        let receiver = blocking(name, move || Receiver::new(params)).await?;
        let receiver = Arc::new(receiver);

        let mut pending: VecDeque<&[Item]> = items.chunks(cap).collect();
        options.report(Progress::RoundsPlanned(pending.len()));
        let mut counts = Vec::with_capacity(items.len());
        while let Some(chunk) = pending.pop_front() {
            match self
                .round(
                    (collection, bucket),
                    &server,
                    &receiver,
                    chunk,
                    options,
                    budget,
                )
                .await
            {
                Ok(found) => {
                    counts.extend(found);
                    options.report(Progress::RoundDone {
                        collection,
                        items: chunk.len(),
                    });
                }
                Err(RoundError::CuckooFull) if chunk.len() > 1 => {
                    // Unlucky hashing: query the two halves separately.
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    pending.push_front(b);
                    pending.push_front(a);
                    options.report(Progress::RoundsPlanned(1));
                }
                Err(RoundError::CuckooFull) => {
                    return Err(Error::Internal(format!(
                        "{name}: a single item does not fit the cuckoo table"
                    )));
                }
                Err(RoundError::Other(e)) => return Err(e),
            }
        }
        Ok(counts)
    }

    /// One OPRF evaluation and one query for `chunk` in a collection (and
    /// username bucket, when the server routes by one).
    async fn round(
        &self,
        (collection, bucket): (Collection, Option<u32>),
        server: &ServerParams,
        receiver: &Arc<Receiver>,
        chunk: &[Item],
        options: &CheckOptions,
        budget: &RetryBudget,
    ) -> std::result::Result<Vec<Option<u64>>, RoundError> {
        let name = collection_name(collection);
        let protocol = |detail: String| Error::Protocol {
            collection: name,
            detail,
        };
        let max_message_bytes = server.max_message_bytes;
        let grpc = self
            .grpc
            .clone()
            .max_encoding_message_size(max_message_bytes)
            .max_decoding_message_size(max_message_bytes.max(DEFAULT_MAX_MESSAGE_BYTES));

        // 1. Blind the items.
        let owned = Distinct {
            items: chunk.to_vec(),
            of_input: Vec::new(),
        };
        let r = Arc::clone(receiver);
        let (request, pending) = blocking(name, move || {
            let refs: Vec<&[u8]> = owned.items.iter().map(|i| i.as_slice()).collect();
            r.oprf_request(&refs)
        })
        .await?;

        // 2. The server evaluates its OPRF key on the blinded points.
        let oprf_request = pb::OprfRequest {
            collection: collection as i32,
            blinded_elements: request.elements.iter().map(|e| e.to_vec()).collect(),
        };
        let deadline = self.call_timeout;
        let answer = retry::call(
            budget,
            deadline,
            || {
                let mut grpc = grpc.clone();
                let mut request = tonic::Request::new(oprf_request.clone());
                request.set_timeout(deadline);
                async move {
                    grpc.evaluate_oprf(request)
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(AttemptError::<Error>::Status)
                }
            },
            waiting(options, "EvaluateOprf"),
        )
        .await
        .map_err(call_error("EvaluateOprf", Some(name), deadline))?;
        if answer.evaluated_elements.len() != chunk.len() {
            return Err(protocol(format!(
                "{} evaluated OPRF elements for {} blinded ones",
                answer.evaluated_elements.len(),
                chunk.len()
            ))
            .into());
        }
        let elements = answer
            .evaluated_elements
            .iter()
            .map(|e| <[u8; psi_core::oprf::ELEMENT_BYTES]>::try_from(e.as_slice()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| protocol("an evaluated OPRF element has the wrong length".into()))?;
        let response = psi_core::OprfResponse { elements };

        // 3. Unblind, cuckoo-hash and encrypt the query.
        let r = Arc::clone(receiver);
        let built = tokio::task::spawn_blocking(move || r.create_query(pending, &response))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let (query, state) = match built {
            Ok(built) => built,
            Err(psi_core::Error::CuckooInsertFailed { .. }) => return Err(RoundError::CuckooFull),
            Err(psi_core::Error::OprfBatchMismatch { .. })
            | Err(psi_core::Error::InvalidGroupElement { .. }) => {
                return Err(protocol("invalid OPRF evaluation".into()).into());
            }
            Err(cause) => {
                return Err(Error::Psi {
                    collection: name,
                    cause,
                }
                .into());
            }
        };
        let query = query.to_wire();
        if query.len() > max_message_bytes {
            return Err(Error::QueryTooLarge {
                collection: name,
                bytes: query.len(),
                limit: max_message_bytes,
            }
            .into());
        }

        // 4. The server evaluates the query; its answer streams back in
        // parts. A retried attempt sends the same query again and starts
        // reading afresh; no query slot is held while waiting.
        let query_request = pb::QueryRequest {
            collection: collection as i32,
            username_bucket: bucket,
            query,
        };
        let parts = retry::call(
            budget,
            deadline,
            || {
                let mut grpc = grpc.clone();
                let mut request = tonic::Request::new(query_request.clone());
                request.set_timeout(deadline);
                let slots = Arc::clone(&self.query_slots);
                async move {
                    let _slot = slots
                        .acquire()
                        .await
                        .map_err(|e| AttemptError::Other(Error::Internal(e.to_string())))?;
                    let mut stream = grpc
                        .query(request)
                        .await
                        .map_err(AttemptError::Status)?
                        .into_inner();
                    let mut answer = AnswerCollector::default();
                    while let Some(message) =
                        stream.message().await.map_err(AttemptError::Status)?
                    {
                        answer
                            .push(message)
                            .map_err(|e| AttemptError::Other(protocol(e)))?;
                    }
                    let parts = answer
                        .finish()
                        .map_err(|e| AttemptError::Other(protocol(e)))?;
                    Ok(parts)
                }
            },
            waiting(options, "Query"),
        )
        .await
        .map_err(call_error("Query", Some(name), deadline))?;

        // 5. Decrypt; read each match's label.
        let r = Arc::clone(receiver);
        let matches = blocking(name, move || r.decode(&state, &parts))
            .await
            .map_err(|e| match e {
                Error::Psi { cause, .. } => protocol(cause.to_string()),
                other => other,
            })?;
        matches
            .into_iter()
            .map(|m| {
                if !m.matched {
                    return Ok(None);
                }
                match m.label {
                    // An unlabeled collection says "found" without a count.
                    None => Ok(Some(0)),
                    Some(label) => {
                        let head = label.get(..Label::V1_LEN).ok_or_else(|| {
                            protocol(format!("label of {} bytes is too short", label.len()))
                        })?;
                        let label = Label::from_bytes(head).map_err(|e| protocol(e.to_string()))?;
                        Ok(Some(label.count))
                    }
                }
            })
            .collect::<Result<Vec<_>>>()
            .map_err(RoundError::Other)
    }
}

/// A round's failure: a cuckoo table that could not be built is retried
/// with fewer items.
enum RoundError {
    CuckooFull,
    Other(Error),
}

impl From<Error> for RoundError {
    fn from(e: Error) -> Self {
        RoundError::Other(e)
    }
}

/// Distinct items in first-seen order, and where each input went.
/// The items are wiped on drop: they are offline-guessable hashes of
/// credentials.
struct Distinct {
    items: Vec<Item>,
    of_input: Vec<usize>,
}

impl Distinct {
    fn new(inputs: impl Iterator<Item = Item>) -> Distinct {
        let mut index: HashMap<Item, usize> = HashMap::new();
        let mut items = Vec::new();
        let of_input = inputs
            .map(|item| {
                *index.entry(item).or_insert_with(|| {
                    items.push(item);
                    items.len() - 1
                })
            })
            .collect();
        for (mut key, _) in index.drain() {
            key.zeroize();
        }
        Distinct { items, of_input }
    }
}

impl Drop for Distinct {
    fn drop(&mut self) {
        self.items.zeroize();
    }
}

/// The wire name of a collection, for messages.
pub fn collection_name(collection: Collection) -> &'static str {
    match collection {
        Collection::Credentials => "credentials",
        Collection::Passwords => "passwords",
        Collection::Unspecified => "unspecified",
    }
}

/// PSI parameters as `GetParameters` carries them: psi-core's wire form,
/// or its JSON form when the bytes start with `{`.
pub fn decode_params(bytes: &[u8]) -> psi_core::Result<PsiParams> {
    let params = if bytes.first() == Some(&b'{') {
        let json = std::str::from_utf8(bytes)
            .map_err(|_| psi_core::Error::Json("parameters are not UTF-8".into()))?;
        PsiParams::from_json(json)?
    } else {
        PsiParams::from_wire(bytes)?
    };
    params.validate()?;
    Ok(params)
}

/// `GetParameters`, retried like every call. When `first` names the URL
/// (the first call on a new connection), a transport failure is diagnosed
/// at once (`http://` against a TLS port fails here) instead of retried.
async fn fetch_params(
    grpc: &BreachCheckClient<Channel>,
    options: &CheckOptions,
    budget: &RetryBudget,
    first: Option<(&str, &Target)>,
) -> Result<ServerParams> {
    let deadline = options.call_timeout;
    let answer = retry::call(
        budget,
        deadline,
        || {
            let mut grpc = grpc.clone();
            let mut request = tonic::Request::new(pb::GetParametersRequest {});
            request.set_timeout(deadline);
            async move {
                match grpc.get_parameters(request).await {
                    Ok(answer) => Ok(answer.into_inner()),
                    Err(status) => {
                        if let Some((url, target)) = first
                            && std::error::Error::source(&status).is_some()
                            && let Some(e) = transport::diagnose(url, target, &status).await
                        {
                            return Err(AttemptError::Other(e));
                        }
                        Err(AttemptError::Status(status))
                    }
                }
            }
        },
        waiting(options, "GetParameters"),
    )
    .await
    .map_err(call_error("GetParameters", None, deadline))?;
    ServerParams::from_answer(answer)
}

/// Turns a call's final failure into an [`Error`].
fn call_error(
    rpc: &'static str,
    collection: Option<&'static str>,
    deadline: Duration,
) -> impl FnOnce(CallError<Error>) -> Error {
    let label = move || match collection {
        Some(c) => format!("{rpc} ({c})"),
        None => rpc.to_owned(),
    };
    move |e| match e {
        CallError::Status(status) => Error::Rpc {
            rpc,
            status: Box::new(status),
        },
        CallError::GaveUp {
            status,
            attempts,
            waited,
            reason,
        } => Error::GaveUp {
            rpc: label(),
            attempts,
            waited,
            reason,
            status: Box::new(status),
        },
        CallError::Deadline => Error::CallTimeout {
            rpc: label(),
            after: deadline,
        },
        CallError::Other(e) => e,
    }
}

/// Reports each wait before a retry as [`Progress::Waiting`].
fn waiting<'a>(
    options: &'a CheckOptions,
    rpc: &'static str,
) -> impl Fn(Duration, &tonic::Status) + 'a {
    move |wait, status| {
        options.report(Progress::Waiting {
            rpc,
            wait,
            message: status.message().to_owned(),
        })
    }
}

/// Runs CPU-heavy PSI work on the blocking pool.
async fn blocking<T: Send + 'static>(
    collection: &'static str,
    work: impl FnOnce() -> psi_core::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|cause| Error::Psi { collection, cause })
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match timeout {
        None => work.await,
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::Timeout(limit))?,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_maps_duplicates_back() {
        let d = Distinct::new([[1u8; 32], [2; 32], [1; 32], [3; 32], [2; 32]].into_iter());
        assert_eq!(d.items, vec![[1u8; 32], [2; 32], [3; 32]]);
        assert_eq!(d.of_input, vec![0, 1, 0, 2, 1]);
    }

    #[test]
    fn params_in_wire_and_json_form() {
        let json = include_str!("../../psi-core/params/test-small.json");
        let p = PsiParams::from_json(json).unwrap();
        assert_eq!(decode_params(&p.to_wire()).unwrap(), p);
        assert_eq!(decode_params(json.as_bytes()).unwrap(), p);
        assert!(decode_params(b"").is_err());
        assert!(decode_params(b"{not json").is_err());
    }

    #[test]
    fn smallest_tier_that_fits_else_largest() {
        let params =
            PsiParams::from_json(include_str!("../../psi-core/params/test-small.json")).unwrap();
        let tier = |name: &str, max: u64| Tier {
            name: name.into(),
            params: params.clone(),
            item_count: 10,
            max_query_items: max,
        };
        let tiers = [tier("full", 1024), tier("small", 4), tier("medium", 64)];
        let pick = |n| choose_tier(&tiers, n).map(|t| t.name.as_str());
        assert_eq!(pick(1), Some("small"));
        assert_eq!(pick(4), Some("small"));
        assert_eq!(pick(5), Some("medium"));
        assert_eq!(pick(1024), Some("full"));
        assert_eq!(pick(5000), Some("full"));
        // A server before tiers: one tier without a limit.
        let legacy = [tier("full", u64::MAX)];
        assert_eq!(
            choose_tier(&legacy, 1).map(|t| t.max_query_items),
            Some(u64::MAX)
        );
        assert!(choose_tier(&[], 1).is_none());
    }
}
