//! Active health checks: every backend that declares `healthCheck` is probed on its own
//! interval, by one ticker for whatever router is current (health is kept by backend name, so
//! checks carry over reloads). The verdicts feed [`crate::router::health::BackendHealth`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Method, Request};
use http_body_util::{BodyExt, Full};

use crate::metrics::AttemptResult;
use crate::router::health::{UNTIL_CHECK_PASSES, now_ms};
use crate::state::AppState;

/// How often the active checker looks for due checks.
const CHECK_TICK: Duration = Duration::from_millis(250);

/// Runs the checks until the task is aborted.
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(CHECK_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snap = state.router.load_full();
        let now = now_ms();
        for (i, target) in snap.backends.iter().enumerate() {
            let Some(check) = &target.health_check else {
                continue;
            };
            let h = &target.health;
            if now < h.next_check.load(Ordering::Acquire) || h.checking.swap(true, Ordering::AcqRel)
            {
                continue;
            }
            h.next_check
                .store(now + check.interval.as_millis() as u64, Ordering::Release);
            let (state, snap) = (Arc::clone(&state), Arc::clone(&snap));
            tokio::spawn(async move {
                let target = &snap.backends[i];
                let result = check_once(&state, target).await;
                let h = &target.health;
                let was_up = h.quarantined_until.load(Ordering::Acquire) != UNTIL_CHECK_PASSES;
                let label = if result.is_ok() {
                    AttemptResult::CheckOk
                } else {
                    AttemptResult::CheckFailed
                };
                state.count_attempt(&snap, i, label);
                match result {
                    Ok(()) => {
                        if !was_up {
                            tracing::info!(backend = %target.name, "active health check passed; back in service");
                        }
                        h.check_passed();
                    }
                    Err(why) => {
                        if was_up {
                            tracing::warn!(backend = %target.name, %why, "active health check failed; out of service until it passes");
                        }
                        h.check_failed();
                    }
                }
                h.checking.store(false, Ordering::Release);
            });
        }
    }
}

/// One GET of the backend's check path: 2xx within the timeout passes.
async fn check_once(
    state: &AppState,
    target: &crate::router::backend::BackendTarget,
) -> Result<(), String> {
    let Some(check) = &target.health_check else {
        return Ok(());
    };
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(target.uri(&check.path).map_err(|e| e.to_string())?);
    for (name, value) in &target.credentials {
        req = req.header(name, value);
    }
    let req = req
        .body(Full::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(check.timeout, async {
        let resp = state.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        // Read the (small) body so the connection goes back to the pool.
        let _ = resp.into_body().collect().await;
        Ok::<_, String>(status)
    })
    .await
    .map_err(|_| format!("no answer within {}s", check.timeout.as_secs_f64()))??;
    if answer.is_success() {
        Ok(())
    } else {
        Err(format!("answered {answer}"))
    }
}
