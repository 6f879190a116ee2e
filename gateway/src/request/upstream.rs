//! The requests sent to backends.
//!
//! Outbound headers are filtered: hop-by-hop headers, `Host`, the client's own credentials
//! are never forwarded. Toward a cloud-tier backend the client's headers pass through an
//! allowlist (content negotiation and the provider's documented headers) and the query string
//! is dropped: nothing that describes the client, the site or the billing account leaves.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use http_body_util::Full;
use llmkube_router::spec::{Provider, Tier};

use crate::dialect::{Api, Conversion, Untranslatable, Wire};
use crate::request::json_body::{JsonBody, insert_first};
use crate::router::backend::BackendTarget;

/// The request as sent to backends.
pub struct Outbound<'a> {
    /// The endpoint the client called (translated for backends that speak another API).
    pub api: Api,
    pub method: &'a Method,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path_and_query: &'a str,
    /// Client headers (filtered per backend).
    pub headers: &'a HeaderMap,
    /// `x-request-id`, forwarded to every backend.
    pub request_id: &'a http::HeaderValue,
    /// Sent as the client sent it (its bytes are never re-serialised).
    pub body: &'a JsonBody,
    /// Headers policies set (filtered per backend like client headers).
    pub set_headers: &'a [(http::HeaderName, http::HeaderValue)],
    /// Headers policies removed.
    pub remove_headers: &'a [http::HeaderName],
    /// Add `stream_options.include_usage` (a stream whose client did not set
    /// `stream_options`) toward backends that speak OpenAI's API.
    pub add_stream_usage: bool,
    /// The request's trace, when the gateway exports traces: each attempt carries its
    /// `traceparent` to backends that take one.
    pub trace: Option<&'a crate::telemetry::RequestTrace>,
}

/// Whether a streamed answer from `target` to a request with `add_stream_usage` carries a
/// usage chunk the client did not ask for (only an untranslated OpenAI-style request: a
/// translated one asks for usage itself and its translation takes the chunk in).
pub fn adds_stream_usage(
    conversion: Conversion,
    target: &BackendTarget,
    add_stream_usage: bool,
) -> bool {
    conversion == Conversion::Native
        && add_stream_usage
        && target.provider != Some(Provider::Anthropic)
}

/// Why a request for one backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The backend speaks another API and the request has no translation.
    #[error(transparent)]
    Untranslatable(#[from] Untranslatable),
    /// The backend's URL and the path make no valid request.
    #[error("cannot build the request: {0}")]
    Http(#[from] http::Error),
}

/// Client headers a cloud-tier backend may receive, whatever its provider.
const CLOUD_ALLOWED: [&str; 2] = ["content-type", "accept"];

/// Client headers a cloud-tier backend of `provider` may receive besides [`CLOUD_ALLOWED`]:
/// the provider's documented request headers that select API behaviour.
fn provider_headers(provider: Option<Provider>) -> &'static [&'static str] {
    match provider {
        Some(Provider::Openai) => &["openai-beta"],
        Some(Provider::Anthropic) => &["anthropic-beta", "anthropic-version"],
        _ => &[],
    }
}

/// Whether a client header selects behaviour of the API the client speaks (`anthropic-beta`,
/// `anthropic-version`, `openai-beta`): meaningless, even misleading, on a request translated
/// into another API, so it is not forwarded with one.
fn selects_api_behaviour(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("anthropic-") || n == "openai-beta"
}

/// Headers a policy may not send to a cloud-tier backend besides `x-llmkube-*` and the
/// classification header: what describes the client or the site.
const INTERNAL_ONLY: [&str; 5] = [
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-host",
];

/// Whether a header is never forwarded to any backend: one the gateway owns, or one the
/// client's `Connection` header names.
fn never_forwarded(name: &HeaderName, inbound: &HeaderMap) -> bool {
    let n = name.as_str();
    crate::http::headers::gateway_owned(name)
        || inbound
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(n))
}

/// Whether the client's header `name` may be forwarded to `target`.
pub fn forwardable(name: &HeaderName, inbound: &HeaderMap, target: &BackendTarget) -> bool {
    if never_forwarded(name, inbound) {
        return false;
    }
    let n = name.as_str();
    // Answers are read for their usage, so they must come uncompressed.
    if *name == header::ACCEPT_ENCODING {
        return false;
    }
    target.tier == Tier::Local
        || CLOUD_ALLOWED.contains(&n)
        || provider_headers(target.provider).contains(&n)
}

/// Whether a header a policy set may be forwarded to `target`. Policies are the site's own
/// code, so they may add headers toward the cloud, but never internal ones.
fn policy_forwardable(
    name: &HeaderName,
    inbound: &HeaderMap,
    target: &BackendTarget,
    classification_header: &str,
) -> bool {
    let n = name.as_str();
    !never_forwarded(name, inbound)
        && (target.tier == Tier::Local
            || !(n.starts_with("x-llmkube-")
                || n == classification_header
                || INTERNAL_ONLY.contains(&n)))
}

/// Builds the request for one attempt on `target`.
pub fn build_request(
    target: &BackendTarget,
    out: &Outbound<'_>,
    classification_header: &str,
) -> Result<Request<Full<Bytes>>, BuildError> {
    let conversion = Conversion::new(out.api, Wire::of(target.provider));
    let mut body = match (conversion, &target.model_override) {
        // An external backend with `model` gets it spliced into the body.
        (Conversion::Native, Some(model)) => out.body.with_model(model),
        (Conversion::Native, None) => out.body.bytes.clone(),
        (conversion, model) => {
            let model = model
                .as_ref()
                .and_then(|m| serde_json::from_slice::<String>(m).ok());
            conversion.translate_request(&out.body.bytes, model.as_deref())?
        }
    };
    if adds_stream_usage(conversion, target, out.add_stream_usage) {
        body = insert_first(&body, b"\"stream_options\":", br#"{"include_usage":true}"#);
    }
    let inbound = out.headers;
    // The query string is the client's: a cloud backend, and a translated request (whose
    // query belonged to another API), get the path alone.
    let path_and_query = match (conversion.upstream_path(), target.tier) {
        (Some(path), _) => path,
        (None, Tier::Local) => out.path_and_query,
        (None, Tier::Cloud) => out
            .path_and_query
            .split_once('?')
            .map_or(out.path_and_query, |(path, _)| path),
    };
    let mut req = Request::builder()
        .method(out.method.clone())
        .uri(target.uri(path_and_query)?)
        .body(Full::new(body.clone()))?;
    let headers = req.headers_mut();
    headers.reserve(inbound.len() + target.credentials.len() + 1);
    let translated = conversion != Conversion::Native;
    for (name, value) in inbound {
        if forwardable(name, inbound, target) && !(translated && selects_api_behaviour(name)) {
            headers.append(name.clone(), value.clone());
        }
    }
    for name in out.remove_headers {
        headers.remove(name);
    }
    for (name, value) in out.set_headers {
        if policy_forwardable(name, inbound, target, classification_header) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        HeaderName::from_static("x-request-id"),
        out.request_id.clone(),
    );
    for (name, value) in &target.credentials {
        // A Messages client's own API version goes through with its untranslated request.
        if conversion == Conversion::Native
            && name == "anthropic-version"
            && headers.contains_key(name)
        {
            continue;
        }
        headers.insert(name.clone(), value.clone());
    }
    Ok(req)
}

/// Response headers not passed back to the client.
pub fn strip_response_headers(headers: &mut HeaderMap) {
    let connection_tokens: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::try_from(t.trim()).ok())
        .collect();
    for name in crate::http::headers::HOP_BY_HOP
        .iter()
        .chain([&header::TRANSFER_ENCODING])
    {
        headers.remove(name);
    }
    for name in connection_tokens {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(tier: Tier, provider: Option<Provider>) -> BackendTarget {
        BackendTarget {
            name: std::sync::Arc::new("b".into()),
            tier,
            provider,
            scheme: http::uri::Scheme::HTTP,
            authority: http::uri::Authority::from_static("127.0.0.1:1"),
            base_path: String::new(),
            model_override: None,
            credentials: Vec::new(),
            credential_problem: None,
            timeout: None,
            prices: Default::default(),
            health_check: None,
            health: Default::default(),
            trace_context: tier == Tier::Local,
        }
    }

    #[test]
    fn header_hygiene_by_tier() {
        let mut inbound = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer client"),
            ("x-llmkube-classification", "internal"),
            ("x-team", "a"),
            ("connection", "x-secret-hop"),
            ("x-secret-hop", "1"),
            ("cookie", "s=1"),
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
            ("openai-organization", "org-other"),
            ("openai-beta", "assistants=v2"),
            ("anthropic-beta", "x"),
            ("anthropic-version", "2023-06-01"),
            ("expect", "100-continue"),
        ] {
            inbound.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let allowed = |tier, provider| {
            let t = target(tier, provider);
            let mut v: Vec<&str> = inbound
                .keys()
                .filter(|n| forwardable(n, &inbound, &t))
                .map(|n| n.as_str())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            allowed(Tier::Cloud, Some(Provider::Openai)),
            ["accept", "content-type", "openai-beta"]
        );
        assert_eq!(
            allowed(Tier::Cloud, Some(Provider::Litellm)),
            ["accept", "content-type"]
        );
        assert_eq!(
            allowed(Tier::Local, None),
            [
                "accept",
                "anthropic-beta",
                "anthropic-version",
                "content-type",
                "cookie",
                "openai-beta",
                "openai-organization",
                "x-llmkube-classification",
                "x-team"
            ]
        );
    }
}
