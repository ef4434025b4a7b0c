//! breach-client vault exports: every CSV format and the auto-detection
//! (`VaultReader::read`; the first byte picks auto or one format). A vault
//! is read or refused with a `VaultError`, never a panic.
#![no_main]

use breach_client::vault::{VaultFormat, VaultReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let formats = VaultFormat::ALL;
    let format = formats
        .get(usize::from(pick) % (formats.len() + 1))
        .copied();
    let reader = VaultReader::new().format(format).max_entries(1000);
    if let Ok(vault) = reader.read(body) {
        assert!(vault.entries.len() <= 1000);
    }
});
