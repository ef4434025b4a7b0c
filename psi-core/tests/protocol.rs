//! End-to-end PSI in process: OPRF, query, answer, decode.
#![allow(missing_docs)]

use psi_core::wire::Codec;
use psi_core::*;

fn params(labeled: bool, ps: u32) -> PsiParams {
    let mut p = PsiParams::from_json(include_str!("../params/test-small.json")).unwrap();
    if !labeled {
        p.label_byte_count = 0;
    }
    if ps > 0 {
        p.ps_low_degree = ps;
        // PS with low degree 3: low powers 1..=3, high powers 4, 8, 12, 16.
        p.query_powers = vec![1, 3, 4];
    }
    p
}

fn item(i: u64) -> Vec<u8> {
    format!("item-{i}").into_bytes()
}

fn label(i: u64) -> Vec<u8> {
    format!("label{i:011}").into_bytes()
}

fn run(db: &SenderDb, receiver: &Receiver, query_items: &[Vec<u8>]) -> Vec<MatchResult> {
    let refs: Vec<&[u8]> = query_items.iter().map(Vec::as_slice).collect();
    let (req, pending) = receiver.oprf_request(&refs).unwrap();
    let resp = db.evaluate_oprf(&req).unwrap();
    let (query, state) = receiver.create_query(pending, &resp).unwrap();
    let query = Query::from_wire(&query.to_wire()).unwrap();
    let parts = db.answer_all(&query).unwrap();
    assert_eq!(parts.len(), db.result_part_count());
    receiver.decode(&state, &parts).unwrap()
}

fn build(p: &PsiParams, range: std::ops::Range<u64>) -> SenderDb {
    let mut db = SenderDb::new(p.clone(), OprfKey::generate().unwrap()).unwrap();
    let items: Vec<(Vec<u8>, Vec<u8>)> = range.map(|i| (item(i), label(i))).collect();
    if p.label_byte_count > 0 {
        let v: Vec<(&[u8], &[u8])> = items
            .iter()
            .map(|(a, b)| (a.as_slice(), b.as_slice()))
            .collect();
        db.insert(&v).unwrap();
    } else {
        let v: Vec<&[u8]> = items.iter().map(|(a, _)| a.as_slice()).collect();
        db.insert_unlabeled(&v).unwrap();
    }
    db
}

fn check_known_intersection(p: PsiParams) {
    // 9000 sender items: with 2048 bins of 16 items and h = 3 copies each,
    // bins overflow into several bundles.
    let db = build(&p, 0..9000);
    assert!(db.stats().bundles > 1, "{:?}", db.stats());
    let receiver = Receiver::new(p.clone()).unwrap();
    // Half in the set, half not, plus one duplicate.
    let mut q: Vec<Vec<u8>> = (0..200).map(|i| item(i * 29 % 18000)).collect();
    q.push(item(0));
    let results = run(&db, &receiver, &q);
    for (qi, r) in q.iter().zip(&results) {
        let idx: u64 = String::from_utf8_lossy(&qi[5..]).parse().unwrap();
        let expect = idx < 9000;
        assert_eq!(r.matched, expect, "item {idx}");
        if expect && p.label_byte_count > 0 {
            let mut l = label(idx);
            l.resize(p.label_byte_count, 0);
            assert_eq!(r.label.as_ref().unwrap(), &l);
        } else {
            assert!(r.label.is_none());
        }
    }
}

#[test]
fn labeled_known_intersection() {
    check_known_intersection(params(true, 0));
}

#[test]
fn unlabeled_known_intersection() {
    check_known_intersection(params(false, 0));
}

#[test]
fn paterson_stockmeyer_known_intersection() {
    check_known_intersection(params(true, 3));
}

#[test]
fn edge_cases() {
    let p = params(true, 0);
    let receiver = Receiver::new(p.clone()).unwrap();
    // Empty sender database: no parts, no matches.
    let empty = SenderDb::new(p.clone(), OprfKey::generate().unwrap()).unwrap();
    let r = run(&empty, &receiver, &[item(1)]);
    assert!(!r[0].matched);
    let mut db = build(&p, 0..100);
    // Empty query.
    assert!(run(&db, &receiver, &[]).is_empty());
    // Remove, then query.
    assert_eq!(
        db.remove(&[item(5).as_slice(), item(999).as_slice()])
            .unwrap(),
        1
    );
    let r = run(&db, &receiver, &[item(5), item(6)]);
    assert!(!r[0].matched && r[1].matched);
    assert_eq!(db.stats().items, 99);
    // Update a label in place.
    db.insert(&[(item(6).as_slice(), b"new".as_slice())])
        .unwrap();
    assert_eq!(db.stats().items, 99);
    let r = run(&db, &receiver, &[item(6)]);
    assert_eq!(&r[0].label.as_ref().unwrap()[..3], b"new");
    // Save, load, query.
    let mut bytes = Vec::new();
    db.save(&mut bytes).unwrap();
    let key = OprfKey::from_bytes(db.oprf_key().to_bytes().as_slice()).unwrap();
    let loaded = SenderDb::load(bytes.as_slice(), key).unwrap();
    assert_eq!(loaded.stats().items, 99);
    let r = run(&loaded, &receiver, &[item(6), item(7), item(5)]);
    assert!(r[0].matched && r[1].matched && !r[2].matched);
    // Corrupted, truncated or foreign files are errors, each for its own
    // reason (always with the right key, unless the key is the point).
    let same_key = || OprfKey::from_bytes(db.oprf_key().to_bytes().as_slice()).unwrap();
    let corrupt = |r: Result<SenderDb>, what: &str| match r {
        Err(Error::CorruptDatabase(m)) => assert!(m.contains(what), "{m}"),
        other => panic!(
            "expected a corrupt database ({what}), got {:?}",
            other.map(|_| ())
        ),
    };
    let mut bad = bytes.clone();
    bad[40] ^= 1;
    corrupt(
        SenderDb::load(bad.as_slice(), same_key()),
        "checksum mismatch in the header",
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 40;
    bad[last] ^= 1;
    corrupt(
        SenderDb::load(bad.as_slice(), same_key()),
        "checksum mismatch",
    );
    corrupt(
        SenderDb::load(bytes.as_slice(), OprfKey::generate().unwrap()),
        "built with another OPRF key",
    );
    corrupt(
        SenderDb::load(&bytes[..bytes.len() - 1], same_key()),
        "truncated",
    );
    corrupt(
        SenderDb::load([bytes.as_slice(), &[0]].concat().as_slice(), same_key()),
        "trailing bytes",
    );
    // The untouched file still loads with its key.
    assert_eq!(
        SenderDb::load(bytes.as_slice(), same_key())
            .unwrap()
            .stats()
            .items,
        99
    );
    // Labels are required exactly when the database is labeled.
    assert!(matches!(
        db.insert_unlabeled(&[b"x".as_slice()]),
        Err(Error::LabelMismatch(_))
    ));
    assert_eq!(
        db.insert(&[(b"x".as_slice(), [0u8; 17].as_slice())]),
        Err(Error::LabelTooLong { len: 17, max: 16 })
    );
}

#[test]
fn hostile_queries_are_errors() {
    let p = params(false, 0);
    let db = build(&p, 0..50);
    let receiver = Receiver::new(p.clone()).unwrap();
    let (req, pending) = receiver.oprf_request(&[b"a".as_slice()]).unwrap();
    let resp = db.evaluate_oprf(&req).unwrap();
    let (query, _) = receiver.create_query(pending, &resp).unwrap();
    // The untouched query is answered: each refusal below is for its edit.
    assert_eq!(db.answer_all(&query).unwrap().len(), db.result_part_count());
    let mut q = query.clone();
    q.params_fingerprint[0] ^= 1;
    assert_eq!(db.answer_all(&q).unwrap_err(), Error::ParameterMismatch);
    let mut q = query.clone();
    q.powers[0].pop();
    assert!(
        matches!(db.answer_all(&q), Err(Error::Malformed(ref m)) if m.contains("bundle indices")),
        "{:?}",
        db.answer_all(&q).map(|_| ())
    );
    let mut q = query.clone();
    q.powers[0][0].truncate(100);
    assert!(
        matches!(
            db.answer_all(&q),
            Err(Error::He(he_core::Error::TooShort { .. }))
        ),
        "{:?}",
        db.answer_all(&q).map(|_| ())
    );
    let mut q = query.clone();
    q.powers[0][0].push(0);
    assert_eq!(
        db.answer_all(&q).unwrap_err(),
        Error::He(he_core::Error::TrailingData(1))
    );
    assert!(query.relin_keys.is_some(), "these parameters multiply");
    let mut q = query.clone();
    q.relin_keys.as_mut().unwrap()[20] ^= 0xff;
    let _ = db.answer_all(&q); // an error or a garbage answer, never a panic
    // Parameters with ciphertext products need the keys.
    let mut q = query.clone();
    q.relin_keys = None;
    assert!(
        matches!(db.answer_all(&q), Err(Error::Malformed(ref m)) if m.contains("relinearization keys")),
        "{:?}",
        db.answer_all(&q).map(|_| ())
    );
    let bad = OprfRequest {
        elements: vec![[0xff; 32]],
    };
    assert_eq!(
        db.evaluate_oprf(&bad).unwrap_err(),
        Error::InvalidGroupElement { index: 0 }
    );
}

#[test]
fn queries_carry_relin_keys_only_when_the_sender_multiplies() {
    // Every needed power sent: no products, no relinearization keys.
    let mut p = params(true, 0);
    p.max_items_per_bin = 6;
    p.query_powers = (1..=6).collect();
    let db = build(&p, 0..3000);
    let receiver = Receiver::new(p.clone()).unwrap();
    let (req, pending) = receiver.oprf_request(&[item(7).as_slice()]).unwrap();
    let (query, state) = receiver
        .create_query(pending, &db.evaluate_oprf(&req).unwrap())
        .unwrap();
    assert!(query.relin_keys.is_none());
    let parts = db
        .answer_all(&Query::from_wire(&query.to_wire()).unwrap())
        .unwrap();
    assert!(receiver.min_noise_budget(&parts).unwrap() >= 2);
    let r = receiver.decode(&state, &parts).unwrap();
    assert!(r[0].matched);
    let mut l = label(7);
    l.resize(p.label_byte_count, 0);
    assert_eq!(r[0].label.as_ref().unwrap(), &l);
    // Products (and Paterson-Stockmeyer) need them.
    for p in [params(false, 0), params(false, 3)] {
        let receiver = Receiver::new(p).unwrap();
        let (req, pending) = receiver.oprf_request(&[item(7).as_slice()]).unwrap();
        let (query, _) = receiver
            .create_query(pending, &db.evaluate_oprf(&req).unwrap())
            .unwrap();
        assert!(query.relin_keys.is_some());
    }
}
