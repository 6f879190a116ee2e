//! The proxied endpoints (`POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/messages`, `/v1/responses`), one request as named steps: identify (who sends it), read, parse, permit (the team's
//! models), decide (classify, evaluate, route or refuse), narrow (to the team's backends),
//! admit (reserve on the budgets), forward (dispatch to the route's backends), respond. A step that refuses returns a
//! [`Refusal`]; [`proxy`] answers it and writes the audit line.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, Version, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use llmkube_router::defaults::TASK_COMPLEXITY_HEADER;
use llmkube_router::routing::{Deny, Route, RoutingTable, Via, fail_closed_message};

use crate::auth::{self, Denied, Identity, TeamAccess};
use crate::budget::{Charge, DEFAULT_COMPLETION_RESERVE, Refused, Subject};
use crate::dialect::stream::StreamTranslator;
use crate::dialect::{ANTHROPIC_VERSION, Api, Conversion, Echo, Wire};
use crate::http::body::{GatewayBody, StreamLimits};
use crate::http::error::ApiError;
use crate::http::tls::ClientCert;
use crate::policy::pipeline::{Inputs, Verdict};
use crate::request::body_budget::Reservation;
use crate::request::dispatch::{Answered, Exhausted, Failure, dispatch};
use crate::request::inbound::{classifications, read_body};
use crate::request::json_body::{JsonBody, StreamUsage, parse_json_body};
use crate::request::record::{Outcome, RequestRecord};
use crate::request::refusal::Refusal;
use crate::request::translated;
use crate::request::upstream::{Outbound, adds_stream_usage, strip_response_headers};
use crate::router::snapshot::RouterSnapshot;
use crate::state::AppState;
use crate::usage::{Prices, Usage, UsageMeter, estimate_tokens};

/// Response header naming the backend that answered.
pub const BACKEND_HEADER: &str = "x-llmkube-backend";
/// Response header naming the rule that matched.
pub const RULE_HEADER: &str = "x-llmkube-rule";
/// Largest non-streamed answer (with a Content-Length) read whole before it is sent on;
/// larger or streamed answers go through a stream task (see [`crate::http::body`]).
const BUFFERED_ANSWER_MAX: u64 = 64 << 10;

/// Serves one request of a proxied endpoint.
pub async fn proxy(
    state: &Arc<AppState>,
    api: Api,
    req: http::Request<Incoming>,
    started: Instant,
    request_id: &HeaderValue,
) -> Response<GatewayBody> {
    let snap = state.router.load_full();
    let id = request_id.to_str().unwrap_or_default().to_owned();
    let mut rec = RequestRecord::new(Arc::clone(&snap), Arc::clone(&state.metrics), id, started);
    rec.api = api;
    let (parts, body) = req.into_parts();
    rec.trace = (state.tracer.as_ref()).map(|t| t.begin(&parts.headers, started));
    // The body is held once, and once more as text when the detector scans it; the memory is
    // given back when this function returns (a streamed answer no longer needs the request).
    let mut reservation = state.body_budget.reservation();
    let answered = async {
        let team = identify(&snap, &parts, &mut rec).await?;
        let read = read(state, &snap, &parts, body, &mut reservation).await?;
        check_version(api, &parts.headers)?;
        let json = parse(&snap, &parts, read.body, read.scan_limit, &mut rec)?;
        permit(team, &rec.identity, &json.model)?;
        let route = decide(&snap, &parts, &json, read.header_classes, &mut rec)?;
        let route = narrow(&snap, team, &rec.identity, route)?;
        admit(state, &snap, &parts, &json, &route, &mut rec).await?;
        let forward = Forward {
            parts: &parts,
            json: &json,
            route: &route,
            request_id,
        };
        forward.send(state, &snap, &mut rec).await
    }
    .await;
    match answered {
        Ok(answer) => respond(&snap, parts.version, answer, rec).await,
        Err(refusal) => refusal.answer(rec),
    }
}

/// Step 0: who sends the request, and what their team may use (`None`: no restriction).
/// Without valid credentials it is refused (401), and a team the router does not serve is
/// refused (403), before the body is read.
async fn identify<'s>(
    snap: &'s RouterSnapshot,
    parts: &Parts,
    rec: &mut RequestRecord,
) -> Result<Option<&'s TeamAccess>, Refusal> {
    let Some(access) = &snap.access else {
        rec.identity = auth::unauthenticated(&parts.headers);
        return Ok(None);
    };
    rec.identity = access
        .authenticate(
            &parts.headers,
            parts.extensions.get::<Arc<ClientCert>>().map(|c| &**c),
        )
        .await
        .map_err(Refusal::denied)?;
    access.team_access(&rec.identity).map_err(Refusal::denied)
}

/// Step 1b: a `/v1/messages` client's `anthropic-version`, when it sends one, is a version
/// date (`YYYY-MM-DD`). It goes on with the request to an Anthropic backend; a translated
/// request is built to the stable API of [`ANTHROPIC_VERSION`], which later versions extend.
fn check_version(api: Api, headers: &http::HeaderMap) -> Result<(), Refusal> {
    let version = headers.get("anthropic-version").map(|v| v.as_bytes());
    let is_date = |v: &[u8]| {
        v.len() == 10
            && v.iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                _ => b.is_ascii_digit(),
            })
    };
    match version {
        Some(v) if api == Api::Messages && !is_date(v) => {
            Err(Refusal::bad_request(ApiError::bad_request(
                format!(
                    "anthropic-version {:?} is not a version date such as {ANTHROPIC_VERSION}",
                    crate::http::error::echo(&String::from_utf8_lossy(v))
                ),
                None,
            )))
        }
        _ => Ok(()),
    }
}

/// Step 2b: the team may ask for this model (403 otherwise).
fn permit(team: Option<&TeamAccess>, who: &Identity, model: &str) -> Result<(), Refusal> {
    match team {
        Some(team) if !team.allows_model(model) => {
            Err(Refusal::denied(Denied::Forbidden(format!(
                "team {:?} may not use model {:?}",
                who.team.as_deref().unwrap_or_default(),
                crate::http::error::echo(model)
            ))))
        }
        _ => Ok(()),
    }
}

/// Step 3b: the route narrowed to the backends and tiers the team may use; 403 when none is
/// left, so a backend it may not use never receives anything of the request.
fn narrow(
    snap: &RouterSnapshot,
    team: Option<&TeamAccess>,
    who: &Identity,
    mut route: Route,
) -> Result<Route, Refusal> {
    let Some(team) = team else {
        return Ok(route);
    };
    route
        .backends
        .retain(|&b| team.allows_backend(&snap.table, b));
    if route.backends.is_empty() {
        return Err(Refusal::denied(Denied::Forbidden(format!(
            "team {:?} may not use the backends this request routes to",
            who.team.as_deref().unwrap_or_default()
        ))));
    }
    Ok(route)
}

/// Step 3c: the request's likely use reserved on every budget that applies (429 when one is
/// spent, 503 when its store cannot answer and it fails closed).
async fn admit(
    state: &AppState,
    snap: &RouterSnapshot,
    parts: &Parts,
    json: &JsonBody,
    route: &Route,
    rec: &mut RequestRecord,
) -> Result<(), Refusal> {
    let Some(budgets) = &snap.budgets else {
        return Ok(());
    };
    let prompt = estimate_tokens(json.string_bytes);
    let completion = if parts.uri.path() == "/v1/embeddings" {
        0
    } else {
        json.max_tokens.unwrap_or(DEFAULT_COMPLETION_RESERVE)
    };
    let prices =
        (route.backends.iter()).fold(Prices::default(), |p, &b| p.max(snap.backends[b].prices));
    let usage = Usage { prompt, completion };
    let charge = Charge {
        tokens: usage.total(),
        usd: prices.cost(usage),
    };
    let subject = Subject {
        rule: rec.rule,
        team: rec.identity.team.as_deref(),
        authenticated: snap.access.is_some(),
        headers: &parts.headers,
    };
    match budgets.admit(&subject, charge, &state.metrics).await {
        Ok(admission) => {
            rec.accounting.admission = admission;
            Ok(())
        }
        Err(Refused::Spent {
            budget,
            retry_after,
        }) => Err(Refusal::new(
            ApiError::budget_exceeded(&budget, retry_after),
            Outcome::BudgetExceeded,
        )),
        Err(Refused::Unavailable { budget, error }) => Err(Refusal::new(
            ApiError::budget_unavailable(&budget, &error),
            Outcome::BudgetUnavailable,
        )),
    }
}

/// What the client sent, read within the limits.
struct Read {
    body: Bytes,
    /// The classifications the client's header declares.
    header_classes: Vec<String>,
    /// How much of the body's text the detector scans (`None`: it does not run).
    scan_limit: Option<usize>,
}

/// Step 1: the classification header and the body, bounded in size, time and shared memory.
async fn read(
    state: &AppState,
    snap: &RouterSnapshot,
    parts: &Parts,
    body: Incoming,
    reservation: &mut Reservation,
) -> Result<Read, Refusal> {
    let header_classes = classifications(&parts.headers, &snap.table.classification_header)
        .map_err(Refusal::bad_request)?;
    let scan_limit = snap
        .policies
        .needs_text(&header_classes)
        .then_some(snap.settings.scan_limit_bytes);
    let factor = if scan_limit.is_some() { 2 } else { 1 };
    let limit = snap.settings.max_body_bytes;
    let body = read_body(body, &parts.headers, limit, reservation, factor)
        .await
        .map_err(|e| {
            if e.retry_after.is_some() {
                state.metrics.body_budget_refused.inc();
                Refusal::new(e, Outcome::Overloaded)
            } else {
                Refusal::bad_request(e)
            }
        })?;
    Ok(Read {
        body,
        header_classes,
        scan_limit,
    })
}

/// Step 2: the body as strict JSON, its text collected for the detector.
fn parse(
    snap: &RouterSnapshot,
    parts: &Parts,
    body: Bytes,
    scan_limit: Option<usize>,
    rec: &mut RequestRecord,
) -> Result<JsonBody, Refusal> {
    rec.bytes_in = body.len() as u64;
    let json = parse_json_body(body, scan_limit).map_err(Refusal::bad_request)?;
    rec.accounting.prompt_bytes = json.string_bytes;
    rec.accounting.add_stream_usage = json.stream && json.stream_usage == StreamUsage::Unset;
    rec.model = crate::http::error::echo(&json.model).into_owned();
    if snap.audit_body {
        rec.body = Some(json.bytes.clone());
    }
    rec.dialect.include_usage = json.stream_usage == StreamUsage::Asked;
    if rec.api == Api::Responses {
        rec.dialect.echo = Echo::of(&json.bytes, &rec.request_id);
    }
    rec.task_complexity = parts
        .headers
        .get(TASK_COMPLEXITY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(json)
}

/// Step 3: classification (header, detector, policies), custom policies and the rules: a
/// route, or the refusal they decided.
fn decide(
    snap: &RouterSnapshot,
    parts: &Parts,
    json: &JsonBody,
    header_classes: Vec<String>,
    rec: &mut RequestRecord,
) -> Result<Route, Refusal> {
    if let Some(why) = snap.policies.ambiguous_header(&parts.headers) {
        return Err(Refusal::bad_request(ApiError::bad_request(why, None)));
    }
    let inputs = Inputs {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        model: &json.model,
        stream: json.stream,
        headers: &parts.headers,
        text: &json.text,
        principal: rec.identity.principal.as_deref(),
        team: rec.identity.team.as_deref(),
    };
    let verdict =
        (snap.policies).evaluate(&snap.table, &inputs, header_classes, &mut rec.evaluation);
    match &verdict {
        Verdict::Route(Route {
            via: Via::Rule(i), ..
        }) => rec.rule = Some(*i),
        Verdict::Deny(Deny::FailClosed { rule }) => rec.rule = *rule,
        _ => {}
    }
    answer_for(&snap.table, &json.model, verdict)
}

/// The route of a verdict, or the refusal the client gets for it (`explain` reports the same).
pub(crate) fn answer_for(
    table: &RoutingTable,
    model: &str,
    verdict: Verdict,
) -> Result<Route, Refusal> {
    let refusal = match verdict {
        Verdict::Route(route) => return Ok(route),
        Verdict::Deny(Deny::NoRoute) => Refusal::new(ApiError::no_route(model), Outcome::NoRoute),
        Verdict::Deny(Deny::FailClosed { rule }) => {
            let name = rule.map(|i| table.rules[i].name.as_str());
            let e = ApiError::fail_closed(fail_closed_message(name));
            Refusal::new(e, Outcome::FailClosed)
        }
        Verdict::Rejected {
            policy,
            status,
            code,
            message,
        } => {
            let e = ApiError::policy_rejected(status, &code, &message, &policy);
            Refusal::new(e, Outcome::PolicyRejected)
        }
        Verdict::Failed { policy, error } => Refusal::new(
            ApiError::policy_error(&policy, &error),
            Outcome::PolicyError,
        ),
    };
    Err(refusal)
}

/// Step 4: the request as it goes to the route's backends.
struct Forward<'a> {
    parts: &'a Parts,
    json: &'a JsonBody,
    route: &'a Route,
    request_id: &'a HeaderValue,
}

impl Forward<'_> {
    /// Tries the route's backends (retries, fallback, quarantine) until one answers.
    async fn send(
        &self,
        state: &Arc<AppState>,
        snap: &Arc<RouterSnapshot>,
        rec: &mut RequestRecord,
    ) -> Result<Answered, Refusal> {
        let out = Outbound {
            api: rec.api,
            method: &self.parts.method,
            path_and_query: self
                .parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str()),
            headers: &self.parts.headers,
            request_id: self.request_id,
            body: self.json,
            set_headers: &rec.evaluation.set_headers,
            remove_headers: &rec.evaluation.remove_headers,
            add_stream_usage: rec.accounting.add_stream_usage,
            trace: rec.trace.as_ref(),
        };
        let result = dispatch(state, snap, self.route, &out, &mut rec.progress).await;
        result.map_err(|exhausted| exhausted_refusal(snap, self.route, exhausted))
    }
}

/// Why no backend of the route answered: a timeout, the route's fail-closed guarantee, or
/// failures.
fn exhausted_refusal(
    snap: &RouterSnapshot,
    route: &Route,
    Exhausted { last }: Exhausted,
) -> Refusal {
    let describe =
        |b: usize, f: &Failure| format!("backend {:?} {f}", snap.backends[b].name.as_str());
    match &last {
        Some((b, Failure::Untranslatable(why))) => Refusal::bad_request(ApiError::bad_request(
            format!(
                "backend {:?} speaks another API and this request cannot be translated for it: {why}",
                snap.backends[*b].name.as_str()
            ),
            None,
        )),
        Some((b, f @ Failure::Timeout(_))) => {
            Refusal::new(ApiError::timeout(describe(*b, f)), Outcome::Timeout)
        }
        _ if route.fail_closed => {
            let detail = last.as_ref().map_or_else(
                || "every backend is quarantined".to_owned(),
                |(b, f)| describe(*b, f),
            );
            let e = ApiError::fail_closed(format!(
                "the route is fail-closed and none of its backends could serve the request ({detail})"
            ));
            Refusal::new(e, Outcome::FailClosedRuntime)
        }
        Some((b, f)) => {
            let e = ApiError::all_backends_failed(format!(
                "all backends failed; last: {}",
                describe(*b, f)
            ));
            Refusal::new(e, Outcome::AllBackendsFailed)
        }
        None => {
            let e = ApiError::all_backends_failed("every backend of the route is quarantined");
            Refusal::new(e, Outcome::AllBackendsFailed)
        }
    }
}

/// Step 5: the backend's answer to the client, with our headers: read whole when small and
/// of known length, else streamed under the stream limits (the audit line is written when it
/// ends).
async fn respond(
    snap: &RouterSnapshot,
    version: Version,
    Answered { response, backend }: Answered,
    mut rec: RequestRecord,
) -> Response<GatewayBody> {
    rec.backend = Some(backend);
    rec.error
        .clone_from(&snap.backends[backend].credential_problem);
    let (mut head, body) = response.into_parts();
    strip_response_headers(&mut head.headers);
    head.version = version;
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
    let target = &snap.backends[backend];
    let conversion = Conversion::new(rec.api, Wire::of(target.provider));
    if conversion.translates() {
        // Only a translated answer needs these: plain requests do not pay for them.
        rec.dialect.created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        rec.dialect.request_id.clone_from(&rec.request_id);
        if !(sse && head.status.is_success()) {
            return translated::respond_whole(snap, head, body, conversion, rec).await;
        }
        let ctx = std::mem::take(&mut rec.dialect);
        rec.translator = StreamTranslator::new(rec.api, conversion, ctx);
    }
    let size = http_body::Body::size_hint(&body).exact();
    let strip = adds_stream_usage(conversion, target, rec.accounting.add_stream_usage);
    rec.accounting.meter = Some(if sse {
        UsageMeter::sse(strip)
    } else {
        UsageMeter::json()
    });
    if sse || size.is_none_or(|n| n > BUFFERED_ANSWER_MAX) {
        rec.headers_sent = Some(Instant::now());
        let limits = StreamLimits {
            idle_timeout: snap.settings.stream_idle_timeout,
            max_duration: snap.settings.max_stream_duration,
        };
        return Response::from_parts(head, GatewayBody::upstream(body, sse, limits, rec));
    }
    // A small answer of known length (a JSON completion) is read whole here: no stream task,
    // the backend connection is free at once, and a client that never reads holds nothing of
    // the backend's.
    let idle = snap.settings.stream_idle_timeout;
    let refusal = match tokio::time::timeout(idle, body.collect()).await {
        Ok(Ok(collected)) => {
            let bytes = collected.to_bytes();
            if let Some(meter) = &mut rec.accounting.meter {
                meter.read_whole(&bytes);
            }
            rec.ttfb = Some(rec.started.elapsed());
            rec.bytes_out = bytes.len() as u64;
            rec.headers_sent = Some(Instant::now());
            rec.finish(Outcome::Ok);
            return Response::from_parts(head, GatewayBody::full(bytes));
        }
        Ok(Err(e)) => ApiError::all_backends_failed(format!(
            "backend {:?} broke off its answer: {e}",
            name.as_str()
        )),
        Err(_) => ApiError::timeout(format!(
            "backend {:?} sent its headers but not its body within {}s",
            name.as_str(),
            idle.as_secs_f64()
        )),
    };
    Refusal::new(refusal, Outcome::StreamError).answer(rec)
}
