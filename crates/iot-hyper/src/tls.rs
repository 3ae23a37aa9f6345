//! TLS settings for the transport: which roots to trust and, for two-way TLS, which client identity to present.
//!
//! The rustls configuration is always built with the ring provider passed explicitly, so the crate neither depends
//! on nor installs a process-wide default provider. ALPN is left to hyper-rustls, which panics if it is preset.

use std::fmt;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Errors from building TLS settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate PEM could not be parsed.
    #[error("invalid certificate pem")]
    CertificatePem(#[source] pem::Error),
    /// The input held no certificate at all.
    #[error("no certificate found")]
    NoCertificates,
    /// The private key PEM could not be parsed or held no key.
    ///
    /// The parser's own message is dropped on purpose: it may quote a line of the key.
    #[error("invalid private key pem")]
    PrivateKeyPem,
    /// A CA certificate was rejected as a trust anchor.
    #[error("invalid ca certificate")]
    CaCertificate(#[source] rustls::Error),
    /// rustls rejected the configuration, for example a client key that does not match its certificate.
    #[error("invalid tls configuration")]
    Config(#[source] rustls::Error),
}

/// The certificate authorities trusted to identify servers.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Roots {
    /// The Mozilla root program as bundled by `webpki-roots`; nothing is read from the operating system.
    #[default]
    Platform,
    /// Only these CA certificates; the bundled public roots are not trusted at all.
    CustomCa(Vec<CertificateDer<'static>>),
}

impl Roots {
    /// Trusts only the CA certificates in `pem` (one or more `CERTIFICATE` sections), replacing the public roots.
    pub fn custom_ca_pem(pem: &[u8]) -> Result<Roots, TlsError> {
        let certs = parse_certs(pem)?;
        // Fail now rather than at the first connection if a certificate cannot serve as a trust anchor.
        root_store(&certs)?;
        Ok(Roots::CustomCa(certs))
    }

    fn store(&self) -> Result<RootCertStore, TlsError> {
        match self {
            Roots::Platform => Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
            Roots::CustomCa(certs) => root_store(certs),
        }
    }
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::Platform => f.write_str("Platform"),
            Roots::CustomCa(certs) => write!(f, "CustomCa({} certificates)", certs.len()),
        }
    }
}

/// A client certificate chain and its private key, presented to servers that ask for one (two-way TLS).
///
/// `Debug` prints `[redacted]` in place of the key.
pub struct Identity {
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a certificate chain (leaf first) and a private key (PKCS#8, PKCS#1 or SEC1) from PEM.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, TlsError> {
        let cert_chain = parse_certs(cert_chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::PrivateKeyPem)?;
        Ok(Identity { cert_chain, key })
    }

    /// Builds an identity from DER values that are already parsed.
    pub fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Identity, TlsError> {
        if cert_chain.is_empty() {
            return Err(TlsError::NoCertificates);
        }
        Ok(Identity { cert_chain, key })
    }

    /// Returns the certificate chain, leaf first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.cert_chain
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { cert_chain: self.cert_chain.clone(), key: self.key.clone_key() }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("cert_chain_len", &self.cert_chain.len()).field("key", &"[redacted]").finish()
    }
}

/// Everything the transport needs to know about TLS.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// The trusted server roots.
    pub roots: Roots,
    /// The client identity for two-way TLS, if any.
    pub identity: Option<Identity>,
}

impl TlsOptions {
    /// Returns options that trust `roots` and present no client certificate.
    pub fn new(roots: Roots) -> Self {
        TlsOptions { roots, identity: None }
    }

    /// Returns these options with a client identity for two-way TLS.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Builds the rustls client configuration: ring provider, safe default protocol versions, no ALPN.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(self.roots.store()?);
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some(identity) => builder
                .with_client_auth_cert(identity.cert_chain.clone(), identity.key.clone_key())
                .map_err(TlsError::Config),
        }
    }
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(TlsError::CertificatePem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    Ok(certs)
}

fn root_store(certs: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    if certs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert.clone()).map_err(TlsError::CaCertificate)?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const NOT_A_CERT: &[u8] = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn custom_ca_rejects_empty_and_garbage_input() {
        assert!(matches!(Roots::custom_ca_pem(b"hello"), Err(TlsError::NoCertificates)));
        assert!(matches!(Roots::custom_ca_pem(NOT_A_CERT), Err(TlsError::CaCertificate(_))));
        assert!(matches!(TlsOptions::new(Roots::CustomCa(Vec::new())).client_config(), Err(TlsError::NoCertificates)));
    }

    #[test]
    fn platform_roots_build_without_alpn() {
        let config = TlsOptions::default().client_config().unwrap();
        assert!(config.alpn_protocols.is_empty());
        assert!(!config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn identity_debug_and_errors_hide_the_key() {
        let key = b"-----BEGIN PRIVATE KEY-----\nSENTINEL!!\n-----END PRIVATE KEY-----\n";
        let err = Identity::from_pem(b"", key).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates));
        let err = Identity::from_pem(NOT_A_CERT, key).unwrap_err();
        assert!(matches!(err, TlsError::PrivateKeyPem));
        assert!(!format!("{err} {err:?}").contains("SENTINEL"));

        let identity = Identity::from_der(
            vec![CertificateDer::from(vec![1, 2, 3])],
            PrivateKeyDer::Pkcs8(vec![0x53, 0x45, 0x4e, 0x54].into()),
        )
        .unwrap();
        let printed = format!("{identity:?} {:?}", TlsOptions::default().with_identity(identity.clone()));
        assert!(printed.contains("[redacted]"));
        assert!(!printed.contains("83, 69, 78, 84"));
        assert!(!printed.contains("SENT"));
    }
}
