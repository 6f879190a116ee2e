//! JSON Web Tokens from the site's identity provider: signature against the provider's key
//! set, then issuer, audience, expiry and not-before (with a small leeway), then the principal
//! and team from the configured claims. The algorithm is the key's own: a token cannot pick a
//! weaker one (or `none`) by saying so in its header.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Validation, decode, decode_header};
use llmkube_router::spec::{
    DEFAULT_JWKS_KEY, DEFAULT_JWKS_REFRESH_SECONDS, DEFAULT_JWT_LEEWAY_SECONDS, JwtSpec,
};
use llmkube_router::validate::valid_name;
use serde_json::{Map, Value};

use super::Denied;
use super::jwks::{JwksCache, Source};
use crate::http::client::HttpClient;

/// Longest token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 16 << 10;

/// What a valid token says.
pub struct Claims {
    /// The principal claim.
    pub principal: String,
    /// The team claim: one name, or the names of a list in order.
    pub teams: Vec<String>,
}

/// Checks tokens for one router.
pub struct JwtVerifier {
    keys: Arc<JwksCache>,
    validation_template: Validation,
    principal_claim: String,
    team_claim: String,
}

impl JwtVerifier {
    /// Prepares `spec`; a JWKS Secret is read from `credentials_dir`, a URL with `client`.
    pub fn build(
        spec: &JwtSpec,
        credentials_dir: Option<&std::path::Path>,
        client: &HttpClient,
    ) -> Result<Self, String> {
        let source = match (&spec.jwks.url, &spec.jwks.secret_ref) {
            (Some(url), _) => Source::Url(
                url.parse()
                    .map_err(|e| format!("spec.auth.jwt.jwks.url: {e}"))?,
                Box::new(client.clone()),
            ),
            (None, Some(secret)) => {
                let dir = credentials_dir.ok_or_else(|| {
                    format!(
                        "the JWKS is in Secret {:?}, but the gateway has no --credentials-dir to read it from",
                        secret.name
                    )
                })?;
                let key = secret.key.as_deref().unwrap_or(DEFAULT_JWKS_KEY);
                Source::File(dir.join(&secret.name).join(key))
            }
            (None, None) => return Err("spec.auth.jwt.jwks: set url or secretRef".into()),
        };
        let interval = Duration::from_secs(u64::from(
            spec.refresh_seconds.unwrap_or(DEFAULT_JWKS_REFRESH_SECONDS),
        ));
        let mut validation = Validation::default();
        validation.set_issuer(&[&spec.issuer]);
        validation.set_audience(&spec.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = u64::from(spec.leeway_seconds.unwrap_or(DEFAULT_JWT_LEEWAY_SECONDS));
        validation.validate_nbf = true;
        Ok(JwtVerifier {
            keys: JwksCache::start(source, interval)?,
            validation_template: validation,
            principal_claim: spec.principal_claim().to_owned(),
            team_claim: spec.team_claim().to_owned(),
        })
    }

    /// The claims of a valid `token`, or why it is not (401).
    pub async fn verify(&self, token: &str) -> Result<Claims, Denied> {
        let invalid =
            |why: String| Denied::Unauthenticated(format!("the token is not valid: {why}"));
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        let header = decode_header(token).map_err(|e| invalid(e.to_string()))?;
        let key =
            self.keys.key(header.kid.as_deref()).await.ok_or_else(|| {
                invalid("it is not signed by a key of the identity provider".into())
            })?;
        if header.alg != key.alg {
            return Err(invalid(format!(
                "its algorithm {:?} is not its key's ({:?})",
                header.alg, key.alg
            )));
        }
        let mut validation = self.validation_template.clone();
        validation.algorithms = vec![key.alg];
        let data = decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| invalid(e.to_string()))?;
        let claims = data.claims;
        let principal = match claims.get(&self.principal_claim) {
            Some(Value::String(p)) if valid_name(p) => p.clone(),
            _ => {
                return Err(invalid(format!(
                    "its {:?} claim is missing or not a plain name",
                    self.principal_claim
                )));
            }
        };
        let teams = match claims.get(&self.team_claim) {
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .take(64)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Claims {
            principal,
            teams: teams.into_iter().filter(|t| valid_name(t)).collect(),
        })
    }
}
