//! Which servers the bridge trusts over TLS: the public web's certificate
//! authorities (Mozilla's list, compiled in: a lab PC's own store is often
//! stale) plus, when `tls_ca_file` names one, the lab's own: a private CA,
//! or the TLS-inspecting proxy many hospital and company networks put in
//! front of the internet. One [`Trust`] serves enrollment, the HTTP
//! transport and the hub's WebSocket, so all three agree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("tls_ca_file {0}: cannot read it: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("tls_ca_file {0}: not a PEM file of certificates: {1}")]
    NotPem(PathBuf, String),
    #[error("tls_ca_file {0}: holds no certificate (-----BEGIN CERTIFICATE-----)")]
    Empty(PathBuf),
    #[error("tls_ca_file {0}: certificate {1} cannot be used as an authority: {2}")]
    BadCertificate(PathBuf, usize, String),
    #[error("TLS cannot be set up: {0}")]
    Setup(String),
}

/// The certificate authorities the bridge trusts, ready for each client.
#[derive(Clone)]
pub struct Trust {
    config: Arc<rustls::ClientConfig>,
    /// How many authorities came from the lab's file (for the log).
    own: usize,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("own", &self.own).finish()
    }
}

impl Trust {
    /// The public web's authorities and, if `ca_file` is given, the
    /// lab's own from that PEM file (one or more certificates).
    pub fn load(ca_file: Option<&Path>) -> Result<Trust, TrustError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut own = 0;
        if let Some(path) = ca_file {
            let bytes = std::fs::read(path).map_err(|e| TrustError::Read(path.to_owned(), e))?;
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| TrustError::NotPem(path.to_owned(), e.to_string()))?;
            if certificates.is_empty() {
                return Err(TrustError::Empty(path.to_owned()));
            }
            for (i, certificate) in certificates.into_iter().enumerate() {
                roots.add(certificate).map_err(|e| {
                    TrustError::BadCertificate(path.to_owned(), i + 1, e.to_string())
                })?;
                own += 1;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust {
            config: Arc::new(config),
            own,
        })
    }

    /// How many authorities the lab's file added.
    pub fn own_authorities(&self) -> usize {
        self.own
    }

    /// An HTTP client that trusts these authorities.
    pub fn http_client(&self, timeout: Duration) -> Result<reqwest::Client, TrustError> {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.config).clone())
            .timeout(timeout)
            .build()
            .map_err(|e| TrustError::Setup(e.to_string()))
    }

    /// The hub connection's TLS, trusting these authorities.
    pub(crate) fn websocket_connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_file_is_named_with_what_is_wrong_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let e = Trust::load(Some(&missing)).expect_err("missing");
        assert!(
            e.to_string().starts_with(&format!(
                "tls_ca_file {}: cannot read it",
                missing.display()
            )),
            "{e}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = Trust::load(Some(&empty)).expect_err("empty");
        assert!(e.to_string().contains("holds no certificate"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = Trust::load(Some(&garbage)).expect_err("garbage");
        assert!(
            e.to_string().contains("certificate 1 cannot be used"),
            "{e}"
        );
    }

    #[test]
    fn without_a_file_the_public_authorities_are_trusted() {
        let trust = Trust::load(None).expect("public roots");
        assert_eq!(trust.own_authorities(), 0);
        assert!(trust.http_client(Duration::from_secs(1)).is_ok());
    }
}
