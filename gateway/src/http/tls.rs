//! Optional inbound TLS (rustls) from PEM certificate and key files, and optional client
//! certificates verified against a CA bundle (mutual TLS). A client without a certificate may
//! still connect: whether it must present one is the router's `spec.auth` to say.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot load {what} from {path}: {message}")]
    Pem {
        /// "certificate chain", "private key" or "client CA bundle".
        what: &'static str,
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the pair.
    #[error("invalid TLS certificate/key pair: {0}")]
    Config(#[from] rustls::Error),
}

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's common names.
    pub common_names: Vec<String>,
    /// The subject's organizational units.
    pub organizational_units: Vec<String>,
    /// Subject alternative names: URIs (SPIFFE ids), then e-mail addresses, then DNS names.
    pub alt_names: Vec<String>,
}

impl ClientCert {
    /// Reads the leaf certificate `der` (already verified by rustls).
    pub fn from_der(der: &[u8]) -> Option<ClientCert> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let text = |attrs: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
            attrs
                .filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let subject = cert.subject();
        let mut out = ClientCert {
            common_names: text(&mut subject.iter_common_name()),
            organizational_units: text(&mut subject.iter_organizational_unit()),
            alt_names: Vec::new(),
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            let names = &san.value.general_names;
            for rank in 0..3 {
                for name in names {
                    match (rank, name) {
                        (0, GeneralName::URI(v))
                        | (1, GeneralName::RFC822Name(v))
                        | (2, GeneralName::DNSName(v)) => out.alt_names.push((*v).to_owned()),
                        _ => {}
                    }
                }
            }
        }
        Some(out)
    }
}

/// A server config serving HTTP/2 and HTTP/1.1 with the given chain and key; with
/// `client_ca`, clients may present a certificate, which must chain to that bundle.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem_err = |what, path: &Path, message: String| TlsError::Pem {
        what,
        path: path.display().to_string(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err("certificate chain", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err("certificate chain", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err(
            "certificate chain",
            cert,
            "no certificates found".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| pem_err("private key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| pem_err("client CA bundle", ca, e.to_string()))?
            {
                let c = c.map_err(|e| pem_err("client CA bundle", ca, e.to_string()))?;
                roots
                    .add(c)
                    .map_err(|e| pem_err("client CA bundle", ca, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(pem_err(
                    "client CA bundle",
                    ca,
                    "no certificates found".into(),
                ));
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| pem_err("client CA bundle", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
