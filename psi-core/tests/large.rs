//! A 2^20-item sender with a 1024-item labeled query. Takes minutes (OPRF
//! hashing of a million items dominates), so it is ignored in CI and run
//! by the benchmark command instead:
//!
//! ```sh
//! cargo test --release -p psi-core --test large -- --ignored
//! ```
#![allow(missing_docs)]

use psi_core::*;

#[test]
#[ignore = "minutes: run with --ignored (see BENCHMARKS.md)"]
fn million_item_sender_labeled_1024_query() {
    let sender = 1u64 << 20;
    let params = PsiParams::for_sizes(sender, 1024, 16).unwrap();
    let mut db = SenderDb::new(params.clone(), OprfKey::generate().unwrap()).unwrap();
    for start in (0..sender).step_by(1 << 16) {
        let chunk: Vec<(Vec<u8>, Option<Vec<u8>>)> = (start..start + (1 << 16))
            .map(|i| {
                (
                    format!("item-{i}").into_bytes(),
                    Some(i.to_le_bytes().to_vec()),
                )
            })
            .collect();
        let prepared = db.prepare(&chunk).unwrap();
        db.insert_prepared(prepared).unwrap();
    }
    db.regenerate(|_, _| {}).unwrap();
    assert_eq!(db.stats().items, sender);
    let receiver = Receiver::new(params).unwrap();
    let query: Vec<Vec<u8>> = (0..1024u64)
        .map(|i| {
            format!(
                "item-{}",
                if i % 2 == 0 {
                    i * 1021 % sender
                } else {
                    sender + i
                }
            )
            .into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = query.iter().map(Vec::as_slice).collect();
    let (req, pending) = receiver.oprf_request(&refs).unwrap();
    let (q, state) = receiver
        .create_query(pending, &db.evaluate_oprf(&req).unwrap())
        .unwrap();
    let parts = db.answer_all(&q).unwrap();
    // Full bins (the largest polynomial degree) still leave noise headroom.
    // Results are compressed, which caps their budget at about 4 bits (the
    // 5-bit margin of `he_core::CompressionBits`) however much headroom the
    // uncompressed result had: 2 bits is the presets test's bar too.
    let budget = receiver.min_noise_budget(&parts).unwrap();
    eprintln!("result noise budget: {budget} bits");
    assert!(budget >= 2, "noise budget {budget}");
    let results = receiver.decode(&state, &parts).unwrap();
    for (i, r) in results.iter().enumerate() {
        let i = i as u64;
        assert_eq!(r.matched, i.is_multiple_of(2), "query item {i}");
        if r.matched {
            assert_eq!(
                &r.label.as_ref().unwrap()[..8],
                &(i * 1021 % sender).to_le_bytes()
            );
        }
    }
}
