//! Reading password-manager CSV exports.
//!
//! Supported exports (header names matched case-insensitively and by name,
//! never by position, so reordered or extra columns are fine):
//!
//! | format | header as exported |
//! | --- | --- |
//! | `chrome` (also Edge) | `name,url,username,password,note` (older: no `note`) |
//! | `firefox` | `"url","username","password","httpRealm","formActionOrigin","guid","timeCreated","timeLastUsed","timePasswordChanged"` |
//! | `safari` (Apple Passwords) | `Title,URL,Username,Password,Notes,OTPAuth` (Safari 15: `Title,Url,Username,Password,OTPAuth`) |
//! | `bitwarden` | `folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp` (organization exports have `collections` instead of `folder`; older ones no `reprompt`) |
//! | `1password` | `Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes` (1Password 7 custom exports may say `Website` / `Login URL`, `Login Username`, `Login Password`) |
//! | `keepassxc` | `"Group","Title","Username","Password","URL","Notes","TOTP","Icon","Last Modified","Created"` (older: only the first six) |
//! | `lastpass` | `url,username,password,totp,extra,name,grouping,fav` (older: no `totp`) |
//!
//! Rows that are not logins are skipped: Bitwarden rows whose `type` is not
//! `login` (secure notes, cards, identities) and any row whose password is
//! empty. Skipped rows still count in [`VaultEntry::record`], so record
//! numbers match what a person counts in a spreadsheet (blank lines, which
//! the CSV reader ignores, are not records).
//!
//! Secrets: each password lives in a [`Password`], wiped on drop and
//! redacted in `Debug`. The CSV reader's own buffers are reused record to
//! record but are not wiped; callers that need more should read from memory
//! they control and wipe it themselves.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroize;

/// The default for [`VaultReader::max_entries`]: far above any real vault
/// (a few hundred entries), low enough to bound memory on hostile input.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// The UTF-8 byte order mark some exports (notably on Windows) start with.
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The password-manager export formats the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VaultFormat {
    /// Google Chrome / Chromium password export (Microsoft Edge writes the same).
    Chrome,
    /// Firefox `about:logins` export.
    Firefox,
    /// Safari / Apple Passwords (iCloud Keychain) export.
    Safari,
    /// Bitwarden CSV export (personal or organization vault).
    Bitwarden,
    /// 1Password CSV export.
    OnePassword,
    /// KeePassXC CSV export.
    KeePassXc,
    /// LastPass CSV export.
    LastPass,
}

/// Where a format keeps the fields the check needs (lower-case header
/// names, first match wins).
struct ColumnNames {
    url: &'static [&'static str],
    username: &'static [&'static str],
    password: &'static [&'static str],
    /// Entry title, used as the entry's `url` when the URL column is empty.
    title: &'static [&'static str],
    /// Item type column (Bitwarden): rows whose type is not `login` are skipped.
    item_type: Option<&'static [&'static str]>,
}

impl VaultFormat {
    /// Every supported format, in the order the CLI lists them.
    pub const ALL: [VaultFormat; 7] = [
        VaultFormat::Chrome,
        VaultFormat::Firefox,
        VaultFormat::Safari,
        VaultFormat::Bitwarden,
        VaultFormat::OnePassword,
        VaultFormat::KeePassXc,
        VaultFormat::LastPass,
    ];

    /// The name used on the command line (`chrome`, `1password`, ...).
    pub fn cli_name(self) -> &'static str {
        match self {
            VaultFormat::Chrome => "chrome",
            VaultFormat::Firefox => "firefox",
            VaultFormat::Safari => "safari",
            VaultFormat::Bitwarden => "bitwarden",
            VaultFormat::OnePassword => "1password",
            VaultFormat::KeePassXc => "keepassxc",
            VaultFormat::LastPass => "lastpass",
        }
    }

    fn columns(self) -> ColumnNames {
        const URL: &[&str] = &["url"];
        const USERNAME: &[&str] = &["username"];
        const PASSWORD: &[&str] = &["password"];
        match self {
            VaultFormat::Chrome | VaultFormat::LastPass => ColumnNames {
                url: URL,
                username: USERNAME,
                password: PASSWORD,
                title: &["name"],
                item_type: None,
            },
            VaultFormat::Firefox => ColumnNames {
                url: URL,
                username: USERNAME,
                password: PASSWORD,
                title: &[],
                item_type: None,
            },
            VaultFormat::Safari => ColumnNames {
                url: URL,
                username: USERNAME,
                password: PASSWORD,
                title: &["title"],
                item_type: None,
            },
            VaultFormat::KeePassXc => ColumnNames {
                url: URL,
                username: &["username", "user name"],
                password: PASSWORD,
                title: &["title"],
                item_type: None,
            },
            VaultFormat::Bitwarden => ColumnNames {
                url: &["login_uri"],
                username: &["login_username"],
                password: &["login_password"],
                title: &["name"],
                item_type: Some(&["type"]),
            },
            VaultFormat::OnePassword => ColumnNames {
                url: &["url", "website", "login url"],
                username: &["username", "login username"],
                password: &["password", "login password"],
                title: &["title"],
                item_type: None,
            },
        }
    }

    /// Recognizes a format from its header row.
    ///
    /// Names are compared trimmed and case-insensitively, and only by name:
    /// column order and extra columns do not matter. Each format is known by
    /// the columns only it has (Bitwarden's `login_password`, Firefox's
    /// `httpRealm`/`guid`, LastPass's `grouping`/`extra`, KeePassXC's
    /// `Group`, 1Password's `Favorite`/`Archived`/`Tags`, Apple's `OTPAuth`,
    /// Chrome's `name`). Returns `None` when the header fits none of them,
    /// or is ambiguous (for example `Title,URL,Username,Password` alone).
    pub fn detect(header: &[impl AsRef<str>]) -> Option<VaultFormat> {
        let names: Vec<String> = header.iter().map(|h| normalize_name(h.as_ref())).collect();
        let has = |name: &str| names.iter().any(|n| n == name);
        let has_any = |list: &[&str]| list.iter().any(|name| has(name));
        let basic = has("url") && has("username") && has("password");

        if has("login_password") && has("type") {
            Some(VaultFormat::Bitwarden)
        } else if basic
            && has_any(&[
                "httprealm",
                "formactionorigin",
                "guid",
                "timepasswordchanged",
            ])
        {
            Some(VaultFormat::Firefox)
        } else if basic && has("grouping") && has("extra") {
            Some(VaultFormat::LastPass)
        } else if basic && has("group") && has("title") {
            Some(VaultFormat::KeePassXc)
        } else if has("title")
            && has_any(&["url", "website", "login url"])
            && has_any(&["username", "login username"])
            && has_any(&["password", "login password"])
            && (has_any(&["favorite", "archived", "tags"])
                || has_any(&["website", "login url", "login username", "login password"]))
        {
            Some(VaultFormat::OnePassword)
        } else if basic && has("title") && has("otpauth") {
            Some(VaultFormat::Safari)
        } else if basic && has("name") {
            Some(VaultFormat::Chrome)
        } else {
            None
        }
    }
}

impl fmt::Display for VaultFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

/// A format name that is not one of [`VaultFormat::ALL`]'s CLI names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vault format `{0}` (supported: {list})", list = supported_list())]
pub struct UnknownFormat(pub String);

impl FromStr for VaultFormat {
    type Err = UnknownFormat;

    /// Parses a CLI name, case-insensitively; `edge` is accepted for Chrome.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        if wanted == "edge" {
            return Ok(VaultFormat::Chrome);
        }
        VaultFormat::ALL
            .into_iter()
            .find(|f| f.cli_name() == wanted)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// `chrome, firefox, ...` for error messages.
fn supported_list() -> String {
    VaultFormat::ALL
        .iter()
        .map(|f| f.cli_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Header names compare trimmed (including a stray BOM) and lower-cased.
fn normalize_name(name: &str) -> String {
    name.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .to_lowercase()
}

/// A saved password. Wiped from memory when dropped, never printed by
/// `Debug`, and deliberately not `Clone` or `Display`.
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(secret: String) -> Self {
        Password(secret)
    }

    /// The password itself. Keep the borrow short and do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// One login read from an export.
#[derive(Debug)]
pub struct VaultEntry {
    /// 1-based number of the data record in the file: the header is not
    /// counted, skipped rows (notes, empty passwords) are.
    pub record: usize,
    /// 1-based line on which the record starts (records can span lines).
    pub line: u64,
    /// The URL column, or the entry's title/name when the URL is empty.
    pub url: String,
    /// The username exactly as written in the file.
    pub username: String,
    /// The password exactly as written in the file.
    pub password: Password,
}

/// The logins of one export, in file order.
#[derive(Debug)]
pub struct Vault {
    /// The format the file was read as (given or detected).
    pub format: VaultFormat,
    /// The login entries; non-login and password-less rows are left out.
    pub entries: Vec<VaultEntry>,
    /// How many rows were left out, and why.
    pub skipped: Skipped,
}

/// Rows of an export that were not checked, by reason. Serializes as
/// `{"empty_password": N, "not_a_login": M}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Logins with an empty password (nothing to check: passkeys, single
    /// sign-on, or a password never saved).
    pub empty_password: usize,
    /// Rows that are not logins (Bitwarden secure notes, cards, identities).
    pub not_a_login: usize,
}

impl Skipped {
    /// Whether no row was skipped.
    pub fn is_none(&self) -> bool {
        self.empty_password == 0 && self.not_a_login == 0
    }

    /// Rows skipped for any reason.
    pub fn total(&self) -> usize {
        self.empty_password + self.not_a_login
    }
}

/// Why an export could not be read. Every variant names the file (or
/// `<input>` for an unnamed reader) and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The file could not be opened or read (the reason is the `source`).
    #[error("{file}: cannot read the file")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file has no header row.
    #[error("{file}: empty file, expected a password-manager CSV export")]
    Empty {
        /// The file.
        file: String,
    },
    /// The header row matches no supported export.
    #[error(
        "{file}: line {line}: unrecognized CSV header `{header}`; supported formats: {supported} \
         (pass the format explicitly if the file is one of them)"
    )]
    UnknownHeader {
        /// The file.
        file: String,
        /// The header's line.
        line: u64,
        /// The header row as read, fields joined with commas.
        header: String,
        /// The supported formats' CLI names.
        supported: String,
    },
    /// The caller named a format whose required columns the header lacks.
    #[error("{file}: line {line}: header lacks the {format} column(s) {missing}")]
    MissingColumns {
        /// The file.
        file: String,
        /// The header's line.
        line: u64,
        /// The format asked for.
        format: VaultFormat,
        /// The missing column names, comma-separated.
        missing: String,
    },
    /// A record has a different number of fields than the header.
    #[error("{file}: line {line}: record has {found} fields, the header has {expected}")]
    FieldCount {
        /// The file.
        file: String,
        /// The line the record starts on.
        line: u64,
        /// Fields in the header.
        expected: u64,
        /// Fields in this record.
        found: u64,
    },
    /// A field is not valid UTF-8.
    #[error("{file}: line {line}: invalid UTF-8")]
    InvalidUtf8 {
        /// The file.
        file: String,
        /// The line holding the first invalid byte.
        line: u64,
    },
    /// The export has more login entries than allowed.
    #[error("{file}: line {line}: more than {max} login entries")]
    TooManyEntries {
        /// The file.
        file: String,
        /// The line of the first entry over the limit.
        line: u64,
        /// The limit.
        max: usize,
    },
    /// Any other CSV-level error.
    #[error("{file}: line {line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        file: String,
        /// The line, where known (0 if not).
        line: u64,
        /// What the CSV reader said.
        message: String,
    },
}

/// Reads exports with non-default settings.
///
/// ```
/// use breach_client::vault::{VaultFormat, VaultReader};
///
/// let csv = "url,username,password,totp,extra,name,grouping,fav\n\
///            https://a.example/,bob,pw1,,,A,,0\n";
/// let vault = VaultReader::new()
///     .format(Some(VaultFormat::LastPass))
///     .max_entries(10)
///     .file_name("lastpass.csv")
///     .read(csv.as_bytes())
///     .unwrap();
/// assert_eq!(vault.entries.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct VaultReader {
    format: Option<VaultFormat>,
    max_entries: usize,
    file_name: String,
}

impl Default for VaultReader {
    fn default() -> Self {
        Self::new()
    }
}

impl VaultReader {
    /// Auto-detection, [`DEFAULT_MAX_ENTRIES`], input named `<input>`.
    pub fn new() -> Self {
        VaultReader {
            format: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            file_name: "<input>".to_owned(),
        }
    }

    /// Reads as this format (`None`: detect from the header).
    pub fn format(mut self, format: Option<VaultFormat>) -> Self {
        self.format = format;
        self
    }

    /// The most login entries accepted before [`VaultError::TooManyEntries`].
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max;
        self
    }

    /// The name errors give the input.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// Opens and reads a file; errors name the path.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Result<Vault, VaultError> {
        let path = path.as_ref();
        let file_name = path.display().to_string();
        let file = File::open(path).map_err(|source| VaultError::Io {
            file: file_name.clone(),
            source,
        })?;
        self.clone()
            .file_name(file_name)
            .read(io::BufReader::new(file))
    }

    /// Reads an export from any reader. Streams: memory is the entries
    /// kept plus one record.
    pub fn read(&self, reader: impl Read) -> Result<Vault, VaultError> {
        let file = || self.file_name.clone();
        let reader = skip_bom(reader).map_err(|source| VaultError::Io {
            file: file(),
            source,
        })?;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(LineTracker::new(reader));

        let mut record = csv::ByteRecord::new();
        let Some(header_line) = self.next_record(&mut csv, &mut record)? else {
            return Err(VaultError::Empty { file: file() });
        };
        let header = self.utf8_fields(&record, header_line)?;

        let format = match self.format {
            Some(format) => format,
            None => VaultFormat::detect(&header).ok_or_else(|| VaultError::UnknownHeader {
                file: file(),
                line: header_line,
                header: header.join(","),
                supported: supported_list(),
            })?,
        };
        let columns =
            Columns::resolve(format, &header).map_err(|missing| VaultError::MissingColumns {
                file: file(),
                line: header_line,
                format,
                missing,
            })?;

        let mut entries = Vec::new();
        let mut skipped = Skipped::default();
        let mut number = 0usize;
        while let Some(line) = self.next_record(&mut csv, &mut record)? {
            number += 1;
            let fields = self.utf8_fields(&record, line)?;
            if let Some(kind) = columns.item_type
                && !fields[kind].trim().eq_ignore_ascii_case("login")
            {
                skipped.not_a_login += 1;
                continue;
            }
            if fields[columns.password].is_empty() {
                skipped.empty_password += 1;
                continue;
            }
            if entries.len() >= self.max_entries {
                return Err(VaultError::TooManyEntries {
                    file: file(),
                    line,
                    max: self.max_entries,
                });
            }
            let mut url = fields[columns.url];
            if url.trim().is_empty()
                && let Some(title) = columns.title
            {
                url = fields[title];
            }
            entries.push(VaultEntry {
                record: number,
                line,
                url: url.to_owned(),
                username: fields[columns.username].to_owned(),
                password: Password::new(fields[columns.password].to_owned()),
            });
        }
        Ok(Vault {
            format,
            entries,
            skipped,
        })
    }

    /// Reads the next record and returns the line it starts on (`None` at
    /// the end), turning CSV errors into [`VaultError`]s.
    fn next_record<R: Read>(
        &self,
        csv: &mut csv::Reader<LineTracker<R>>,
        record: &mut csv::ByteRecord,
    ) -> Result<Option<u64>, VaultError> {
        match csv.read_byte_record(record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let start = record.position().map_or(0, csv::Position::byte);
                Ok(Some(csv.get_mut().line_at(start)))
            }
            Err(err) => {
                let file = self.file_name.clone();
                let message = err.to_string();
                let start = err.position().map(csv::Position::byte);
                let mut line = |start: Option<u64>| start.map_or(0, |b| csv.get_mut().line_at(b));
                Err(match err.into_kind() {
                    csv::ErrorKind::Io(source) => VaultError::Io { file, source },
                    csv::ErrorKind::UnequalLengths {
                        pos,
                        expected_len,
                        len,
                    } => VaultError::FieldCount {
                        file,
                        line: line(pos.map(|p| p.byte()).or(start)),
                        expected: expected_len,
                        found: len,
                    },
                    _ => VaultError::Csv {
                        file,
                        line: line(start),
                        message,
                    },
                })
            }
        }
    }

    /// Every field of `record` as UTF-8, or the line of the first bad byte.
    fn utf8_fields<'r>(
        &self,
        record: &'r csv::ByteRecord,
        start_line: u64,
    ) -> Result<Vec<&'r str>, VaultError> {
        let mut breaks_before = 0u64;
        record
            .iter()
            .map(|field| match std::str::from_utf8(field) {
                Ok(text) => {
                    breaks_before += count_line_breaks(field);
                    Ok(text)
                }
                Err(err) => Err(VaultError::InvalidUtf8 {
                    file: self.file_name.clone(),
                    line: start_line
                        + breaks_before
                        + count_line_breaks(&field[..err.valid_up_to()]),
                }),
            })
            .collect()
    }
}

/// Counts line breaks in the bytes the CSV reader consumes, so records get
/// correct line numbers.
///
/// The `csv` crate's own `Position::line` lags by one after every CRLF
/// and ignores lone CRs (csv 1.4), so it cannot be used for CRLF exports.
/// Its byte offsets are right, except that a record's offset may point
/// into the line terminator(s) before it; [`LineTracker::line_at`] skips
/// those.
struct LineTracker<R> {
    inner: R,
    /// Offset of the next byte read.
    offset: u64,
    /// Offset of the last byte that is not `\r` or `\n`.
    last_content: Option<u64>,
    /// A `\r` not yet known to be part of a CRLF: its offset, and
    /// `last_content` when it was seen.
    pending_cr: Option<(u64, Option<u64>)>,
    /// Line starts not yet passed: (offset of the line's first byte, last
    /// content byte before the break).
    starts: std::collections::VecDeque<(u64, Option<u64>)>,
    /// The line of the last record asked about.
    line: u64,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            last_content: None,
            pending_cr: None,
            starts: std::collections::VecDeque::new(),
            line: 1,
        }
    }

    /// The line a record starting at byte `start` begins on. Calls must
    /// come in non-decreasing `start` order (the order records are read).
    fn line_at(&mut self, start: u64) -> u64 {
        while let Some(&(line_start, content_before)) = self.starts.front() {
            // A line break before the record, or one in the run of
            // terminators the record's offset points into.
            let passed = line_start <= start || content_before.is_none_or(|c| c < start);
            if !passed {
                break;
            }
            self.starts.pop_front();
            self.line += 1;
        }
        self.line
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let at = self.offset;
            self.offset += 1;
            if let Some((cr, content)) = self.pending_cr.take() {
                if b == b'\n' {
                    self.starts.push_back((at + 1, content));
                    continue;
                }
                self.starts.push_back((cr + 1, content));
            }
            match b {
                b'\r' => self.pending_cr = Some((at, self.last_content)),
                b'\n' => self.starts.push_back((at + 1, self.last_content)),
                _ => self.last_content = Some(at),
            }
        }
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        Ok(n)
    }
}

/// Indices of the needed columns in one header.
struct Columns {
    url: usize,
    username: usize,
    password: usize,
    title: Option<usize>,
    item_type: Option<usize>,
}

impl Columns {
    /// Finds the columns `format` needs; `Err` lists the missing ones.
    fn resolve(format: VaultFormat, header: &[&str]) -> Result<Columns, String> {
        let names: Vec<String> = header.iter().map(|h| normalize_name(h)).collect();
        let find = |aliases: &[&str]| {
            aliases
                .iter()
                .find_map(|alias| names.iter().position(|n| n == alias))
        };
        let spec = format.columns();
        let mut missing = Vec::new();
        let mut need = |aliases: &'static [&'static str]| {
            let found = find(aliases);
            if found.is_none() {
                missing.push(aliases[0]);
            }
            found.unwrap_or(0)
        };
        let url = need(spec.url);
        let username = need(spec.username);
        let password = need(spec.password);
        let item_type = spec.item_type.map(&mut need);
        if !missing.is_empty() {
            return Err(missing.join(", "));
        }
        Ok(Columns {
            url,
            username,
            password,
            title: find(spec.title),
            item_type,
        })
    }
}

/// Line breaks in `bytes`: `\n`, `\r\n` and a lone `\r` count one each.
fn count_line_breaks(bytes: &[u8]) -> u64 {
    let mut count = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            count += 1;
        }
    }
    count
}

/// Drops a leading UTF-8 BOM. The `csv` crate (1.4) drops one too, but
/// doing it here keeps byte offsets (and so line numbers) independent of
/// that, and keeps working should the crate change.
fn skip_bom<R: Read>(mut reader: R) -> io::Result<io::Chain<io::Cursor<Vec<u8>>, R>> {
    let mut prefix = Vec::with_capacity(UTF8_BOM.len());
    let mut byte = [0u8; 1];
    while prefix.len() < UTF8_BOM.len() {
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                prefix.push(byte[0]);
                if prefix[..] != UTF8_BOM[..prefix.len()] {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if prefix == UTF8_BOM {
        prefix.clear();
    }
    Ok(io::Cursor::new(prefix).chain(reader))
}

/// Reads an export, detecting the format when `format` is `None`.
///
/// Uses [`DEFAULT_MAX_ENTRIES`]; errors call the input `<input>`. See
/// [`VaultReader`] to change either.
pub fn read_vault(reader: impl Read, format: Option<VaultFormat>) -> Result<Vault, VaultError> {
    VaultReader::new().format(format).read(reader)
}

/// Opens and reads an export file, detecting the format when `format` is
/// `None`. Errors name the path.
pub fn read_vault_file(
    path: impl AsRef<Path>,
    format: Option<VaultFormat>,
) -> Result<Vault, VaultError> {
    VaultReader::new().format(format).read_file(path)
}
