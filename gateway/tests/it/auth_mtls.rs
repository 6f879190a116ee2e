//! `spec.auth.clientCertificates`: a client certificate verified against `--tls-client-ca`
//! authenticates its holder (principal from the SAN or CN, team from the OU); no certificate
//! and no other credential is 401, a certificate of another CA fails the handshake, and a
//! router that asks for certificates the listener does not verify is refused at start.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use llmkube_mock_upstream::MockUpstream;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::*;

const SPIFFE: &str = "spiffe://corp.internal/ns/ai/sa/batch";

struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    /// A client certificate the gateway trusts, and one it does not.
    trusted: (CertificateDer<'static>, PrivateKeyDer<'static>),
    stranger: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn client(
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "batch-job");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "research");
    params.subject_alt_names = vec![SanType::URI(SPIFFE.try_into().unwrap())];
    let cert = params.signed_by(&key, issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let site = ca("Site Client CA");
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &site)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), site.pem()).unwrap();
    std::fs::write(dir.path().join("tls.crt"), server.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), server_key.serialize_pem()).unwrap();
    Pki {
        ca: site.der().clone(),
        trusted: client(&site),
        stranger: client(&ca("Someone Else's CA")),
        dir,
    }
}

const SPEC: &str = "  backends: [{name: local-a, inferenceServiceRef: {name: a}}]
  defaultRoute: local-a
  auth:
    clientCertificates: {}
    teams: [{name: research}]
";

async fn mtls_gateway(pki: &Pki, mock: &MockUpstream) -> Gw {
    let path = |f: &str| pki.dir.path().join(f);
    let (cert, key, ca) = (path("tls.crt"), path("tls.key"), path("ca.pem"));
    gateway_with(SPEC, &[("local-a", mock)], move |c| {
        c.tls = Some((cert, key));
        c.tls_client_ca = Some(ca);
    })
    .await
}

/// `POST /v1/chat/completions` over TLS, presenting `identity` when given.
async fn chat(
    gw: &Gw,
    pki: &Pki,
    identity: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let tls = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(vec![cert.clone()], key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(https);
    let req = http::Request::post(format!(
        "https://localhost:{}/v1/chat/completions",
        gw.gw.addr.port()
    ))
    .header("content-type", "application/json")
    .body(Full::new(Bytes::from(chat_body("m", false))))
    .unwrap();
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

#[tokio::test]
async fn a_verified_client_certificate_names_the_principal_and_team() {
    let pki = pki();
    let mock = MockUpstream::start("local-a").await.unwrap();
    let gw = mtls_gateway(&pki, &mock).await;

    let (status, body) = chat(&gw, &pki, Some(&pki.trusted)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let line = audit_lines(&gw.dir.path().join("audit.log"), 1)
        .await
        .remove(0);
    assert_eq!(line["principal"], SPIFFE);
    assert_eq!(line["team"], "research");

    let (status, body) = chat(&gw, &pki, None).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("client certificate"), "{body}");

    let refused = chat(&gw, &pki, Some(&pki.stranger)).await;
    assert!(
        refused.is_err(),
        "a certificate of another CA fails the handshake: {refused:?}"
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn certificates_the_listener_does_not_verify_cannot_be_asked_for() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.yaml");
    std::fs::write(&path, router_yaml("test-router", SPEC)).unwrap();
    let mut config = llmkube_gateway::GatewayConfig::new(&path);
    config.tls = Some((
        pki.dir.path().join("tls.crt"),
        pki.dir.path().join("tls.key"),
    ));
    let err = llmkube_gateway::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("--tls-client-ca"), "{err}");
}
