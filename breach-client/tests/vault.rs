//! Reading real-looking exports of every supported password manager.

use std::io::Write;

use breach_client::vault::{
    Skipped, Vault, VaultError, VaultFormat, VaultReader, read_vault, read_vault_file,
};

/// `(record, line, url, username, password)` of every entry.
fn summary(vault: &Vault) -> Vec<(usize, u64, &str, &str, &str)> {
    vault
        .entries
        .iter()
        .map(|e| {
            (
                e.record,
                e.line,
                e.url.as_str(),
                e.username.as_str(),
                e.password.expose(),
            )
        })
        .collect()
}

fn read(text: &str) -> Vault {
    read_vault(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn chrome() {
    let csv = "name,url,username,password,note\n\
        accounts.google.com,https://accounts.google.com/signin/v2/challenge/pwd,alice.m@gmail.com,\"Tr0ub4dor&3\",\n\
        github.com,https://github.com/session,alice-m,ghp-Not-A-Token-9,\"work, personal\"\n\
        192.168.1.1,http://192.168.1.1/,admin,,\n\
        ,https://news.ycombinator.com/login,amaltese,\"say \"\"hi\"\"\",\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::Chrome);
    assert_eq!(
        summary(&vault),
        vec![
            (
                1,
                2,
                "https://accounts.google.com/signin/v2/challenge/pwd",
                "alice.m@gmail.com",
                "Tr0ub4dor&3"
            ),
            (
                2,
                3,
                "https://github.com/session",
                "alice-m",
                "ghp-Not-A-Token-9"
            ),
            // record 3 has no password and is skipped
            (
                4,
                5,
                "https://news.ycombinator.com/login",
                "amaltese",
                "say \"hi\""
            ),
        ]
    );
    assert_eq!(
        vault.skipped,
        Skipped {
            empty_password: 1,
            not_a_login: 0
        }
    );
}

#[test]
fn chrome_older_header_without_note() {
    let vault = read("name,url,username,password\nx,https://x.example/,u,p\n");
    assert_eq!(vault.format, VaultFormat::Chrome);
    assert_eq!(vault.entries.len(), 1);
}

#[test]
fn firefox() {
    let csv = "\"url\",\"username\",\"password\",\"httpRealm\",\"formActionOrigin\",\"guid\",\"timeCreated\",\"timeLastUsed\",\"timePasswordChanged\"\r\n\
        \"https://www.mozilla.org\",\"mozfan\",\"fox,fire\",,\"https://www.mozilla.org\",\"{1f3a5c3e-0d4b-4b1c-9b59-6f1d2c8d7e11}\",\"1700000000000\",\"1700000000000\",\"1700000000000\"\r\n\
        \"https://intranet.example\",\"\",\"realm-pass\",\"Intranet\",,\"{2a9b0c1d-1111-4222-8333-944455566677}\",\"1600000000000\",\"1650000000000\",\"1600000000000\"\r\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::Firefox);
    assert_eq!(
        summary(&vault),
        vec![
            (1, 2, "https://www.mozilla.org", "mozfan", "fox,fire"),
            (2, 3, "https://intranet.example", "", "realm-pass"),
        ]
    );
}

#[test]
fn safari_both_header_variants() {
    let new = "Title,URL,Username,Password,Notes,OTPAuth\n\
        appleid.apple.com (j.appleseed@icloud.com),https://appleid.apple.com/,j.appleseed@icloud.com,Ap9le-Seed,,\n\
        Wi-Fi note,,,,\"line one\nline two\",\n\
        shop.example,,shopper,s3cret,,otpauth://totp/shop?secret=JBSWY3DPEHPK3PXP\n";
    let vault = read(new);
    assert_eq!(vault.format, VaultFormat::Safari);
    assert_eq!(
        summary(&vault),
        vec![
            (
                1,
                2,
                "https://appleid.apple.com/",
                "j.appleseed@icloud.com",
                "Ap9le-Seed"
            ),
            // record 2 spans lines 3-4 and has no password; URL falls back to the title
            (3, 5, "shop.example", "shopper", "s3cret"),
        ]
    );
    let old = "Title,Url,Username,Password,OTPAuth\nx,https://x.example/,u,p,\n";
    assert_eq!(read(old).format, VaultFormat::Safari);
}

#[test]
fn bitwarden_skips_notes_cards_and_identities() {
    let csv = "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
        Social,1,login,Mastodon,,,0,https://mastodon.social/auth/sign_in,toot@example.org,\"m@st0d0n, yes\",\n\
        ,,note,Recovery codes,\"1111-2222\n3333-4444\",,0,,,,\n\
        Finance,,card,Visa,,,0,,,,\n\
        ,,identity,Me,,,0,,,,\n\
        ,,login,Router,,\"SSID: home\",0,,admin,router-admin-1,\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::Bitwarden);
    assert_eq!(
        summary(&vault),
        vec![
            (
                1,
                2,
                "https://mastodon.social/auth/sign_in",
                "toot@example.org",
                "m@st0d0n, yes"
            ),
            (5, 7, "Router", "admin", "router-admin-1"),
        ]
    );
    assert_eq!(
        vault.skipped,
        Skipped {
            empty_password: 0,
            not_a_login: 3
        }
    );
}

#[test]
fn bitwarden_organization_export() {
    let csv = "collections,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
        Engineering,login,CI,,,0,https://ci.example.com,ci-bot,ci-p4ss,\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::Bitwarden);
    assert_eq!(vault.entries[0].username, "ci-bot");
}

#[test]
fn one_password() {
    let csv = "Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes\n\
        Dropbox,https://www.dropbox.com/login,ann@example.com,\"Box,\"\"Drop\"\"\",,true,false,\"cloud,storage\",\n\
        Old forum,https://forum.example.net/,ann,,,false,true,,\n\
        Bank,https://bank.example/,ann.b,B4nk!ng,otpauth://totp/Bank:ann.b?secret=ABC,false,false,finance,\"PIN is elsewhere\"\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::OnePassword);
    assert_eq!(
        summary(&vault),
        vec![
            (
                1,
                2,
                "https://www.dropbox.com/login",
                "ann@example.com",
                "Box,\"Drop\""
            ),
            (3, 4, "https://bank.example/", "ann.b", "B4nk!ng"),
        ]
    );
    // 1Password 7 style column names
    let old = "Title,Website,Login Username,Login Password,Notes\nx,https://x.example/,u,p,\n";
    let vault = read(old);
    assert_eq!(vault.format, VaultFormat::OnePassword);
    assert_eq!(
        summary(&vault),
        vec![(1, 2, "https://x.example/", "u", "p")]
    );
}

#[test]
fn keepassxc_with_bom_and_crlf() {
    let csv = "\u{feff}\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\",\"TOTP\",\"Icon\",\"Last Modified\",\"Created\"\r\n\
        \"Root/Internet\",\"Forum\",\"kp_user\",\"kp\"\"pass\",\"https://forum.example/\",\"multi\r\nline\",\"\",\"0\",\"2024-01-02T03:04:05Z\",\"2023-01-02T03:04:05Z\"\r\n\
        \"Root\",\"Server\",\"root\",\"r00t,pw\",\"\",\"\",\"\",\"0\",\"2024-01-02T03:04:05Z\",\"2023-01-02T03:04:05Z\"\r\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::KeePassXc);
    assert_eq!(
        summary(&vault),
        vec![
            (1, 2, "https://forum.example/", "kp_user", "kp\"pass"),
            (2, 4, "Server", "root", "r00t,pw"),
        ]
    );
    // no stray \r kept at field ends
    assert!(
        vault
            .entries
            .iter()
            .all(|e| !e.password.expose().contains('\r'))
    );
}

#[test]
fn keepassxc_older_header() {
    let vault = read(
        "\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\"\n\"Root\",\"T\",\"u\",\"p\",\"\",\"\"\n",
    );
    assert_eq!(vault.format, VaultFormat::KeePassXc);
}

#[test]
fn lastpass() {
    let csv = "url,username,password,totp,extra,name,grouping,fav\n\
        https://www.amazon.com/ap/signin,shopper@example.com,\"Am@zon:2023\",,,Amazon,Shopping,0\n\
        http://sn,,,,\"NoteType:Server\nHostname:db1\",DB server,Secure Notes,0\n\
        https://login.live.com/,ms.user@outlook.com,Winter2023!,,,Microsoft,Email,1\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::LastPass);
    assert_eq!(
        summary(&vault),
        vec![
            (
                1,
                2,
                "https://www.amazon.com/ap/signin",
                "shopper@example.com",
                "Am@zon:2023"
            ),
            (
                3,
                5,
                "https://login.live.com/",
                "ms.user@outlook.com",
                "Winter2023!"
            ),
        ]
    );
    let old = "url,username,password,extra,name,grouping,fav\nhttps://x/,u,p,,X,,0\n";
    assert_eq!(read(old).format, VaultFormat::LastPass);
}

#[test]
fn header_matched_by_name_not_position() {
    let csv = "PASSWORD , Name,USERNAME,url\nhunter2,Site,bob,https://site.example/\n";
    let vault = read(csv);
    assert_eq!(vault.format, VaultFormat::Chrome);
    assert_eq!(
        summary(&vault),
        vec![(1, 2, "https://site.example/", "bob", "hunter2")]
    );
}

#[test]
fn explicit_format_overrides_detection() {
    // Ambiguous on its own (no OTPAuth, no Favorite): needs the format.
    let csv = "Title,URL,Username,Password\nT,https://t.example/,u,p\n";
    assert!(matches!(
        read_vault(csv.as_bytes(), None),
        Err(VaultError::UnknownHeader { .. })
    ));
    let vault = read_vault(csv.as_bytes(), Some(VaultFormat::Safari)).unwrap();
    assert_eq!(vault.format, VaultFormat::Safari);
    assert_eq!(vault.entries.len(), 1);
}

#[test]
fn explicit_format_missing_columns() {
    let err = read_vault(
        "name,url,username,password\n".as_bytes(),
        Some(VaultFormat::Bitwarden),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, VaultError::MissingColumns { line: 1, .. }));
    assert!(message.contains("login_uri"), "{message}");
    assert!(message.contains("type"), "{message}");
}

#[test]
fn bom_lf_and_crlf_give_the_same_entries() {
    let lf =
        "name,url,username,password,note\nA,https://a/,ua,pa,\"n1\nn2\"\nB,https://b/,ub,pb,\n";
    let crlf = lf.replace('\n', "\r\n");
    let bom = format!("\u{feff}{crlf}");
    let a = read(lf);
    let b = read(&crlf);
    let c = read(&bom);
    for v in [&b, &c] {
        assert_eq!(v.format, VaultFormat::Chrome);
        assert_eq!(v.entries.len(), 2);
        for (x, y) in a.entries.iter().zip(&v.entries) {
            assert_eq!((x.record, x.line), (y.record, y.line));
            assert_eq!(x.username, y.username);
            assert_eq!(x.password.expose(), y.password.expose());
        }
    }
    assert_eq!(summary(&a)[1], (2, 4, "https://b/", "ub", "pb"));
}

#[test]
fn csv_crate_drops_a_leading_bom() {
    // csv 1.4 drops a leading BOM by itself; `vault` strips it before the
    // crate sees it anyway (see `skip_bom`), so this only records the fact.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader("\u{feff}name,url\n".as_bytes());
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(&first[0], "name");
}

#[test]
fn only_a_bom_is_an_empty_file() {
    for input in ["", "\u{feff}", "\n\n"] {
        let err = read_vault(input.as_bytes(), None).unwrap_err();
        assert!(matches!(err, VaultError::Empty { .. }), "{input:?}: {err}");
    }
}

#[test]
fn unknown_header_lists_supported_formats() {
    let err = read_vault("site,login,secret\na,b,c\n".as_bytes(), None).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, VaultError::UnknownHeader { line: 1, .. }));
    for format in VaultFormat::ALL {
        assert!(message.contains(format.cli_name()), "{message}");
    }
    assert!(message.starts_with("<input>: line 1:"), "{message}");
}

#[test]
fn wrong_field_count_names_the_line() {
    // Record 2 spans lines 3-4, so the short record 3 starts on line 5.
    let csv = "name,url,username,password,note\n\
        A,https://a/,ua,pa,\n\
        B,https://b/,ub,pb,\"two\nlines\"\n\
        C,https://c/,uc\n";
    let err = VaultReader::new()
        .file_name("passwords.csv")
        .read(csv.as_bytes())
        .unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::FieldCount {
                line: 5,
                expected: 5,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "passwords.csv: line 5: record has 3 fields, the header has 5"
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let mut csv =
        b"name,url,username,password,note\nA,https://a/,ua,pa,\"note\nmore\"\nB,https://b/,ub,p"
            .to_vec();
    csv.extend_from_slice(&[0xC3, 0x28]); // invalid two-byte sequence
    csv.extend_from_slice(b"b,\n");
    let err = read_vault(&csv[..], None).unwrap_err();
    assert!(
        matches!(err, VaultError::InvalidUtf8 { line: 4, .. }),
        "{err:?}"
    );

    // The bad byte on the second line of a multi-line field.
    let mut csv = b"name,url,username,password,note\nA,https://a/,ua,pa,\"line2\nline3 ".to_vec();
    csv.push(0xFF);
    csv.extend_from_slice(b"\"\n");
    let err = read_vault(&csv[..], None).unwrap_err();
    assert!(
        matches!(err, VaultError::InvalidUtf8 { line: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "<input>: line 3: invalid UTF-8");

    // In the header.
    let err = read_vault(&b"name,u\xFFrl,username,password\n"[..], None).unwrap_err();
    assert!(
        matches!(err, VaultError::InvalidUtf8 { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn too_many_entries() {
    let mut csv = String::from("url,username,password,totp,extra,name,grouping,fav\n");
    for i in 0..5 {
        csv.push_str(&format!("https://s{i}.example/,user{i},pw{i},,,S{i},,0\n"));
    }
    let reader = VaultReader::new().max_entries(4);
    let err = reader.read(csv.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::TooManyEntries {
                line: 6,
                max: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        reader
            .max_entries(5)
            .read(csv.as_bytes())
            .unwrap()
            .entries
            .len(),
        5
    );
}

#[test]
fn debug_never_shows_a_password() {
    let secret = "correct horse battery staple";
    let csv = format!("name,url,username,password,note\nA,https://a/,alice,{secret},\n");
    let vault = read(&csv);
    let debug = format!("{vault:?} {:#?}", vault.entries[0]);
    assert!(!debug.contains(secret), "{debug}");
    assert!(!debug.contains("horse"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(debug.contains("alice"), "{debug}");
}

#[test]
fn format_names_round_trip() {
    for format in VaultFormat::ALL {
        let name = format.to_string();
        assert_eq!(name.parse::<VaultFormat>().unwrap(), format);
        assert_eq!(name.to_uppercase().parse::<VaultFormat>().unwrap(), format);
    }
    assert_eq!(
        "1password".parse::<VaultFormat>().unwrap(),
        VaultFormat::OnePassword
    );
    assert_eq!("edge".parse::<VaultFormat>().unwrap(), VaultFormat::Chrome);
    let err = "dashlane".parse::<VaultFormat>().unwrap_err();
    assert!(err.to_string().contains("keepassxc"), "{err}");
}

#[test]
fn detect_headers() {
    use VaultFormat::*;
    let cases: &[(&[&str], Option<VaultFormat>)] = &[
        (
            &["name", "url", "username", "password", "note"],
            Some(Chrome),
        ),
        (
            &[
                "url",
                "username",
                "password",
                "httpRealm",
                "formActionOrigin",
                "guid",
                "timeCreated",
                "timeLastUsed",
                "timePasswordChanged",
            ],
            Some(Firefox),
        ),
        (
            &["Title", "URL", "Username", "Password", "Notes", "OTPAuth"],
            Some(Safari),
        ),
        (
            &[
                "folder",
                "favorite",
                "type",
                "name",
                "notes",
                "fields",
                "reprompt",
                "login_uri",
                "login_username",
                "login_password",
                "login_totp",
            ],
            Some(Bitwarden),
        ),
        (
            &[
                "Title", "Url", "Username", "Password", "OTPAuth", "Favorite", "Archived", "Tags",
                "Notes",
            ],
            Some(OnePassword),
        ),
        (
            &[
                "Group",
                "Title",
                "Username",
                "Password",
                "URL",
                "Notes",
                "TOTP",
                "Icon",
                "Last Modified",
                "Created",
            ],
            Some(KeePassXc),
        ),
        (
            &[
                "url", "username", "password", "totp", "extra", "name", "grouping", "fav",
            ],
            Some(LastPass),
        ),
        (&["url", "username", "password"], None),
        (&[], None),
    ];
    for (header, want) in cases {
        assert_eq!(VaultFormat::detect(header), *want, "{header:?}");
    }
}

#[test]
fn read_vault_file_names_the_path() {
    let dir = std::env::temp_dir().join(format!("breach-client-vault-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("export.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"name,url,username,password,note\nA,https://a/,ua,pa,\nB,https://b/,ub\n")
        .unwrap();
    drop(file);
    let err = read_vault_file(&path, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: line 3:", path.display())),
        "{err}"
    );
    let missing = dir.join("missing.csv");
    let err = read_vault_file(&missing, None).unwrap_err();
    assert!(matches!(err, VaultError::Io { .. }));
    assert!(err.to_string().contains("missing.csv"), "{err}");
    // The OS error is the source, not repeated in the message.
    let source = std::error::Error::source(&err)
        .expect("io source")
        .to_string();
    assert!(!err.to_string().contains(&source), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reader handing out one byte per call, to cross every buffer boundary.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.is_empty()) {
            (Some((&b, rest)), false) => {
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn line_numbers_with_blank_lines_cr_and_crlf() {
    let lf =
        "name,url,username,password,note\n\nA,https://a/,ua,pa,\"x\ny\"\n\n\nB,https://b/,ub,pb,\n";
    for text in [
        lf.to_owned(),
        lf.replace('\n', "\r\n"),
        lf.replace('\n', "\r"),
        format!("\u{feff}{}", lf.replace('\n', "\r\n")),
    ] {
        for vault in [
            read(&text),
            read_vault(Trickle(text.as_bytes()), None).unwrap(),
        ] {
            let lines: Vec<_> = vault.entries.iter().map(|e| (e.record, e.line)).collect();
            // Blank lines are not records; records keep their real lines.
            assert_eq!(lines, vec![(1, 3), (2, 7)], "{text:?}");
        }
    }
}

#[test]
fn crlf_error_lines() {
    let csv =
        "name,url,username,password,note\r\nA,https://a/,ua,pa,\"x\r\ny\"\r\n\r\nB,https://b/\r\n";
    let err = read_vault(Trickle(csv.as_bytes()), None).unwrap_err();
    assert!(
        matches!(err, VaultError::FieldCount { line: 5, .. }),
        "{err:?}"
    );
    let mut bytes =
        b"\xEF\xBB\xBFname,url,username,password,note\r\nA,https://a/,ua,pa,\"x\r\ny\xFF\"\r\n"
            .to_vec();
    let err = read_vault(&bytes[..], None).unwrap_err();
    assert!(
        matches!(err, VaultError::InvalidUtf8 { line: 3, .. }),
        "{err:?}"
    );
    bytes.truncate(3);
    assert!(matches!(
        read_vault(&bytes[..], None),
        Err(VaultError::Empty { .. })
    ));
}
