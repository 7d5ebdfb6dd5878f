//! The one TLS stack of `exporter`'s database connections (design.md section 5, "TLS").
//!
//! Every adapter (PostgreSQL, MySQL/MariaDB, Redis) opens its TLS sessions through this crate,
//! so the three engines share one implementation of what a verification level means, where
//! trusted certificates come from, and how a failed handshake is explained to the user:
//!
//! - [`provider`]: the one crypto provider of the binary, aws-lc-rs — the provider the AWS
//!   SDK's rustls 0.23 already brings — installed as the process default on first use, so no
//!   code path panics on "no process-level CryptoProvider".
//! - [`TlsOptions`] says what to do: a [`Verify`] level (none, the chain only as libpq's
//!   `verify-ca`, chain and host name as `verify-full`), the trusted [`Roots`] (a PEM file, PEM
//!   text given inline, or the system's store through `rustls-native-certs`), an optional
//!   client [`Identity`], the host name the certificate must carry, and whether to send SNI.
//! - [`Connector::new`] turns the options into a rustls `ClientConfig` (reading files: do it
//!   once per endpoint, then clone the connector for every connection); [`Connector::connect`]
//!   performs the handshake over any byte stream and reports the [`Handshake`] facts: the
//!   protocol version and the SHA-256 of the server's certificate, recorded in manifests as a
//!   [`TlsInfo`].
//! - [`TlsError`] turns rustls and webpki errors into words a user can act on: unknown CA,
//!   expired certificate (with its validity), host name mismatch (with the names the
//!   certificate does carry), a server that does not speak TLS, a client certificate the
//!   server requires — each with a `hint` written in the engine's own parameter names
//!   ([`Vocabulary`]).
//!
//! The crate knows no database protocol: each adapter negotiates TLS its own way (PostgreSQL's
//! `SSLRequest`, MySQL's `CLIENT_SSL` capability, Redis's TLS port) and hands the socket here.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use exporter_contract::{EngineError, ErrorKind, TlsInfo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

pub use tokio_rustls::client::TlsStream;

/// The process's crypto provider: the installed default if there is one, else aws-lc-rs's,
/// installed as the default now.
///
/// aws-lc-rs is the provider the AWS SDK's rustls 0.23 is built with (`cargo tree -i
/// rustls@0.23 -e features`: `rustls feature "aws_lc_rs"`), so the binary carries one
/// implementation of TLS cryptography, not two. Installing it as the process default means
/// libraries that call `ClientConfig::builder()` find it too.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    if let Some(p) = CryptoProvider::get_default() {
        return p.clone();
    }
    // A concurrent first call may win the race; either way a default exists afterwards.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// What is checked about the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing: the connection is encrypted but the server is not authenticated (libpq's
    /// `require`, MySQL's `REQUIRED`, `redis-cli --insecure`).
    None,
    /// The chain: the certificate is valid now and signed by a trusted CA; its host names
    /// are not compared (libpq's `verify-ca`, MySQL's `VERIFY_CA`).
    Chain,
    /// The chain and the host name (libpq's `verify-full`, MySQL's `VERIFY_IDENTITY`).
    Full,
}

impl Verify {
    /// The label recorded in [`TlsInfo::verified`]: `none`, `chain` or `chain+hostname`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Chain => "chain",
            Self::Full => "chain+hostname",
        }
    }
}

/// Where the trusted CA certificates come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Roots {
    /// PEM text given inline (the platform's per-environment CA); `origin` says where it came
    /// from, for messages (e.g. `the environment's CA`).
    Pem {
        /// One or more `-----BEGIN CERTIFICATE-----` blocks.
        pem: Arc<str>,
        /// A short description for messages.
        origin: String,
    },
    /// A PEM file (`sslrootcert=FILE`, `ssl-ca=FILE`, `cacert=FILE`).
    File(PathBuf),
    /// The system's trusted roots (`sslrootcert=system`), loaded with `rustls-native-certs`
    /// (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    System,
}

impl Roots {
    /// How messages name this source: `the CA file /etc/ca.pem`, `the system's trusted
    /// roots`, or the inline origin.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Pem { origin, .. } => origin.clone(),
            Self::File(path) => format!("the CA file {}", path.display()),
            Self::System => "the system's trusted roots".to_owned(),
        }
    }
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A client certificate chain and its private key, both PEM files (`sslcert`/`sslkey`,
/// `ssl-cert`/`ssl-key`, `cert`/`key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate (chain), leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1). Never read into a message.
    pub key: PathBuf,
}

/// The engine's own names for its TLS parameters, used in messages and hints so that a
/// PostgreSQL user reads `sslrootcert`, a MySQL user `ssl-ca` and a Redis user `cacert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vocabulary {
    /// How to give a CA file, e.g. `sslrootcert=FILE`.
    pub ca: &'static str,
    /// How to check the chain but not the host name, e.g. `sslmode=verify-ca`; `None` when
    /// the engine's vocabulary has no such level.
    pub chain_only: Option<&'static str>,
    /// How to encrypt without checking the certificate, e.g. `sslmode=require`.
    pub no_verify: &'static str,
    /// How to ask for TLS at all, e.g. `sslmode=require (or verify-full)`.
    pub tls_on: &'static str,
    /// How to give a client certificate, e.g. `sslcert=FILE&sslkey=FILE`.
    pub client_cert: &'static str,
}

/// What one connection's TLS must do. Built by an adapter from its URL parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The verification level.
    pub verify: Verify,
    /// Trusted CAs; required unless `verify` is [`Verify::None`].
    pub roots: Option<Roots>,
    /// A client certificate, if the server wants one.
    pub identity: Option<Identity>,
    /// The name the server's certificate must carry (the URL's host, also through a tunnel),
    /// and the SNI sent unless it is an IP address or `sni` is off.
    pub server_name: String,
    /// Send the server name (SNI) in the handshake. Never sent for IP addresses (RFC 6066
    /// section 3; libpq does the same).
    pub sni: bool,
    /// The engine's parameter names, for messages.
    pub vocabulary: Vocabulary,
}

/// A ready client configuration for one endpoint; cheap to clone for every connection.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    name: String,
    verify: Verify,
    roots: Option<String>,
    has_identity: bool,
    vocabulary: Vocabulary,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.name)
            .field("verify", &self.verify)
            .field("roots", &self.roots)
            .field("client_certificate", &self.has_identity)
            .finish_non_exhaustive()
    }
}

/// What a completed handshake established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The negotiated protocol: `TLSv1.3` or `TLSv1.2`.
    pub protocol: Option<String>,
    /// SHA-256 of the server's leaf certificate (DER), lowercase hex.
    pub peer_certificate_sha256: Option<String>,
}

impl Connector {
    /// Build the client configuration: read the CA and client certificate files, load the
    /// system store if asked, and choose the certificate verifier for `options.verify`.
    ///
    /// # Errors
    ///
    /// [`TlsErrorKind::Config`] naming the file that cannot be read or holds no certificate
    /// or key, an empty system store, a host name that cannot be a TLS server name, or a
    /// verification level without roots.
    pub fn new(options: &TlsOptions) -> Result<Self, TlsError> {
        let provider = provider();
        let config_err = |message: String| TlsError::new(TlsErrorKind::Config, message);
        let server_name = ServerName::try_from(options.server_name.clone()).map_err(|_| {
            config_err(format!(
                "{:?} is not a host name TLS can verify",
                options.server_name
            ))
        })?;
        let verifier: Arc<dyn ServerCertVerifier> = match options.verify {
            Verify::None => Arc::new(NoVerification(provider.clone())),
            level => {
                let roots = options.roots.as_ref().ok_or_else(|| {
                    config_err(format!(
                        "checking the server's certificate needs trusted CA certificates: {}",
                        options.vocabulary.ca
                    ))
                })?;
                let store = root_store(roots)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| config_err(format!("{}: {e}", roots.describe())))?;
                if level == Verify::Chain {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err(format!("TLS setup failed: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &options.identity {
            Some(identity) => {
                let (chain, key) = load_identity(identity)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    config_err(format!(
                        "the client certificate {} and key {} do not go together: {e}",
                        identity.cert.display(),
                        identity.key.display()
                    ))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = options.sni;
        Ok(Self {
            config: Arc::new(config),
            server_name,
            name: options.server_name.clone(),
            verify: options.verify,
            roots: options.roots.as_ref().map(Roots::describe),
            has_identity: options.identity.is_some(),
            vocabulary: options.vocabulary,
        })
    }

    /// The verification level.
    #[must_use]
    pub fn verify(&self) -> Verify {
        self.verify
    }

    /// The host name verified (and sent as SNI).
    #[must_use]
    pub fn server_name(&self) -> &str {
        &self.name
    }

    /// The rustls configuration, for a library that drives the handshake itself.
    #[must_use]
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// Perform the TLS handshake over `io` (a socket on which the engine's protocol has just
    /// agreed to start TLS).
    ///
    /// # Errors
    ///
    /// A [`TlsError`] naming the cause ([`TlsError::kind`]), with a hint.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the socket.
    pub async fn connect<IO>(&self, io: IO) -> Result<(TlsStream<IO>, Handshake), TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = connector
            .connect(self.server_name.clone(), io)
            .await
            .map_err(|e| self.explain_io(&e, true))?;
        let handshake = handshake_of(stream.get_ref().1);
        tracing::debug!(server = %self.name, protocol = ?handshake.protocol, "TLS established");
        Ok((stream, handshake))
    }

    /// The manifest record of a connection made with this connector under `mode` (the
    /// engine's word for what was asked, e.g. `verify-full`).
    #[must_use]
    pub fn info(&self, mode: &str, handshake: &Handshake) -> TlsInfo {
        TlsInfo {
            mode: mode.to_owned(),
            encrypted: true,
            verified: Some(self.verify.as_str().to_owned()),
            protocol: handshake.protocol.clone(),
            peer_certificate_sha256: handshake.peer_certificate_sha256.clone(),
        }
    }

    /// Explain an I/O error of a TLS stream made by this connector: during the handshake
    /// (`handshake`), or later — in TLS 1.3 a server that rejects the client's certificate
    /// says so with an alert the client reads only after its side of the handshake is done.
    /// Errors that carry no TLS failure are described as plain I/O errors.
    #[must_use]
    pub fn explain_io(&self, e: &io::Error, handshake: bool) -> TlsError {
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return self.explain(tls);
        }
        if handshake
            && matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            )
        {
            return self.not_tls("closed the connection during the TLS handshake");
        }
        TlsError::new(
            TlsErrorKind::Handshake,
            if handshake {
                format!("TLS handshake with {} failed: {e}", self.name)
            } else {
                format!("TLS connection to {} failed: {e}", self.name)
            },
        )
    }

    /// Whether `e` carries a TLS failure (an alert, a bad record), as opposed to a plain
    /// socket error.
    #[must_use]
    pub fn is_tls_failure(e: &io::Error) -> bool {
        e.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    }

    /// Explain a rustls error in words a user can act on.
    #[must_use]
    pub fn explain(&self, e: &rustls::Error) -> TlsError {
        let v = &self.vocabulary;
        let name = &self.name;
        let roots = self.roots.as_deref().unwrap_or("no trusted CA");
        match e {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => TlsError::new(
                    TlsErrorKind::UnknownCa,
                    format!(
                        "the server's certificate is signed by an unknown CA: it does not chain \
                         to {roots}"
                    ),
                )
                .with_hint(format!(
                    "give the CA certificate that signed the server's certificate with {}",
                    v.ca
                )),
                CertificateError::ExpiredContext { time, not_after } => TlsError::new(
                    TlsErrorKind::Expired,
                    format!(
                        "the server's certificate expired: it is valid until {} and it is now {}",
                        utc(*not_after),
                        utc(*time)
                    ),
                )
                .with_hint(
                    "the server needs a renewed certificate; an expired certificate proves \
                     nothing about the server",
                ),
                CertificateError::Expired => TlsError::new(
                    TlsErrorKind::Expired,
                    "the server's certificate has expired",
                )
                .with_hint("the server needs a renewed certificate"),
                CertificateError::NotValidYetContext { time, not_before } => TlsError::new(
                    TlsErrorKind::NotYetValid,
                    format!(
                        "the server's certificate is not valid yet: it is valid from {} and it \
                         is now {}",
                        utc(*not_before),
                        utc(*time)
                    ),
                )
                .with_hint("check the clocks of this machine and of the server"),
                CertificateError::NotValidYet => TlsError::new(
                    TlsErrorKind::NotYetValid,
                    "the server's certificate is not valid yet",
                )
                .with_hint("check the clocks of this machine and of the server"),
                CertificateError::NotValidForNameContext { presented, .. } => {
                    let carried = if presented.is_empty() {
                        "no host name at all (no subjectAltName)".to_owned()
                    } else {
                        presented
                            .iter()
                            .map(|n| presented_name(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    TlsError::new(
                        TlsErrorKind::HostnameMismatch,
                        format!(
                            "host name mismatch: the server's certificate is for {carried}, not \
                             {name}"
                        ),
                    )
                    .with_hint(mismatch_hint(v))
                }
                CertificateError::NotValidForName => TlsError::new(
                    TlsErrorKind::HostnameMismatch,
                    format!("host name mismatch: the server's certificate is not for {name}"),
                )
                .with_hint(mismatch_hint(v)),
                other => TlsError::new(
                    TlsErrorKind::Handshake,
                    format!("the server's certificate was refused: {other}"),
                ),
            },
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::CertificateRequired => TlsError::new(
                    TlsErrorKind::ClientCertRequired,
                    "the server requires a client certificate",
                )
                .with_hint(format!("give one with {}", v.client_cert)),
                AlertDescription::HandshakeFailure if !self.has_identity => TlsError::new(
                    TlsErrorKind::Handshake,
                    "the server ended the TLS handshake (handshake_failure): it may require a \
                     client certificate, or share no protocol version or cipher with exporter \
                     (TLS 1.2 and 1.3)",
                )
                .with_hint(format!(
                    "if the server wants a client certificate, give one with {}",
                    v.client_cert
                )),
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::AccessDenied
                | AlertDescription::HandshakeFailure
                    if self.has_identity =>
                {
                    TlsError::new(
                        TlsErrorKind::ClientCertRejected,
                        format!(
                            "the server rejected the client certificate ({})",
                            alert_name(*alert)
                        ),
                    )
                    .with_hint("check that a CA the server trusts signed the client certificate")
                }
                other => TlsError::new(
                    TlsErrorKind::Handshake,
                    format!(
                        "the server ended the TLS session with the alert {}",
                        alert_name(*other)
                    ),
                ),
            },
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => {
                self.not_tls("answered the TLS handshake with something that is not TLS")
            }
            rustls::Error::NoCertificatesPresented => TlsError::new(
                TlsErrorKind::Handshake,
                "the server presented no certificate",
            ),
            other => TlsError::new(
                TlsErrorKind::Handshake,
                format!("TLS handshake with {name} failed: {other}"),
            ),
        }
    }

    fn not_tls(&self, what: &str) -> TlsError {
        TlsError::new(
            TlsErrorKind::NotOffered,
            format!("the server {what}: it does not seem to speak TLS on this port"),
        )
        .with_hint(format!(
            "check the port; if the server does not offer TLS, leave out {}",
            self.vocabulary.tls_on
        ))
    }
}

/// A name as webpki presents it (`DnsName("localhost")`, `IpAddress(10.0.0.1)`), as a user
/// writes it (`localhost`, `10.0.0.1`).
fn presented_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name)
}

fn mismatch_hint(v: &Vocabulary) -> String {
    match v.chain_only {
        Some(chain_only) => format!(
            "connect with a host name the certificate carries, or, when the server is reached \
             under another name (a tunnel, an IP address), use {chain_only} to check the CA \
             but not the name"
        ),
        None => "connect with a host name the certificate carries".to_owned(),
    }
}

/// A server that answered a TLS request with "no" (PostgreSQL's `N`, a MySQL greeting without
/// `CLIENT_SSL`) while TLS was required.
#[must_use]
pub fn not_offered(vocabulary: &Vocabulary, mode: &str) -> TlsError {
    TlsError::new(
        TlsErrorKind::NotOffered,
        format!("the server does not support TLS, and {mode} requires it"),
    )
    .with_hint(format!(
        "enable TLS on the server, or connect without TLS (not over an untrusted network); \
         the parameter is {}",
        vocabulary.tls_on
    ))
}

/// The facts of an established session.
fn handshake_of(conn: &rustls::ClientConnection) -> Handshake {
    let protocol = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    });
    let peer_certificate_sha256 = conn
        .peer_certificates()
        .and_then(<[CertificateDer<'_>]>::first)
        .map(|leaf| certificate_sha256(leaf.as_ref()));
    Handshake {
        protocol,
        peer_certificate_sha256,
    }
}

/// SHA-256 of a DER certificate, lowercase hex (what `openssl x509 -fingerprint -sha256`
/// prints, without the colons and in lowercase).
#[must_use]
pub fn certificate_sha256(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn utc(t: UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{} (UNIX)", t.as_secs()),
            |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

fn alert_name(alert: AlertDescription) -> String {
    // `CertificateRequired` → `certificate_required`, the alert's name in RFC 8446.
    let debug = format!("{alert:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Load the trusted roots.
fn root_store(roots: &Roots) -> Result<RootCertStore, TlsError> {
    let config_err = |message: String| TlsError::new(TlsErrorKind::Config, message);
    let mut store = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match roots {
        Roots::Pem { pem, origin } => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| config_err(format!("{origin} is not valid PEM: {e}")))?,
        Roots::File(path) => read_certs(path, "CA file")?,
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "a system certificate could not be loaded");
            }
            found.certs
        }
    };
    let (added, ignored) = store.add_parsable_certificates(certs);
    if ignored > 0 {
        tracing::debug!(
            ignored,
            roots = %roots.describe(),
            "certificates that are not valid CA certificates were ignored"
        );
    }
    if added == 0 {
        return Err(config_err(format!(
            "{} holds no usable CA certificate",
            roots.describe()
        )));
    }
    Ok(store)
}

/// Read every certificate of a PEM file (also a file of DER, for compatibility).
#[allow(
    clippy::disallowed_methods,
    reason = "the error names the file and what it is for (CA, client certificate); fs_err would repeat the path"
)]
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let config_err = |message: String| TlsError::new(TlsErrorKind::Config, message);
    let bytes = std::fs::read(path)
        .map_err(|e| config_err(format!("cannot read the {what} {}: {e}", path.display())))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            config_err(format!(
                "the {what} {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        if bytes.first() == Some(&0x30) {
            // A DER certificate starts with a SEQUENCE; libpq and mysql accept those too.
            return Ok(vec![CertificateDer::from(bytes)]);
        }
        return Err(config_err(format!(
            "the {what} {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_identity(
    identity: &Identity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = read_certs(&identity.cert, "client certificate")?;
    // The key's text never goes into a message: only its path and the parser's complaint.
    let key = PrivateKeyDer::from_pem_file(&identity.key).map_err(|e| {
        TlsError::new(
            TlsErrorKind::Config,
            format!(
                "cannot read a private key from {}: {}",
                identity.key.display(),
                pem_error(&e)
            ),
        )
    })?;
    Ok((chain, key))
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no PEM private key in it".to_owned(),
        Error::Io(io) => io.to_string(),
        // Other variants describe the PEM structure, never the key material.
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("invalid PEM")
            .to_owned(),
    }
}

/// Accepts any certificate; handshake signatures are still checked, so the session is with
/// whoever holds the presented certificate's key (only that is not authenticated).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the full WebPKI check, except that a certificate valid for other
/// names than the one dialled is accepted. webpki checks the chain (issuer, validity,
/// signatures, usage) before the name, so a name error means everything else passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Why a TLS connection could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsErrorKind {
    /// A local problem: a file that cannot be read, no roots, a bad parameter.
    Config,
    /// The certificate does not chain to a trusted CA.
    UnknownCa,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate does not carry the host name.
    HostnameMismatch,
    /// The server does not offer TLS (on this port).
    NotOffered,
    /// The server requires a client certificate and none was given.
    ClientCertRequired,
    /// The server rejected the client certificate.
    ClientCertRejected,
    /// Any other handshake failure.
    Handshake,
}

/// A TLS failure in words a user can act on, with an optional next step. Never contains a
/// private key or a password (messages are built from paths, names and rustls's error
/// descriptions only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    kind: TlsErrorKind,
    message: String,
    hint: Option<String>,
}

impl TlsError {
    /// A new error.
    pub fn new(kind: TlsErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Attach a next step for the user.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The next step, if any.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

/// A TLS failure at the adapter boundary: [`ErrorKind::Config`] for a local
/// configuration mistake (a usage error: exit 2), else [`ErrorKind::Connect`] — the server
/// could not be reached securely. Never retryable: a certificate does not fix itself.
impl From<TlsError> for EngineError {
    fn from(e: TlsError) -> Self {
        let kind = if e.kind == TlsErrorKind::Config {
            ErrorKind::Config
        } else {
            ErrorKind::Connect
        };
        let err = EngineError::new(kind, e.message);
        match e.hint {
            Some(hint) => err.with_hint(hint),
            None => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOCAB: Vocabulary = Vocabulary {
        ca: "sslrootcert=FILE",
        chain_only: Some("sslmode=verify-ca"),
        no_verify: "sslmode=require",
        tls_on: "sslmode=require",
        client_cert: "sslcert=FILE&sslkey=FILE",
    };

    fn connector(verify: Verify) -> Connector {
        Connector::new(&TlsOptions {
            verify,
            roots: None,
            identity: None,
            server_name: "db.example".into(),
            sni: true,
            vocabulary: VOCAB,
        })
        .unwrap()
    }

    #[test]
    fn webpki_errors_read_as_causes_with_hints() {
        let c = connector(Verify::None);
        let e = c.explain(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("db.example").unwrap(),
                presented: vec![
                    "DnsName(\"localhost\")".into(),
                    "IpAddress(10.0.0.1)".into(),
                ],
            },
        ));
        assert_eq!(e.kind(), TlsErrorKind::HostnameMismatch);
        assert_eq!(
            e.message(),
            "host name mismatch: the server's certificate is for localhost, 10.0.0.1, not db.example"
        );
        assert!(e.hint().unwrap().contains("sslmode=verify-ca"), "{e:?}");

        let e = c.explain(&rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_700_000_000,
                )),
            },
        ));
        assert_eq!(e.kind(), TlsErrorKind::Expired);
        assert_eq!(
            e.message(),
            "the server's certificate expired: it is valid until 2023-11-14 22:13:20 UTC and it \
             is now 2027-01-15 08:00:00 UTC"
        );

        let e = c.explain(&rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(e.kind(), TlsErrorKind::UnknownCa);
        assert!(e.message().contains("unknown CA"), "{e}");
        assert!(e.hint().unwrap().contains("sslrootcert=FILE"), "{e:?}");

        let e = c.explain(&rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert_eq!(e.kind(), TlsErrorKind::ClientCertRequired);
        assert_eq!(e.hint(), Some("give one with sslcert=FILE&sslkey=FILE"));

        let e = c.explain(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert_eq!(e.kind(), TlsErrorKind::NotOffered);

        let engine: EngineError = e.into();
        assert_eq!(engine.kind(), ErrorKind::Connect);
        assert!(engine.hint().is_some());
    }

    #[test]
    fn configuration_mistakes_name_the_file() {
        let e = Connector::new(&TlsOptions {
            verify: Verify::Full,
            roots: Some(Roots::File("/nonexistent/ca.pem".into())),
            identity: None,
            server_name: "db.example".into(),
            sni: true,
            vocabulary: VOCAB,
        })
        .unwrap_err();
        assert_eq!(e.kind(), TlsErrorKind::Config);
        assert!(
            e.message()
                .starts_with("cannot read the CA file /nonexistent/ca.pem: "),
            "{e}"
        );
        let engine: EngineError = e.into();
        assert_eq!(engine.kind(), ErrorKind::Config);

        let e = Connector::new(&TlsOptions {
            verify: Verify::Chain,
            roots: None,
            identity: None,
            server_name: "db.example".into(),
            sni: true,
            vocabulary: VOCAB,
        })
        .unwrap_err();
        assert!(e.message().contains("sslrootcert=FILE"), "{e}");

        let e = Connector::new(&TlsOptions {
            verify: Verify::Full,
            roots: Some(Roots::Pem {
                pem: "not a certificate".into(),
                origin: "the environment's CA".into(),
            }),
            identity: None,
            server_name: "db.example".into(),
            sni: true,
            vocabulary: VOCAB,
        })
        .unwrap_err();
        assert_eq!(
            e.message(),
            "the environment's CA holds no usable CA certificate"
        );
    }

    #[test]
    fn alert_names_follow_the_rfc() {
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert_eq!(
            alert_name(AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
    }

    #[test]
    fn one_provider_is_installed() {
        let p = provider();
        assert!(CryptoProvider::get_default().is_some());
        assert!(Arc::ptr_eq(&p, CryptoProvider::get_default().unwrap()));
    }
}
