use std::io::Write;

use breach_proto::encoding::{credential_item, password_item, password_sha1};

use super::*;
use crate::store::Collection;

fn lines_of(input: &[u8]) -> Vec<(u64, Result<Vec<u8>, MalformedReason>)> {
    let mut r = LineReader::new(BufReader::with_capacity(16, input), 0, 0);
    let mut out = Vec::new();
    while let Some((n, line)) = r.next_line().unwrap() {
        out.push((n, line.map(<[u8]>::to_vec)));
    }
    assert_eq!(r.offset, input.len() as u64);
    out
}

#[test]
fn line_reader_strips_lf_and_crlf() {
    let got = lines_of(b"a\r\nb\n\r\n\nc\rd\ne");
    let want: Vec<(u64, Result<Vec<u8>, MalformedReason>)> = vec![
        (1, Ok(b"a".to_vec())),
        (2, Ok(b"b".to_vec())),
        (3, Ok(b"".to_vec())),
        (4, Ok(b"".to_vec())),
        (5, Ok(b"c\rd".to_vec())),
        (6, Ok(b"e".to_vec())),
    ];
    assert_eq!(got, want);
}

#[test]
fn line_reader_bounds_long_lines() {
    let mut input = vec![b'x'; MAX_LINE_BYTES];
    input.extend_from_slice(b"\r\n");
    input.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES + 1));
    input.extend_from_slice(b"\nok\n");
    input.extend(std::iter::repeat_n(b'z', 3 * MAX_LINE_BYTES)); // no terminator
    let got = lines_of(&input);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], (1, Ok(vec![b'x'; MAX_LINE_BYTES])));
    assert_eq!(got[1], (2, Err(MalformedReason::TooLong)));
    assert_eq!(got[2], (3, Ok(b"ok".to_vec())));
    assert_eq!(got[3], (4, Err(MalformedReason::TooLong)));
}

#[test]
fn combo_lines() {
    use MalformedReason::*;
    assert_eq!(parse_combo_line(b"a:b:c"), Ok(("a", "b:c")));
    assert_eq!(parse_combo_line(b" A :  pw "), Ok((" A ", "  pw ")));
    assert_eq!(parse_combo_line(b"nocolon"), Err(NoSeparator));
    assert_eq!(parse_combo_line(b":pw"), Err(EmptyUsername));
    assert_eq!(
        parse_combo_line(" \u{3000}:pw".as_bytes()),
        Err(EmptyUsername)
    );
    assert_eq!(parse_combo_line(b"user:"), Err(EmptyPassword));
    assert_eq!(parse_combo_line(b"us\xffer:pw"), Err(InvalidUtf8));
}

#[test]
fn hibp_lines() {
    use MalformedReason::*;
    let hex = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
    let sha1 = password_sha1("password");
    assert_eq!(
        parse_hibp_line(format!("{hex}:3").as_bytes()),
        Ok(Some((sha1, 3)))
    );
    assert_eq!(
        parse_hibp_line(format!("\t{}:18446744073709551615 ", hex.to_lowercase()).as_bytes()),
        Ok(Some((sha1, u64::MAX)))
    );
    assert_eq!(parse_hibp_line(b"  "), Ok(None));
    assert_eq!(
        parse_hibp_line(format!("{hex}:0").as_bytes()),
        Err(BadCount)
    );
    assert_eq!(
        parse_hibp_line(format!("{hex}:+5").as_bytes()),
        Err(BadCount)
    );
    assert_eq!(parse_hibp_line(format!("{hex}:").as_bytes()), Err(BadCount));
    assert_eq!(
        parse_hibp_line(format!("{hex}:18446744073709551616").as_bytes()),
        Err(BadCount)
    );
    assert_eq!(parse_hibp_line(hex.as_bytes()), Err(BadHash));
    assert_eq!(
        parse_hibp_line(format!("{hex}0:1").as_bytes()),
        Err(BadHash)
    );
    assert_eq!(
        parse_hibp_line(format!("G{}:1", &hex[1..]).as_bytes()),
        Err(BadHash)
    );
    assert_eq!(
        parse_hibp_line(format!("{hex} :1").as_bytes()),
        Err(BadHash)
    );
}

#[test]
fn detection() {
    let hibp = b"\n\n5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8:12\r\n";
    assert_eq!(detect_format(&hibp[..]).unwrap(), Format::Hibp);
    assert_eq!(
        detect_format(&b"url,\"UserName\",password,notes\n"[..]).unwrap(),
        Format::Csv
    );
    assert_eq!(
        detect_format(&b"\xEF\xBB\xBFusername,password\n"[..]).unwrap(),
        Format::Csv
    );
    assert_eq!(
        detect_format(&b"username:password\n"[..]).unwrap(),
        Format::Combo
    );
    assert_eq!(detect_format(&b"user,pass\n"[..]).unwrap(), Format::Combo);
    assert_eq!(detect_format(&b""[..]).unwrap(), Format::Combo);
    // 40 hex digits but no count: a combo line (username = the hex).
    let combo = b"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8:pw\n";
    assert_eq!(detect_format(&combo[..]).unwrap(), Format::Combo);
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        File::create(&path).unwrap().write_all(content).unwrap();
        path
    }

    fn store(&self, name: &str) -> Store {
        Store::open(self.dir.path().join(name)).unwrap()
    }
}

fn opts() -> ImportOptions {
    ImportOptions::default()
}

fn malformed_lines(report: &ImportReport) -> Vec<(u64, MalformedReason)> {
    report
        .malformed_examples
        .iter()
        .map(|m| (m.line, m.reason))
        .collect()
}

/// Every (item, count) of both collections.
fn dump(store: &Store) -> Vec<(Collection, [u8; 32], u64)> {
    let mut all = Vec::new();
    for c in Collection::ALL {
        store
            .for_each_item(c, |item, count| all.push((c, *item, count)))
            .unwrap();
    }
    all
}

#[test]
fn combo_import_counts_and_reports_line_numbers() {
    let fx = Fixture::new();
    let path = fx.file(
        "combo.txt",
        b"\xEF\xBB\xBFAlice@Example.com:hunter2\r\n\
          \r\n\
          bob\r\n\
          alice@example.com :hunter2\n\
          :pw\n\
          carol:\n\
          carol:p:w\n\
          dave:\xff\n\
          eve:hunter2",
    );
    let mut store = fx.store("s");
    let report = import_file(&mut store, &path, &opts()).unwrap();
    assert_eq!(report.format, Format::Combo);
    assert_eq!(report.outcome, Outcome::Imported);
    assert_eq!((report.lines, report.accepted, report.malformed), (9, 4, 4));
    use MalformedReason::*;
    assert_eq!(
        malformed_lines(&report),
        vec![
            (3, NoSeparator),
            (5, EmptyUsername),
            (6, EmptyPassword),
            (8, InvalidUtf8)
        ]
    );
    let cred = |u, p| store.lookup(Collection::Credentials, &credential_item(u, p));
    assert_eq!(cred("alice@example.com", "hunter2").unwrap(), Some(2));
    assert_eq!(cred("carol", "p:w").unwrap(), Some(1));
    assert_eq!(cred("eve", "hunter2").unwrap(), Some(1));
    let pw = |p| store.lookup(Collection::Passwords, &password_item(p));
    assert_eq!(pw("hunter2").unwrap(), Some(3));
    assert_eq!(pw("p:w").unwrap(), Some(1));
    assert_eq!(store.counts().unwrap().credentials, 3);
    assert_eq!(store.counts().unwrap().passwords, 2);
    let rec = store
        .import_record(&report.content_sha256)
        .unwrap()
        .unwrap();
    assert_eq!(rec.byte_offset, rec.file_bytes);
    assert!(rec.finished_at.is_some());
}

#[test]
fn malformed_examples_are_capped_but_counted() {
    let fx = Fixture::new();
    let mut content = Vec::new();
    for i in 0..25 {
        content.extend_from_slice(if i % 2 == 0 { b"bad\n" } else { b"u:p\n" });
    }
    let path = fx.file("c.txt", &content);
    let mut store = fx.store("s");
    let report = import_file(&mut store, &path, &opts()).unwrap();
    assert_eq!(report.malformed, 13);
    assert_eq!(report.malformed_examples.len(), MAX_MALFORMED_EXAMPLES);
    assert_eq!(report.malformed_examples[9].line, 19);
}

#[test]
fn hibp_import_adds_counts() {
    let fx = Fixture::new();
    let sha = hex::encode_upper(password_sha1("password"));
    let content = format!(
        "{sha}:10\r\n{}:5\n\n  \nnot-a-hash:1\n{sha}:0\n{}:7",
        sha.to_lowercase(),
        hex::encode(password_sha1("letmein"))
    );
    let path = fx.file("pwned.txt", content.as_bytes());
    let mut store = fx.store("s");
    let report = import_file(&mut store, &path, &opts()).unwrap();
    assert_eq!(report.format, Format::Hibp);
    assert_eq!((report.lines, report.accepted, report.malformed), (7, 3, 2));
    assert_eq!(
        malformed_lines(&report),
        vec![
            (5, MalformedReason::BadHash),
            (6, MalformedReason::BadCount)
        ]
    );
    let pw = |p| store.lookup(Collection::Passwords, &password_item(p));
    assert_eq!(pw("password").unwrap(), Some(15));
    assert_eq!(pw("letmein").unwrap(), Some(7));
    assert_eq!(store.counts().unwrap().credentials, 0);
    assert_eq!(store.generation(Collection::Credentials).unwrap(), 0);
    assert_eq!(store.generation(Collection::Passwords).unwrap(), 1);
}

#[test]
fn csv_import_with_bom_quotes_and_malformed_records() {
    let fx = Fixture::new();
    let content = "\u{feff}url,Username,PASSWORD,notes\r\n\
                   https://a.example,alice,\"pa,ss\",x\r\n\
                   https://b.example,\"Bob\",\"multi\nline\",\"note\"\r\n\
                   https://c.example,carol,only-three\r\n\
                   https://d.example,,pw,\r\n\
                   \r\n\
                   https://e.example,dave,,\r\n\
                   https://f.example,\"eve\",\"he said \"\"hi\"\"\",\n";
    let path = fx.file("export.csv", content.as_bytes());
    let mut store = fx.store("s");
    let report = import_file(&mut store, &path, &opts()).unwrap();
    assert_eq!(report.format, Format::Csv);
    assert_eq!((report.accepted, report.malformed), (3, 3), "{report:?}");
    use MalformedReason::*;
    assert_eq!(
        malformed_lines(&report),
        vec![
            (
                5,
                WrongFieldCount {
                    expected: 4,
                    got: 3
                }
            ),
            (6, EmptyUsername),
            (8, EmptyPassword)
        ]
    );
    assert_eq!(report.lines, 9);
    let cred = |u, p| store.lookup(Collection::Credentials, &credential_item(u, p));
    assert_eq!(cred("alice", "pa,ss").unwrap(), Some(1));
    assert_eq!(cred("bob", "multi\nline").unwrap(), Some(1));
    assert_eq!(cred("eve", "he said \"hi\"").unwrap(), Some(1));
}

#[test]
fn csv_without_columns_is_an_error_when_forced() {
    let fx = Fixture::new();
    let path = fx.file("x.csv", b"a,b\n1,2\n");
    let mut store = fx.store("s");
    let options = ImportOptions {
        format: Some(Format::Csv),
        ..opts()
    };
    assert!(matches!(
        import_file(&mut store, &path, &options),
        Err(Error::CsvHeader { .. })
    ));
}

#[test]
fn failed_start_does_not_pin_the_format() {
    let fx = Fixture::new();
    let path = fx.file("x.txt", b"a,b\nu:p\n");
    let mut store = fx.store("s");
    let forced = ImportOptions {
        format: Some(Format::Csv),
        ..opts()
    };
    assert!(import_file(&mut store, &path, &forced).is_err());
    let report = import_file(&mut store, &path, &opts()).unwrap();
    assert_eq!(
        (report.format, report.outcome),
        (Format::Combo, Outcome::Imported)
    );
    assert_eq!(report.accepted, 1);
    let rec = store
        .import_record(&report.content_sha256)
        .unwrap()
        .unwrap();
    assert_eq!(rec.format, "combo");
}

#[test]
fn same_content_is_imported_once() {
    let fx = Fixture::new();
    let a = fx.file("a.txt", b"u:p\nv:q\n");
    let b = fx.file("b.txt", b"u:p\nv:q\n");
    let mut store = fx.store("s");
    let first = import_file(&mut store, &a, &opts()).unwrap();
    let before = dump(&store);
    let generation = store.generation(Collection::Credentials).unwrap();
    for path in [&a, &b] {
        let again = import_file(&mut store, path, &opts()).unwrap();
        assert_eq!(again.outcome, Outcome::AlreadyImported);
        assert_eq!(again.content_sha256, first.content_sha256);
        assert_eq!(again.accepted, 2);
    }
    assert_eq!(dump(&store), before);
    assert!(
        !store
            .changed_since(Collection::Credentials, generation)
            .unwrap()
    );
    assert_eq!(store.imports().unwrap().len(), 1);
}

/// A deterministic dump of `n` lines with repeats and malformed lines.
fn generated(format: Format, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if format == Format::Csv {
        out.extend_from_slice(b"username,password\r\n");
    }
    for i in 0..n {
        let line = match (format, i % 13) {
            (_, 7) => "broken".to_string(),
            (_, 11) => String::new(),
            (Format::Hibp, _) => format!(
                "{}:{}",
                hex::encode_upper(password_sha1(&format!("pw{}", i % 37))),
                i % 5 + 1
            ),
            (Format::Combo, _) => format!("User{}:pw{}", i % 53, i % 37),
            (Format::Csv, 5) => format!("\"user{}\",\"pw\n{}\"", i % 53, i % 37),
            (Format::Csv, _) => format!("user{},pw{}", i % 53, i % 37),
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
    }
    out
}

#[test]
fn resume_after_crash_equals_clean_import() {
    for format in [Format::Combo, Format::Hibp, Format::Csv] {
        let fx = Fixture::new();
        let path = fx.file("dump", &generated(format, 1000));
        let small = ImportOptions {
            batch_lines: 64,
            ..opts()
        };

        let mut clean = fx.store("clean");
        let clean_report = import_file(&mut clean, &path, &small).unwrap();
        assert!(clean_report.malformed > 0, "{format}");

        let mut crashed = fx.store("crashed");
        for abort_after in [3, 2] {
            let crash = ImportOptions {
                abort_after_batches: Some(abort_after),
                ..small.clone()
            };
            let result = import_file(&mut crashed, &path, &crash);
            assert!(
                matches!(result, Err(Error::Aborted { .. })),
                "{format}: {result:?}"
            );
        }
        let rec = crashed
            .import_record(&clean_report.content_sha256)
            .unwrap()
            .unwrap();
        assert!(rec.finished_at.is_none());
        assert!(rec.byte_offset > 0 && rec.byte_offset < rec.file_bytes);
        assert!(rec.lines >= 5 * 64, "{format}: {rec:?}");
        let partial = crashed.counts().unwrap();
        assert!(partial.passwords > 0);

        let resumed = import_file(&mut crashed, &path, &small).unwrap();
        assert_eq!(
            resumed.outcome,
            Outcome::Resumed {
                from_line: rec.lines
            },
            "{format}"
        );
        assert_eq!(
            (resumed.lines, resumed.accepted, resumed.malformed),
            (
                clean_report.lines,
                clean_report.accepted,
                clean_report.malformed
            ),
            "{format}"
        );
        assert_eq!(dump(&crashed), dump(&clean), "{format}");
        // And the file is now finished.
        let again = import_file(&mut crashed, &path, &small).unwrap();
        assert_eq!(again.outcome, Outcome::AlreadyImported);
        assert_eq!(dump(&crashed), dump(&clean), "{format}");
    }
}

#[test]
fn resume_checks_format() {
    let fx = Fixture::new();
    let path = fx.file("dump", &generated(Format::Combo, 300));
    let mut store = fx.store("s");
    let crash = ImportOptions {
        batch_lines: 50,
        abort_after_batches: Some(1),
        ..opts()
    };
    assert!(import_file(&mut store, &path, &crash).is_err());
    let csv = ImportOptions {
        format: Some(Format::Csv),
        ..opts()
    };
    assert!(matches!(
        import_file(&mut store, &path, &csv),
        Err(Error::FormatMismatch { .. })
    ));
    let combo = ImportOptions {
        format: Some(Format::Combo),
        ..opts()
    };
    let report = import_file(&mut store, &path, &combo).unwrap();
    assert_eq!(report.outcome, Outcome::Resumed { from_line: 50 });
}

#[test]
fn abort_on_last_batch_still_finishes() {
    // The final commit marks the import finished; no abort after it.
    let fx = Fixture::new();
    let path = fx.file("c.txt", b"u:p\n");
    let mut store = fx.store("s");
    let options = ImportOptions {
        abort_after_batches: Some(1),
        ..opts()
    };
    let report = import_file(&mut store, &path, &options).unwrap();
    assert_eq!(report.outcome, Outcome::Imported);
}

/// Found by fuzzing (`fuzz/fuzz_targets/import_file.rs`): the csv crate
/// ends a record at a lone CR, but lines were counted by LFs alone, so a
/// CSV of CR-terminated records reported more records than lines and
/// several malformed records under one line number.
#[test]
fn csv_with_lone_cr_line_endings_counts_lines_as_the_records_end() {
    let fx = Fixture::new();
    let csv =
        b"Email,Username,Password\ra@x,alice,pw1\rjunk\rb@x,bob,pw2\r\nmore junk\nc@x,carol,pw3";
    let path = fx.file("mac.csv", csv);
    let mut store = fx.store("s");
    let report = import_file(&mut store, &path, &opts()).unwrap();
    assert_eq!(report.format, Format::Csv);
    assert_eq!(report.lines, 6);
    assert_eq!((report.accepted, report.malformed), (3, 2));
    let lines: Vec<u64> = report.malformed_examples.iter().map(|m| m.line).collect();
    assert_eq!(lines, [3, 5]);

    // Interrupted after every record and resumed, at each kind of line
    // break and after the unterminated last record (whose line was lost
    // on resumption before): the same totals.
    let mut resumed = fx.store("r");
    let crash = ImportOptions {
        batch_lines: 1,
        abort_after_batches: Some(1),
        ..opts()
    };
    let mut last = None;
    for _ in 0..10 {
        match import_file(&mut resumed, &path, &crash) {
            Ok(r) => {
                last = Some(r);
                break;
            }
            Err(Error::Aborted { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let last = last.expect("finished");
    assert_eq!(last.lines, 6);
    assert_eq!(dump(&resumed), dump(&store));
}
