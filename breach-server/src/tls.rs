//! Server-side TLS (rustls with the *ring* provider, through tonic; no
//! OpenSSL) and the development certificates of `breach-server dev-cert`.
//!
//! [`TlsFiles::load`] reads and checks the PEM files given to `serve`
//! before the server starts, so that every problem is reported with the
//! file it concerns:
//!
//! - a missing or unreadable file ([`Error::Tls`] naming it);
//! - a certificate file with no `CERTIFICATE` block, a key file with no
//!   private key (PKCS#8, PKCS#1 or SEC1), a key of an unsupported type;
//! - a key that does not belong to the certificate;
//! - a private key file readable by others (mode `o+r`): **refused**, as
//!   for the OPRF key files. A key readable by its group (mode `0640`, e.g.
//!   an `ssl-cert` group) is accepted with a warning in the log, because
//!   that is a common and deliberate way to share a key with a service
//!   account.
//!
//! With a client CA ([`TlsFiles::client_ca`]) the server requires every
//! client to present a certificate signed by it (mutual TLS); clients
//! without one fail the TLS handshake.
//!
//! [`write_dev_cert`] writes a throw-away CA and a certificate for
//! `localhost`, `127.0.0.1` and `::1` signed by it, for trying TLS locally.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::error::{Error, Result};

/// File names written by [`write_dev_cert`].
pub mod dev_files {
    /// The development CA's certificate: what clients trust (`--ca-cert`).
    pub const CA_CERT: &str = "ca.pem";
    /// The server's certificate chain (server certificate, then the CA).
    pub const SERVER_CERT: &str = "server.pem";
    /// The server's private key (mode 0600).
    pub const SERVER_KEY: &str = "server-key.pem";
    /// A client certificate signed by the same CA, for trying mutual TLS
    /// (`serve --tls-client-ca ca.pem`).
    pub const CLIENT_CERT: &str = "client.pem";
    /// The client certificate's private key (mode 0600).
    pub const CLIENT_KEY: &str = "client-key.pem";
}

/// Longest a client may take to complete the TLS handshake; slower ones
/// are disconnected, so idle half-open connections cannot pile up.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Days a development certificate is valid.
pub const DEV_CERT_DAYS: i64 = 365;

/// The PEM files of the server's TLS configuration, as given on the
/// command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates whose clients are accepted; when set, every client
    /// must present a certificate signed by one of them (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// A checked, loaded TLS configuration for the server. It holds the
/// private key; its `Debug` shows only the file names.
#[derive(Clone)]
pub struct TlsConfig {
    files: TlsFiles,
    tonic: ServerTlsConfig,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// The files it was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// tonic's configuration, for `Server::builder().tls_config(...)`.
    pub fn server_config(&self) -> ServerTlsConfig {
        self.tonic.clone()
    }
}

fn tls_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Tls {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| tls_err(path, format!("cannot read the {what}: {e}")))
}

fn certificates(path: &Path, pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, format!("not a valid PEM {what}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(
            path,
            format!("no `BEGIN CERTIFICATE` block: not a PEM {what}"),
        ));
    }
    Ok(certs)
}

/// Refuses a key file others can read; warns when its group can.
fn check_key_permissions(path: &Path) -> Result<()> {
    let meta = fs::metadata(path)
        .map_err(|e| tls_err(path, format!("cannot read the private key: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(tls_err(
            path,
            format!(
                "private key file has mode {mode:03o}, readable by other users; \
                 chmod 600 it (or 640 to share it with a group), and consider the key \
                 compromised if others could read it"
            ),
        ));
    }
    if mode & 0o070 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:03o}"),
            "TLS private key is readable by its group"
        );
    }
    Ok(())
}

impl TlsFiles {
    /// Reads and checks the files: PEM structure, key permissions, and
    /// that the key belongs to the first certificate.
    pub fn load(&self) -> Result<TlsConfig> {
        let cert_pem = read(&self.cert, "certificate")?;
        let certs = certificates(&self.cert, &cert_pem, "certificate")?;
        check_key_permissions(&self.key)?;
        let key_pem = read(&self.key, "private key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            tls_err(
                &self.key,
                format!("no PEM private key (PKCS#8, PKCS#1 or SEC1) found: {e}"),
            )
        })?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| tls_err(&self.key, format!("unsupported private key: {e}")))?;
        let certified = rustls::sign::CertifiedKey::new(certs, signer);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(tls_err(
                    &self.key,
                    format!(
                        "this private key does not belong to the certificate in {}",
                        self.cert.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(tls_err(
                    &self.cert,
                    format!("certificate and key cannot be checked against each other: {e}"),
                ));
            }
        }
        let mut tonic = ServerTlsConfig::new()
            .identity(Identity::from_pem(&cert_pem, &key_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = &self.client_ca {
            let ca_pem = read(ca, "client CA certificate")?;
            certificates(ca, &ca_pem, "client CA certificate")?;
            tonic = tonic
                .client_ca_root(Certificate::from_pem(ca_pem))
                .client_auth_optional(false);
        }
        Ok(TlsConfig {
            files: self.clone(),
            tonic,
        })
    }
}

/// What [`write_dev_cert`] wrote.
#[derive(Clone, Debug)]
pub struct DevCert {
    /// The directory written to.
    pub dir: PathBuf,
    /// The CA certificate clients should trust.
    pub ca_cert: PathBuf,
    /// The server certificate chain.
    pub server_cert: PathBuf,
    /// The server key (mode 0600).
    pub server_key: PathBuf,
    /// A client certificate for mutual TLS.
    pub client_cert: PathBuf,
    /// Its key (mode 0600).
    pub client_key: PathBuf,
}

fn cert_err(e: rcgen::Error) -> Error {
    Error::Config(format!("generating the development certificate: {e}"))
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    // A day of slack for clocks that are a little behind.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(DEV_CERT_DAYS);
}

/// Writes a development CA and, signed by it, a server certificate for
/// `localhost`, `127.0.0.1` and `::1` and a client certificate, into `dir`
/// (created if missing; see [`dev_files`] for the names). The CA's own key
/// is not kept, so nothing else can be signed with it. Key files get mode
/// 0600. Existing files are refused unless `force`.
///
/// Development only: the CA is trusted by whoever passes its `ca.pem` to a
/// client, and the certificates name only the local host.
pub fn write_dev_cert(dir: &Path, force: bool) -> Result<DevCert> {
    let out = DevCert {
        dir: dir.to_path_buf(),
        ca_cert: dir.join(dev_files::CA_CERT),
        server_cert: dir.join(dev_files::SERVER_CERT),
        server_key: dir.join(dev_files::SERVER_KEY),
        client_cert: dir.join(dev_files::CLIENT_CERT),
        client_key: dir.join(dev_files::CLIENT_KEY),
    };
    let all = [
        &out.ca_cert,
        &out.server_cert,
        &out.server_key,
        &out.client_cert,
        &out.client_key,
    ];
    if !force {
        let existing: Vec<String> = all
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        if !existing.is_empty() {
            return Err(tls_err(
                dir,
                format!(
                    "{} already exist{}; pass --force to replace {}",
                    existing.join(", "),
                    if existing.len() == 1 { "s" } else { "" },
                    if existing.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;

    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "breach-server development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca_params);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(cert_err)?;
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).map_err(cert_err)?;
    server.subject_alt_names.extend([
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]);
    server.distinguished_name = rcgen::DistinguishedName::new();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    validity(&mut server);
    let server_cert = server.signed_by(&server_key, &issuer).map_err(cert_err)?;

    let client_key = KeyPair::generate().map_err(cert_err)?;
    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    client.distinguished_name = rcgen::DistinguishedName::new();
    client
        .distinguished_name
        .push(DnType::CommonName, "breach-client development client");
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    validity(&mut client);
    let client_cert = client.signed_by(&client_key, &issuer).map_err(cert_err)?;

    write_file(
        &out.server_key,
        server_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(
        &out.client_key,
        client_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&out.ca_cert, ca_cert.pem().as_bytes(), 0o644)?;
    let chain = format!("{}{}", server_cert.pem(), ca_cert.pem());
    write_file(&out.server_cert, chain.as_bytes(), 0o644)?;
    let chain = format!("{}{}", client_cert.pem(), ca_cert.pem());
    write_file(&out.client_cert, chain.as_bytes(), 0o644)?;
    Ok(out)
}

/// Writes `bytes` to `path` with `mode`; an existing file is replaced (its
/// mode too), never written through a symbolic link.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    // The umask may have removed bits from `mode`; never added any.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join(dev_files::SERVER_CERT),
            key: dir.join(dev_files::SERVER_KEY),
            client_ca: Some(dir.join(dev_files::CA_CERT)),
        }
    }

    #[test]
    fn dev_cert_loads_and_is_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        let dc = write_dev_cert(&dir, false).unwrap();
        for key in [&dc.server_key, &dc.client_key] {
            let mode = fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        let cfg = files(&dir).load().unwrap();
        assert!(cfg.mutual());
        let shown = format!("{cfg:?}");
        assert!(
            shown.contains("server-key.pem") && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
        let e = write_dev_cert(&dir, false).unwrap_err().to_string();
        assert!(e.contains("server-key.pem") && e.contains("--force"), "{e}");
        let before = fs::read(&dc.ca_cert).unwrap();
        write_dev_cert(&dir, true).unwrap();
        assert_ne!(
            fs::read(&dc.ca_cert).unwrap(),
            before,
            "--force wrote a new CA"
        );
    }

    #[test]
    fn bad_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_dev_cert(&tmp.path().join("a"), false).unwrap();
        let b = write_dev_cert(&tmp.path().join("b"), false).unwrap();

        let missing = TlsFiles {
            cert: tmp.path().join("nope.pem"),
            ..files(&tmp.path().join("a"))
        };
        let e = missing.load().unwrap_err().to_string();
        assert!(e.contains("nope.pem") && e.contains("cannot read"), "{e}");
        assert_eq!(e.matches("No such file").count(), 1, "{e}");

        // A key from another pair.
        let mismatched = TlsFiles {
            cert: a.server_cert.clone(),
            key: b.server_key.clone(),
            client_ca: None,
        };
        let e = mismatched.load().unwrap_err().to_string();
        assert!(
            e.contains(&*b.server_key.to_string_lossy()) && e.contains("does not belong"),
            "{e}"
        );

        // Key and certificate swapped.
        let swapped = TlsFiles {
            cert: a.server_key.clone(),
            key: a.server_cert.clone(),
            client_ca: None,
        };
        fs::set_permissions(&a.server_cert, fs::Permissions::from_mode(0o600)).unwrap();
        let e = swapped.load().unwrap_err().to_string();
        assert!(
            e.contains("server-key.pem") && e.contains("CERTIFICATE"),
            "{e}"
        );

        // A world-readable key is refused; a group-readable one accepted.
        fs::set_permissions(&a.server_key, fs::Permissions::from_mode(0o644)).unwrap();
        let e = files(&tmp.path().join("a")).load().unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        fs::set_permissions(&a.server_key, fs::Permissions::from_mode(0o640)).unwrap();
        files(&tmp.path().join("a")).load().unwrap();

        // A client CA that is not a certificate.
        let bad_ca = TlsFiles {
            client_ca: Some(a.server_key.clone()),
            ..files(&tmp.path().join("a"))
        };
        let e = bad_ca.load().unwrap_err().to_string();
        assert!(e.contains("client CA"), "{e}");
    }
}
