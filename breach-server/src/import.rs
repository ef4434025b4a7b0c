//! Streaming, resumable, idempotent import of breach dumps into a [`Store`].
//!
//! # Formats
//!
//! - [`Format::Combo`]: `username:password` per line, split at the *first*
//!   `:`. The password is everything after it, taken exactly as written.
//!   Each good line adds 1 to the pair's credential item and 1 to the
//!   password's item.
//! - [`Format::Hibp`]: Pwned Passwords `SHA1HEX:COUNT` per line (hex in
//!   either case, surrounding ASCII whitespace ignored, `COUNT` a decimal
//!   integer >= 1). Adds `COUNT` to the password item of that SHA-1.
//! - [`Format::Csv`]: a header record naming `username` and `password`
//!   columns (any case; other columns are ignored), then one record per
//!   credential, read like a combo line. Quoted fields and embedded
//!   newlines work; a UTF-8 BOM before the header is ignored.
//!
//! Line terminators are LF or CRLF. Empty lines are skipped and are not
//! malformed. A malformed line (invalid UTF-8, no `:`, an empty username
//! after canonicalization, an empty password, a line over
//! [`MAX_LINE_BYTES`] bytes, a bad hash or count, a CSV record with the
//! wrong number of fields) is skipped and counted; the first
//! [`MAX_MALFORMED_EXAMPLES`] are reported by line number (never by
//! content: lines hold credentials). A malformed line never aborts an
//! import.
//!
//! [`detect_format`] picks the format from the first non-empty line.
//!
//! # Idempotency and resumption
//!
//! The file's SHA-256 is computed first (streamed). A file whose hash the
//! store lists as finished is skipped: importing the same content twice
//! does not double its counts. Otherwise lines are read in batches of
//! [`ImportOptions::batch_lines`]; each batch is aggregated in memory and
//! committed in one transaction together with the import's progress (byte
//! offset, line number, counters). A crash loses at most the uncommitted
//! batch, and running the same import again resumes right after the last
//! committed batch, so the final counts equal those of one clean import.
//!
//! A store of a sharded deployment ([`Store::set_deployment`]) keeps only
//! its shard's items: every line is parsed and counted as accepted, and
//! each credential pair and password is added only if
//! [`Deployment::keeps_credential`] / [`Deployment::keeps_password`] say
//! so. Every shard imports the same files.
//!
//! Memory use is bounded by the batch (and, for combo and hibp, by
//! [`MAX_LINE_BYTES`] per line), never by the file size. For CSV the
//! `csv` crate holds one record in memory; a file with an unterminated
//! quote is therefore read as one huge record (reported as one malformed
//! record, but buffered first).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use breach_proto::encoding::{ITEM_LEN, credential_item, password_item, password_item_from_sha1};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Deployment, Progress, Store};

/// Longest accepted line (or CSV record), in bytes, line terminator
/// excluded.
pub const MAX_LINE_BYTES: usize = 4096;

/// How many malformed lines an [`ImportReport`] lists by line number.
pub const MAX_MALFORMED_EXAMPLES: usize = 10;

/// Default number of lines committed per transaction.
pub const DEFAULT_BATCH_LINES: u64 = 50_000;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A breach-dump file format (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `username:password` lines.
    Combo,
    /// Pwned Passwords `SHA1HEX:COUNT` lines.
    Hibp,
    /// CSV with `username` and `password` columns.
    Csv,
}

impl Format {
    /// The format's name as used on the command line and in the store.
    pub fn name(self) -> &'static str {
        match self {
            Format::Combo => "combo",
            Format::Hibp => "hibp",
            Format::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "combo" => Ok(Format::Combo),
            "hibp" => Ok(Format::Hibp),
            "csv" => Ok(Format::Csv),
            other => Err(format!("unknown format `{other}` (combo, hibp or csv)")),
        }
    }
}

/// Why a line was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedReason {
    /// The line (or a needed field) is not valid UTF-8.
    InvalidUtf8,
    /// A combo line without `:`.
    NoSeparator,
    /// The username is empty after canonicalization.
    EmptyUsername,
    /// The password is empty.
    EmptyPassword,
    /// The line is longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// A hibp line whose hash is not 40 hex digits followed by `:`.
    BadHash,
    /// A hibp line whose count is not a decimal integer >= 1 that fits
    /// in 64 bits.
    BadCount,
    /// A CSV record with a different number of fields than the header.
    WrongFieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in the record.
        got: usize,
    },
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedReason::InvalidUtf8 => f.write_str("not valid UTF-8"),
            MalformedReason::NoSeparator => f.write_str("no `:` between username and password"),
            MalformedReason::EmptyUsername => f.write_str("empty username"),
            MalformedReason::EmptyPassword => f.write_str("empty password"),
            MalformedReason::TooLong => write!(f, "longer than {MAX_LINE_BYTES} bytes"),
            MalformedReason::BadHash => f.write_str("not `40 hex digits:count`"),
            MalformedReason::BadCount => f.write_str("count is not an integer >= 1"),
            MalformedReason::WrongFieldCount { expected, got } => {
                write!(f, "{got} fields, header has {expected}")
            }
        }
    }
}

/// A skipped line: where, and why (never what it contained).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line number in the file (for CSV, the record's first line).
    pub line: u64,
    /// Why it was skipped.
    pub reason: MalformedReason,
}

/// How to run an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Format of the file; `None` detects it with [`detect_format`].
    pub format: Option<Format>,
    /// Lines (CSV: records) per transaction. Larger batches import faster;
    /// a crash loses at most one batch of work (never its effects: a
    /// re-run redoes it). Values below 1 are treated as 1.
    pub batch_lines: u64,
    /// Draw a progress bar on stderr (only if stderr is a terminal).
    pub progress: bool,
    /// Fault injection for tests of resumption: return
    /// [`Error::Aborted`] right after committing this many batches, as a
    /// crash would, leaving the import unfinished. `None` in normal use.
    pub abort_after_batches: Option<u64>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            format: None,
            batch_lines: DEFAULT_BATCH_LINES,
            progress: false,
            abort_after_batches: None,
        }
    }
}

/// What happened to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Imported from the start.
    Imported,
    /// An interrupted import of the same content was finished, starting
    /// after line `from_line`.
    Resumed {
        /// Last line committed before this run.
        from_line: u64,
    },
    /// The same content was imported before; nothing was changed.
    AlreadyImported,
}

/// Result of importing one file. Counters cover the whole import (also
/// the part committed before a resumption); `malformed_examples` only the
/// lines read by this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of the file's content.
    pub content_sha256: [u8; 32],
    /// Format the file was read as.
    pub format: Format,
    /// What happened.
    pub outcome: Outcome,
    /// Lines read (CSV: physical lines), empty lines included.
    pub lines: u64,
    /// Lines (records) that added counts.
    pub accepted: u64,
    /// Lines (records) skipped as malformed.
    pub malformed: u64,
    /// The first [`MAX_MALFORMED_EXAMPLES`] malformed lines of this run.
    pub malformed_examples: Vec<Malformed>,
}

/// Splits a combo line (terminator already removed) into username and
/// password at the first `:`.
///
/// ```
/// use breach_server::import::{parse_combo_line, MalformedReason};
/// assert_eq!(parse_combo_line(b"Bob:pa:ss"), Ok(("Bob", "pa:ss")));
/// assert_eq!(parse_combo_line(b"bob"), Err(MalformedReason::NoSeparator));
/// ```
pub fn parse_combo_line(line: &[u8]) -> Result<(&str, &str), MalformedReason> {
    let line = std::str::from_utf8(line).map_err(|_| MalformedReason::InvalidUtf8)?;
    let (username, password) = line.split_once(':').ok_or(MalformedReason::NoSeparator)?;
    check_credential(username, password)?;
    Ok((username, password))
}

/// Rejects what the encoding cannot take: an empty canonical username (the
/// same test as `canonical_username(username).is_empty()`, without the
/// allocation) or an empty password.
fn check_credential(username: &str, password: &str) -> Result<(), MalformedReason> {
    if username.trim_matches(char::is_whitespace).is_empty() {
        return Err(MalformedReason::EmptyUsername);
    }
    if password.is_empty() {
        return Err(MalformedReason::EmptyPassword);
    }
    Ok(())
}

/// Parses a hibp line (terminator already removed): `Ok(None)` for a
/// blank line, else the SHA-1 and the count.
///
/// ```
/// use breach_server::import::parse_hibp_line;
/// let (sha1, count) = parse_hibp_line(b" 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:42 ")?.unwrap();
/// assert_eq!((sha1[0], count), (0x5b, 42));
/// # Ok::<(), breach_server::import::MalformedReason>(())
/// ```
pub fn parse_hibp_line(line: &[u8]) -> Result<Option<([u8; 20], u64)>, MalformedReason> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() < 41 || line[40] != b':' {
        return Err(MalformedReason::BadHash);
    }
    let mut sha1 = [0u8; 20];
    hex::decode_to_slice(&line[..40], &mut sha1).map_err(|_| MalformedReason::BadHash)?;
    let count = &line[41..];
    if count.is_empty() || !count.iter().all(u8::is_ascii_digit) {
        return Err(MalformedReason::BadCount);
    }
    let count: u64 = std::str::from_utf8(count)
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c >= 1)
        .ok_or(MalformedReason::BadCount)?;
    Ok(Some((sha1, count)))
}

fn is_hibp_line(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.len() > 41
        && line[..40].iter().all(u8::is_ascii_hexdigit)
        && line[40] == b':'
        && line[41..].iter().all(u8::is_ascii_digit)
}

/// Column indices of `username` and `password` in a CSV header, if both
/// are there (names compared case-insensitively, surrounding whitespace
/// and a leading UTF-8 BOM ignored).
fn csv_columns(header: &csv::ByteRecord) -> Option<(usize, usize)> {
    let find = |name: &str| {
        header.iter().enumerate().position(|(i, field)| {
            let field = if i == 0 {
                field.strip_prefix(UTF8_BOM).unwrap_or(field)
            } else {
                field
            };
            field.trim_ascii().eq_ignore_ascii_case(name.as_bytes())
        })
    };
    Some((find("username")?, find("password")?))
}

/// Detects a file's format from its first non-empty line: `40 hex
/// digits:digits` is [`Format::Hibp`]; a CSV header with `username` and
/// `password` columns is [`Format::Csv`]; anything else (also an empty
/// input) is [`Format::Combo`]. Reads at most up to the end of that line
/// (and no more than [`MAX_LINE_BYTES`] of it).
///
/// ```
/// use breach_server::import::{detect_format, Format};
/// assert_eq!(detect_format(&b"\r\nalice:pw\n"[..])?, Format::Combo);
/// assert_eq!(detect_format(&b"\xEF\xBB\xBFEmail,Username,Password\n"[..])?, Format::Csv);
/// assert_eq!(detect_format(&b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:3\n"[..])?, Format::Hibp);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn detect_format(reader: impl Read) -> io::Result<Format> {
    let mut lines = LineReader::new(BufReader::new(reader), 0, 0);
    lines.skip_bom()?;
    while let Some((_, line)) = lines.next_line()? {
        let Ok(line) = line else {
            return Ok(Format::Combo);
        };
        if line.is_empty() {
            continue;
        }
        if is_hibp_line(line) {
            return Ok(Format::Hibp);
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line);
        let mut record = csv::ByteRecord::new();
        if rdr.read_byte_record(&mut record).unwrap_or(false) && csv_columns(&record).is_some() {
            return Ok(Format::Csv);
        }
        return Ok(Format::Combo);
    }
    Ok(Format::Combo)
}

/// Reads lines of at most [`MAX_LINE_BYTES`] bytes (longer ones are
/// consumed and reported as [`MalformedReason::TooLong`] without being
/// buffered), tracking the byte offset and line number.
struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    offset: u64,
    line_no: u64,
}

impl<R: BufRead> LineReader<R> {
    fn new(inner: R, offset: u64, line_no: u64) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(MAX_LINE_BYTES + 2),
            offset,
            line_no,
        }
    }

    /// Skips a UTF-8 byte-order mark at the current position.
    fn skip_bom(&mut self) -> io::Result<()> {
        if self.inner.fill_buf()?.starts_with(UTF8_BOM) {
            self.inner.consume(UTF8_BOM.len());
            self.offset += UTF8_BOM.len() as u64;
        }
        Ok(())
    }

    /// The next line without its LF or CRLF, with its 1-based number;
    /// `None` at end of input.
    #[allow(clippy::type_complexity)]
    fn next_line(&mut self) -> io::Result<Option<(u64, Result<&[u8], MalformedReason>)>> {
        self.buf.clear();
        let mut too_long = false;
        let mut read_any = false;
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            read_any = true;
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE_BYTES + 2 {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&avail[..take]);
                }
            }
            self.inner.consume(take);
            self.offset += take as u64;
            if done {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.line_no += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        if too_long || self.buf.len() > MAX_LINE_BYTES {
            return Ok(Some((self.line_no, Err(MalformedReason::TooLong))));
        }
        Ok(Some((self.line_no, Ok(&self.buf))))
    }
}

/// Imports one file into the store (see the [module docs](self)).
///
/// Returns an error only for I/O and database failures (and
/// [`Error::Aborted`] when asked for); malformed lines are reported in the
/// [`ImportReport`].
pub fn import_file(
    store: &mut Store,
    path: impl AsRef<Path>,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let file_name = path.display().to_string();

    let bar = progress_bar(options.progress, file_bytes, &file_name);
    bar.set_message("hashing");
    let content_sha256 = hash_file(&mut file, &bar).map_err(|e| Error::io(path, e))?;

    let deployment = store.deployment()?;
    let existing = store.import_record(&content_sha256)?;
    let (format, start, outcome) = match existing {
        Some(rec) if rec.finished_at.is_some() => {
            bar.finish_and_clear();
            let format = rec.format.parse().map_err(Error::Corrupt)?;
            return Ok(ImportReport {
                path: path.to_path_buf(),
                content_sha256,
                format,
                outcome: Outcome::AlreadyImported,
                lines: rec.lines,
                accepted: rec.accepted,
                malformed: rec.malformed,
                malformed_examples: Vec::new(),
            });
        }
        Some(rec) if rec.byte_offset > 0 => {
            let started: Format = rec.format.parse().map_err(Error::Corrupt)?;
            if let Some(requested) = options.format.filter(|&f| f != started) {
                return Err(Error::FormatMismatch {
                    path: path.to_path_buf(),
                    started: started.to_string(),
                    requested: requested.to_string(),
                });
            }
            if rec.file_bytes != file_bytes || rec.byte_offset > file_bytes {
                return Err(Error::FileChanged {
                    path: path.to_path_buf(),
                });
            }
            tracing::info!(
                file = %file_name,
                line = rec.lines,
                "resuming interrupted import"
            );
            let progress = Progress {
                byte_offset: rec.byte_offset,
                lines: rec.lines,
                accepted: rec.accepted,
                malformed: rec.malformed,
            };
            let outcome = Outcome::Resumed {
                from_line: rec.lines,
            };
            (started, progress, outcome)
        }
        // Never started, or started without committing anything (then
        // the stored format does not bind).
        _ => {
            let format = match options.format {
                Some(f) => f,
                None => {
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| Error::io(path, e))?;
                    detect_format(&mut file).map_err(|e| Error::io(path, e))?
                }
            };
            store.begin_import(&content_sha256, &file_name, format.name(), file_bytes)?;
            (format, Progress::default(), Outcome::Imported)
        }
    };

    bar.set_position(start.byte_offset);
    bar.reset_eta();
    let mut importer = Importer {
        store,
        content_sha256,
        options,
        path,
        file_bytes,
        bar,
        progress: start,
        start_lines: start.lines,
        batch_lines: 0,
        batches: 0,
        credentials: HashMap::new(),
        passwords: HashMap::new(),
        examples: Vec::new(),
        deployment,
    };
    // The line readers start at the committed offset; the CSV reader
    // starts at 0 to read the header, then seeks itself.
    let first_byte = match format {
        Format::Combo | Format::Hibp => start.byte_offset,
        Format::Csv => 0,
    };
    file.seek(SeekFrom::Start(first_byte))
        .map_err(|e| Error::io(path, e))?;
    match format {
        Format::Combo | Format::Hibp => importer.run_lines(file, format)?,
        Format::Csv => importer.run_csv(file)?,
    }
    importer.bar.finish_and_clear();
    Ok(ImportReport {
        path: path.to_path_buf(),
        content_sha256,
        format,
        outcome,
        lines: importer.progress.lines,
        accepted: importer.progress.accepted,
        malformed: importer.progress.malformed,
        malformed_examples: importer.examples,
    })
}

fn hash_file(file: &mut File, bar: &ProgressBar) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    Ok(hasher.finalize().into())
}

fn progress_bar(wanted: bool, len: u64, file_name: &str) -> ProgressBar {
    if !wanted || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
         ({binary_bytes_per_sec}, {msg}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(file_name.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Counts physical lines up to a byte offset, reading sequentially. A
/// line ends at LF, CRLF or a lone CR: the csv crate ends records at each
/// of them, so counting LFs alone would give a file of CR-terminated
/// records more records than lines (found by fuzzing: reports of
/// "22 lines, 4 accepted, 19 malformed" and line numbers shared by several
/// records).
struct LfCounter<R> {
    inner: R,
    offset: u64,
    /// Line breaks so far (LF, CRLF or lone CR, each counted once).
    lfs: u64,
    /// Whether bytes were read after the last line break.
    partial: bool,
    /// Whether the last byte read was a CR (an LF right after it belongs
    /// to the same line break).
    after_cr: bool,
}

impl<R: BufRead> LfCounter<R> {
    /// Counts the line breaks of `chunk`, which follows the bytes already
    /// counted.
    fn count(&mut self, chunk: &[u8]) {
        for &b in chunk {
            match b {
                b'\r' => self.lfs += 1,
                b'\n' if !self.after_cr => self.lfs += 1,
                _ => {}
            }
            self.after_cr = b == b'\r';
        }
        if let Some(&last) = chunk.last() {
            self.partial = last != b'\n' && last != b'\r';
        }
    }

    fn advance_to(&mut self, byte: u64) -> io::Result<()> {
        while self.offset < byte {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf
                .len()
                .min(usize::try_from(byte - self.offset).unwrap_or(usize::MAX));
            let chunk = buf[..n].to_vec();
            self.count(&chunk);
            self.inner.consume(n);
            self.offset += n as u64;
        }
        Ok(())
    }

    /// Consumes CR and LF bytes at the current position (never past a
    /// record's first byte: a CSV record cannot start with either).
    fn skip_line_breaks(&mut self) -> io::Result<()> {
        loop {
            let buf = self.inner.fill_buf()?;
            let n = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if n == 0 {
                return Ok(());
            }
            let chunk = buf[..n].to_vec();
            self.count(&chunk);
            self.inner.consume(n);
            self.offset += n as u64;
        }
    }

    /// Lines so far, counting an unterminated last line.
    fn lines(&self) -> u64 {
        self.lfs + u64::from(self.partial)
    }
}

/// A line that was not malformed.
enum LineKind {
    /// Empty (or blank hibp) line: ignored.
    Empty,
    /// Its counts were added to the open batch.
    Accepted,
}

/// State of one running import: the open batch and the totals.
struct Importer<'a> {
    store: &'a mut Store,
    content_sha256: [u8; 32],
    options: &'a ImportOptions,
    path: &'a Path,
    file_bytes: u64,
    bar: ProgressBar,
    /// Totals including the open batch; `byte_offset` and `lines` are the
    /// position after the last line read.
    progress: Progress,
    start_lines: u64,
    batch_lines: u64,
    batches: u64,
    credentials: HashMap<[u8; ITEM_LEN], u64>,
    passwords: HashMap<[u8; ITEM_LEN], u64>,
    examples: Vec<Malformed>,
    /// Which items this store keeps (all, or its shard's).
    deployment: Deployment,
}

impl Importer<'_> {
    fn run_lines(&mut self, file: File, format: Format) -> Result<()> {
        let mut lines = LineReader::new(
            BufReader::with_capacity(1 << 18, file),
            self.progress.byte_offset,
            self.progress.lines,
        );
        let path = self.path;
        let io_err = |e| Error::io(path, e);
        if self.progress.byte_offset == 0 {
            lines.skip_bom().map_err(io_err)?;
        }
        while let Some((line_no, line)) = lines.next_line().map_err(io_err)? {
            let parsed = line.and_then(|line| match format {
                Format::Hibp => parse_hibp_line(line).map(|parsed| match parsed {
                    Some((sha1, count)) => {
                        self.add_password_sha1(&sha1, count);
                        LineKind::Accepted
                    }
                    None => LineKind::Empty,
                }),
                _ if line.is_empty() => Ok(LineKind::Empty),
                _ => parse_combo_line(line).map(|(u, p)| {
                    self.add_credential(u, p);
                    LineKind::Accepted
                }),
            });
            self.end_line(line_no, line_no, lines.offset, parsed)?;
        }
        self.finish(lines.offset)
    }

    fn run_csv(&mut self, file: File) -> Result<()> {
        let path = self.path;
        let csv_err = |cause| Error::Csv {
            path: path.to_path_buf(),
            cause,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(1 << 18)
            .from_reader(file);
        // The header is read from the start of the file even when
        // resuming (`seek` below keeps it).
        let header = rdr.byte_headers().map_err(csv_err)?.clone();
        let (user_col, pass_col) = csv_columns(&header).ok_or_else(|| Error::CsvHeader {
            path: self.path.to_path_buf(),
        })?;
        // The csv crate's line numbers skip blank lines and newlines inside
        // quoted fields; count physical lines (LFs) with a second,
        // sequential reader that follows the record boundaries.
        let mut newlines = LfCounter {
            inner: BufReader::with_capacity(
                1 << 16,
                File::open(path).map_err(|e| Error::io(path, e))?,
            ),
            offset: 0,
            lfs: 0,
            partial: false,
            after_cr: false,
        };
        let io_err = |e| Error::io(path, e);
        if self.progress.byte_offset > 0 {
            let mut pos = csv::Position::new();
            pos.set_byte(self.progress.byte_offset);
            rdr.seek(pos).map_err(csv_err)?;
            // The byte before the resumption point says whether an LF
            // there ends a line already counted (CRLF).
            newlines
                .inner
                .seek(SeekFrom::Start(self.progress.byte_offset - 1))
                .map_err(io_err)?;
            let mut before = [0u8; 1];
            newlines.inner.read_exact(&mut before).map_err(io_err)?;
            newlines.after_cr = before[0] == b'\r';
            // Resuming after an unterminated last record: its line counts.
            newlines.partial = before[0] != b'\r' && before[0] != b'\n';
            newlines.offset = self.progress.byte_offset;
            newlines.lfs = self.progress.lines;
        }
        let mut record = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut record).map_err(csv_err)? {
            let start = record
                .position()
                .map_or(newlines.offset, csv::Position::byte);
            newlines.advance_to(start).map_err(io_err)?;
            // With CRLF, the csv reader ends a record at the CR and the
            // record's position can point at line breaks before it.
            newlines.skip_line_breaks().map_err(io_err)?;
            let line_no = newlines.lfs + 1;
            let parsed = if record.as_slice().len() > MAX_LINE_BYTES {
                Err(MalformedReason::TooLong)
            } else if record.len() != header.len() {
                Err(MalformedReason::WrongFieldCount {
                    expected: header.len(),
                    got: record.len(),
                })
            } else {
                csv_credential(&record, user_col, pass_col).map(|(u, p)| {
                    self.add_credential(u, p);
                    LineKind::Accepted
                })
            };
            // The reader's position is now the start of the next record.
            let next = rdr.position().byte();
            newlines.advance_to(next).map_err(io_err)?;
            // Resumption restarts the count at `next` from the committed
            // LF count, so commit that (not `lines()`).
            self.end_line(line_no, newlines.lfs, next, parsed)?;
        }
        let end = rdr.position().byte();
        newlines.advance_to(end).map_err(io_err)?;
        self.progress.lines = newlines.lines();
        self.finish(end)
    }

    /// Counts a credential pair and its password, each only if this
    /// store's shard keeps it.
    fn add_credential(&mut self, username: &str, password: &str) {
        let credential = credential_item(username, password);
        if self.deployment.keeps_credential(username, &credential) {
            let entry = self.credentials.entry(credential).or_default();
            *entry = entry.saturating_add(1);
        }
        let password = password_item(password);
        if self.deployment.keeps_password(&password) {
            let entry = self.passwords.entry(password).or_default();
            *entry = entry.saturating_add(1);
        }
    }

    fn add_password_sha1(&mut self, sha1: &[u8; 20], count: u64) {
        let password = password_item_from_sha1(sha1);
        if self.deployment.keeps_password(&password) {
            let entry = self.passwords.entry(password).or_default();
            *entry = entry.saturating_add(count);
        }
    }

    /// Accounts for line (record) `line_no`, after which
    /// `lines_done` lines and `offset` bytes of the file are consumed, and
    /// commits the batch when it is full.
    fn end_line(
        &mut self,
        line_no: u64,
        lines_done: u64,
        offset: u64,
        parsed: Result<LineKind, MalformedReason>,
    ) -> Result<()> {
        match parsed {
            Ok(LineKind::Accepted) => self.progress.accepted += 1,
            Ok(LineKind::Empty) => {}
            Err(reason) => {
                self.progress.malformed += 1;
                if self.examples.len() < MAX_MALFORMED_EXAMPLES {
                    self.examples.push(Malformed {
                        line: line_no,
                        reason,
                    });
                }
            }
        }
        self.progress.lines = lines_done;
        self.progress.byte_offset = offset;
        self.batch_lines += 1;
        if self.batch_lines.is_multiple_of(4096) {
            self.update_bar();
        }
        if self.batch_lines >= self.options.batch_lines.max(1) {
            self.commit(false)?;
        }
        Ok(())
    }

    fn update_bar(&self) {
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        let lines = self.progress.lines;
        let rate = (lines - self.start_lines) as f64 / secs;
        self.bar.set_position(self.progress.byte_offset);
        self.bar
            .set_message(format!("{lines} lines, {rate:.0} lines/s"));
    }

    fn commit(&mut self, finished: bool) -> Result<()> {
        let mut credentials: Vec<_> = self.credentials.drain().collect();
        let mut passwords: Vec<_> = self.passwords.drain().collect();
        credentials.sort_unstable();
        passwords.sort_unstable();
        self.store.commit_batch(
            &self.content_sha256,
            &credentials,
            &passwords,
            self.progress,
            finished,
        )?;
        self.batch_lines = 0;
        self.batches += 1;
        self.update_bar();
        if !finished && self.options.abort_after_batches == Some(self.batches) {
            return Err(Error::Aborted {
                batches: self.batches,
            });
        }
        Ok(())
    }

    /// Commits the last batch and marks the import finished, after
    /// checking the whole file (as hashed) was read.
    fn finish(&mut self, end_offset: u64) -> Result<()> {
        if end_offset != self.file_bytes {
            return Err(Error::FileChanged {
                path: self.path.to_path_buf(),
            });
        }
        self.progress.byte_offset = end_offset;
        self.commit(true)
    }
}

fn csv_credential(
    record: &csv::ByteRecord,
    user_col: usize,
    pass_col: usize,
) -> Result<(&str, &str), MalformedReason> {
    let field = |i| {
        let bytes = record.get(i).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|_| MalformedReason::InvalidUtf8)
    };
    let (username, password) = (field(user_col)?, field(pass_col)?);
    check_credential(username, password)?;
    Ok((username, password))
}

#[cfg(test)]
mod tests;
