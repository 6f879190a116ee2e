//! The HTTP surface: which path does what.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::dialect::Api;
use crate::http::body::GatewayBody;
use crate::http::error::ApiError;
use crate::http::tls::ClientCert;
use crate::request::proxy::proxy;
use crate::state::AppState;

const OTHER: [&str; 6] = [
    "/v1/models",
    "/healthz",
    "/health",
    "/readyz",
    "/metrics",
    "/",
];

/// Handles one request.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let path = req.uri().path();
    let mut resp = match (req.method(), path) {
        (&Method::POST, p) if let Some(api) = Api::from_path(p) => {
            proxy(&state, api, req, started, &request_id).await
        }
        (&Method::GET, "/v1/models") => models(&state, &req).await,
        (&Method::GET, "/healthz" | "/health") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") if state.draining.load(Ordering::Relaxed) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        (&Method::GET, "/readyz") => text(StatusCode::OK, "ready\n"),
        (&Method::GET, "/metrics") => metrics(&state),
        (m, p) if Api::from_path(p).is_some() || OTHER.contains(&p) => {
            ApiError::method_not_allowed(m, p).into_response()
        }
        (_, p) => ApiError::not_found(p).into_response(),
    };
    resp.headers_mut().insert("x-request-id", request_id);
    Ok(resp)
}

/// Serves only `/metrics`, `/budgets` and the probes (the separate metrics listener).
pub async fn handle_metrics(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => metrics(&state),
        (&Method::GET, "/budgets") => budgets(&state).await,
        (&Method::GET, "/healthz" | "/health") => text(StatusCode::OK, "ok\n"),
        (_, p) => ApiError::not_found(p).into_response(),
    })
}

/// The client's `x-request-id` when it is a sane token, else a fresh random one.
fn request_id(req: &Request<Incoming>) -> HeaderValue {
    req.headers()
        .get("x-request-id")
        .filter(|v| {
            let b = v.as_bytes();
            (1..=128).contains(&b.len())
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::try_from(format!("{:032x}", fastrand::u128(..)))
                .unwrap_or_else(|_| HeaderValue::from_static("0"))
        })
}

fn metrics(state: &AppState) -> Response<GatewayBody> {
    state.refresh_health_gauges();
    let mut resp = Response::new(GatewayBody::full(state.metrics.encode()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /budgets`: each budget's use in its current window, as `status.budgetUtilization`
/// lists it (the controller reads it from here).
async fn budgets(state: &AppState) -> Response<GatewayBody> {
    let snap = state.router.load_full();
    let report = match &snap.budgets {
        None => Ok(Vec::new()),
        Some(b) => b.report().await,
    };
    match report.map(|r| serde_json::to_vec(&r)) {
        Ok(Ok(body)) => json(body.into()),
        Ok(Err(e)) => {
            ApiError::unavailable(format!("cannot encode the report: {e}")).into_response()
        }
        Err(e) => {
            ApiError::unavailable(format!("the budget store did not answer: {e}")).into_response()
        }
    }
}

/// `GET /v1/models`: the published ids, to a client with a valid key when the router asks for
/// one.
async fn models(state: &AppState, req: &Request<Incoming>) -> Response<GatewayBody> {
    let snap = state.router.load_full();
    let cert = req.extensions().get::<Arc<ClientCert>>().map(|c| &**c);
    let allowed = match &snap.access {
        None => Ok(()),
        Some(access) => match access.authenticate(req.headers(), cert).await {
            Ok(who) => access.team_access(&who).map(drop),
            Err(denied) => Err(denied),
        },
    };
    match allowed {
        Ok(()) => json(snap.models_body.clone()),
        Err(denied) => ApiError::denied(denied).into_response(),
    }
}

fn json(body: bytes::Bytes) -> Response<GatewayBody> {
    let mut resp = Response::new(GatewayBody::full(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<GatewayBody> {
    let mut resp = Response::new(GatewayBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}
