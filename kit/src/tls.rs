//! HTTPS on a service's own port: the certificate chain and key (PEM files named by the
//! `tls_cert_path` and `tls_key_path` fields) loaded into a rustls server config, and the
//! acceptor each server's accept loop hands its sockets to.
//!
//! Both fields or neither: one alone is a config error naming the other. A file that cannot be
//! read or holds no usable PEM block fails the config check before any port is bound, with a
//! message naming the field and the file. No message ever quotes a file's contents, so no key
//! material reaches a log line or the terminal.
//!
//! The crypto provider is ring, the one reqwest and async-nats already compile in; naming it
//! here (rather than relying on a process default) keeps a second provider out of the build and
//! out of any doubt at run time.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The config field naming the certificate chain (PEM, leaf first).
pub const CERT_FIELD: &str = "tls_cert_path";
/// The config field naming the private key (PEM: PKCS#8, PKCS#1 or SEC1).
pub const KEY_FIELD: &str = "tls_key_path";

/// The rustls server config for the two fields, `None` when neither is set (plain HTTP).
///
/// # Errors
/// One line naming the field (and file) at fault: one field without the other, an unreadable
/// file, a file without a certificate or key, or a key that does not match the certificate.
pub fn server_config(
    cert_path: Option<&str>,
    key_path: Option<&str>,
) -> Result<Option<Arc<ServerConfig>>, String> {
    let (cert_path, key_path) = match (non_empty(cert_path), non_empty(key_path)) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(format!(
                "{CERT_FIELD} is set but {KEY_FIELD} is not: HTTPS needs both (or neither, for plain HTTP)"
            ));
        }
        (None, Some(_)) => {
            return Err(format!(
                "{KEY_FIELD} is set but {CERT_FIELD} is not: HTTPS needs both (or neither, for plain HTTP)"
            ));
        }
        (Some(cert), Some(key)) => (cert, key),
    };
    let chain = read_cert_chain(cert_path)?;
    let key = read_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| {
            format!(
                "{CERT_FIELD} {cert_path} and {KEY_FIELD} {key_path} do not work together: {error}"
            )
        })?;
    // hyper's auto builder serves both; ALPN lets a client pick HTTP/2 without a guess.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.trim().is_empty())
}

fn read_file(field: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|error| format!("{field} {path}: cannot read: {error}"))
}

fn read_cert_chain(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(CERT_FIELD, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{CERT_FIELD} {path}: not a PEM certificate file ({error})"))?;
    if chain.is_empty() {
        return Err(format!(
            "{CERT_FIELD} {path}: no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" block)"
        ));
    }
    Ok(chain)
}

fn read_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_file(KEY_FIELD, path)?;
    // The parser's own message can quote a line of the file; for a key file, say only what
    // kind of failure it was.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "{KEY_FIELD} {path}: no private key in it (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)"
        ),
        _ => format!("{KEY_FIELD} {path}: not a readable PEM private key file"),
    })
}

/// What an accept loop does with each socket it accepts: nothing (plain HTTP) or a TLS
/// handshake bounded by a deadline, so a client that never finishes one cannot hold its
/// connection slot. Call [`Acceptor::accept`] inside the connection's own task, never in the
/// accept loop.
#[derive(Clone)]
pub struct Acceptor {
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_timeout: Duration,
}

impl Acceptor {
    /// An acceptor for `config` (`None`: plain HTTP) whose handshakes must finish within
    /// `handshake_timeout`.
    #[must_use]
    pub fn new(config: Option<Arc<ServerConfig>>, handshake_timeout: Duration) -> Self {
        Self {
            tls: config.map(tokio_rustls::TlsAcceptor::from),
            handshake_timeout,
        }
    }

    /// Whether connections get HTTPS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The stream to serve HTTP on: `socket` itself, or the TLS session over it once the
    /// handshake is done.
    ///
    /// # Errors
    /// The handshake failed (not TLS, an alert, a protocol error) or did not finish in time.
    pub async fn accept<S>(&self, socket: S) -> io::Result<MaybeTls<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(tls) = &self.tls else {
            return Ok(MaybeTls::Plain(socket));
        };
        match tokio::time::timeout(self.handshake_timeout, tls.accept(socket)).await {
            Ok(Ok(stream)) => Ok(MaybeTls::Tls(Box::new(stream))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not finished in time",
            )),
        }
    }
}

/// A served connection: plain, or TLS over the socket.
pub enum MaybeTls<S> {
    Plain(S),
    Tls(Box<tokio_rustls::server::TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(socket) => Pin::new(socket).poll_read(context, buffer),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(socket) => Pin::new(socket).poll_write(context, buffer),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, buffer),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(socket) => Pin::new(socket).poll_write_vectored(context, buffers),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(socket) => socket.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(socket) => Pin::new(socket).poll_flush(context),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(socket) => Pin::new(socket).poll_shutdown(context),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_alone_names_the_missing_one() {
        let error = server_config(Some("/x/cert.pem"), None).err();
        assert!(error.is_some_and(|error| error.contains("tls_key_path is not")));
        let error = server_config(None, Some("/x/key.pem")).err();
        assert!(error.is_some_and(|error| error.contains("tls_cert_path is not")));
        assert!(matches!(server_config(None, None), Ok(None)));
        assert!(matches!(server_config(Some(""), Some(" ")), Ok(None)));
    }

    #[test]
    fn unreadable_or_empty_files_are_named_and_never_quoted() {
        let dir = std::env::temp_dir().join(format!("axg-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let missing = dir.join("missing.pem");
        let missing = missing.to_string_lossy();
        let error = server_config(Some(&missing), Some(&missing)).err();
        assert!(
            error.as_deref().is_some_and(
                |error| error.starts_with("tls_cert_path") && error.contains("cannot read")
            ),
            "{error:?}"
        );
        let secret_looking = dir.join("not-a-key.pem");
        std::fs::write(
            &secret_looking,
            "-----BEGIN PRIVATE KEY-----\nTOPSECRET!!\n-----END PRIVATE KEY-----\n",
        )
        .ok();
        let error = read_key(&secret_looking.to_string_lossy()).err();
        assert!(
            error.as_deref().is_some_and(
                |error| error.starts_with("tls_key_path") && !error.contains("TOPSECRET")
            ),
            "{error:?}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
