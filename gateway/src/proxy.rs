//! The proxied endpoints: read, classify, decide, dispatch, stream back.

use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use llmkube_router::defaults::TASK_COMPLEXITY_HEADER;
use llmkube_router::routing::{Deny, Via};

use crate::body::GatewayBody;
use crate::dispatch::{Answered, Exhausted, Failure, Progress, dispatch};
use crate::error::ApiError;
use crate::inbound::{classifications, read_body};
use crate::json_body::parse_json_body;
use crate::policy::pipeline::{Inputs, Verdict};
use crate::record::{Outcome, RequestRecord};
use crate::snapshot::RouterSnapshot;
use crate::state::AppState;
use crate::upstream::Outbound;
use crate::upstream::strip_response_headers;

/// Response header naming the backend that answered.
pub const BACKEND_HEADER: &str = "x-llmkube-backend";
/// Response header naming the rule that matched.
pub const RULE_HEADER: &str = "x-llmkube-rule";
/// Largest non-streamed answer (with a Content-Length) read whole before it is sent on;
/// larger or streamed answers go through a stream task (see [`crate::body`]).
const BUFFERED_ANSWER_MAX: u64 = 64 << 10;

/// Serves `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`.
pub async fn proxy(
    state: &Arc<AppState>,
    req: http::Request<Incoming>,
    started: Instant,
    request_id: &HeaderValue,
) -> Response<GatewayBody> {
    let snap = state.router.load_full();
    let id = request_id.to_str().unwrap_or_default().to_owned();
    let rec = RequestRecord::new(Arc::clone(&snap), Arc::clone(&state.metrics), id, started);
    let (parts, body) = req.into_parts();
    let header_classes = match classifications(&parts.headers, &snap.table.classification_header) {
        Ok(c) => c,
        Err(e) => return fail(rec, e, Outcome::BadRequest),
    };
    let scan_limit = snap
        .policies
        .needs_text(&header_classes)
        .then_some(snap.settings.scan_limit_bytes);
    // The body is held once, and once more as text when the detector scans it. The
    // reservation is returned when this request's handling ends (the response is streaming).
    let mut reservation = state.body_budget.reservation();
    let factor = if scan_limit.is_some() { 2 } else { 1 };
    let limit = snap.settings.max_body_bytes;
    let body = match read_body(body, &parts.headers, limit, &mut reservation, factor).await {
        Ok(b) => b,
        Err(e) if e.retry_after.is_some() => {
            state.metrics.body_budget_refused.inc();
            return fail(rec, e, Outcome::Overloaded);
        }
        Err(e) => return fail(rec, e, Outcome::BadRequest),
    };
    let request = Request {
        parts: &parts,
        header_classes,
        scan_limit,
    };
    serve(state, &snap, request, body, request_id, rec).await
}

/// What is known of a request before its body is parsed.
struct Request<'a> {
    parts: &'a Parts,
    header_classes: Vec<String>,
    scan_limit: Option<usize>,
}

async fn serve(
    state: &Arc<AppState>,
    snap: &Arc<RouterSnapshot>,
    request: Request<'_>,
    body: bytes::Bytes,
    request_id: &HeaderValue,
    mut rec: RequestRecord,
) -> Response<GatewayBody> {
    let Request {
        parts,
        header_classes,
        scan_limit,
    } = request;
    rec.bytes_in = body.len() as u64;
    let json = match parse_json_body(body, scan_limit) {
        Ok(j) => j,
        Err(e) => return fail(rec, e, Outcome::BadRequest),
    };
    rec.model = crate::error::echo(&json.model).into_owned();
    if snap.audit_body {
        rec.body = Some(json.bytes.clone());
    }
    let task = parts
        .headers
        .get(TASK_COMPLEXITY_HEADER)
        .and_then(|v| v.to_str().ok());
    rec.task_complexity = task.map(str::to_owned);
    let eval = snap.policies.evaluate(
        &snap.table,
        &Inputs {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            model: &json.model,
            stream: json.stream,
            headers: &parts.headers,
            text: &json.text,
        },
        header_classes,
    );
    rec.classifications = eval.classifications;
    rec.classification_source = eval.classification_source;
    rec.policies = eval.trace;
    rec.annotations = eval.annotations;
    let route = match eval.verdict {
        Verdict::Route(route) => route,
        Verdict::Deny(Deny::NoRoute) => {
            let e = ApiError::no_route(&json.model);
            return fail(rec, e, Outcome::NoRoute);
        }
        Verdict::Deny(Deny::FailClosed { rule }) => {
            rec.rule = rule;
            let why = match rule {
                Some(i) => format!(
                    "rule {:?} is fail-closed and none of its backends may serve this request",
                    snap.table.rules[i].name
                ),
                None => "the request is classified sensitive and no local backend is routed for it"
                    .to_owned(),
            };
            return fail(rec, ApiError::fail_closed(why), Outcome::FailClosed);
        }
        Verdict::Rejected {
            policy,
            status,
            code,
            message,
        } => {
            let e = ApiError::policy_rejected(status, &code, &message, &policy);
            return fail(rec, e, Outcome::PolicyRejected);
        }
        Verdict::Failed { policy, error } => {
            let e = ApiError::policy_error(&policy, &error);
            return fail(rec, e, Outcome::PolicyError);
        }
    };
    if let Via::Rule(i) = route.via {
        rec.rule = Some(i);
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let out = Outbound {
        method: &parts.method,
        path_and_query,
        headers: &parts.headers,
        request_id,
        body: &json,
        set_headers: &eval.set_headers,
        remove_headers: &eval.remove_headers,
    };
    let mut progress = Progress::default();
    let result = dispatch(state, snap, &route, &out, &mut progress).await;
    rec.attempts = progress.attempts;
    rec.upstream_wait = progress.upstream_wait;
    rec.timeout = progress.last_timeout;
    match result {
        Ok(Answered { response, backend }) => {
            rec.backend = Some(backend);
            rec.error
                .clone_from(&snap.backends[backend].credential_problem);
            let (mut head, body) = response.into_parts();
            strip_response_headers(&mut head.headers);
            head.version = parts.version;
            let sse = head
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
            if sse {
                head.headers.remove(header::CONTENT_LENGTH);
            }
            let name = &snap.backends[backend].name;
            if let Ok(v) = HeaderValue::from_str(name) {
                head.headers
                    .insert(HeaderName::from_static(BACKEND_HEADER), v);
            }
            if let Some(rule) = rec
                .rule
                .and_then(|i| HeaderValue::from_str(&snap.rule_names[i]).ok())
            {
                head.headers
                    .insert(HeaderName::from_static(RULE_HEADER), rule);
            }
            rec.status = head.status.as_u16();
            let size = http_body::Body::size_hint(&body).exact();
            if !sse && size.is_some_and(|n| n <= BUFFERED_ANSWER_MAX) {
                // A small answer of known length (a JSON completion) is read whole here: no
                // stream task, the backend connection is free at once, and a client that never
                // reads holds nothing of the backend's.
                let idle = snap.settings.stream_idle_timeout;
                return match tokio::time::timeout(idle, body.collect()).await {
                    Ok(Ok(collected)) => {
                        let bytes = collected.to_bytes();
                        rec.ttfb = Some(rec.started.elapsed());
                        rec.bytes_out = bytes.len() as u64;
                        rec.headers_sent = Some(Instant::now());
                        rec.finish(Outcome::Ok);
                        Response::from_parts(head, GatewayBody::full(bytes))
                    }
                    Ok(Err(e)) => {
                        let e = ApiError::all_backends_failed(format!(
                            "backend {:?} broke off its answer: {e}",
                            name.as_str()
                        ));
                        fail(rec, e, Outcome::StreamError)
                    }
                    Err(_) => {
                        let e = ApiError::timeout(format!(
                            "backend {:?} sent its headers but not its body within {}s",
                            name.as_str(),
                            idle.as_secs_f64()
                        ));
                        fail(rec, e, Outcome::StreamError)
                    }
                };
            }
            rec.headers_sent = Some(Instant::now());
            let limits = crate::body::StreamLimits {
                idle_timeout: snap.settings.stream_idle_timeout,
                max_duration: snap.settings.max_stream_duration,
            };
            let body = GatewayBody::upstream(body, sse, limits, rec);
            Response::from_parts(head, body)
        }
        Err(Exhausted { last }) => {
            let describe =
                |b: usize, f: &Failure| format!("backend {:?} {f}", snap.backends[b].name.as_str());
            match &last {
                Some((b, f @ Failure::Timeout(_))) => {
                    let e = ApiError::timeout(describe(*b, f));
                    fail(rec, e, Outcome::Timeout)
                }
                _ if route.fail_closed => {
                    let detail = last.as_ref().map_or_else(
                        || "every backend is quarantined".to_owned(),
                        |(b, f)| describe(*b, f),
                    );
                    let e = ApiError::fail_closed(format!(
                        "the route is fail-closed and none of its backends could serve the request ({detail})"
                    ));
                    fail(rec, e, Outcome::FailClosedRuntime)
                }
                Some((b, f)) => {
                    let e = ApiError::all_backends_failed(format!(
                        "all backends failed; last: {}",
                        describe(*b, f)
                    ));
                    fail(rec, e, Outcome::AllBackendsFailed)
                }
                None => {
                    let e =
                        ApiError::all_backends_failed("every backend of the route is quarantined");
                    fail(rec, e, Outcome::AllBackendsFailed)
                }
            }
        }
    }
}

fn fail(mut rec: RequestRecord, e: ApiError, outcome: Outcome) -> Response<GatewayBody> {
    rec.status = e.status.as_u16();
    rec.error = Some(e.message.clone());
    rec.headers_sent = Some(Instant::now());
    rec.finish(outcome);
    e.into_response()
}
