//! Who may use a router and what each team may use (`spec.auth`, additive). Without it the
//! gateway serves anyone who can reach it, as the original did.

use serde::{Deserialize, Serialize};

use super::Tier;

/// Most teams a router declares.
pub const MAX_TEAMS: usize = 256;
/// Longest team or principal name, in bytes.
pub const MAX_NAME_LEN: usize = 253;
/// Most globs in one team's `models` or `backends`.
pub const MAX_TEAM_GLOBS: usize = 64;
/// Default key of the API-key file in its Secret.
pub const DEFAULT_KEYS_KEY: &str = "keys.yaml";
/// Header naming the team a request is for (the original's budget `headerKey` default).
pub const TEAM_HEADER: &str = "x-llmkube-team";

/// Authentication and per-team access.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSpec {
    /// API keys, accepted as `Authorization: Bearer <key>` or `x-api-key: <key>`. The Secret
    /// holds only their SHA-256 digests, each with its principal and team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysSpec>,
    /// JSON Web Tokens from the site's identity provider (OIDC), accepted as
    /// `Authorization: Bearer <jwt>`. At least one of `apiKeys` and `jwt` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSpec>,
    /// Client certificates on the gateway's TLS listener, verified against its
    /// `--tls-client-ca` bundle: a connection that presents one is authenticated by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificates: Option<ClientCertificatesSpec>,
    /// What each team may use. When any team is listed, a principal whose team is not listed
    /// may use nothing (403); when none is, every authenticated principal may use everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_TEAMS)))]
    pub teams: Vec<TeamSpec>,
    /// Principals allowed to name the team they act for with `x-llmkube-team` (a shared
    /// service account, say). Everyone else's team is the one their key maps to, whatever the
    /// header says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_TEAMS)))]
    pub act_for_teams: Vec<String>,
}

/// Where the API-key digests are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeysSpec {
    /// The Secret, in the router's namespace (a directory of that name under the gateway's
    /// `--credentials-dir` in standalone mode).
    pub secret_ref: SecretKeyRef,
}

/// A key of a Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = 253)))]
    pub name: String,
    /// Key in the Secret (default `keys.yaml`): a YAML list of `{principal, team, sha256}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretKeyRef {
    /// The key, defaulted.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(DEFAULT_KEYS_KEY)
    }
}

/// Default key of the JWKS file in its Secret.
pub const DEFAULT_JWKS_KEY: &str = "jwks.json";
/// Default seconds between two reads of the JWKS.
pub const DEFAULT_JWKS_REFRESH_SECONDS: u32 = 300;
/// Default clock skew allowed on `exp` and `nbf`, in seconds.
pub const DEFAULT_JWT_LEEWAY_SECONDS: u32 = 30;

/// How JSON Web Tokens are checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtSpec {
    /// The `iss` every token must carry.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = 1024)))]
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = 16)))]
    pub audiences: Vec<String>,
    /// Where the signing keys are published.
    pub jwks: JwksSource,
    /// Seconds between two reads of the JWKS (default 300). A token signed by a key not in
    /// the set also triggers a read, at most once every 5 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(min = 10, max = 86400)))]
    pub refresh_seconds: Option<u32>,
    /// Claim naming the principal (default `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_claim: Option<String>,
    /// Claim naming the team (default `team`): a string, or a list of which the first team
    /// `teams` lists is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_claim: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(max = 300)))]
    pub leeway_seconds: Option<u32>,
}

/// The JSON Web Key Set: exactly one of a URL (served inside the cluster; the gateway's
/// `--extra-ca-file` is trusted for `https`) and a Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwksSource {
    /// e.g. `https://keycloak.auth.svc/realms/ai/protocol/openid-connect/certs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(length(max = 2048)))]
    pub url: Option<String>,
    /// A Secret holding the set (key default `jwks.json`); a directory of that name under
    /// `--credentials-dir` in standalone mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
}

impl JwtSpec {
    /// The principal claim, defaulted.
    pub fn principal_claim(&self) -> &str {
        self.principal_claim.as_deref().unwrap_or("sub")
    }

    /// The team claim, defaulted.
    pub fn team_claim(&self) -> &str {
        self.team_claim.as_deref().unwrap_or("team")
    }
}

/// How a client certificate names its principal and team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificatesSpec {
    /// `subjectAltName` (default: the first URI, e.g. a SPIFFE id, else e-mail, else DNS
    /// name, falling back to the common name) or `commonName` (falling back to the first SAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_from: Option<CertPrincipal>,
    /// `organizationalUnit` (default: the subject's first OU that `teams` lists, else its
    /// first OU) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_from: Option<CertTeam>,
}

/// Where a certificate's principal is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum CertPrincipal {
    /// The subject alternative names.
    #[default]
    SubjectAltName,
    /// The subject's common name.
    CommonName,
}

/// Where a certificate's team is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum CertTeam {
    /// The subject's organizational units.
    #[default]
    OrganizationalUnit,
    /// Nowhere: certificate principals have no team.
    None,
}

/// What one team may use. An empty list allows everything of its kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamSpec {
    /// Team name, as the API-key file and `x-llmkube-team` spell it.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = MAX_NAME_LEN)))]
    pub name: String,
    /// Request `model` globs (`*`, `?`) the team may ask for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_TEAM_GLOBS)))]
    pub models: Vec<String>,
    /// Backend name globs the team's requests may be sent to; other backends are taken out of
    /// its routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_TEAM_GLOBS)))]
    pub backends: Vec<String>,
    /// Tiers the team's requests may be sent to (`[local]`: never the cloud).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
}
