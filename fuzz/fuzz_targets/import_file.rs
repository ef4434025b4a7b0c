//! breach-server `import_file` end to end (auto-detection, then the combo,
//! HIBP or CSV importer with its batches and SQLite transaction) on a
//! store kept for the whole run: the first byte picks the format (auto,
//! combo, hibp, csv), the rest is the file. Imports or refuses with an
//! error, never a panic, and the store's counts never go down.
#![no_main]

use std::sync::{LazyLock, Mutex};

use breach_server::import::{Format, ImportOptions, import_file};
use breach_server::store::Store;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    file: std::path::PathBuf,
}

static FIXTURE: LazyLock<Mutex<Fixture>> = LazyLock::new(|| {
    // /dev/shm when there is one: SQLite commits there cost no disk sync.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::Builder::new()
        .prefix("breach-fuzz-import")
        .tempdir_in(base)
        .expect("temp dir");
    let store = Store::open(dir.path().join("store")).expect("store");
    let file = dir.path().join("input.txt");
    Mutex::new(Fixture {
        _dir: dir,
        store,
        file,
    })
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let format = match pick % 4 {
        0 => None,
        1 => Some(Format::Combo),
        2 => Some(Format::Hibp),
        _ => Some(Format::Csv),
    };
    let mut f = FIXTURE.lock().unwrap_or_else(|e| e.into_inner());
    let before = f.store.counts().expect("counts");
    std::fs::write(&f.file, body).expect("write input");
    let options = ImportOptions {
        format,
        batch_lines: 7,
        progress: false,
        abort_after_batches: None,
    };
    let file = f.file.clone();
    if let Ok(report) = import_file(&mut f.store, &file, &options) {
        assert!(report.accepted + report.malformed <= report.lines);
    }
    let after = f.store.counts().expect("counts");
    assert!(after.credentials >= before.credentials && after.passwords >= before.passwords);
});
