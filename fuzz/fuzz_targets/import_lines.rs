//! breach-server import line parsers: every line through the combo and
//! HIBP parsers, and the whole input through format auto-detection.
#![no_main]

use breach_server::import::{detect_format, parse_combo_line, parse_hibp_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect_format(data);
    for line in data.split(|&b| b == b'\n') {
        if let Ok((user, password)) = parse_combo_line(line) {
            assert!(line.len() >= user.len() + password.len());
        }
        if let Ok(Some((_sha1, count))) = parse_hibp_line(line) {
            let _ = count;
        }
    }
});
