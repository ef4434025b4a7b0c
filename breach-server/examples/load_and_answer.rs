//! Measures what `serve` costs on a built store, in process: loading each
//! collection's saved databases ([`psi_db::load`], both tiers), the peak
//! memory of the process (VmHWM), and the sender's answer to a one-item
//! query on each tier (OPRF, query and decryption run here with psi-core's
//! `Receiver`, timed apart from the answer).
//!
//! ```text
//! cargo run --release -p breach-server --example load_and_answer -- STORE [PASSWORD]
//! ```
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use breach_proto::encoding::{Label, password_item};
use breach_server::psi_db::{self, Tier};
use breach_server::store::Collection;
use psi_core::Receiver;

fn vm_hwm_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let store: PathBuf = args
        .next()
        .ok_or("usage: load_and_answer STORE [PASSWORD]")?
        .into();
    let password = args.next().unwrap_or_else(|| "password".into());

    let started = Instant::now();
    let mut dbs = Vec::new();
    for c in Collection::ALL {
        let t = Instant::now();
        let db = psi_db::load(&store, c)?.ok_or("no saved database: run build")?;
        println!(
            "loaded {c}: generation {}, {} items, tiers {:?} in {:.2} s (VmHWM {} MiB)",
            db.generation,
            db.items(),
            db.tiers.iter().map(|t| t.tier.name()).collect::<Vec<_>>(),
            t.elapsed().as_secs_f64(),
            vm_hwm_mib().unwrap_or(0)
        );
        dbs.push(db);
    }
    println!(
        "both collections loaded in {:.2} s, VmHWM {} MiB",
        started.elapsed().as_secs_f64(),
        vm_hwm_mib().unwrap_or(0)
    );

    let passwords = dbs
        .iter()
        .find(|d| d.collection == Collection::Passwords)
        .ok_or("no passwords database")?;
    let item = password_item(&password);
    for tier in Tier::ALL {
        let db = &passwords.tier(tier).ok_or("tier missing")?.db;
        let receiver = Receiver::new(db.params().clone())?;
        let t = Instant::now();
        let (req, pending) = receiver.oprf_request(&[item.as_slice()])?;
        let resp = passwords.evaluate_oprf(&req)?;
        let (query, state) = receiver.create_query(pending, &resp)?;
        let client_side = t.elapsed();
        let t = Instant::now();
        let parts = db.answer_all(&query)?;
        let answer = t.elapsed();
        let result = receiver.decode(&state, &parts)?;
        let count = result[0]
            .label
            .as_deref()
            .filter(|_| result[0].matched)
            .map(Label::from_bytes)
            .transpose()?
            .map(|l| l.count);
        println!(
            "{tier} tier: one-item query answered in {:.3} s ({} parts; OPRF + query creation {:.3} s); count {count:?}",
            answer.as_secs_f64(),
            parts.len(),
            client_side.as_secs_f64(),
        );
    }
    println!("VmHWM after the queries {} MiB", vm_hwm_mib().unwrap_or(0));
    Ok(())
}
