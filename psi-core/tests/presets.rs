//! Every shipped preset: up to date with `design`, valid, below 2^-40 false
//! positives at its sizes, and correct end to end at a reduced sender size.
#![allow(missing_docs)]

use psi_core::presets::{PRESETS, design};
use psi_core::*;

#[test]
fn presets_match_design_and_bounds() {
    for p in PRESETS {
        let params = p.params();
        let designed = design(p.sender_items, p.receiver_items, p.label_bytes).unwrap();
        assert_eq!(
            params, designed,
            "{} is stale: run the design_params example",
            p.name
        );
        params
            .validate_for_sizes(p.receiver_items, p.sender_items)
            .unwrap();
        assert!(params.false_positive_log2(p.receiver_items, p.sender_items) <= -40.0);
        assert_eq!(params.label_byte_count, p.label_bytes);
        assert_eq!(PsiParams::from_json(&params.to_json()).unwrap(), params);
    }
}

#[test]
fn for_sizes_picks_the_smallest_covering_preset() {
    let p = PsiParams::for_sizes(1000, 1, 0).unwrap();
    assert_eq!(p, PRESETS[0].params());
    let p = PsiParams::for_sizes(1 << 20, 300, 8).unwrap();
    assert_eq!(
        p,
        PRESETS
            .iter()
            .find(|p| p.name == "1M-1024-16")
            .unwrap()
            .params()
    );
    // Beyond every preset: designed on the spot, still within the bound.
    let big = PsiParams::for_sizes(1 << 25, 1024, 0).unwrap();
    assert!(big.false_positive_log2(1024, 1 << 25) <= -40.0);
}

fn e2e(preset: &psi_core::presets::Preset) {
    let params = preset.params();
    let labeled = params.label_byte_count > 0;
    let mut db = SenderDb::new(params.clone(), OprfKey::generate().unwrap()).unwrap();
    let n = 3000u64;
    let items: Vec<Vec<u8>> = (0..n).map(|i| format!("s{i}").into_bytes()).collect();
    let labels: Vec<Vec<u8>> = (0..n).map(|i| (i * 7).to_le_bytes().to_vec()).collect();
    if labeled {
        let v: Vec<(&[u8], &[u8])> = items
            .iter()
            .zip(&labels)
            .map(|(a, b)| (a.as_slice(), b.as_slice()))
            .collect();
        db.insert(&v).unwrap();
    } else {
        let v: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        db.insert_unlabeled(&v).unwrap();
    }
    let receiver = Receiver::new(params.clone()).unwrap();
    let q = preset.receiver_items.min(64);
    let query: Vec<Vec<u8>> = (0..q)
        .map(|i| format!("s{}", i * 97 % (2 * n)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = query.iter().map(Vec::as_slice).collect();
    let (req, pending) = receiver.oprf_request(&refs).unwrap();
    let (query_msg, state) = receiver
        .create_query(pending, &db.evaluate_oprf(&req).unwrap())
        .unwrap();
    let parts = db.answer_all(&query_msg).unwrap();
    let budget = receiver.min_noise_budget(&parts).unwrap();
    assert!(budget >= 2, "{}: result noise budget {budget}", preset.name);
    let results = receiver.decode(&state, &parts).unwrap();
    for (i, r) in results.iter().enumerate() {
        let idx = i as u64 * 97 % (2 * n);
        assert_eq!(r.matched, idx < n, "{} item {idx}", preset.name);
        if r.matched && labeled {
            assert_eq!(
                &r.label.as_ref().unwrap()[..8],
                &(idx * 7).to_le_bytes()[..]
            );
        }
    }
}

#[test]
fn every_preset_answers_correctly_at_reduced_size() {
    for p in PRESETS {
        e2e(p);
    }
}

/// The deep Paterson-Stockmeyer set of the 2^24-item presets with every
/// bin full and overflowing into a second bundle (a small table stands in
/// for the 2048 bins): the whole circuit runs, with budget to spare.
#[test]
fn deep_paterson_stockmeyer_with_full_bins() {
    let preset = PRESETS.iter().find(|p| p.name == "16M-1").unwrap();
    let mut params = preset.params();
    assert!(
        params.ps_low_degree > 0,
        "16M-1 is a Paterson-Stockmeyer set"
    );
    params.table_size = 16;
    let per_bin = params.max_items_per_bin;
    let n = 16 * per_bin * 5 / 4;
    let mut db = SenderDb::new(params.clone(), OprfKey::generate().unwrap()).unwrap();
    let items: Vec<Vec<u8>> = (0..n).map(|i| format!("d{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    db.insert_unlabeled(&refs).unwrap();
    assert_eq!(
        db.result_part_count(),
        2,
        "full bins spill into a second bundle"
    );
    let receiver = Receiver::new(params).unwrap();
    for item in [b"d12345".as_slice(), b"absent".as_slice()] {
        let (req, pending) = receiver.oprf_request(&[item]).unwrap();
        let (query, state) = receiver
            .create_query(pending, &db.evaluate_oprf(&req).unwrap())
            .unwrap();
        let parts = db.answer_all(&query).unwrap();
        let budget = receiver.min_noise_budget(&parts).unwrap();
        assert!(budget >= 2, "result noise budget {budget}");
        let results = receiver.decode(&state, &parts).unwrap();
        assert_eq!(results[0].matched, item != b"absent");
    }
}
