//! The identity provider's signing keys (a JSON Web Key Set), read from a file or fetched from
//! a URL inside the cluster, kept fresh on an interval and on demand when a token names a key
//! the set does not have (the provider rotated). Reads never block a request for long: a
//! forced read that finds nothing pauses forced reads for [`FORCED_READ_GAP`], and a fetch is
//! bounded in time and size. Only asymmetric signing keys are kept: a symmetric (`oct`) key in a published
//! set would let anyone who reads the set mint tokens.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::http::client::HttpClient;

/// Least time between two reads forced by unknown keys.
const FORCED_READ_GAP: Duration = Duration::from_secs(5);
/// Longest wait for the key set's URL.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set read, in bytes.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Most keys kept from one set.
const MAX_KEYS: usize = 100;

/// One verification key.
pub struct Key {
    /// The key.
    pub decoding: DecodingKey,
    /// The one algorithm it verifies (a token's header must name it).
    pub alg: Algorithm,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    /// The set's only key, for tokens that name none.
    only: Option<Arc<Key>>,
}

/// Where the set is read from.
pub enum Source {
    /// A file (a mounted Secret).
    File(PathBuf),
    /// An `http`/`https` URL, fetched with the gateway's client (and its trusted CAs).
    Url(Uri, Box<HttpClient>),
}

/// The current key set.
pub struct JwksCache {
    source: Source,
    keys: ArcSwap<KeySet>,
    /// When the last read forced by an unknown key ended without finding it; held during
    /// a forced read, so requests naming unknown keys wait for one read instead of each
    /// starting their own.
    last_forced: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    /// A cache over `source`, re-read every `interval`. A file is read now (a bad one is an
    /// error); a URL is fetched in the background, starting now.
    pub fn start(source: Source, interval: Duration) -> Result<Arc<JwksCache>, String> {
        let initial = match &source {
            Source::File(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("cannot read the JWKS {}: {e}", path.display()))?;
                parse(&bytes).map_err(|e| format!("the JWKS {}: {e}", path.display()))?
            }
            Source::Url(..) => KeySet::default(),
        };
        let cache = Arc::new(JwksCache {
            source,
            keys: ArcSwap::from_pointee(initial),
            last_forced: tokio::sync::Mutex::new(None),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(refresh_loop(Arc::downgrade(&cache), interval));
        }
        Ok(cache)
    }

    /// The key named `kid` (or the only key, for a token that names none), reading the set
    /// again first when it does not have it and was not read moments ago.
    pub async fn key(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        if let Some(key) = self.lookup(kid) {
            return Some(key);
        }
        {
            let mut last = self.last_forced.lock().await;
            // Another request may have read the set while this one waited.
            if let Some(key) = self.lookup(kid) {
                return Some(key);
            }
            if last.is_none_or(|t| t.elapsed() >= FORCED_READ_GAP) {
                self.read().await;
                let found = self.lookup(kid);
                // Only a read that did not help starts the pause: a rotation is picked up at
                // once, a stream of made-up key ids costs one read per pause.
                *last = found.is_none().then(Instant::now);
                return found;
            }
        }
        None
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        let set = self.keys.load();
        match kid {
            Some(kid) => set.by_kid.get(kid).cloned(),
            None => set.only.clone(),
        }
    }

    /// Reads the set; a failure keeps the keys already known.
    async fn read(&self) {
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Source::Url(uri, client) => fetch(uri, client).await,
        };
        match bytes.and_then(|b| parse(&b)) {
            Ok(set) => {
                tracing::debug!(keys = set.by_kid.len(), "JWKS read");
                self.keys.store(Arc::new(set));
            }
            Err(e) => tracing::warn!("the JWKS could not be read ({e}); keeping the keys known"),
        }
    }
}

/// Reads the set every `interval` while the cache lives; a URL at once (a file was read by
/// `start`).
async fn refresh_loop(cache: Weak<JwksCache>, interval: Duration) {
    let url = cache
        .upgrade()
        .is_some_and(|c| matches!(c.source, Source::Url(..)));
    if !url {
        tokio::time::sleep(interval).await;
    }
    while let Some(cache) = cache.upgrade() {
        cache.read().await;
        drop(cache);
        tokio::time::sleep(interval).await;
    }
}

async fn fetch(uri: &Uri, client: &HttpClient) -> Result<Bytes, String> {
    let req = http::Request::get(uri.clone())
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let work = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{uri} answered {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES);
        body.collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| format!("{uri}: {e}"))
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| format!("{uri} did not answer within {FETCH_TIMEOUT:?}"))?
}

/// The signing keys of a JWKS document.
fn parse(bytes: &[u8]) -> Result<KeySet, String> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let mut out = KeySet::default();
    let mut kept = Vec::new();
    for jwk in set.keys.iter().take(MAX_KEYS) {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(alg) = algorithm(jwk) else { continue };
        let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let key = Arc::new(Key { decoding, alg });
        if let Some(kid) = &jwk.common.key_id {
            out.by_kid.insert(kid.clone(), Arc::clone(&key));
        }
        kept.push(key);
    }
    if kept.is_empty() {
        return Err("it holds no usable signing key (RSA, EC P-256/P-384 or Ed25519)".into());
    }
    if kept.len() == 1 {
        out.only = kept.pop();
    }
    Ok(out)
}

/// The algorithm a key verifies: the one it declares, else the usual one for its type.
/// Symmetric keys and algorithms are refused.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let declared = jwk
        .common
        .key_algorithm
        .and_then(|a| a.to_string().parse::<Algorithm>().ok());
    let usual = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let alg = declared.unwrap_or(usual);
    (!matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)).then_some(alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_signing_keys_are_kept() {
        let ec = r#"{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let oct = r#"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#;
        let enc = r#"{"kty":"EC","crv":"P-256","kid":"e","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let set = parse(format!(r#"{{"keys":[{ec},{oct},{enc}]}}"#).as_bytes()).unwrap();
        assert_eq!(set.by_kid.len(), 1);
        assert_eq!(set.by_kid["a"].alg, Algorithm::ES256);
        assert!(set.only.is_some());
        assert!(parse(format!(r#"{{"keys":[{oct}]}}"#).as_bytes()).is_err());
        assert!(parse(b"{}").is_err());
    }
}
