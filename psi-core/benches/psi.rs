//! End-to-end labeled/unlabeled PSI benchmark (in process, no network).
//!
//! ```sh
//! cargo bench -p psi-core --bench psi              # 2^16 and 2^20 senders
//! cargo bench -p psi-core --bench psi -- --large   # also 2^24
//! cargo bench -p psi-core --bench psi -- --quick   # 2^16 only
//! # one row: 2^24 senders, single-item queries, unlabeled
//! cargo bench -p psi-core --bench psi -- --sender-log2 24 --receivers 1 --labels 0
//! ```
//!
//! For each sender size, receiver size (1, 256, 1024) and label length (0,
//! 16 bytes) it builds a sender database with the preset `for_sizes` picks,
//! queries it with items half inside and half outside the set, and prints a
//! Markdown table row: DB build time, DB memory, receiver query time
//! (OPRF + encryption), sender answer time (median of five), receiver
//! decode time, bytes up
//! and down, and matches found / expected. OPRF hashing of the sender set is
//! done once per sender size and label length and reused by the databases
//! that share it (their key is the same), and reported in its own column;
//! a database's build time is that OPRF time plus its "DB build" column,
//! which splits into placing the items in bins and encoding the bundles.

use std::time::Instant;

use psi_core::wire::Codec;
use psi_core::*;

/// Sender answers timed per row; the median is reported.
const ANSWER_RUNS: usize = 5;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn item(i: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(b"itm-");
    b[4..].copy_from_slice(&i.to_le_bytes());
    b
}

fn main() {
    if let Err(e) = run() {
        eprintln!("psi bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let large = args.iter().any(|a| a == "--large");
    let quick = args.iter().any(|a| a == "--quick");
    let mut sender_sizes = vec![1u64 << 16];
    if !quick {
        sender_sizes.push(1 << 20);
    }
    if large {
        sender_sizes.push(1 << 24);
    }
    // `--sender-log2 N`, `--receivers A,B`, `--labels A,B`: run a subset.
    let value = |flag: &str| -> std::result::Result<Option<Vec<u64>>, String> {
        let Some(at) = args.iter().position(|a| a == flag) else {
            return Ok(None);
        };
        let list = args
            .get(at + 1)
            .ok_or_else(|| format!("{flag} needs a comma-separated list of numbers"))?;
        list.split(',')
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{flag}: not a number: {v:?}"))
            })
            .collect::<std::result::Result<Vec<u64>, String>>()
            .map(Some)
    };
    if let Some(logs) = value("--sender-log2")? {
        sender_sizes = logs
            .into_iter()
            .map(|l| match l {
                1..=30 => Ok(1u64 << l),
                _ => Err(format!("--sender-log2 {l}: expected 1 to 30")),
            })
            .collect::<std::result::Result<_, _>>()?;
    }
    let receivers = value("--receivers")?.unwrap_or_else(|| vec![1, 256, 1024]);
    let labels: Vec<usize> = value("--labels")?
        .unwrap_or_else(|| vec![0, 16])
        .into_iter()
        .map(|l| l as usize)
        .collect();
    println!(
        "| sender | receiver | label | preset | OPRF hash (s) | DB build (s): place + encode | DB memory (MiB) | query (ms) | answer (ms) | decode (ms) | up (KB) | down (KB) | parts | matches |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &sender in &sender_sizes {
        for &label_bytes in &labels {
            let key_bytes = *OprfKey::generate()?.to_bytes();
            let mut prepared_cache: Option<(f64, Vec<PreparedItem>)> = None;
            for &receiver in &receivers {
                let params = PsiParams::for_sizes(sender, receiver, label_bytes)?;
                let preset = psi_core::presets::PRESETS
                    .iter()
                    .find(|p| p.params() == params)
                    .map_or("designed", |p| p.name);
                let key = OprfKey::from_bytes(&key_bytes)?;
                let mut db = SenderDb::new(params.clone(), key)?;
                // OPRF-hash the sender set once (same key, same label length).
                if prepared_cache.is_none() {
                    let t = Instant::now();
                    let mut prepared = Vec::with_capacity(sender as usize);
                    for chunk_start in (0..sender).step_by(1 << 16) {
                        let chunk: Vec<([u8; 12], Option<[u8; 16]>)> = (chunk_start
                            ..(chunk_start + (1 << 16)).min(sender))
                            .map(|i| {
                                let mut l = [0u8; 16];
                                l[..8].copy_from_slice(&i.to_le_bytes());
                                (item(i), (label_bytes > 0).then_some(l))
                            })
                            .collect();
                        prepared.extend(db.prepare(&chunk)?);
                    }
                    prepared_cache = Some((t.elapsed().as_secs_f64(), prepared));
                }
                let (oprf_secs, prepared) =
                    prepared_cache.as_ref().ok_or("OPRF cache not filled")?;
                let t = Instant::now();
                db.insert_prepared(prepared.clone())?;
                let place = t.elapsed().as_secs_f64();
                db.regenerate(|_, _| {})?;
                let build = t.elapsed().as_secs_f64();
                let stats = db.stats();

                // Query: half of the items inside the set, half outside.
                let query_items: Vec<[u8; 12]> = (0..receiver)
                    .map(|i| {
                        if i % 2 == 0 {
                            item(i * 7919 % sender)
                        } else {
                            item(sender + i)
                        }
                    })
                    .collect();
                // The even-numbered items are the ones inside the set.
                let expected = query_items.len().div_ceil(2);
                let refs: Vec<&[u8]> = query_items.iter().map(|q| q.as_slice()).collect();
                let t = Instant::now();
                let receiver_side = Receiver::new(params.clone())?;
                let (req, pending) = receiver_side.oprf_request(&refs)?;
                let req_bytes = req.to_wire();
                let resp = db.evaluate_oprf(&OprfRequest::from_wire(&req_bytes)?)?;
                let resp_bytes = resp.to_wire();
                let (query, state) =
                    receiver_side.create_query(pending, &OprfResponse::from_wire(&resp_bytes)?)?;
                let query_bytes = query.to_wire();
                let query_ms = t.elapsed().as_secs_f64() * 1e3;

                // The sender's answer, timed as the median of five runs
                // (one answer is a few milliseconds at the small sizes).
                let mut times = Vec::new();
                let mut down = 0;
                let mut parts = Vec::new();
                for _ in 0..ANSWER_RUNS {
                    let t = Instant::now();
                    let decoded = Query::from_wire(&query_bytes)?;
                    down = resp_bytes.len();
                    parts.clear();
                    db.answer(&decoded, |p| {
                        let b = p.to_wire();
                        down += b.len();
                        parts.push(ResultPart::from_wire(&b)?);
                        Ok(())
                    })?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                times.sort_by(f64::total_cmp);
                let answer_ms = times[times.len() / 2];

                let t = Instant::now();
                let results = receiver_side.decode(&state, &parts)?;
                let decode_ms = t.elapsed().as_secs_f64() * 1e3;
                let found = results.iter().filter(|r| r.matched).count();
                if label_bytes > 0 {
                    for (q, r) in query_items.iter().zip(&results) {
                        if r.matched {
                            let label = r.label.as_ref().ok_or("a match without its label")?;
                            if label.get(..8) != Some(&q[4..]) {
                                return Err(format!("label mismatch for item {q:?}").into());
                            }
                        }
                    }
                }
                let up = req_bytes.len() + query_bytes.len();
                println!(
                    "| 2^{} | {} | {} | {} | {:.1} | {:.1}: {:.1} + {:.1} | {:.0} (peak RSS {:.0}) | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {}/{} |",
                    sender.trailing_zeros(),
                    receiver,
                    label_bytes,
                    preset,
                    oprf_secs,
                    build,
                    place,
                    build - place,
                    stats.bytes_in_memory as f64 / (1 << 20) as f64,
                    peak_rss_mib(),
                    query_ms,
                    answer_ms,
                    decode_ms,
                    up as f64 / 1000.0,
                    down as f64 / 1000.0,
                    parts.len(),
                    found,
                    expected
                );
                if found != expected {
                    return Err(format!("{found} matches found, {expected} expected").into());
                }
            }
        }
    }
    Ok(())
}
