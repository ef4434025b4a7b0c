//! # breach-client
//!
//! The client side of the private password-breach check. Today it holds the
//! password-manager export parser ([`vault`]); the OPRF + PSI client and the
//! CLI build on it.
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

pub mod vault;

pub use vault::{
    Password, Vault, VaultEntry, VaultError, VaultFormat, VaultReader, read_vault, read_vault_file,
};
