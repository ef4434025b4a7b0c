//! Shared harness of the fuzz targets: the small parameter sets and
//! objects every target decodes against, built once per process, and the
//! helpers that keep each target to a few lines (as rustls keeps its
//! targets over one shared harness).
//!
//! Nothing here is random per run: the parameters, keys and databases are
//! fixed (seeded), so a crash input replays the same way, and the seed
//! corpora written by `examples/gen_seeds.rs` stay valid.
#![forbid(unsafe_code)]

use std::sync::{Arc, LazyLock};

use breach_proto::encoding::Label;
use breach_server::psi_db::{CollectionDb, Tier, TierDb};
use breach_server::service::{BreachService, Limits};
use breach_server::store::Collection;
use he_core::{BfvParameters, BfvParametersBuilder, SecretKey};
use psi_core::{OprfKey, PsiParams, SenderDb};
use sha2::{Digest, Sha256};

/// BFV parameters of the he-core targets: n = 1024 with key switching
/// (so relinearization keys exist), small enough for fast executions.
/// Insecure on purpose: only decoding is exercised.
pub static HE_PARAMS: LazyLock<Arc<BfvParameters>> = LazyLock::new(|| {
    BfvParametersBuilder::new()
        .degree(1024)
        .plaintext_bits(14)
        .moduli_bits(&[30, 31])
        .special_modulus_bits(31)
        .insecure_skip_security_check_for_tests()
        .build()
        .expect("fixed fuzz parameters are valid")
});

/// A secret key of [`HE_PARAMS`], to use decoded objects after decoding.
pub static HE_SECRET_KEY: LazyLock<SecretKey> =
    LazyLock::new(|| SecretKey::random(&HE_PARAMS).expect("key generation"));

/// PSI parameters of the psi-core and server targets: the smallest set
/// that passes `validate` (n = 2048, one ciphertext prime, no ciphertext
/// products, 8-byte labels), so a valid query is about 28 KB and is
/// answered in milliseconds.
pub fn psi_params() -> PsiParams {
    PsiParams::from_json(PSI_PARAMS_JSON).expect("fixed fuzz PSI parameters parse")
}

/// The JSON form of [`psi_params`].
pub const PSI_PARAMS_JSON: &str = r#"{
  "table_size": 512,
  "hash_functions": 3,
  "max_items_per_bin": 2,
  "felts_per_item": 4,
  "query_powers": [1, 2],
  "ps_low_degree": 0,
  "label_byte_count": 8,
  "nonce_byte_count": 16,
  "bfv": {
    "poly_modulus_degree": 2048,
    "coeff_modulus_bits": [54],
    "plain_modulus": 40961
  }
}"#;

/// The fixed OPRF key of the fuzz sender databases (scalar 7).
pub fn oprf_key() -> OprfKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 7;
    OprfKey::from_bytes(&bytes).expect("7 is a canonical non-zero scalar")
}

/// An item of the fuzz sender database.
pub fn item(i: u32) -> Vec<u8> {
    format!("fuzz-item-{i}").into_bytes()
}

/// A sender database over [`psi_params`] holding `items` labeled items,
/// bundles regenerated (ready to answer and to save).
pub fn sender_db(items: u32) -> SenderDb {
    let mut db = SenderDb::new(psi_params(), oprf_key()).expect("fuzz sender database");
    let rows: Vec<(Vec<u8>, [u8; Label::V1_LEN])> = (0..items)
        .map(|i| (item(i), u64::from(i + 1).to_le_bytes()))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = rows.iter().map(|(a, b)| (a.as_slice(), &b[..])).collect();
    db.insert(&refs).expect("insert fuzz items");
    db.regenerate(|_, _| {}).expect("regenerate fuzz bundles");
    db
}

/// The saved form of [`sender_db`] of 40 items, as written by
/// `SenderDb::save`.
pub static SAVED_SENDER_DB: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut bytes = Vec::new();
    sender_db(40).save(&mut bytes).expect("save fuzz database");
    bytes
});

/// A `BreachService` answering the credentials collection (full tier)
/// from a 40-item [`sender_db`], with limits wide enough that no request
/// is refused for rate: the target reaches decoding and answering.
pub static SERVICE: LazyLock<BreachService> = LazyLock::new(|| {
    let db = CollectionDb {
        collection: Collection::Credentials,
        generation: 1,
        tiers: vec![TierDb {
            tier: Tier::Full,
            db: sender_db(40),
        }],
    };
    let limits = Limits {
        oprf_elements_per_sec: 1 << 30,
        oprf_burst: 1 << 30,
        queries_per_minute: 1 << 30,
        query_burst: 1 << 30,
        global_oprf_elements_per_sec: 1 << 30,
        global_oprf_burst: 1 << 30,
        max_concurrent_queries: 1 << 10,
        max_concurrent_queries_per_client: 1 << 10,
        ..Limits::default()
    };
    BreachService::new(vec![db], limits).expect("fuzz service")
});

/// A single-threaded async runtime for the server target.
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
});

/// Rewrites every checksum of a saved sender database (after a
/// structure-aware edit) so that the loader's structural checks, not the
/// checksums, decide: the header digest (over magic, version, length and
/// header) and each section's trailing SHA-256. Walks the layout as far as
/// the (possibly edited) lengths allow and stops at the first one that
/// runs past the end.
pub fn fix_checksums(bytes: &mut [u8]) {
    // Header: magic (8), version (2), length (4), header, SHA-256.
    if bytes.len() < 14 {
        return;
    }
    let len = u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
    let Some(end) = 14usize.checked_add(len) else {
        return;
    };
    if end + 32 > bytes.len() {
        return;
    }
    let digest = Sha256::digest(&bytes[..end]);
    bytes[end..end + 32].copy_from_slice(&digest);
    // Sections: length (8), bytes, SHA-256.
    let mut at = end + 32;
    while at + 8 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| (at + 8).checked_add(l))
        else {
            return;
        };
        if end.checked_add(32).is_none_or(|e| e > bytes.len()) {
            return;
        }
        let digest = Sha256::digest(&bytes[at + 8..end]);
        bytes[end..end + 32].copy_from_slice(&digest);
        at = end + 32;
    }
}
