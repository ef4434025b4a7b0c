//! psi-core saved sender databases (`SenderDb::load`), structure-aware:
//! raw bytes would never pass the SHA-256 checksums, so each input is a
//! list of edits (overwrite, insert, delete, truncate) applied to a valid
//! saved database, after which every checksum is recomputed. The loader's
//! structural checks must then refuse or accept it, never panic; an
//! accepted database answers a query.
#![no_main]

use arbitrary::Arbitrary;
use breach_fuzz::{SAVED_SENDER_DB, fix_checksums, oprf_key, psi_params};
use libfuzzer_sys::fuzz_target;
use psi_core::{Receiver, SenderDb};

#[derive(Arbitrary, Debug)]
enum Edit {
    Set { at: u32, byte: u8 },
    SetU32 { at: u32, value: u32 },
    SetU64 { at: u32, value: u64 },
    Insert { at: u32, bytes: Vec<u8> },
    Delete { at: u32, len: u16 },
    Truncate { len: u32 },
}

fuzz_target!(|edits: Vec<Edit>| {
    let mut bytes = SAVED_SENDER_DB.clone();
    for edit in edits.iter().take(16) {
        let n = bytes.len().max(1);
        match *edit {
            Edit::Set { at, byte } => {
                if let Some(b) = bytes.get_mut(at as usize % n) {
                    *b = byte;
                }
            }
            Edit::SetU32 { at, value } => {
                let at = at as usize % n;
                if at + 4 <= bytes.len() {
                    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            Edit::SetU64 { at, value } => {
                let at = at as usize % n;
                if at + 8 <= bytes.len() {
                    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
                }
            }
            Edit::Insert { at, bytes: ref ins } => {
                let at = (at as usize % n).min(bytes.len());
                bytes.splice(at..at, ins.iter().copied().take(4096));
            }
            Edit::Delete { at, len } => {
                let at = (at as usize % n).min(bytes.len());
                let end = (at + usize::from(len)).min(bytes.len());
                bytes.drain(at..end);
            }
            Edit::Truncate { len } => bytes.truncate(len as usize % n),
        }
    }
    fix_checksums(&mut bytes);
    let Ok(db) = SenderDb::load(bytes.as_slice(), oprf_key()) else {
        return;
    };
    let _ = db.stats();
    let receiver = Receiver::new(psi_params()).expect("receiver");
    let (req, pending) = receiver
        .oprf_request(&[b"fuzz-item-1".as_slice()])
        .expect("oprf request");
    let resp = db.evaluate_oprf(&req).expect("OPRF with the right key");
    let (query, state) = receiver.create_query(pending, &resp).expect("query");
    if let Ok(parts) = db.answer_all(&query) {
        let _ = receiver.decode(&state, &parts);
    }
});
