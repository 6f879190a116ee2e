//! `spec.auth.jwt`: tokens of the site's identity provider, checked against its key set (a
//! file or an in-cluster URL, re-read when a token names a key it does not have); expired,
//! forged, wrong-audience, wrong-issuer and algorithm-swapped tokens get 401 and reach nothing.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use llmkube_mock_upstream::MockUpstream;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// An ES256 signing key of the identity provider.
struct IdpKey {
    kid: &'static str,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl IdpKey {
    fn new(kid: &'static str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65])});
        IdpKey {
            kid,
            pkcs8: pair.serialize_der(),
            jwk,
        }
    }

    /// A token with `claims`, signed by this key and naming `kid`.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }
}

fn jwks(keys: &[&IdpKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(sub: &str, team: Value) -> Value {
    json!({"iss": "https://idp.test/realms/ai", "aud": "llmkube", "sub": sub, "team": team,
           "exp": now() + 300, "iat": now()})
}

fn spec(jwks: &str) -> String {
    format!(
        "  backends:
    - {{name: local-a, inferenceServiceRef: {{name: a}}}}
  defaultRoute: local-a
  auth:
    jwt:
      issuer: https://idp.test/realms/ai
      audiences: [llmkube, other-aud-ok]
      jwks: {jwks}
    teams:
      - {{name: research}}
      - {{name: interns, tiers: [local]}}
"
    )
}

async fn chat_as(gw: &Gw, token: &str) -> Resp {
    gw.chat("m", &[("authorization", &format!("Bearer {token}"))])
        .await
}

#[tokio::test]
async fn tokens_are_checked_against_the_key_set_issuer_audience_and_expiry() {
    let (good, other) = (IdpKey::new("a"), IdpKey::new("b"));
    let creds = tempfile::tempdir().unwrap();
    std::fs::create_dir(creds.path().join("idp")).unwrap();
    std::fs::write(creds.path().join("idp/jwks.json"), jwks(&[&good])).unwrap();
    let mock = MockUpstream::start("local-a").await.unwrap();
    let dir = creds.path().to_path_buf();
    let gw = gateway_with(
        &spec("{secretRef: {name: idp}}"),
        &[("local-a", &mock)],
        move |c| c.resolve.credentials_dir = Some(dir),
    )
    .await;

    let ok = chat_as(&gw, &good.sign(&claims("alice", json!("research")))).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // A list of groups: the first team the router serves.
    let groups = chat_as(
        &gw,
        &good.sign(&claims("ivan", json!(["staff", "interns"]))),
    )
    .await;
    assert_eq!(groups.status, 200, "{}", groups.text());
    let lines = audit_lines(&gw.dir.path().join("audit.log"), 2).await;
    assert_eq!(
        (lines[0]["principal"].as_str(), lines[0]["team"].as_str()),
        (Some("alice"), Some("research"))
    );
    assert_eq!(
        (lines[1]["principal"].as_str(), lines[1]["team"].as_str()),
        (Some("ivan"), Some("interns"))
    );

    let mut expired = claims("alice", json!("research"));
    expired["exp"] = json!(now() - 120);
    let mut wrong_aud = claims("alice", json!("research"));
    wrong_aud["aud"] = json!("billing");
    let mut wrong_iss = claims("alice", json!("research"));
    wrong_iss["iss"] = json!("https://evil.test");
    let mut no_sub = claims("alice", json!("research"));
    no_sub.as_object_mut().unwrap().remove("sub");
    let body = URL_SAFE_NO_PAD.encode(claims("alice", json!("research")).to_string());
    let none_alg = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"a"}"#)
    );
    // The public key's bytes used as an HMAC secret: the classic algorithm confusion.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("a".into());
    let confused = encode(
        &hs,
        &claims("alice", json!("research")),
        &EncodingKey::from_secret(good.jwk["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    for (what, token) in [
        ("expired", good.sign(&expired)),
        ("wrong audience", good.sign(&wrong_aud)),
        ("wrong issuer", good.sign(&wrong_iss)),
        ("no principal", good.sign(&no_sub)),
        (
            "forged: another key, the good kid",
            other.sign_as("a", &claims("alice", json!("research"))),
        ),
        (
            "unknown key",
            other.sign(&claims("alice", json!("research"))),
        ),
        ("alg none", none_alg),
        ("HS256 with the public key", confused),
        ("garbage", "a.b.c".into()),
    ] {
        let r = chat_as(&gw, &token).await;
        assert_error(&r, 401, "invalid_request_error");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("token"),
            "{what}: {}",
            r.text()
        );
    }
    let r = gw.chat("m", &[("x-api-key", "whatever")]).await;
    assert_eq!(r.status, 401, "no API keys are configured");
    assert_eq!(
        mock.request_count(),
        2,
        "only the valid tokens reached the backend"
    );
}

/// Serves a JWKS document that the test can change, counting fetches.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<String>>,
    fetches: Arc<Mutex<usize>>,
}

impl JwksServer {
    async fn start(doc: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        let doc = Arc::new(Mutex::new(doc));
        let fetches = Arc::new(Mutex::new(0));
        let (d, f) = (Arc::clone(&doc), Arc::clone(&fetches));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                *f.lock().unwrap() += 1;
                let body = d.lock().unwrap().clone();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        JwksServer { url, doc, fetches }
    }

    fn fetches(&self) -> usize {
        *self.fetches.lock().unwrap()
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let (old, new, rogue) = (
        IdpKey::new("2026-a"),
        IdpKey::new("2026-b"),
        IdpKey::new("x"),
    );
    let server = JwksServer::start(jwks(&[&old])).await;
    let mock = MockUpstream::start("local-a").await.unwrap();
    let gw = gateway(
        &spec(&format!("{{url: '{}'}}", server.url)),
        &[("local-a", &mock)],
    )
    .await;

    let r = chat_as(&gw, &old.sign(&claims("alice", json!("research")))).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The provider rotates: the new key is published, tokens are signed with it.
    *server.doc.lock().unwrap() = jwks(&[&old, &new]);
    let before = server.fetches();
    let r = chat_as(&gw, &new.sign(&claims("alice", json!("research")))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        server.fetches(),
        before + 1,
        "read again for the unknown key"
    );

    // A made-up key costs one read; right after a read that did not find it, none.
    for _ in 0..3 {
        let r = chat_as(&gw, &rogue.sign(&claims("alice", json!("research")))).await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        server.fetches(),
        before + 2,
        "forced reads pause after a useless one"
    );
}
