//! How items are spread over the shards of a sharded deployment, and the
//! optional username buckets.
//!
//! # Item shards
//!
//! ```text
//! item_shard(item, N) = u64_be(SHA-256(item)[0..8]) mod N
//! ```
//!
//! `item` is the canonical 32-byte PSI item ([`crate::encoding`]). Every
//! shard imports the same dump files and keeps the items with
//! `item_shard(item, N) == I`; no split step, no coordinator. The function
//! is stable: changing the shard count means importing into fresh stores.
//!
//! # Username buckets (optional)
//!
//! ```text
//! username_bucket(key, K, u) = u64_be(HMAC-SHA256(key, U)[0..8]) >> (64 - K)
//! U = UTF-8 of canonical_username(u)
//! ```
//!
//! When a deployment routes credential pairs by username, a pair in
//! bucket `b` lives on one of the shards [`bucket_shards`]`(b, K, N)`:
//! the shards whose range of the bucket space `[0, 2^K)` overlaps `b`'s
//! (one shard when `N <= 2^K`: `floor(b N / 2^K)`; else the shards
//! `[floor(b N / 2^K), floor((b + 1) N / 2^K))`); with several, the pair goes to the one at
//! `item_shard(item, len)` within them. A client reveals `b` per query and
//! the front asks only those shards. Passwords are never routed: a bucket
//! of a password's hash is a hint about the password itself.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::encoding::{ITEM_LEN, canonical_username};

/// Most username bucket bits a deployment may use.
pub const MAX_USERNAME_BITS: u32 = 16;

/// Most shards a deployment may have.
pub const MAX_SHARDS: u32 = 4096;

/// Length of a username-routing key.
pub const ROUTING_KEY_LEN: usize = 32;

/// Shard `index` of `count` (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardSpec {
    /// This shard, `0 <= index < count`.
    pub index: u32,
    /// Shards in the deployment, `1..=MAX_SHARDS`.
    pub count: u32,
}

impl ShardSpec {
    /// The one shard of an unsharded deployment.
    pub const SINGLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// Checks `index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the shard count must be 1 to {MAX_SHARDS}, not {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range for {count} shards (0 to {})",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `I/N`.
///
/// ```
/// use breach_proto::sharding::ShardSpec;
/// assert_eq!("2/4".parse::<ShardSpec>()?, ShardSpec::new(2, 4)?);
/// assert!("4/4".parse::<ShardSpec>().is_err());
/// # Ok::<(), String>(())
/// ```
impl FromStr for ShardSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected INDEX/COUNT such as 0/4, got {s:?}"))?;
        let parse = |v: &str, what: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("the shard {what} in {s:?} is not a number"))
        };
        Self::new(parse(i, "index")?, parse(n, "count")?)
    }
}

/// The shard of `item` among `count` shards (see the [module docs](self)).
///
/// ```
/// use breach_proto::encoding::password_item;
/// use breach_proto::sharding::item_shard;
/// assert_eq!(item_shard(&password_item("password"), 1), 0);
/// assert!(item_shard(&password_item("password"), 4) < 4);
/// ```
pub fn item_shard(item: &[u8; ITEM_LEN], count: u32) -> u32 {
    assert!(count > 0, "a deployment has at least one shard");
    let digest = Sha256::digest(item);
    let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (head % u64::from(count)) as u32
}

/// The bucket of `username` under a routing key, `bits` bits (1 to
/// [`MAX_USERNAME_BITS`]).
pub fn username_bucket(key: &[u8; ROUTING_KEY_LEN], bits: u32, username: &str) -> u32 {
    assert!(
        (1..=MAX_USERNAME_BITS).contains(&bits),
        "1 to {MAX_USERNAME_BITS} bucket bits"
    );
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(canonical_username(username).as_bytes());
    let tag = mac.finalize().into_bytes();
    let head = u64::from_be_bytes(tag[..8].try_into().expect("8 bytes"));
    (head >> (64 - bits)) as u32
}

/// The shards that hold the credential pairs of `bucket` (of `2^bits`)
/// among `count` shards: never empty.
///
/// ```
/// use breach_proto::sharding::bucket_shards;
/// // Fewer shards than buckets: one shard per bucket.
/// assert_eq!(bucket_shards(0, 8, 4), 0..1);
/// assert_eq!(bucket_shards(255, 8, 4), 3..4);
/// // More shards than buckets: each bucket owns a range.
/// assert_eq!(bucket_shards(1, 1, 4), 2..4);
/// ```
pub fn bucket_shards(bucket: u32, bits: u32, count: u32) -> Range<u32> {
    let buckets = 1u64 << bits;
    let b = u64::from(bucket) % buckets;
    let n = u64::from(count);
    let lo = (b * n / buckets) as u32;
    // With more shards than buckets, each bucket owns the shards
    // [b n / 2^K, (b + 1) n / 2^K) (at least one); with fewer, shard `lo`
    // alone holds the bucket.
    let hi = ((b + 1) * n / buckets) as u32;
    lo..hi.max(lo + 1)
}

/// The shard of a credential pair when credential pairs are routed by
/// username bucket.
pub fn routed_credential_shard(item: &[u8; ITEM_LEN], bucket: u32, bits: u32, count: u32) -> u32 {
    let shards = bucket_shards(bucket, bits, count);
    shards.start + item_shard(item, shards.end - shards.start)
}

/// The id of an OPRF public key (see `CollectionParameters.oprf_key_id`).
pub fn oprf_key_id(public_key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"breach-check/v1/oprf-key-id\0");
    h.update(public_key);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::credential_item;

    #[test]
    fn item_shards_are_balanced_and_stable() {
        let mut counts = [0u32; 4];
        for i in 0..4000u32 {
            let item = crate::encoding::password_item(&i.to_string());
            counts[item_shard(&item, 4) as usize] += 1;
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
        // Pinned: the function is part of the deployment contract.
        let item = crate::encoding::password_item("password");
        let d = Sha256::digest(item);
        let head = u64::from_be_bytes(d[..8].try_into().unwrap());
        assert_eq!(item_shard(&item, 7), (head % 7) as u32);
        assert_eq!(item_shard(&item, 1), 0);
    }

    #[test]
    fn bucket_ranges_partition_the_shards() {
        for bits in 1..=10 {
            for count in 1..=40 {
                let mut owner = vec![0u32; count as usize];
                for b in 0..(1u32 << bits) {
                    let r = bucket_shards(b, bits, count);
                    assert!(!r.is_empty() && r.end <= count, "{b} {bits} {count}: {r:?}");
                    if count > (1 << bits) {
                        for s in r {
                            owner[s as usize] += 1;
                        }
                    }
                }
                if count > (1 << bits) {
                    // Every shard belongs to exactly one bucket.
                    assert!(owner.iter().all(|&o| o == 1), "{bits} {count}: {owner:?}");
                }
            }
        }
    }

    #[test]
    fn routed_pairs_stay_in_their_bucket_and_usernames_are_canonical() {
        let key = [7u8; ROUTING_KEY_LEN];
        let b = username_bucket(&key, 8, "  Alice@Example.com");
        assert_eq!(b, username_bucket(&key, 8, "alice@example.com"));
        assert!(b < 256);
        assert_ne!(
            (0..64)
                .map(|i| username_bucket(&key, 8, &format!("u{i}")))
                .collect::<Vec<_>>(),
            (0..64)
                .map(|i| username_bucket(&[8u8; 32], 8, &format!("u{i}")))
                .collect::<Vec<_>>(),
            "the key matters"
        );
        for count in [1, 3, 4, 300, 600] {
            for i in 0..50 {
                let user = format!("user{i}");
                let bucket = username_bucket(&key, 8, &user);
                let shard =
                    routed_credential_shard(&credential_item(&user, "pw"), bucket, 8, count);
                assert!(bucket_shards(bucket, 8, count).contains(&shard));
            }
        }
    }

    #[test]
    fn shard_specs_parse_and_check() {
        assert_eq!("0/1".parse::<ShardSpec>().unwrap(), ShardSpec::SINGLE);
        assert_eq!(ShardSpec::new(3, 4).unwrap().to_string(), "3/4");
        for bad in ["", "1", "a/4", "1/b", "4/4", "0/0", "0/5000"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
    }
}
