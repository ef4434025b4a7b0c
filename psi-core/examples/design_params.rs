//! Regenerates the shipped parameter files `psi-core/params/*.json` from
//! `psi_core::presets::design`:
//!
//! ```sh
//! cargo run --release -p psi-core --example design_params
//! ```

use psi_core::presets::{PRESETS, design};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("params");
    for p in PRESETS {
        let params = design(p.sender_items, p.receiver_items, p.label_bytes)?;
        let path = dir.join(format!("{}.json", p.name));
        std::fs::write(&path, params.to_json() + "\n")?;
        let dag = params.validate()?;
        println!(
            "{:<12} n {:>5} q {:?} table {:>5} h {} B {:>3} f {} L {:>2} powers {} depth {} log2 FP {:.1}",
            p.name,
            params.bfv.poly_modulus_degree,
            params.bfv.coeff_modulus_bits,
            params.table_size,
            params.hash_functions,
            params.max_items_per_bin,
            params.felts_per_item,
            params.ps_low_degree,
            params.query_powers.len(),
            dag.depth(),
            params.false_positive_log2(p.receiver_items, p.sender_items)
        );
    }
    Ok(())
}
