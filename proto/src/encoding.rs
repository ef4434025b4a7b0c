//! Canonical encoding of credentials, passwords and labels into PSI items.
//!
//! Server (when importing breach dumps) and client (when checking a vault)
//! both call these functions, so the two sides cannot drift apart. Every
//! item is a 32-byte SHA-256 digest under a domain-separation prefix, so a
//! credential item can never collide with a password item, and the encoding
//! can be versioned (`/v1/`) without ambiguity.
//!
//! # Credential items
//!
//! ```text
//! credential_item(u, p) = SHA-256( "breach-check/v1/credential\0"
//!                                  || u64_le(len(U)) || U
//!                                  || u64_le(len(P)) || P )
//! U = UTF-8 of canonical_username(u)   (trim Unicode whitespace, to_lowercase)
//! P = UTF-8 of p, exactly as given     (passwords are never normalized)
//! ```
//!
//! The explicit lengths make the encoding injective: `("a:b", "c")` and
//! `("a", "b:c")` give different items.
//!
//! # Password items
//!
//! ```text
//! password_sha1(p)            = SHA-1(UTF-8 of p)
//! password_item_from_sha1(h)  = SHA-256( "breach-check/v1/password\0" || h )
//! password_item(p)            = password_item_from_sha1(password_sha1(p))
//! ```
//!
//! Going through SHA-1 first makes Pwned Passwords `SHA1HEX:COUNT` lists
//! importable without knowing the passwords. SHA-1 is only an intermediate
//! here; its weaknesses do not matter because the item is never revealed
//! (the client's items go through the OPRF before anything leaves it).
//!
//! # Test vectors
//!
//! Pinned by this module's unit tests (hex); the values were computed by
//! this code and cross-checked with an independent implementation (Python
//! `hashlib`):
//!
//! | input | output |
//! | --- | --- |
//! | `password_sha1("password")` | `5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8` |
//! | `password_item("password")` | `9561d67b24d15c5b02ecd6deebfd51daeb3fbfbb635e5dc5b55d02aec5892b20` |
//! | `credential_item("  Alice@Example.COM ", "hunter2")` | `86f6c04a61151b81cf0982d87cb8c5c26474306650c511220159ccc7c239bbbb` |
//!
//! (The table is checked against the tests by `encoding::tests::doc_vectors_match`.)
//!
//! # Labels
//!
//! A [`Label`] is what the server returns with a match. Version 1 is
//! exactly [`Label::V1_LEN`] = 8 bytes: the number of times the item was
//! seen, as a little-endian `u64`. Later versions may append fields (for
//! example a bitmap of breach ids) after these 8 bytes; a decoder for v1
//! reads the first 8 bytes and rejects any other length, so a longer label
//! has to come with new PSI parameters (the label size is part of them).

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::Error;

/// Domain-separation prefix of credential items (includes the NUL).
pub const CREDENTIAL_DOMAIN: &[u8] = b"breach-check/v1/credential\0";

/// Domain-separation prefix of password items (includes the NUL).
pub const PASSWORD_DOMAIN: &[u8] = b"breach-check/v1/password\0";

/// Length in bytes of every PSI item produced by this module.
pub const ITEM_LEN: usize = 32;

/// Canonical form of a username: surrounding Unicode whitespace
/// ([`char::is_whitespace`]) removed, then [`str::to_lowercase`].
///
/// No other normalization (no Unicode NFC/NFKC, no e-mail rewriting) is
/// applied: both sides must agree byte for byte, and anything smarter would
/// have to be versioned.
///
/// ```
/// use breach_proto::encoding::canonical_username;
/// assert_eq!(canonical_username("  Alice@Example.COM\t"), "alice@example.com");
/// assert_eq!(canonical_username("\u{3000}ÉLODIE\u{a0}"), "élodie");
/// ```
pub fn canonical_username(username: &str) -> String {
    username.trim_matches(char::is_whitespace).to_lowercase()
}

/// PSI item of a username/password pair (see the [module docs](self)).
///
/// The username is canonicalized with [`canonical_username`]; the password
/// is used exactly as given. Cost: one SHA-256 over the inputs.
///
/// ```
/// use breach_proto::encoding::credential_item;
/// // Usernames are canonical, passwords are not.
/// assert_eq!(credential_item("Bob ", "pw"), credential_item("bob", "pw"));
/// assert_ne!(credential_item("bob", "PW"), credential_item("bob", "pw"));
/// ```
pub fn credential_item(username: &str, password: &str) -> [u8; ITEM_LEN] {
    let user = canonical_username(username);
    let mut h = Sha256::new();
    h.update(CREDENTIAL_DOMAIN);
    h.update((user.len() as u64).to_le_bytes());
    h.update(user.as_bytes());
    h.update((password.len() as u64).to_le_bytes());
    h.update(password.as_bytes());
    h.finalize().into()
}

/// SHA-1 of the password's UTF-8 bytes (the Pwned Passwords hash).
///
/// ```
/// use breach_proto::encoding::password_sha1;
/// assert_eq!(password_sha1("abc")[..4], [0xa9, 0x99, 0x3e, 0x36]);
/// ```
pub fn password_sha1(password: &str) -> [u8; 20] {
    Sha1::digest(password.as_bytes()).into()
}

/// PSI item of a password given by its SHA-1 (as in Pwned Passwords lists).
pub fn password_item_from_sha1(sha1: &[u8; 20]) -> [u8; ITEM_LEN] {
    let mut h = Sha256::new();
    h.update(PASSWORD_DOMAIN);
    h.update(sha1);
    h.finalize().into()
}

/// PSI item of a password: [`password_item_from_sha1`] of
/// [`password_sha1`].
///
/// ```
/// use breach_proto::encoding::{password_item, password_item_from_sha1, password_sha1};
/// assert_eq!(password_item("hunter2"), password_item_from_sha1(&password_sha1("hunter2")));
/// ```
pub fn password_item(password: &str) -> [u8; ITEM_LEN] {
    password_item_from_sha1(&password_sha1(password))
}

/// Label attached to a breach item (version 1: how often it was seen).
///
/// ```
/// use breach_proto::encoding::Label;
/// let label = Label { count: 3 };
/// let bytes = label.to_bytes();
/// assert_eq!(bytes, [3, 0, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(Label::from_bytes(&bytes)?, label);
/// # Ok::<(), breach_proto::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Label {
    /// Number of times the item was seen across imported breaches.
    pub count: u64,
}

impl Label {
    /// Length in bytes of a version-1 label.
    pub const V1_LEN: usize = 8;

    /// Encodes the label: `count` as 8 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::V1_LEN] {
        self.count.to_le_bytes()
    }

    /// Decodes a version-1 label; any length other than
    /// [`Label::V1_LEN`] is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; Self::V1_LEN] = bytes.try_into().map_err(|_| Error::LabelLength {
            expected: Self::V1_LEN,
            got: bytes.len(),
        })?;
        Ok(Self {
            count: u64::from_le_bytes(arr),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_known_answers() {
        // FIPS 180-1 / RFC 3174 vector and the well-known SHA-1("password").
        assert_eq!(
            hex(&password_sha1("abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&password_sha1("password")),
            "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"
        );
        assert_eq!(
            hex(&password_sha1("")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }

    #[test]
    fn password_item_pinned() {
        assert_eq!(hex(&password_item("password")), PASSWORD_VECTOR);
    }

    #[test]
    fn credential_item_pinned() {
        assert_eq!(
            hex(&credential_item("  Alice@Example.COM ", "hunter2")),
            CREDENTIAL_VECTOR
        );
    }

    const PASSWORD_VECTOR: &str =
        "9561d67b24d15c5b02ecd6deebfd51daeb3fbfbb635e5dc5b55d02aec5892b20";
    const CREDENTIAL_VECTOR: &str =
        "86f6c04a61151b81cf0982d87cb8c5c26474306650c511220159ccc7c239bbbb";

    #[test]
    fn doc_vectors_match() {
        let doc = include_str!("encoding.rs");
        assert!(doc.contains(&format!("`{PASSWORD_VECTOR}`")));
        assert!(doc.contains(&format!("`{CREDENTIAL_VECTOR}`")));
    }

    #[test]
    fn credential_item_is_manual_layout() {
        // Independent re-derivation of the layout with a plain byte vector.
        let mut msg = Vec::new();
        msg.extend_from_slice(b"breach-check/v1/credential\0");
        msg.extend_from_slice(&17u64.to_le_bytes());
        msg.extend_from_slice(b"alice@example.com");
        msg.extend_from_slice(&7u64.to_le_bytes());
        msg.extend_from_slice(b"hunter2");
        let want: [u8; 32] = Sha256::digest(&msg).into();
        assert_eq!(credential_item("  Alice@Example.COM ", "hunter2"), want);
    }

    #[test]
    fn password_item_is_manual_layout() {
        let mut msg = b"breach-check/v1/password\0".to_vec();
        msg.extend_from_slice(&password_sha1("password"));
        let want: [u8; 32] = Sha256::digest(&msg).into();
        assert_eq!(password_item("password"), want);
    }

    #[test]
    fn canonical_username_unicode() {
        assert_eq!(canonical_username(" \u{2003}ΑΒΓ\n"), "αβγ");
        assert_eq!(canonical_username("   "), "");
        // Interior whitespace is kept.
        assert_eq!(canonical_username(" A B "), "a b");
    }

    #[test]
    fn credential_encoding_is_injective_on_split() {
        assert_ne!(credential_item("a:b", "c"), credential_item("a", "b:c"));
        assert_ne!(credential_item("ab", "c"), credential_item("a", "bc"));
    }

    #[test]
    fn passwords_are_not_normalized() {
        assert_ne!(credential_item("u", " pw"), credential_item("u", "pw"));
        assert_ne!(password_item("Pw"), password_item("pw"));
    }

    #[test]
    fn domains_are_separated() {
        assert_ne!(
            password_item_from_sha1(&[0; 20])[..],
            credential_item("", "")[..]
        );
    }

    #[test]
    fn label_round_trip_and_length() {
        let l = Label {
            count: 0x0102_0304_0506_0708,
        };
        assert_eq!(l.to_bytes(), [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Label::from_bytes(&l.to_bytes()).unwrap(), l);
        assert!(matches!(
            Label::from_bytes(&[0; 9]),
            Err(Error::LabelLength {
                expected: 8,
                got: 9
            })
        ));
        assert!(Label::from_bytes(&[]).is_err());
    }
}
