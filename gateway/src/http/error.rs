//! Errors answered to clients, in the OpenAI shape `{"error":{"message","type","param","code"}}`.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::auth::Denied;
use crate::http::body::GatewayBody;
pub use crate::http::error_shape::{ErrorShape, error_json};

/// Longest piece of client input (a `model`) echoed into an error message or an audit line,
/// in bytes: a client must not be able to inflate what the gateway writes.
pub const MAX_ECHO: usize = 256;

/// `s` cut to at most [`MAX_ECHO`] bytes at a character boundary, with `…` when it was cut.
pub fn echo(s: &str) -> std::borrow::Cow<'_, str> {
    echo_within(s, MAX_ECHO)
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when it was cut.
pub fn echo_within(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// A request the gateway answers itself with an error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI error `type`.
    pub kind: &'static str,
    /// OpenAI error `code` (a stable machine-readable string; a policy's own for its rejections).
    pub code: Cow<'static, str>,
    /// Human-readable message.
    pub message: String,
    /// The request field at fault, if any.
    pub param: Option<&'static str>,
    /// `Retry-After` seconds, for refusals that will pass later.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code: Cow::Borrowed(code),
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// 400: the body is not what the endpoint takes.
    pub fn bad_request(message: impl Into<String>, param: Option<&'static str>) -> Self {
        ApiError {
            param,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                message,
            )
        }
    }

    /// 404: unknown path.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            format!("unknown endpoint {path}"),
        )
    }

    /// 405: known path, wrong method.
    pub fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    }

    /// 408: the client did not finish sending its body in time.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            "the request body was not received in time",
        )
    }

    /// 413: body larger than `proxy.maxRequestBodyBytes`.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 503: nothing routes this request.
    pub fn no_route(model: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_route",
            "no_route",
            format!(
                "no rule, backend or default route matches this request (model {:?})",
                echo(model)
            ),
        )
    }

    /// 503: a fail-closed rule (or a sensitive request) cannot be served.
    pub fn fail_closed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "fail_closed",
            "fail_closed",
            message,
        )
    }

    /// 502: every backend attempt failed.
    pub fn all_backends_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "all_backends_failed",
            message,
        )
    }

    /// 504: the final attempt timed out waiting for response headers.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "upstream_timeout",
            message,
        )
    }

    /// A policy refused the request with its own status (400..=599) and code (`with_code`;
    /// `policy_rejected` when it set none, or one that is not a plain token of 1..64 bytes).
    pub fn policy_rejected(status: u16, code: &str, message: &str, policy: &str) -> Self {
        let plain = (1..=64).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            kind: "policy_rejected",
            code: if plain {
                Cow::Owned(code.to_owned())
            } else {
                Cow::Borrowed("policy_rejected")
            },
            message: format!("policy {policy:?} rejected the request: {message}"),
            param: None,
            retry_after: None,
        }
    }

    /// 503: a policy failed and fails closed.
    pub fn policy_error(policy: &str, error: &crate::policy::PolicyError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "policy_error",
            "policy_error",
            format!("policy {policy:?} {error}; the request is denied"),
        )
    }

    /// 503: request bodies already fill the gateway's memory budget.
    pub fn body_budget_full(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "body_memory_exhausted",
                "the gateway is holding as many request bodies as its memory budget allows; retry later",
            )
        }
    }

    /// 401: no valid API key (the SDKs raise `AuthenticationError`). Sent with
    /// `WWW-Authenticate: Bearer`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message,
        )
    }

    /// 403: the principal's team may not use what the request asks for (the SDKs raise
    /// `PermissionDeniedError`).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "forbidden",
            message,
        )
    }

    /// 401 or 403, as access control decided.
    pub fn denied(denied: Denied) -> Self {
        match denied {
            Denied::Unauthenticated(m) => Self::unauthenticated(m),
            Denied::Forbidden(m) => Self::forbidden(m),
        }
    }

    /// 429: a budget is spent until its window ends (the SDKs raise `RateLimitError`).
    pub fn budget_exceeded(budget: &str, retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "budget_exceeded",
                format!(
                    "budget {budget:?} is spent for its current window; it renews in {retry_after_secs}s"
                ),
            )
        }
    }

    /// 503: a budget's shared store did not answer and the budget fails closed.
    pub fn budget_unavailable(budget: &str, error: &str) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "budget_store_unavailable",
                format!(
                    "budget {budget:?} cannot be checked ({error}) and fails closed; retry later"
                ),
            )
        }
    }

    /// 503: the gateway is shutting down or has no router loaded.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "unavailable",
            message,
        )
    }

    /// The JSON body, in `shape`.
    pub fn body(&self, shape: ErrorShape) -> Bytes {
        Bytes::from(match shape {
            ErrorShape::OpenAi => error_json(&self.message, self.kind, self.param, &self.code),
            ErrorShape::Anthropic => {
                crate::http::error_shape::anthropic_error_json(self.status, &self.message)
            }
        })
    }

    /// The full HTTP response, with OpenAI's error object.
    pub fn into_response(self) -> Response<GatewayBody> {
        self.into_response_as(ErrorShape::OpenAi)
    }

    /// The full HTTP response, with the error object of `shape`.
    pub fn into_response_as(self, shape: ErrorShape) -> Response<GatewayBody> {
        let mut resp = Response::new(GatewayBody::full(self.body(shape)));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
