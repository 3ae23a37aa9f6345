//! A throwaway public-key infrastructure for tests: a CA, a server and a client certificate, and a foreign CA.
//!
//! Everything is generated in memory with rcgen (ring) each time [`TestPki::generate`] runs, so no key material is
//! ever committed. The keys are ECDSA P-256, which rustls with the ring provider accepts on both sides.

use std::fmt;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::server::ServerError;

/// A certificate together with its private key, in PEM and DER form.
///
/// `Debug` never prints the private key.
pub struct CertAndKey {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: PrivatePkcs8KeyDer<'static>,
}

impl CertAndKey {
    /// Returns the certificate as PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Returns the chain to present to a peer as PEM.
    ///
    /// Every leaf here is signed directly by its CA, which the peer holds as a trust anchor, so the chain is the
    /// leaf alone.
    pub fn cert_chain_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Returns the private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Returns the certificate as DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Returns the chain to present to a peer as DER (the leaf alone, see [`CertAndKey::cert_chain_pem`]).
    pub fn cert_chain_der(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert_der.clone()]
    }

    /// Returns the private key as DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey").field("cert_der_len", &self.cert_der.len()).field("key", &"[redacted]").finish()
    }
}

/// A complete test PKI: a trusted CA with server and client leaves, and an unrelated CA with its own client leaf.
#[derive(Debug)]
pub struct TestPki {
    ca: CertAndKey,
    server: CertAndKey,
    client: CertAndKey,
    foreign_ca: CertAndKey,
    foreign_client: CertAndKey,
}

impl TestPki {
    /// Generates fresh keys and certificates.
    ///
    /// The server certificate names `localhost` and `127.0.0.1`; the client certificates carry the client-auth
    /// extended key usage.
    pub fn generate() -> Result<TestPki, ServerError> {
        let (ca_cert, ca_key) = new_ca("iot-sim test CA")?;
        let server =
            new_leaf("localhost", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, &ca_cert, &ca_key)?;
        let client = new_leaf("iot-sim test client", &[], ExtendedKeyUsagePurpose::ClientAuth, &ca_cert, &ca_key)?;
        let (foreign_cert, foreign_key) = new_ca("iot-sim foreign CA")?;
        let foreign_client =
            new_leaf("iot-sim foreign client", &[], ExtendedKeyUsagePurpose::ClientAuth, &foreign_cert, &foreign_key)?;
        Ok(TestPki {
            ca: pair(&ca_cert, &ca_key),
            server,
            client,
            foreign_ca: pair(&foreign_cert, &foreign_key),
            foreign_client,
        })
    }

    /// Returns the trusted CA.
    pub fn ca(&self) -> &CertAndKey {
        &self.ca
    }

    /// Returns the trusted CA certificate as PEM, the usual input for a custom root store.
    pub fn ca_cert_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Returns the server certificate (for `localhost` and `127.0.0.1`), signed by the trusted CA.
    pub fn server(&self) -> &CertAndKey {
        &self.server
    }

    /// Returns the client certificate, signed by the trusted CA.
    pub fn client(&self) -> &CertAndKey {
        &self.client
    }

    /// Returns the unrelated CA, which no server here trusts.
    pub fn foreign_ca(&self) -> &CertAndKey {
        &self.foreign_ca
    }

    /// Returns a client certificate signed by the unrelated CA.
    pub fn foreign_client(&self) -> &CertAndKey {
        &self.foreign_client
    }
}

fn new_ca(common_name: &str) -> Result<(Certificate, KeyPair), ServerError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ServerError::Pki)?;
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().map_err(ServerError::Pki)?;
    let cert = params.self_signed(&key).map_err(ServerError::Pki)?;
    Ok((cert, key))
}

fn new_leaf(
    common_name: &str,
    subject_alt_names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Certificate,
    issuer_key: &KeyPair,
) -> Result<CertAndKey, ServerError> {
    let names: Vec<String> = subject_alt_names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).map_err(ServerError::Pki)?;
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().map_err(ServerError::Pki)?;
    let cert = params.signed_by(&key, issuer, issuer_key).map_err(ServerError::Pki)?;
    Ok(pair(&cert, &key))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn pair(cert: &Certificate, key: &KeyPair) -> CertAndKey {
    CertAndKey {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn debug_does_not_print_keys() {
        let pki = TestPki::generate().unwrap();
        let printed = format!("{pki:?}");
        assert!(printed.contains("[redacted]"));
        for leaf in [pki.ca(), pki.server(), pki.client(), pki.foreign_ca(), pki.foreign_client()] {
            assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
            let body: String = leaf.key_pem().lines().nth(1).unwrap().to_owned();
            assert!(!printed.contains(&body));
        }
    }

    #[test]
    fn pem_and_der_agree() {
        let pki = TestPki::generate().unwrap();
        let server = pki.server();
        assert!(server.cert_chain_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(server.cert_chain_der(), vec![server.cert_der().clone()]);
        assert_ne!(pki.ca().cert_der(), pki.foreign_ca().cert_der());
        assert!(matches!(server.key_der(), PrivateKeyDer::Pkcs8(_)));
    }
}
