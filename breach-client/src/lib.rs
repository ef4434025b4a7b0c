//! # breach-client
//!
//! The client side of the private password-breach check: it reads
//! password-manager exports ([`vault`]), and checks each login against a
//! breach server ([`check`]) with an OPRF in front of a labeled private set
//! intersection over BFV homomorphic encryption (`psi-core`), over the gRPC
//! contract of `breach-proto`. The `breach-client` binary is a thin layer
//! over [`cli`]. Servers are reached over `http://` or `https://` (TLS,
//! trusting the system's roots plus [`CheckOptions::ca_certificate`]);
//! calls refused for load are retried ([`retry`]).
//!
//! The server never sees a username, a password or a hash of either: only
//! blinded group elements and ciphertexts under a key that never leaves this
//! process. See [`check`] for exactly what is sent.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use breach_client::{CheckOptions, check_vault, read_vault_file};
//!
//! let vault = read_vault_file("passwords.csv", None)?;
//! let report = check_vault("http://127.0.0.1:50051", &vault, &CheckOptions::default()).await?;
//! println!("{}", report.to_json());
//! # Ok(()) }
//! ```
//!
//! Reading an export:
//!
//! ```
//! use breach_client::vault::{read_vault, VaultFormat};
//!
//! let csv = "name,url,username,password,note\n\
//!            Example,https://example.com/,alice,hunter2,\n";
//! let vault = read_vault(csv.as_bytes(), None).unwrap();
//! assert_eq!(vault.format, VaultFormat::Chrome);
//! assert_eq!(vault.entries[0].password.expose(), "hunter2");
//! ```
#![forbid(unsafe_code)]

mod answer;
pub mod check;
pub mod cli;
pub mod report;
pub mod retry;
mod transport;
pub mod vault;

pub use check::{
    CheckOptions, Client, DEFAULT_CALL_TIMEOUT, DEFAULT_SERVER, Error, Progress, ProgressFn,
    check_password, check_vault,
};
pub use report::{EntryResult, PasswordReport, Report};
pub use retry::RetryPolicy;
pub use vault::{
    Password, Skipped, Vault, VaultEntry, VaultError, VaultFormat, VaultReader, read_vault,
    read_vault_file,
};
