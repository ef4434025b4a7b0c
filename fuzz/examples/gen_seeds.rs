//! Writes the seed corpora of every fuzz target into `fuzz/corpus/<target>/`
//! (small, deterministic apart from encryption randomness, committed):
//! `cargo run --release --example gen_seeds` from `fuzz/`.

use std::fs;
use std::path::{Path, PathBuf};

use breach_fuzz::*;
use breach_proto::v1 as pb;
use he_core::{
    BatchEncoder, CompressionBits, Encryptor, Evaluator, PlaintextNtt, PublicKey, RelinKeys,
};
use prost::Message;
use psi_core::wire::Codec;
use psi_core::{OprfRequest, OprfResponse, Receiver, ResultPart};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures/data")
        .join(rel)
}

/// The first `lines` lines of a fixture file.
fn head(rel: &str, lines: usize) -> Vec<u8> {
    let text = fs::read(fixture(rel)).expect("fixture");
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n').take(lines) {
        out.extend_from_slice(line);
    }
    out
}

fn main() {
    // he-core objects over the fuzz parameters.
    let p = &*HE_PARAMS;
    let sk = &*HE_SECRET_KEY;
    let enc = BatchEncoder::new(p);
    let ev = Evaluator::new(p);
    let pt = enc.encode(&[1, 2, 3, 4]).expect("encode");
    let pk = PublicKey::new(sk).expect("public key");
    let rk = RelinKeys::new(sk).expect("relin keys");
    let seeded = sk.encrypt_symmetric(&pt).expect("encrypt");
    let full = Encryptor::new(p, &pk)
        .expect("encryptor")
        .encrypt(&pt)
        .expect("encrypt");
    let product = ev.multiply(&full, &seeded).expect("multiply");
    let mut ntt = ev.mod_switch_to_next(&product).expect("mod switch");
    ev.transform_to_ntt(&mut ntt).expect("ntt");
    let compressed = ev
        .compress(&full, CompressionBits::for_params(p))
        .expect("compress");
    write("he_ciphertext", "seeded", &seeded.to_bytes(p).unwrap());
    write("he_ciphertext", "full", &full.to_bytes(p).unwrap());
    write("he_ciphertext", "size3", &product.to_bytes(p).unwrap());
    write("he_ciphertext", "ntt-level1", &ntt.to_bytes(p).unwrap());
    write(
        "he_ciphertext",
        "compressed",
        &compressed.to_bytes(p).unwrap(),
    );
    write("he_plaintext", "plaintext", &pt.to_bytes(p).unwrap());
    write(
        "he_plaintext",
        "plaintext-ntt",
        &PlaintextNtt::new(p, &pt, 0).unwrap().to_bytes(p).unwrap(),
    );
    write(
        "he_plaintext",
        "plaintext-ntt-compact",
        &PlaintextNtt::new_compact(p, &pt, 0)
            .unwrap()
            .to_bytes(p)
            .unwrap(),
    );
    write("he_keys", "public", &pk.to_bytes(p).unwrap());
    write("he_keys", "relin", &rk.to_bytes(p).unwrap());
    write("he_keys", "secret", &sk.to_bytes());
    // Arbitrary-driven: a few byte strings to start from.
    write("he_params", "zeros", &[0u8; 64]);
    write(
        "he_params",
        "small",
        &[
            10, 0, 1, 0x01, 0, 0, 0, 0, 0, 0, 0x40, 1, 14, 1, 2, 30, 31, 0, 0, 1, 31, 0, 1,
        ],
    );

    // psi-core messages, over the fuzz PSI parameters.
    let params = psi_params();
    let db = sender_db(40);
    let receiver = Receiver::new(params.clone()).expect("receiver");
    let items: Vec<Vec<u8>> = vec![item(1), item(2), b"not in the set".to_vec()];
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let (req, pending) = receiver.oprf_request(&refs).expect("oprf");
    let resp = db.evaluate_oprf(&req).expect("evaluate");
    let (query, _state) = receiver.create_query(pending, &resp).expect("query");
    let parts: Vec<ResultPart> = db.answer_all(&query).expect("answer");
    write("psi_messages", "oprf-request", &req.to_wire());
    write("psi_messages", "oprf-response", &resp.to_wire());
    write(
        "psi_messages",
        "oprf-empty",
        &OprfRequest { elements: vec![] }.to_wire(),
    );
    write(
        "psi_messages",
        "oprf-response-one",
        &OprfResponse {
            elements: vec![[9; 32]],
        }
        .to_wire(),
    );
    write("psi_messages", "query", &query.to_wire());
    write("psi_messages", "result-part", &parts[0].to_wire());
    write("psi_messages", "params", &params.to_wire());
    write("psi_params_json", "fuzz", PSI_PARAMS_JSON.as_bytes());
    write(
        "psi_params_json",
        "test-small",
        include_bytes!("../../psi-core/params/test-small.json"),
    );
    write(
        "psi_params_json",
        "1M-1024-16",
        include_bytes!("../../psi-core/params/1M-1024-16.json"),
    );
    write(
        "psi_params_json",
        "64K-1-16",
        include_bytes!("../../psi-core/params/64K-1-16.json"),
    );
    // No edits: the saved database as it is.
    write("psi_senderdb", "unchanged", b"");
    write("psi_senderdb", "one-edit", &[0, 40, 0, 0, 0, 1]);

    // Server requests: method byte, then the protobuf body.
    let oprf = pb::OprfRequest {
        collection: pb::Collection::Credentials as i32,
        blinded_elements: req.elements.iter().map(|e| e.to_vec()).collect(),
    };
    let mut seed = vec![0u8];
    oprf.encode(&mut seed).expect("encode");
    write("server_request", "oprf", &seed);
    let q = pb::QueryRequest {
        collection: pb::Collection::Credentials as i32,
        query: query.to_wire(),
    };
    let mut seed = vec![1u8];
    q.encode(&mut seed).expect("encode");
    write("server_request", "query", &seed);
    let q = pb::QueryRequest {
        collection: pb::Collection::Passwords as i32,
        query: query.to_wire(),
    };
    let mut seed = vec![1u8];
    q.encode(&mut seed).expect("encode");
    write("server_request", "query-unserved-collection", &seed);

    // Vault exports: auto-detection (first byte 0) of each fixture, cut
    // to a few rows.
    for name in [
        "1password",
        "bitwarden",
        "chrome",
        "firefox",
        "keepassxc",
        "lastpass",
        "safari",
    ] {
        let mut seed = vec![0u8];
        seed.extend(head(&format!("vaults/{name}.csv"), 6));
        write("client_vault", name, &seed);
    }

    // Import files and lines.
    let combo = head("breach/combo-1.txt", 20);
    let hibp = head("breach/pwned-passwords.txt", 10);
    let csv = b"\xEF\xBB\xBFEmail,Username,Password\nalice@example.com,alice,hunter2\n\"bob, jr\",bob,\"pa\"\"ss\nword\"\n".to_vec();
    for (name, body) in [("combo", &combo), ("hibp", &hibp), ("csv", &csv)] {
        write("import_lines", name, body);
        let mut seed = vec![0u8];
        seed.extend_from_slice(body);
        write("import_file", name, &seed);
    }
    println!("seeds written to {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
