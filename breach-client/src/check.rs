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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use breach_proto::encoding::{Label, credential_item, password_item};
use breach_proto::v1::breach_check_client::BreachCheckClient;
use breach_proto::v1::{self as pb, Collection};
use psi_core::wire::Codec;
use psi_core::{PsiParams, Receiver, ResultPart};
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};
use zeroize::Zeroize;

use crate::report::{EntryResult, PasswordReport, Report};
use crate::vault::Vault;

/// The server the CLI talks to when none is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Message size limit used before the server has told its own, and when it
/// advertises none (0): large enough for any answer psi-core produces.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

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
    /// This many more rounds (one OPRF evaluation and one query each) are planned.
    RoundsPlanned(usize),
    /// One round finished.
    RoundDone {
        /// Collection of the round.
        collection: Collection,
        /// Items in the round.
        items: usize,
    },
}

/// Called with every [`Progress`] event.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Settings of a check. `CheckOptions::default()` has no timeout and no
/// extra limit.
#[derive(Clone, Default)]
pub struct CheckOptions {
    /// Deadline for the whole check (connection included).
    pub timeout: Option<Duration>,
    /// Most items per round on the client's side, on top of the server's
    /// `max_items_per_query` and the PSI table capacity. Smaller rounds
    /// leak less about vault size per query but cost more queries.
    pub max_items_per_round: Option<usize>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckOptions")
            .field("timeout", &self.timeout)
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
/// (`http://host:port`): each (username, password) pair in the credentials
/// collection and each password in the passwords collection.
///
/// Duplicate pairs or passwords are queried once and answered for every
/// entry that has them. Cost: one `GetParameters`, and per collection and
/// per round (`ceil(distinct items / round size)`) one OPRF evaluation and
/// one homomorphic query; the BFV key generation and encryption dominate
/// the client's CPU time.
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
        let client = Client::connect(server_url, options).await?;
        client.run_vault(vault, options).await
    })
    .await
}

/// Checks one password against the server's passwords collection.
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
        let client = Client::connect(server_url, options).await?;
        client.run_password(password, options).await
    })
    .await
}

/// A connection to a breach server with its parameters, for several checks
/// in a row. [`check_vault`] and [`check_password`] use one per call.
///
/// Each check generates fresh BFV keys; nothing secret is kept between
/// checks.
#[derive(Clone)]
pub struct Client {
    grpc: BreachCheckClient<Channel>,
    server_version: String,
    max_message_bytes: usize,
    max_items_per_query: usize,
    /// Per collection: its PSI parameters and the sender's item count.
    collections: HashMap<i32, (PsiParams, u64)>,
    query_slots: Arc<Semaphore>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server_version", &self.server_version)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_items_per_query", &self.max_items_per_query)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects and fetches the server's limits and parameters
    /// (`GetParameters`). Bounded by `options.timeout`.
    pub async fn connect(server_url: &str, options: &CheckOptions) -> Result<Client> {
        with_timeout(options.timeout, Self::connect_inner(server_url, options)).await
    }

    async fn connect_inner(server_url: &str, options: &CheckOptions) -> Result<Client> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: server_url.to_owned(),
            reason,
        };
        let uri: tonic::transport::Uri = server_url.parse().map_err(|e| invalid(format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported by this build; use http:// (the protocol \
                     itself hides the vault from the server and from the network)"
                        .to_owned(),
                ));
            }
            _ => return Err(invalid("expected http://HOST:PORT".to_owned())),
        }
        let mut endpoint = Endpoint::from(uri);
        if let Some(timeout) = options.timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        let channel = endpoint.connect().await.map_err(|e| Error::Connect {
            url: server_url.to_owned(),
            detail: error_chain(&e),
        })?;
        let mut grpc = BreachCheckClient::new(channel)
            .max_decoding_message_size(DEFAULT_MAX_MESSAGE_BYTES)
            .max_encoding_message_size(DEFAULT_MAX_MESSAGE_BYTES);
        let answer = grpc
            .get_parameters(pb::GetParametersRequest {})
            .await
            .map_err(rpc_error("GetParameters"))?
            .into_inner();
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
        let concurrent = usize::try_from(limits.max_concurrent_queries)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        let mut collections = HashMap::new();
        for c in answer.collections {
            let Ok(kind) = Collection::try_from(c.collection) else {
                continue; // A collection this client does not know: ignore it.
            };
            let name = collection_name(kind);
            let params = decode_params(&c.psi_params).map_err(|cause| Error::Parameters {
                collection: name,
                cause,
            })?;
            collections.insert(c.collection, (params, c.item_count));
        }
        options.report(Progress::Connected {
            server_version: answer.server_version.clone(),
        });
        Ok(Client {
            grpc: grpc.max_encoding_message_size(max_message_bytes),
            server_version: answer.server_version,
            max_message_bytes,
            max_items_per_query,
            collections,
            query_slots: Arc::new(Semaphore::new(concurrent)),
        })
    }

    /// The server's version string, as `GetParameters` reported it.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// Checks a vault; see [`check_vault`]. Bounded by `options.timeout`.
    pub async fn check_vault(&self, vault: &Vault, options: &CheckOptions) -> Result<Report> {
        with_timeout(options.timeout, self.run_vault(vault, options)).await
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
        with_timeout(options.timeout, self.run_password(password, options)).await
    }

    async fn run_vault(&self, vault: &Vault, options: &CheckOptions) -> Result<Report> {
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
        let (cred_counts, pw_counts) = tokio::try_join!(
            self.query_collection(Collection::Credentials, &credentials.items, options),
            self.query_collection(Collection::Passwords, &passwords.items, options),
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
        })
    }

    async fn run_password(&self, password: &str, options: &CheckOptions) -> Result<PasswordReport> {
        let items = Distinct::new(std::iter::once(password_item(password)));
        let counts = self
            .query_collection(Collection::Passwords, &items.items, options)
            .await?;
        Ok(PasswordReport {
            password_breached: counts[0].is_some(),
            password_seen: counts[0].unwrap_or(0),
        })
    }

    /// Most items one round may hold for `params`.
    fn round_capacity(
        &self,
        params: &PsiParams,
        sender_items: u64,
        options: &CheckOptions,
    ) -> usize {
        // Cuckoo hashing fails well before a full table; stay under the
        // load thresholds (about 0.5 for two hash functions, 0.92 for
        // three or more). A round whose insertion still fails is split.
        let table = params.table_size;
        let cuckoo = match params.hash_functions {
            0 | 1 => table / 16,
            2 => table * 2 / 5,
            _ => table * 3 / 4,
        };
        let mut cap = cuckoo
            .min(self.max_items_per_query)
            .min(options.max_items_per_round.unwrap_or(usize::MAX))
            .clamp(1, psi_core::messages::MAX_OPRF_BATCH);
        // Keep the false-positive probability of a round below 2^-40.
        while cap > 1 && params.validate_for_sizes(cap as u64, sender_items).is_err() {
            cap /= 2;
        }
        cap
    }

    /// Queries `items` in one collection; `Some(count)` for each item found.
    async fn query_collection(
        &self,
        collection: Collection,
        items: &[Item],
        options: &CheckOptions,
    ) -> Result<Vec<Option<u64>>> {
        let name = collection_name(collection);
        let (params, sender_items) = self
            .collections
            .get(&(collection as i32))
            .ok_or(Error::MissingCollection(name))?
            .clone();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        params
            .validate_for_sizes(1, sender_items)
            .map_err(|cause| Error::Parameters {
                collection: name,
                cause,
            })?;
        let cap = self.round_capacity(&params, sender_items, options);
        let receiver = blocking(name, move || Receiver::new(params)).await?;
        let receiver = Arc::new(receiver);

        let mut pending: VecDeque<&[Item]> = items.chunks(cap).collect();
        options.report(Progress::RoundsPlanned(pending.len()));
        let mut counts = Vec::with_capacity(items.len());
        while let Some(chunk) = pending.pop_front() {
            match self.round(collection, &receiver, chunk).await {
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

    /// One OPRF evaluation and one query for `chunk`.
    async fn round(
        &self,
        collection: Collection,
        receiver: &Arc<Receiver>,
        chunk: &[Item],
    ) -> std::result::Result<Vec<Option<u64>>, RoundError> {
        let name = collection_name(collection);
        let protocol = |detail: String| Error::Protocol {
            collection: name,
            detail,
        };
        let mut grpc = self
            .grpc
            .clone()
            .max_decoding_message_size(self.max_message_bytes.max(DEFAULT_MAX_MESSAGE_BYTES));

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
        let answer = grpc
            .evaluate_oprf(pb::OprfRequest {
                collection: collection as i32,
                blinded_elements: request.elements.iter().map(|e| e.to_vec()).collect(),
            })
            .await
            .map_err(rpc_error("EvaluateOprf"))?
            .into_inner();
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
        if query.len() > self.max_message_bytes {
            return Err(Error::QueryTooLarge {
                collection: name,
                bytes: query.len(),
                limit: self.max_message_bytes,
            }
            .into());
        }

        // 4. The server evaluates the query; its answer streams back in parts.
        let parts = {
            let _slot = self
                .query_slots
                .acquire()
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            let mut stream = grpc
                .query(pb::QueryRequest {
                    collection: collection as i32,
                    query,
                })
                .await
                .map_err(rpc_error("Query"))?
                .into_inner();
            let mut parts: Vec<ResultPart> = Vec::new();
            while let Some(message) = stream.message().await.map_err(rpc_error("Query"))? {
                let part = ResultPart::from_wire(&message.result_part)
                    .map_err(|e| protocol(format!("result part: {e}")))?;
                let total = parts.first().map_or(part.total_parts, |p| p.total_parts);
                if part.total_parts != total || parts.len() >= total as usize {
                    return Err(protocol("more result parts than announced".into()).into());
                }
                parts.push(part);
            }
            if let Some(first) = parts.first()
                && parts.len() != first.total_parts as usize
            {
                return Err(protocol(format!(
                    "the answer ended after {} of {} parts",
                    parts.len(),
                    first.total_parts
                ))
                .into());
            }
            parts
        };

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

fn rpc_error(rpc: &'static str) -> impl Fn(tonic::Status) -> Error {
    move |status| Error::Rpc {
        rpc,
        status: Box::new(status),
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

/// An error and its causes, `: `-separated (tonic's transport errors say
/// little at the top level).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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
}
