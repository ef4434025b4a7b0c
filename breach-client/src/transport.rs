//! The connection to the server: `http://` or `https://` (TLS with rustls,
//! trusting the system's root certificates plus an optional extra CA), and
//! plain-language diagnoses of the usual mistakes: a certificate the client
//! does not trust, `http://` against a TLS port and `https://` against a
//! plaintext one.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};

use crate::check::{CheckOptions, Error, Result};

/// Which protocol a port answered a probe with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    /// A TLS record (an alert or a handshake): the port expects TLS.
    Tls,
    /// An HTTP/2 frame in the clear: the port expects plaintext.
    PlainHttp2,
}

/// How long a diagnostic probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The client's HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The parsed server URL.
pub(crate) struct Target {
    uri: Uri,
    tls: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(invalid(
                    "expected http://HOST:PORT or https://HOST:PORT".into(),
                ));
            }
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host".into()));
        }
        Ok(Target { uri, tls })
    }

    fn host(&self) -> &str {
        // `parse` checked there is one. IPv6 hosts come bracketed.
        let host = self.uri.host().unwrap_or_default();
        host.trim_start_matches('[').trim_end_matches(']')
    }

    fn port(&self) -> u16 {
        self.uri
            .port_u16()
            .unwrap_or(if self.tls { 443 } else { 80 })
    }

    /// The same address with the other scheme, for hints.
    fn with_other_scheme(&self) -> String {
        let authority = self.uri.authority().map_or("", |a| a.as_str());
        let scheme = if self.tls { "http" } else { "https" };
        format!("{scheme}://{authority}")
    }
}

/// Connects to `url`. With `https://`, trusts the system roots plus
/// `options.ca_certificate`; the connection attempt is bounded by
/// `options.call_timeout`.
pub(crate) async fn connect(url: &str, options: &CheckOptions) -> Result<Channel> {
    let target = Target::parse(url)?;
    let mut endpoint = Endpoint::from(target.uri.clone()).connect_timeout(options.call_timeout);
    if target.tls {
        endpoint = endpoint
            .tls_config(tls_config(url, options)?)
            .map_err(|e| Error::Tls {
                url: url.to_owned(),
                detail: error_chain(&e),
            })?;
    } else if options.ca_certificate.is_some() {
        return Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason: format!(
                "a CA certificate was given but the URL is not https://; use {}",
                target.with_other_scheme()
            ),
        });
    }
    match endpoint.connect().await {
        Ok(channel) => Ok(channel),
        Err(e) => Err(diagnose(url, &target, &e)
            .await
            .unwrap_or_else(|| Error::Connect {
                url: url.to_owned(),
                detail: error_chain(&e),
            })),
    }
}

fn tls_config(url: &str, options: &CheckOptions) -> Result<ClientTlsConfig> {
    let tls_error = |detail: &str| Error::Tls {
        url: url.to_owned(),
        detail: detail.to_owned(),
    };
    let mut config = ClientTlsConfig::new();
    // tonic refuses native roots when the system has none: a system
    // without them can still use the given CA.
    if system_roots_available() {
        config = config.with_native_roots();
    } else if options.ca_certificate.is_none() {
        return Err(tls_error(
            "this system has no trusted root certificates; pass the server's CA \
             certificate (PEM) with --ca-cert",
        ));
    }
    if let Some(pem) = &options.ca_certificate {
        if !pem_has_certificate(pem) {
            return Err(tls_error(
                "the CA certificate file holds no PEM certificate \
                 (expected -----BEGIN CERTIFICATE-----)",
            ));
        }
        config = config.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(config)
}

fn pem_has_certificate(pem: &[u8]) -> bool {
    pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----")
}

/// Whether the system's trust store has any certificate.
fn system_roots_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty())
}

/// Explains a failed connection or first call in plain words, when the
/// cause is a known mistake; `None` otherwise. The error is `Send + Sync`
/// because it is held across the probe's `.await`: with a plain `dyn
/// Error` the check's futures would not be `Send`, and could not be
/// spawned on a multi-threaded runtime (as the Python bindings do).
pub(crate) async fn diagnose(
    url: &str,
    target: &Target,
    error: &(dyn std::error::Error + Send + Sync + 'static),
) -> Option<Error> {
    if let Some(detail) = certificate_problem(error) {
        return Some(Error::UntrustedCertificate {
            url: url.to_owned(),
            detail,
        });
    }
    let speaks = probe(target.host(), target.port()).await?;
    let hint = match (target.tls, speaks) {
        (false, Speaks::Tls) => format!(
            "the server expects TLS: use {} (with --ca-cert PEM if its certificate is \
             not signed by a system-trusted CA)",
            target.with_other_scheme()
        ),
        (true, Speaks::PlainHttp2) => format!(
            "the server does not speak TLS (it answered in plaintext HTTP/2): use {}",
            target.with_other_scheme()
        ),
        _ => return None,
    };
    Some(Error::WrongScheme {
        url: url.to_owned(),
        hint,
    })
}

/// The certificate error in a chain of causes, in words, if there is one.
fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(problem)) = rustls_error {
            use rustls::CertificateError as C;
            return Some(match problem {
                C::UnknownIssuer => "it is not signed by a trusted certificate authority".into(),
                C::BadSignature => "its signature does not verify".into(),
                C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "it is not valid for this host name".into()
                }
                C::Revoked => "it was revoked".into(),
                other => format!("{other:?}"),
            });
        }
        cause = e.source();
    }
    None
}

/// Opens a raw TCP connection, sends an HTTP/2 preface, and reads what
/// comes back: a TLS server answers with an alert record (0x15 0x03 ..),
/// an HTTP/2 server with its SETTINGS frame. `None` when neither (or no
/// connection).
pub(crate) async fn probe(host: &str, port: u16) -> Option<Speaks> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(H2_PREFACE).await.ok()?;
        let mut head = [0u8; 9];
        let mut filled = 0;
        while filled < head.len() {
            match stream.read(&mut head[filled..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
            if filled >= 2 && matches!(head[0], 0x15 | 0x16) && head[1] == 0x03 {
                return Some(Speaks::Tls);
            }
        }
        // A frame header: 24-bit length, type (4 = SETTINGS), flags.
        (filled >= 5 && head[3] == 0x04 && head[4] & !0x01 == 0).then_some(Speaks::PlainHttp2)
    };
    tokio::time::timeout(PROBE_TIMEOUT, work)
        .await
        .ok()
        .flatten()
}

/// An error and its causes, `: `-separated, each cause once (tonic's
/// transport errors say little at the top level, and some errors repeat
/// their cause in their own message).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Target::parse("http://127.0.0.1:50051").is_ok());
        let t = Target::parse("https://localhost:8443").unwrap();
        assert!(t.tls);
        assert_eq!(t.host(), "localhost");
        assert_eq!(t.port(), 8443);
        assert_eq!(t.with_other_scheme(), "http://localhost:8443");
        assert_eq!(Target::parse("https://[::1]").unwrap().host(), "::1");
        assert_eq!(Target::parse("https://[::1]").unwrap().port(), 443);
        assert!(matches!(
            Target::parse("ftp://x:1"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            Target::parse("127.0.0.1:50051"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn chain_prints_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        #[derive(Debug)]
        struct Wrap(std::io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading x: {}", self.0)
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(error_chain(&Wrap(io)), "reading x: no such file");
    }
}
