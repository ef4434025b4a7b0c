//! What a check found, in the shape the CLI prints with `--json`, and the
//! human-readable table.

use std::fmt::Write as _;

use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::vault::Skipped;

/// The answer for a whole vault: one [`EntryResult`] per login entry, in
/// file order.
///
/// Serializes (with `serde_json`) to exactly the CLI's `--json` output;
/// `skipped` (rows of the export not checked, by reason) appears only when
/// a row was skipped:
///
/// ```
/// use breach_client::{EntryResult, Report, Skipped};
///
/// let report = Report {
///     checked: 1,
///     results: vec![EntryResult {
///         entry: 2,
///         url: "https://example.com/".into(),
///         username: "alice".into(),
///         credential_breached: true,
///         breach_count: 3,
///         password_breached: false,
///         password_seen: 0,
///     }],
///     skipped: Skipped::default(),
/// };
/// assert_eq!(
///     serde_json::to_string(&report).unwrap(),
///     r#"{"checked":1,"results":[{"entry":2,"url":"https://example.com/","username":"alice","credential_breached":true,"breach_count":3,"password_breached":false,"password_seen":0}]}"#
/// );
/// let report = Report { skipped: Skipped { empty_password: 2, not_a_login: 0 }, ..report };
/// assert!(serde_json::to_string(&report).unwrap().ends_with(
///     r#""password_seen":0}],"skipped":{"empty_password":2,"not_a_login":0}}"#
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Number of login entries checked (the length of `results`).
    pub checked: usize,
    /// One result per login entry, in file order.
    pub results: Vec<EntryResult>,
    /// Rows of the export that were not checked, by reason (left out of
    /// the JSON when none).
    #[serde(skip_serializing_if = "Skipped::is_none")]
    pub skipped: Skipped,
}

/// The answer for one login entry. Field order is the JSON field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryResult {
    /// 1-based data-record number in the file (header excluded, skipped
    /// rows counted), as in [`VaultEntry::record`](crate::VaultEntry::record).
    pub entry: usize,
    /// The URL column, or the entry's title when the URL is empty.
    pub url: String,
    /// The username exactly as written in the file.
    pub username: String,
    /// Whether this (username, password) pair is in the breach data.
    pub credential_breached: bool,
    /// How often the pair was seen; 0 when not found.
    pub breach_count: u64,
    /// Whether the password alone is in the breach data.
    pub password_breached: bool,
    /// How often the password was seen (under any username); 0 when not found.
    pub password_seen: u64,
}

impl EntryResult {
    /// Whether anything about this entry was found.
    pub fn is_breached(&self) -> bool {
        self.credential_breached || self.password_breached
    }
}

impl Report {
    /// Whether any entry was found, as a credential pair or by password.
    pub fn any_breached(&self) -> bool {
        self.results.iter().any(EntryResult::is_breached)
    }

    /// The report as one line of JSON (the CLI's `--json` output).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Report has only strings, numbers and booleans")
    }

    /// A plain-text table of the breached entries and a summary line.
    /// Passwords are never part of a report, so never printed.
    pub fn to_table(&self) -> String {
        let breached: Vec<&EntryResult> = self.results.iter().filter(|r| r.is_breached()).collect();
        let mut out = String::new();
        if !breached.is_empty() {
            let rows: Vec<[String; 5]> = breached
                .iter()
                .map(|r| {
                    [
                        r.entry.to_string(),
                        shorten(&r.url, 48),
                        shorten(r.username.trim(), 32),
                        if r.credential_breached {
                            format!("FOUND ({}x)", r.breach_count)
                        } else {
                            "no".to_owned()
                        },
                        if r.password_breached {
                            format!("seen {}x", r.password_seen)
                        } else {
                            "no".to_owned()
                        },
                    ]
                })
                .collect();
            let header = [
                "ENTRY".to_owned(),
                "SITE".to_owned(),
                "USERNAME".to_owned(),
                "USERNAME+PASSWORD".to_owned(),
                "PASSWORD ALONE".to_owned(),
            ];
            let mut widths = [0usize; 5];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.width());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                    if i > 0 {
                        line.push_str("  ");
                    }
                    line.push_str(cell);
                    if i + 1 < row.len() {
                        line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.width())));
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
            out.push('\n');
        }
        let credentials = self
            .results
            .iter()
            .filter(|r| r.credential_breached)
            .count();
        let passwords = self.results.iter().filter(|r| r.password_breached).count();
        let clean = self.results.len() - breached.len();
        let _ = writeln!(
            out,
            "{} {} checked: {} with the username+password pair in a breach, \
             {} with a password seen in breaches, {} not found.",
            self.checked,
            plural(self.checked, "entry", "entries"),
            credentials,
            passwords,
            clean,
        );
        if !self.skipped.is_none() {
            let mut why = Vec::new();
            let n = self.skipped.empty_password;
            if n > 0 {
                why.push(format!(
                    "{n} {} an empty password",
                    plural(n, "login has", "logins have")
                ));
            }
            let n = self.skipped.not_a_login;
            if n > 0 {
                why.push(format!(
                    "{n} {} not a login (note, card or identity)",
                    plural(n, "row is", "rows are")
                ));
            }
            let total = self.skipped.total();
            let _ = writeln!(
                out,
                "{total} {} not checked: {}.",
                plural(total, "row", "rows"),
                why.join(", ")
            );
        }
        if !breached.is_empty() {
            out.push_str(
                "Change every password listed above, first those whose username+password pair was found.\n",
            );
        }
        out
    }
}

/// The answer for a single password.
///
/// ```
/// use breach_client::PasswordReport;
/// let r = PasswordReport { password_breached: true, password_seen: 12 };
/// assert_eq!(r.to_json(), r#"{"password_breached":true,"password_seen":12}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PasswordReport {
    /// Whether the password is in the breach data.
    pub password_breached: bool,
    /// How often it was seen; 0 when not found.
    pub password_seen: u64,
}

impl PasswordReport {
    /// One line of JSON (the CLI's `check-password --json` output).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("only a boolean and a number")
    }

    /// One human-readable sentence.
    pub fn to_text(&self) -> String {
        if self.password_breached {
            format!(
                "This password was seen {} {} in breach data. Do not use it.\n",
                self.password_seen,
                plural(self.password_seen as usize, "time", "times")
            )
        } else {
            "This password was not found in the breach data.\n".to_owned()
        }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Cuts `text` to `max` characters (ending in `…`) and replaces control
/// characters, so one cell stays on one line. (Table cells trim the
/// username for display; the JSON keeps it as written.)
fn shorten(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, cred: u64, pw: u64) -> EntryResult {
        EntryResult {
            entry: n,
            url: format!("https://site{n}.example/"),
            username: format!("user{n}"),
            credential_breached: cred > 0,
            breach_count: cred,
            password_breached: pw > 0,
            password_seen: pw,
        }
    }

    #[test]
    fn table_lists_breached_entries_and_summary() {
        let report = Report {
            checked: 3,
            results: vec![entry(1, 2, 5), entry(2, 0, 0), entry(4, 0, 7)],
            skipped: Skipped::default(),
        };
        let table = report.to_table();
        assert!(table.contains("site1.example"));
        assert!(table.contains("FOUND (2x)"));
        assert!(table.contains("seen 7x"));
        assert!(!table.contains("site2.example"));
        assert!(table.contains("3 entries checked: 1 with the username+password pair"));
        assert!(table.contains("2 with a password seen in breaches, 1 not found."));
        assert!(report.any_breached());
    }

    #[test]
    fn clean_report() {
        let report = Report {
            checked: 1,
            results: vec![entry(1, 0, 0)],
            skipped: Skipped::default(),
        };
        assert!(!report.any_breached());
        assert_eq!(
            report.to_table(),
            "1 entry checked: 0 with the username+password pair in a breach, \
             0 with a password seen in breaches, 1 not found.\n"
        );
    }

    #[test]
    fn skipped_rows_are_counted_with_their_reason() {
        let report = Report {
            checked: 1,
            results: vec![entry(1, 0, 0)],
            skipped: Skipped {
                empty_password: 2,
                not_a_login: 1,
            },
        };
        let table = report.to_table();
        assert!(
            table.ends_with(
                "3 rows not checked: 2 logins have an empty password, \
                 1 row is not a login (note, card or identity).\n"
            ),
            "{table}"
        );
        assert!(
            report
                .to_json()
                .ends_with(r#","skipped":{"empty_password":2,"not_a_login":1}}"#)
        );
        let one = Report {
            skipped: Skipped {
                empty_password: 1,
                not_a_login: 0,
            },
            ..report
        };
        assert!(
            one.to_table()
                .ends_with("1 row not checked: 1 login has an empty password.\n")
        );
    }

    #[test]
    fn shorten_cuts_and_cleans() {
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
