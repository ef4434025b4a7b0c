//! Deterministic benchmark data: the breach dumps fed to
//! `breach-server import`, the vault checked by `breach-client check`, and
//! the answers both must give.
//!
//! Every value is a pure function of ([`SEED`], an index): credential `i`
//! is [`username`]`(i)`:[`password`]`(i)`, so the ground truth of any vault
//! entry is known without keeping the corpus in memory.
//!
//! - Usernames are distinct (they end in the base-36 index) and all end in
//!   `.test`; passwords are distinct (they end in `#` and the base-36
//!   index). So `N` combo lines give `N` credential pairs *and* `N`
//!   distinct passwords, each seen once.
//! - The Pwned Passwords file re-counts every [`HIBP_EVERY`]-th password
//!   (adds `1..=999` to its count), so the labels the client decodes are not
//!   all 1; it adds no new password.
//! - Vault entries use usernames ending in `.org` and, when clean,
//!   passwords without `#`: neither can be in the store.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use breach_proto::encoding::password_sha1;

/// The seed all data derives from. Changing it changes every file.
pub const SEED: u64 = 0x6272_6561_6368_0001;

/// Version of the generator; part of the work-dir marker, so a change to
/// what is generated invalidates old work dirs.
pub const GENERATOR_VERSION: u32 = 1;

/// Every `HIBP_EVERY`-th password gets an extra count from the hibp file.
pub const HIBP_EVERY: u64 = 16;

/// Entries in the generated vault.
pub const VAULT_ENTRIES: usize = 300;

/// Smallest store the vault can be drawn from (it needs 201 distinct
/// store indices, 101 of them multiples of [`HIBP_EVERY`]).
pub const MIN_PAIRS: u64 = 4096;

const FIRST: &[&str] = &[
    "anna", "ben", "chloe", "dmitri", "elif", "farid", "greta", "hiro", "ines", "jonas", "kai",
    "lena", "mateo", "noor", "olga", "pavel", "quinn", "rosa", "sven", "tara", "ugo", "vera",
    "wei", "ximena", "yusuf", "zoe",
];
const LAST: &[&str] = &[
    "smith", "garcia", "muller", "rossi", "kowalski", "nguyen", "tanaka", "okafor", "silva",
    "dubois", "jensen", "novak", "haddad", "kim", "larsen", "moreau",
];
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Value number `k` of the stream keyed by (`domain`, `i`).
fn value(domain: u64, i: u64, k: u64) -> u64 {
    mix(mix(SEED ^ domain.wrapping_mul(0x1000_0000_01b3) ^ mix(i)) ^ k)
}

/// A small sequential generator (SplitMix64) for the vault layout.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        value(0x0076_6175_6c74, 0, self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        // Modulo bias is irrelevant for benchmark data.
        self.next() % n
    }
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

fn random_alnum(domain: u64, i: u64, len: usize) -> String {
    (0..len as u64)
        .map(|k| ALNUM[(value(domain, i, 16 + k) % ALNUM.len() as u64) as usize] as char)
        .collect()
}

/// Username of breach credential `i` (already canonical: lower case, no
/// surrounding whitespace).
pub fn username(i: u64) -> String {
    let first = FIRST[(value(1, i, 0) % FIRST.len() as u64) as usize];
    let last = LAST[(value(1, i, 1) % LAST.len() as u64) as usize];
    let domain = value(1, i, 2) % 50;
    format!("{first}.{last}.{}@mail{domain}.test", base36(i))
}

/// Password of breach credential `i`.
pub fn password(i: u64) -> String {
    let len = 6 + (value(2, i, 0) % 6) as usize;
    format!("{}#{}", random_alnum(2, i, len), base36(i))
}

/// `n` distinct store indices for the live-update batch `batch` (a
/// run-unique number), spread over the store and none used by `vault`
/// (whose known answers must not change). Re-importing those pairs raises
/// their counts without adding items, so the PSI parameters (chosen from
/// the collection sizes) stay the same and the update is incremental.
pub fn update_indices(pairs: u64, n: u64, batch: u64, vault: &Vault) -> Vec<u64> {
    let taken: HashSet<&str> = vault
        .entries
        .iter()
        .map(|e| e.password.as_str())
        .chain([vault.breached_password.as_str()])
        .collect();
    let mut chosen = HashSet::new();
    let mut out = Vec::new();
    let mut k = 0u64;
    while (out.len() as u64) < n.min(pairs / 2) {
        let i = mix(batch.rotate_left(17) ^ mix(k)) % pairs;
        k += 1;
        if !taken.contains(password(i).as_str()) && chosen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// Count the hibp file adds to password `i` (0 for most).
pub fn hibp_extra(i: u64) -> u64 {
    if i.is_multiple_of(HIBP_EVERY) {
        1 + value(3, i, 0) % 999
    } else {
        0
    }
}

/// How often password `i` is in the store after importing both files.
pub fn password_count(i: u64) -> u64 {
    1 + hibp_extra(i)
}

/// Writes the combo file (`username:password`, LF) of `pairs` credentials.
pub fn write_combo(path: &Path, pairs: u64) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for i in 0..pairs {
        writeln!(out, "{}:{}", username(i), password(i))?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes the Pwned Passwords file (`SHA1HEX:COUNT`, CRLF as HIBP does):
/// one line per re-counted password among the first `pairs`.
pub fn write_hibp(path: &Path, pairs: u64) -> Result<u64> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut lines = 0;
    let mut line = String::with_capacity(64);
    for i in (0..pairs).step_by(HIBP_EVERY as usize) {
        line.clear();
        for b in password_sha1(&password(i)) {
            write!(line, "{b:02X}").expect("writing to a String");
        }
        write!(line, ":{}\r\n", hibp_extra(i)).expect("writing to a String");
        out.write_all(line.as_bytes())?;
        lines += 1;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(lines)
}

/// What kind of vault entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The (username, password) pair is in the store.
    BreachedPair,
    /// Only the password is in the store (another username).
    BreachedPassword,
    /// Neither.
    Clean,
}

/// One vault entry with the answer `breach-client` must give for it.
#[derive(Clone, Debug)]
pub struct VaultEntry {
    /// 1-based record number (the client's `entry`).
    pub record: usize,
    /// Chrome's `name` column.
    pub name: String,
    /// Chrome's `url` column.
    pub url: String,
    /// The username as written in the file.
    pub username: String,
    /// The password.
    pub password: String,
    /// What kind of entry it is.
    pub kind: Kind,
    /// Expected `breach_count` (0 when the pair is not breached).
    pub breach_count: u64,
    /// Expected `password_seen` (0 when the password is not breached).
    pub password_seen: u64,
}

/// The generated vault and the password used for `check-password`.
#[derive(Clone, Debug)]
pub struct Vault {
    /// Entries in file order.
    pub entries: Vec<VaultEntry>,
    /// A breached password (re-counted by the hibp file).
    pub breached_password: String,
    /// Expected `password_seen` of [`Vault::breached_password`].
    pub breached_password_seen: u64,
}

/// Builds the vault for a store of `pairs` credentials: entry `j` is a
/// breached pair if `j % 3 == 0`, a breached password under another
/// username if `j % 3 == 1`, clean otherwise. Half of the store indices
/// used are multiples of [`HIBP_EVERY`], so their counts are above 1.
pub fn vault(pairs: u64) -> Vault {
    assert!(
        pairs >= MIN_PAIRS,
        "too few pairs for a {VAULT_ENTRIES}-entry vault"
    );
    let mut rng = Rng(0);
    let mut used = HashSet::new();
    let mut pick = |rng: &mut Rng, recounted: bool| loop {
        let mut i = rng.below(pairs);
        if recounted {
            i -= i % HIBP_EVERY;
        }
        if used.insert(i) {
            return i;
        }
    };
    let mut entries = Vec::with_capacity(VAULT_ENTRIES);
    for j in 0..VAULT_ENTRIES {
        let record = j + 1;
        let site = format!("site{j}.example.org");
        let url = format!("https://{site}/login");
        let recounted = (j / 3) % 2 == 0;
        let entry = match j % 3 {
            0 => {
                let i = pick(&mut rng, recounted);
                // Usernames are canonicalized by both sides: vary case and
                // surrounding whitespace to exercise that.
                let mut user = username(i);
                if j % 2 == 0 {
                    user = user.to_uppercase();
                }
                if j % 4 == 0 {
                    user = format!(" {user} ");
                }
                VaultEntry {
                    record,
                    name: site,
                    url,
                    username: user,
                    password: password(i),
                    kind: Kind::BreachedPair,
                    breach_count: 1,
                    password_seen: password_count(i),
                }
            }
            1 => {
                let i = pick(&mut rng, recounted);
                VaultEntry {
                    record,
                    name: site,
                    url,
                    username: format!("vault.user{j}@example.org"),
                    password: password(i),
                    kind: Kind::BreachedPassword,
                    breach_count: 0,
                    password_seen: password_count(i),
                }
            }
            _ => VaultEntry {
                record,
                name: site,
                url,
                username: format!("vault.user{j}@example.org"),
                // No `#`: never a store password.
                password: format!("Clean!{j}-{:016x}", rng.next()),
                kind: Kind::Clean,
                breach_count: 0,
                password_seen: 0,
            },
        };
        entries.push(entry);
    }
    let i = pick(&mut rng, true);
    Vault {
        entries,
        breached_password: password(i),
        breached_password_seen: password_count(i),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes `vault` as a Chrome password export (`name,url,username,password,note`).
pub fn write_vault_csv(path: &Path, vault: &Vault) -> Result<()> {
    let mut csv = String::from("name,url,username,password,note\n");
    for e in &vault.entries {
        let note = if e.record % 10 == 0 {
            "work, shared"
        } else {
            ""
        };
        writeln!(
            csv,
            "{},{},{},{},{}",
            csv_field(&e.name),
            csv_field(&e.url),
            csv_field(&e.username),
            csv_field(&e.password),
            csv_field(note)
        )
        .expect("writing to a String");
    }
    std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(username(7), username(7));
        assert_eq!(password(7), password(7));
        let users: HashSet<String> = (0..20_000).map(username).collect();
        let pws: HashSet<String> = (0..20_000).map(password).collect();
        assert_eq!(users.len(), 20_000);
        assert_eq!(pws.len(), 20_000);
        assert!(
            users
                .iter()
                .all(|u| !u.contains(':') && u.ends_with(".test"))
        );
        assert!(pws.iter().all(|p| p.contains('#')));
    }

    #[test]
    fn vault_layout() {
        let v = vault(20_000);
        assert_eq!(v.entries.len(), VAULT_ENTRIES);
        let count = |k: Kind| v.entries.iter().filter(|e| e.kind == k).count();
        assert_eq!(count(Kind::BreachedPair), 100);
        assert_eq!(count(Kind::BreachedPassword), 100);
        assert_eq!(count(Kind::Clean), 100);
        assert!(v.entries.iter().any(|e| e.password_seen > 1));
        assert!(v.breached_password_seen > 1);
        let again = vault(20_000);
        assert_eq!(v.entries[5].password, again.entries[5].password);
        assert!(
            v.entries
                .iter()
                .filter(|e| e.kind == Kind::Clean)
                .all(|e| !e.password.contains('#'))
        );
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
