//! Who sends a request, and what their team may use (`spec.auth`).
//!
//! With `spec.auth` a request must carry one of the router's API keys, as
//! `Authorization: Bearer <key>` (every OpenAI SDK) or `x-api-key: <key>` (Anthropic SDKs), or
//! a JSON Web Token of the site's identity provider as `Authorization: Bearer <jwt>`; without
//! one it gets 401 before its body is read, and nothing of it reaches a policy or a backend.
//! The key or token names a principal and a team; only principals listed in
//! `actForTeams` may name another team with `x-llmkube-team`. When teams are listed, a team's
//! requests may ask only for its models and go only to its backends and tiers: others are taken
//! out of its routes, and a request left with none gets 403.
//!
//! Without `spec.auth` (the original's behaviour) there is no principal, and the team is what
//! `x-llmkube-team` says: good for accounting, not for access control.

mod jwks;
mod jwt;
mod keys;
mod teams;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use http::{HeaderMap, header};
use llmkube_router::spec::{
    AuthSpec, CertPrincipal, CertTeam, ClientCertificatesSpec, TEAM_HEADER,
};
use llmkube_router::validate::valid_name;

use jwt::JwtVerifier;
pub use keys::KeyTable;

use crate::http::client::HttpClient;
use crate::http::tls::ClientCert;
pub use teams::TeamAccess;

/// Who sent a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The key's principal; `None` when the router does not authenticate.
    pub principal: Option<Arc<str>>,
    /// The team the request is for.
    pub team: Option<Arc<str>>,
}

/// Why a request is not served: 401 or 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No valid credentials (401).
    Unauthenticated(String),
    /// Authenticated, but not allowed (403).
    Forbidden(String),
}

/// A router's access control, prepared with its snapshot.
pub struct Access {
    keys: Option<KeyTable>,
    jwt: Option<JwtVerifier>,
    /// How client certificates name principals, when they authenticate.
    certs: Option<ClientCertificatesSpec>,
    /// Empty when no team is listed: every principal may use everything.
    teams: HashMap<Arc<str>, TeamAccess>,
    act_for: HashSet<String>,
}

impl Access {
    /// Prepares `spec` (validated), reading the key file (and a JWKS Secret) from
    /// `credentials_dir`; a JWKS URL is fetched with `client`. `verified_certs`: the TLS
    /// listener verifies client certificates (without it `clientCertificates` is refused
    /// rather than never matching).
    pub fn build(
        spec: &AuthSpec,
        credentials_dir: Option<&Path>,
        client: &HttpClient,
        verified_certs: bool,
    ) -> Result<Self, String> {
        if spec.client_certificates.is_some() && !verified_certs {
            return Err(
                "spec.auth.clientCertificates needs the gateway's TLS listener to verify client certificates: start it with --tls-cert, --tls-key and --tls-client-ca".into(),
            );
        }
        let keys = match &spec.api_keys {
            None => None,
            Some(keys) => {
                let secret = &keys.secret_ref;
                let Some(dir) = credentials_dir else {
                    return Err(format!(
                        "the API keys are in Secret {:?}, but the gateway has no --credentials-dir to read it from",
                        secret.name
                    ));
                };
                Some(KeyTable::read(&dir.join(&secret.name).join(secret.key()))?)
            }
        };
        let jwt = spec
            .jwt
            .as_ref()
            .map(|j| JwtVerifier::build(j, credentials_dir, client))
            .transpose()?;
        if keys.is_none() && jwt.is_none() && spec.client_certificates.is_none() {
            return Err("spec.auth needs apiKeys, jwt or clientCertificates".into());
        }
        Ok(Access {
            keys,
            jwt,
            certs: spec.client_certificates.clone(),
            teams: spec
                .teams
                .iter()
                .map(|t| (Arc::from(t.name.as_str()), TeamAccess::new(t)))
                .collect(),
            act_for: spec.act_for_teams.iter().cloned().collect(),
        })
    }

    /// What requests must carry, for the start-up log.
    pub fn describe(&self) -> String {
        let mut ways = Vec::new();
        if self.certs.is_some() {
            ways.push("a client certificate".to_owned());
        }
        if let Some(k) = &self.keys {
            ways.push(format!("one of {} API keys", k.len()));
        }
        if self.jwt.is_some() {
            ways.push("a JSON Web Token".to_owned());
        }
        ways.join(" or ")
    }

    /// Who sent a request with these headers over a connection that presented `cert` (401
    /// when no valid certificate, key or token says so); whether their team may use the
    /// router is [`Access::team_access`]. A certificate, when it authenticates, comes first.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        cert: Option<&ClientCert>,
    ) -> Result<Identity, Denied> {
        let bearer = bearer(headers);
        let by_cert = self.certs.as_ref().zip(cert);
        let (principal, mut team) = match (by_cert, &self.jwt, bearer.filter(|b| looks_like_jwt(b)))
        {
            (Some((spec, cert)), _, _) => self.cert_identity(spec, cert)?,
            (None, Some(jwt), Some(token)) => {
                let token = std::str::from_utf8(token).map_err(|_| {
                    Denied::Unauthenticated("the token is not valid: not UTF-8".into())
                })?;
                let claims = jwt.verify(token).await?;
                // Of a list of groups, the first team the router serves.
                let team = claims
                    .teams
                    .iter()
                    .find(|t| self.teams.contains_key(t.as_str()))
                    .or(claims.teams.first())
                    .map(|t| Arc::from(t.as_str()));
                (Arc::from(claims.principal.as_str()), team)
            }
            _ => {
                let Some(keys) = &self.keys else {
                    return Err(Denied::Unauthenticated(format!(
                        "this router requires {}",
                        self.describe()
                    )));
                };
                let key = presented_key(headers).ok_or_else(|| {
                    Denied::Unauthenticated(
                        "this router requires an API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`".into(),
                    )
                })?;
                let owner = keys
                    .find(key)
                    .ok_or_else(|| Denied::Unauthenticated("the API key is not valid".into()))?;
                (Arc::clone(&owner.principal), owner.team.clone())
            }
        };
        if let Some(asked) = team_header(headers)
            && self.act_for.contains(&*principal)
        {
            team = Some(Arc::from(asked));
        }
        Ok(Identity {
            principal: Some(principal),
            team,
        })
    }

    /// The principal and team a verified client certificate names.
    fn cert_identity(
        &self,
        spec: &ClientCertificatesSpec,
        cert: &ClientCert,
    ) -> Result<(Arc<str>, Option<Arc<str>>), Denied> {
        let (first, second) = match spec.principal_from.unwrap_or_default() {
            CertPrincipal::SubjectAltName => (&cert.alt_names, &cert.common_names),
            CertPrincipal::CommonName => (&cert.common_names, &cert.alt_names),
        };
        let principal = first
            .iter()
            .chain(second)
            .find(|p| valid_name(p))
            .ok_or_else(|| {
                Denied::Unauthenticated(
                    "the client certificate names no principal (no usable subject alternative name or common name)".into(),
                )
            })?;
        let team = match spec.team_from.unwrap_or_default() {
            CertTeam::None => None,
            CertTeam::OrganizationalUnit => {
                let units = &cert.organizational_units;
                units
                    .iter()
                    .find(|u| self.teams.contains_key(u.as_str()))
                    .or(units.iter().find(|u| valid_name(u)))
                    .map(|u| Arc::from(u.as_str()))
            }
        };
        Ok((Arc::from(principal.as_str()), team))
    }

    /// The access of the identity's team: `None` when teams are not restricted.
    pub fn team_access(&self, identity: &Identity) -> Result<Option<&TeamAccess>, Denied> {
        if self.teams.is_empty() {
            return Ok(None);
        }
        let who = identity.principal.as_deref().unwrap_or("the client");
        match identity.team.as_deref() {
            Some(team) => match self.teams.get(team) {
                Some(access) => Ok(Some(access)),
                None => Err(Denied::Forbidden(format!(
                    "team {team:?} of {who} may not use this router"
                ))),
            },
            None => Err(Denied::Forbidden(format!(
                "{who} belongs to no team, and this router serves only its teams"
            ))),
        }
    }
}

/// The identity of a request to a router without `spec.auth`: no principal, and the team the
/// client names (as the original's budgets read it).
pub fn unauthenticated(headers: &HeaderMap) -> Identity {
    Identity {
        principal: None,
        team: team_header(headers).map(Arc::from),
    }
}

/// The credential of `Authorization: Bearer <credential>`.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at(v.len().min(7));
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|k| !k.is_empty())
}

/// Three base64url segments: a JWS compact serialisation, never an API key.
fn looks_like_jwt(credential: &[u8]) -> bool {
    credential.iter().filter(|&&b| b == b'.').count() == 2
        && credential
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The key of `Authorization: Bearer <key>`, else of `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if headers.contains_key(header::AUTHORIZATION) {
        return bearer(headers);
    }
    headers
        .get("x-api-key")
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty())
}

fn team_header(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(TEAM_HEADER)?.to_str().ok()?.trim();
    valid_name(v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn keys_are_read_from_bearer_or_x_api_key_and_nothing_else() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer k1")])),
            Some(&b"k1"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer  k1 ")])),
            Some(&b"k1"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "k2")])),
            Some(&b"k2"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic azE=")])),
            None
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(presented_key(&headers(&[])), None);
    }
}
