//! TLS in and out (internal CA), HTTP versions on a plain listener, and graceful shutdown.

use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::*;

/// An internal CA and a `localhost` certificate it issued, as PEM files in `dir`.
fn internal_pki(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test Internal Root CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn https_inbound_and_upstream_trust_an_internal_ca() {
    let cast = Cast::new().await;
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = internal_pki(pki.path());
    let inner = {
        let (cert, key) = (cert.clone(), key.clone());
        gateway_with("  backends: [{name: local-a, inferenceServiceRef: {name: a}}]\n  defaultRoute: local-a\n", &[("local-a", &cast.a)], move |c| {
            c.tls = Some((cert, key))
        })
        .await
    };
    assert!(inner.gw.url().starts_with("https://"));
    let spec = format!(
        "  backends: [{{name: internal, external: {{provider: litellm, url: 'https://localhost:{}'}}}}]\n  defaultRoute: internal\n",
        inner.gw.addr.port()
    );
    let trusting = gateway_with(&spec, &[], |c| c.extra_ca_file = Some(ca)).await;
    let r = trusting.chat("m", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from local-a"
    );

    // Without the internal CA, the upstream certificate is refused.
    let untrusting = gateway(&spec, &[]).await;
    let r = untrusting.chat("m", &[]).await;
    assert_error(&r, 502, "upstream_error");
    assert!(
        r.text().to_lowercase().contains("certificate"),
        "{}",
        r.text()
    );

    // The TLS listener speaks HTTP/2 to a client that negotiates it.
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types_certs(&pki.path().join("ca.pem")) {
        roots.add(c).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http2()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build::<_, http_body_util::Full<bytes::Bytes>>(https);
    let uri = format!("https://localhost:{}/v1/models", inner.gw.addr.port());
    let resp = client.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, http::Version::HTTP_2)
    );
}

fn rustls_pki_types_certs(
    path: &std::path::Path,
) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Writes `pieces` to a new connection 50 ms apart; returns the first bytes of the answer.
async fn first_answer(addr: std::net::SocketAddr, pieces: &[&[u8]]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    for piece in pieces {
        conn.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut answer = vec![0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    answer
}

/// The version is read from the first bytes without taking them (a peek), and from hyper's own
/// detection when they do not decide yet: both must serve both versions.
#[tokio::test]
async fn a_plain_listener_speaks_http1_and_http2_with_prior_knowledge() {
    let cast = Cast::new().await;
    let gw = cast.gateway("  defaultRoute: local-a\n").await;
    let url: http::Uri = format!("{}/v1/models", gw.gw.url()).parse().unwrap();
    let resp = gw.client.get(url.clone()).await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, http::Version::HTTP_11)
    );
    let h2c = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let resp = h2c.get(url).await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, http::Version::HTTP_2)
    );

    let addr = gw.gw.addr;
    // The preface in two pieces, the first not enough to decide: the server's SETTINGS frame
    // (type 4, the fourth byte of its header) answers.
    let settings = b"\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let answer = first_answer(addr, &[b"PRI * HTTP/2.0\r\n", settings]).await;
    assert_eq!(answer[3], 4, "{answer:?}");
    // A request whose first byte is also the preface's.
    let request = b"OST /v1/models HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n";
    let answer = first_answer(addr, &[b"P", request]).await;
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
    // Whole at once.
    let answer = first_answer(addr, &[b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"]).await;
    assert_eq!(&answer, b"HTTP/1.1 ");
}

#[tokio::test]
async fn shutdown_lets_streams_in_flight_finish_and_refuses_new_connections() {
    let cast = Cast::new().await;
    let Gw {
        gw,
        dir: _dir,
        dirs: _dirs,
        client,
    } = cast.gateway("  defaultRoute: local-a\n").await;
    cast.a.update(|b| {
        b.chunks = 10;
        b.chunk_gap = Duration::from_millis(100);
    });
    let url = gw.url();
    let req = http::Request::builder()
        .method(Method::POST)
        .uri(format!("{url}/v1/chat/completions"))
        .body(http_body_util::Full::new(bytes::Bytes::from(chat_body(
            "m", true,
        ))))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some());
    let shutdown = tokio::spawn(gw.shutdown());
    let mut rest = String::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
    {
        rest.push_str(&String::from_utf8_lossy(frame.unwrap().data_ref().unwrap()));
    }
    assert!(
        rest.ends_with("data: [DONE]\n\n"),
        "the stream in flight completed: {rest}"
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .unwrap()
        .unwrap();
    let fresh = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    assert!(
        fresh
            .get(format!("{url}/healthz").parse().unwrap())
            .await
            .is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn shutdown_writes_every_audit_line_before_it_returns() {
    let local = llmkube_mock_upstream::MockUpstream::start("local")
        .await
        .unwrap();
    let gw = gateway(
        "  backends: [{name: local, inferenceServiceRef: {name: local}}]\n  defaultRoute: local\n",
        &[("local", &local)],
    )
    .await;
    for _ in 0..5 {
        assert_eq!(gw.chat("m", &[]).await.status, 200);
    }
    let audit = gw.dir.path().join("audit.log");
    let Gw { gw, dir: _dir, .. } = gw;
    gw.shutdown().await;
    // Read once, right away: the writer batches every 10 ms, so only a flush at shutdown makes
    // the last lines reliably present here.
    let lines = std::fs::read_to_string(&audit).unwrap_or_default();
    assert_eq!(lines.lines().count(), 5, "{lines}");
}
