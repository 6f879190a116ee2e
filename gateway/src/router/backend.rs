//! Where and how each backend is dialed: address, credentials, model override.
//!
//! In standalone mode a local (`inferenceServiceRef`) backend is dialed at the address given
//! with `--backend-address NAME=URL`, else at the in-cluster Service the controller creates
//! (`http://<isvc>.<namespace>.svc.cluster.local:8080`). External backends use `external.url`
//! (defaults for `openai` and `anthropic`); `--backend-address` overrides it too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Uri};
use llmkube_router::defaults;
use llmkube_router::duration::parse_duration;
use llmkube_router::money::Usd;
use llmkube_router::spec::{Backend, Provider, Tier};
use llmkube_router::validate::FieldError;

use crate::metrics::Label;
use crate::router::health::BackendHealth;
use crate::usage::Prices;

/// How backends are found and authenticated, outside the manifest.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Backend name -> base URL, overriding the manifest and the in-cluster default.
    pub addresses: HashMap<String, String>,
    /// Directory of mounted Secrets: `<dir>/<secretName>/<KEY>` holds a credential.
    pub credentials_dir: Option<PathBuf>,
    /// URL for `litellm` backends that name none (the controller's `--default-litellm-url`).
    pub default_litellm_url: Option<String>,
}

/// A backend ready to be dialed.
#[derive(Debug)]
pub struct BackendTarget {
    /// Backend name.
    pub name: Label,
    /// Effective tier.
    pub tier: Tier,
    /// `None` for an InferenceService, else the provider.
    pub provider: Option<Provider>,
    /// Scheme of the base URL.
    pub scheme: Scheme,
    /// Host and port of the base URL.
    pub authority: Authority,
    /// Path prefix of the base URL without a trailing `/` or `/v1`.
    pub base_path: String,
    /// `external.model` as a JSON string literal, spliced into the request body.
    pub model_override: Option<Bytes>,
    /// Headers that authenticate the gateway to the provider. Values are marked sensitive.
    pub credentials: Vec<(HeaderName, HeaderValue)>,
    /// Why the backend's own credential could not be read (its Secret is missing); requests
    /// are then sent without one and their audit lines carry this.
    pub credential_problem: Option<String>,
    /// `backends[].timeout`.
    pub timeout: Option<Duration>,
    /// `costPerMillionTokens` (zero when not declared).
    pub prices: Prices,
    /// `backends[].healthCheck`, with defaults.
    pub health_check: Option<ActiveCheck>,
    /// Shared health state (kept across reloads while the name stays).
    pub health: Arc<BackendHealth>,
    /// Whether requests carry the gateway's `traceparent`: always to the local tier, to the
    /// cloud only with `external.propagateTraceContext`.
    pub trace_context: bool,
}

/// The backend's declared prices; validation has refused any that do not parse.
fn prices(b: &Backend) -> Prices {
    let price = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| Usd::parse(s).ok())
            .unwrap_or_default()
    };
    b.cost_per_million_tokens
        .as_ref()
        .map(|c| Prices {
            prompt: price(&c.prompt_usd),
            completion: price(&c.completion_usd),
        })
        .unwrap_or_default()
}

impl BackendTarget {
    /// The upstream URI for an inbound `/v1/...` path and query.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let mut pq = String::with_capacity(self.base_path.len() + path_and_query.len());
        pq.push_str(&self.base_path);
        pq.push_str(path_and_query);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

/// An active health check: GET `path` every `interval`; 2xx within `timeout` passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCheck {
    /// Path below the backend's base URL, e.g. `/health`.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
}

/// Resolves every backend of a validated spec; `health` supplies state to keep by name.
pub fn resolve_backends(
    backends: &[Backend],
    namespace: &str,
    opts: &ResolveOptions,
    mut health: impl FnMut(&str) -> Arc<BackendHealth>,
) -> Result<Vec<BackendTarget>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(backends.len());
    for (i, b) in backends.iter().enumerate() {
        let path = format!("spec.backends[{i}]");
        match resolve_one(b, namespace, opts, &path, &mut health) {
            Ok(t) => out.push(t),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn resolve_one(
    b: &Backend,
    namespace: &str,
    opts: &ResolveOptions,
    path: &str,
    health: &mut impl FnMut(&str) -> Arc<BackendHealth>,
) -> Result<BackendTarget, FieldError> {
    let err = |field: &str, message: String| FieldError {
        path: format!("{path}{field}"),
        message,
    };
    let provider = b.external.as_ref().map(|e| e.provider);
    let url = match opts.addresses.get(&b.name) {
        Some(addr) => addr.clone(),
        None => defaults::backend_url(b, namespace, opts.default_litellm_url.as_deref())
            .map_err(|e| err(e.field, e.message))?,
    };
    let source = if opts.addresses.contains_key(&b.name) {
        format!("--backend-address {}={url}", b.name)
    } else {
        format!("address {url:?}")
    };
    let uri = url.parse::<Uri>().ok().filter(|u| {
        u.scheme()
            .is_some_and(|s| *s == Scheme::HTTP || *s == Scheme::HTTPS)
    });
    let Some((uri, scheme, authority)) = uri.and_then(|u| {
        let (scheme, authority) = (u.scheme().cloned()?, u.authority().cloned()?);
        Some((u, scheme, authority))
    }) else {
        return Err(err(
            "",
            format!("{source} must be an http:// or https:// URL with a host"),
        ));
    };
    let mut base_path = uri.path().trim_end_matches('/').to_owned();
    if base_path.ends_with("/v1") {
        base_path.truncate(base_path.len() - 3);
    }
    let model_override = b
        .external
        .as_ref()
        .and_then(|e| e.model.as_ref())
        .map(|m| Bytes::from(serde_json::to_vec(m).unwrap_or_default()));
    let (credentials, credential_problem) = match &b.external {
        Some(ext) => credentials(
            ext.provider,
            ext.credentials_secret_ref.as_ref().map(|r| r.name.as_str()),
            opts.credentials_dir.as_deref(),
            &b.name,
        ),
        None => (Vec::new(), None),
    };
    Ok(BackendTarget {
        trace_context: b.effective_tier() == Tier::Local
            || b.external
                .as_ref()
                .is_some_and(|e| e.propagate_trace_context),
        name: Arc::new(b.name.clone()),
        tier: b.effective_tier(),
        provider,
        scheme,
        authority,
        base_path,
        model_override,
        credentials,
        credential_problem,
        timeout: b.timeout.as_deref().and_then(|t| parse_duration(t).ok()),
        prices: prices(b),
        health_check: b.health_check.as_ref().map(|c| ActiveCheck {
            path: c
                .path
                .clone()
                .unwrap_or_else(|| defaults::HEALTH_CHECK_PATH.to_owned()),
            interval: Duration::from_secs(u64::from(
                c.interval_seconds
                    .unwrap_or(defaults::HEALTH_CHECK_INTERVAL_SECONDS),
            )),
            timeout: Duration::from_secs(u64::from(
                c.timeout_seconds
                    .unwrap_or(defaults::HEALTH_CHECK_TIMEOUT_SECONDS),
            )),
        }),
        health: health(&b.name),
    })
}

/// The environment variable / Secret key holding a provider's credential.
pub fn credential_key(provider: Provider) -> &'static str {
    match provider {
        Provider::Anthropic => "ANTHROPIC_API_KEY",
        Provider::Litellm => "LITELLM_MASTER_KEY",
        _ => "OPENAI_API_KEY",
    }
}

/// A backend's credential, as headers, and the problem when its Secret cannot be read.
///
/// A credential goes only to the backend it belongs to: a backend that names a
/// `credentialsSecretRef` gets the key from `<dir>/<secret>/<KEY>` and nothing else — when that
/// file is missing it gets no credential at all (a start-up warning, and the audit line of
/// each of its requests says so), never the environment's key. Only a backend that names no
/// Secret falls back to the provider's environment variable (standalone convenience), and
/// that is logged per backend at start. The value is never logged.
fn credentials(
    provider: Provider,
    secret: Option<&str>,
    dir: Option<&Path>,
    backend: &str,
) -> (Vec<(HeaderName, HeaderValue)>, Option<String>) {
    let key_name = credential_key(provider);
    let key = match (secret, dir) {
        (Some(secret), Some(dir)) => {
            let file = dir.join(secret).join(key_name);
            match std::fs::read_to_string(&file) {
                Ok(key) => key,
                Err(e) => {
                    let problem = format!(
                        "backend {backend:?} has no credential: cannot read {} from Secret {secret:?} ({e})",
                        file.display()
                    );
                    tracing::warn!(backend, "{problem}; its requests are sent without one");
                    return (Vec::new(), Some(problem));
                }
            }
        }
        (Some(secret), None) => {
            let problem = format!(
                "backend {backend:?} has no credential: it names Secret {secret:?} but the gateway has no --credentials-dir"
            );
            tracing::warn!(backend, "{problem}; its requests are sent without one");
            return (Vec::new(), Some(problem));
        }
        (None, _) => match std::env::var(key_name) {
            Ok(key) => {
                tracing::info!(
                    backend,
                    key = key_name,
                    "no credentialsSecretRef: using the key from the environment"
                );
                key
            }
            Err(_) => {
                tracing::info!(backend, "no credentialsSecretRef: sending no credential");
                return (Vec::new(), None);
            }
        },
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        let problem = format!("backend {backend:?} has an empty {key_name}");
        tracing::warn!(
            backend,
            "{problem}; its requests are sent without a credential"
        );
        return (Vec::new(), Some(problem));
    }
    let secret_value = |v: String| {
        HeaderValue::try_from(v).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        })
    };
    let mut headers = Vec::new();
    match provider {
        Provider::Anthropic => {
            if let Some(v) = secret_value(key) {
                headers.push((HeaderName::from_static("x-api-key"), v));
            }
            headers.push((
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            ));
        }
        _ => {
            if let Some(v) = secret_value(format!("Bearer {key}")) {
                headers.push((http::header::AUTHORIZATION, v));
            }
        }
    }
    if headers.iter().all(|(n, _)| n == "anthropic-version") {
        let problem = format!("backend {backend:?}: {key_name} is not a valid header value");
        tracing::warn!(
            backend,
            "{problem}; its requests are sent without a credential"
        );
        return (Vec::new(), Some(problem));
    }
    (headers, None)
}
