//! The one pooled HTTP client of the gateway: backends, active health checks and the identity
//! provider's key set. HTTP/1.1, and HTTP/2 where TLS negotiates it; TLS trusts the system
//! roots plus an optional extra CA bundle (internal CAs of air-gapped sites).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The shared upstream client.
pub type HttpClient = Client<Connector, Full<Bytes>>;
/// Its connector: HTTP, or HTTPS trusting the system roots and the extra CA bundle.
pub type Connector = HttpsConnector<HttpConnector>;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The extra CA bundle could not be read or parsed.
    #[error("cannot load CA bundle {path}: {message}")]
    CaBundle {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("cannot configure upstream TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Builds the pooled client; `extra_ca` is a PEM bundle trusted in addition to the system roots.
pub fn build_client(
    extra_ca: Option<&Path>,
    connect_timeout: Duration,
) -> Result<HttpClient, ClientError> {
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(connector(extra_ca, connect_timeout)?))
}

/// The connector of [`build_client`] (also the OTLP/HTTP exporter's).
pub fn connector(
    extra_ca: Option<&Path>,
    connect_timeout: Duration,
) -> Result<Connector, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let ca_err = |message: String| ClientError::CaBundle {
            path: path.display().to_string(),
            message,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no certificates found".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted CA certificates found; https backends will fail (use --extra-ca-file)"
        );
    } else {
        tracing::debug!(
            system_roots = added,
            total = roots.len(),
            "upstream TLS trust store loaded"
        );
    }
    let tls = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    Ok(HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}
