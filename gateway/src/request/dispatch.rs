//! Sending a routed request to its backends.
//!
//! The candidates come from the routing [`Route`]; this module only orders them by strategy,
//! skips quarantined ones (admitting the single half-open probe), and tries them in turn until
//! one answers with a non-5xx status. When every candidate is quarantined they are tried
//! anyway, in order (Envoy's panic mode): a request is never refused untried. Fallback therefore only ever happens before the client has
//! seen a byte. Shadow copies go only to the route's own candidates, which routing has already
//! narrowed to the local tier for a sensitive request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use llmkube_router::routing::{Route, RoutingTable};
use llmkube_router::spec::{Strategy, Tier};

use crate::metrics::AttemptResult;
use crate::request::upstream::{BuildError, Outbound};
use crate::router::health::now_ms;
use crate::router::snapshot::RouterSnapshot;
use crate::state::AppState;
use crate::telemetry::AttemptSpan;

/// A backend answered.
pub struct Answered {
    /// Its response (headers received, body not yet read).
    pub response: Response<Incoming>,
    /// Which backend (index into the snapshot's backends).
    pub backend: usize,
}

/// Why one attempt failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No response headers within the timeout.
    Timeout(Duration),
    /// Could not connect or the connection broke.
    Connect(String),
    /// The backend answered 5xx.
    Status(StatusCode),
    /// The backend speaks another API and the request has no translation for it; nothing
    /// was sent, and the backend's health is untouched.
    Untranslatable(String),
}

/// Every candidate failed or was unavailable.
#[derive(Debug)]
pub struct Exhausted {
    /// The last failure; `None` when every candidate was quarantined.
    pub last: Option<(usize, Failure)>,
}

/// Progress of a dispatch, for the audit record.
#[derive(Debug, Default)]
pub struct Progress {
    /// Attempts made.
    pub attempts: u32,
    /// Time waiting for backend headers.
    pub upstream_wait: Duration,
    /// Timeout of the last attempt.
    pub last_timeout: Option<Duration>,
    /// Each attempt of a sampled trace, for its span.
    pub spans: Vec<AttemptSpan>,
}

/// The order in which a route's candidates are tried.
pub fn order(route: &Route, table: &RoutingTable) -> Vec<usize> {
    match route.strategy {
        Strategy::Weighted => weighted_order(
            route
                .backends
                .iter()
                .map(|&b| (b, table.backends[b].weight)),
        ),
        Strategy::PrimaryFallback | Strategy::Shadow => route.backends.clone(),
    }
}

/// Weighted sampling without replacement: the first pick is proportional to weight, the rest
/// follow as fallbacks; weight-0 backends come last, in their original order.
pub fn weighted_order(candidates: impl Iterator<Item = (usize, u32)>) -> Vec<usize> {
    let mut pool: Vec<(usize, u64)> = candidates.map(|(b, w)| (b, u64::from(w))).collect();
    let mut order = Vec::with_capacity(pool.len());
    loop {
        let total: u64 = pool.iter().map(|&(_, w)| w).sum();
        if total == 0 {
            break;
        }
        let mut pick = fastrand::u64(0..total);
        let idx = pool
            .iter()
            .position(|&(_, w)| {
                if pick < w {
                    return true;
                }
                pick -= w;
                false
            })
            .unwrap_or(0);
        order.push(pool.remove(idx).0);
    }
    order.extend(pool.into_iter().map(|(b, _)| b));
    order
}

/// Time to response headers for one attempt: the rule's, else the backend's, else the router's.
fn attempt_timeout(
    route: &Route,
    target: &crate::router::backend::BackendTarget,
    snap: &RouterSnapshot,
) -> Duration {
    route
        .timeout
        .or(target.timeout)
        .unwrap_or(snap.settings.response_header_timeout)
}

/// Tries the route's candidates in strategy order.
pub async fn dispatch(
    state: &Arc<AppState>,
    snap: &Arc<RouterSnapshot>,
    route: &Route,
    out: &Outbound<'_>,
    progress: &mut Progress,
) -> Result<Answered, Exhausted> {
    let mut last = None;
    let mut skipped = Vec::new();
    for b in order(route, &snap.table) {
        let target = &snap.backends[b];
        let Some(permit) = target.health.try_admit(now_ms()) else {
            skipped.push(b);
            continue;
        };
        if let Some(answered) =
            attempt(state, snap, route, out, progress, b, permit, &mut last).await
        {
            return Ok(answered);
        }
    }
    if progress.attempts == 0 && !skipped.is_empty() {
        tracing::warn!(
            router = %snap.name,
            "every backend of the route is quarantined; trying them anyway"
        );
        state
            .metrics
            .panic_routes
            .get_or_create(&crate::metrics::RouterLabels {
                router: Arc::clone(&snap.name),
            })
            .inc();
        for b in skipped {
            let permit = snap.backends[b].health.admit_in_panic();
            if let Some(answered) =
                attempt(state, snap, route, out, progress, b, permit, &mut last).await
            {
                return Ok(answered);
            }
        }
    }
    Err(Exhausted { last })
}

/// One attempt on backend `b`; `None` when it failed (recorded in `last`).
#[allow(clippy::too_many_arguments)]
async fn attempt(
    state: &Arc<AppState>,
    snap: &Arc<RouterSnapshot>,
    route: &Route,
    out: &Outbound<'_>,
    progress: &mut Progress,
    b: usize,
    permit: crate::router::health::Permit<'_>,
    last: &mut Option<(usize, Failure)>,
) -> Option<Answered> {
    let target = &snap.backends[b];
    {
        let timeout = attempt_timeout(route, target, snap);
        progress.attempts += 1;
        progress.last_timeout = Some(timeout);
        let mut request = match crate::request::upstream::build_request(
            target,
            out,
            &snap.table.classification_header,
        ) {
            Ok(r) => r,
            Err(BuildError::Untranslatable(why)) => {
                progress.attempts -= 1;
                *last = Some((b, Failure::Untranslatable(why.0)));
                return None;
            }
            Err(e) => {
                *last = Some((b, Failure::Connect(e.to_string())));
                return None;
            }
        };
        let span = out.trace.map(|t| t.attempt_span());
        if let (Some(trace), Some(span)) = (out.trace, span)
            && target.trace_context
        {
            trace.inject(span, target.tier == Tier::Local, request.headers_mut());
        }
        let sent = Instant::now();
        let result = tokio::time::timeout(timeout, state.client.request(request)).await;
        let took = sent.elapsed();
        progress.upstream_wait += took;
        // The attempt's span, kept only for a sampled trace.
        let sampled = span.filter(|_| out.trace.is_some_and(|t| t.sampled()));
        let mut record = |status: Option<StatusCode>, failure: Option<&Failure>| {
            if let Some(span) = sampled {
                progress.spans.push(AttemptSpan {
                    span,
                    backend: b,
                    began: sent,
                    took,
                    status: status.map(|s| s.as_u16()),
                    error: failure.map(ToString::to_string),
                });
            }
        };
        let failure = match result {
            Ok(Ok(resp)) if !resp.status().is_server_error() => {
                record(Some(resp.status()), None);
                permit.success();
                state.count_attempt(snap, b, AttemptResult::Ok);
                if route.strategy == Strategy::Shadow {
                    shadow(state, snap, route, b, out);
                }
                return Some(Answered {
                    response: resp,
                    backend: b,
                });
            }
            Ok(Ok(resp)) => Failure::Status(resp.status()),
            Ok(Err(e)) => Failure::Connect(error_chain(&e)),
            Err(_) => Failure::Timeout(timeout),
        };
        match &failure {
            Failure::Status(status) => record(Some(*status), None),
            other => record(None, Some(other)),
        }
        let result_label = match &failure {
            Failure::Timeout(_) => AttemptResult::Timeout,
            // An untranslatable request returned above, before anything was sent.
            Failure::Connect(_) | Failure::Untranslatable(_) => AttemptResult::ConnectError,
            Failure::Status(_) => AttemptResult::Status5xx,
        };
        state.count_attempt(snap, b, result_label);
        let probe = permit.is_probe();
        let quarantined = match failure {
            Failure::Timeout(_) => {
                permit.timeout();
                false
            }
            _ => permit.failure(
                snap.settings.consecutive_failures,
                snap.settings.quarantine,
                now_ms(),
            ),
        };
        tracing::warn!(backend = %target.name, probe, quarantined, ?failure, "backend attempt failed");
        *last = Some((b, failure));
        None
    }
}

/// Sends fire-and-forget copies to the route's other candidates; answers are discarded.
fn shadow(
    state: &Arc<AppState>,
    snap: &Arc<RouterSnapshot>,
    route: &Route,
    answered: usize,
    out: &Outbound<'_>,
) {
    for &b in route.backends.iter().filter(|&&b| b != answered) {
        let target = &snap.backends[b];
        if !target.health.in_service(now_ms()) {
            continue;
        }
        let Ok(permit) = Arc::clone(&state.shadow_slots).try_acquire_owned() else {
            state.metrics.shadow_skipped.inc();
            continue;
        };
        let Ok(request) =
            crate::request::upstream::build_request(target, out, &snap.table.classification_header)
        else {
            continue;
        };
        let (state, snap) = (Arc::clone(state), Arc::clone(snap));
        let timeout = attempt_timeout(route, target, &snap);
        tokio::spawn(async move {
            let _permit = permit;
            let idle = snap.settings.stream_idle_timeout;
            let ok = match tokio::time::timeout(timeout, state.client.request(request)).await {
                Ok(Ok(resp)) => drain(resp.into_body(), idle).await,
                _ => false,
            };
            state.count_attempt(
                &snap,
                b,
                if ok {
                    AttemptResult::ShadowOk
                } else {
                    AttemptResult::ShadowError
                },
            );
        });
    }
}

/// Reads and discards a body so its connection returns to the pool.
async fn drain(mut body: Incoming, idle: Duration) -> bool {
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(_))) => {}
            Ok(None) => return true,
            _ => return false,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout(t) => write!(
                f,
                "no response headers within {}",
                llmkube_router::duration::format_duration(*t)
            ),
            Failure::Connect(e) => write!(f, "connection failed: {e}"),
            Failure::Status(s) => write!(f, "answered {s}"),
            Failure::Untranslatable(why) => write!(f, "cannot take this request: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_order_is_proportional_and_keeps_zero_weight_last() {
        let mut firsts = [0u32; 3];
        for _ in 0..4000 {
            let order = weighted_order([(0, 3), (1, 1), (2, 0)].into_iter());
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 2, "weight 0 is only a last-resort fallback");
            firsts[order[0]] += 1;
        }
        let ratio = f64::from(firsts[0]) / f64::from(firsts[1]);
        assert!(
            (2.4..3.8).contains(&ratio),
            "3:1 weights gave first-pick ratio {ratio}"
        );
        assert_eq!(weighted_order([(4, 0), (5, 0)].into_iter()), [4, 5]);
    }
}
