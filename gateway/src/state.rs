//! State shared by every connection of a running gateway.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::http::client::HttpClient;
use crate::metrics::{AttemptLabels, BackendLabels, Metrics, RouterLabels};
use crate::router::bundle::RouterBundle;
use crate::router::health::now_ms;
use crate::router::snapshot::{RouterSnapshot, SnapshotBuilder};

/// Most shadow copies in flight at once; beyond it copies are skipped and counted.
pub const SHADOW_SLOTS: usize = 256;

/// Everything a request handler needs.
pub struct AppState {
    /// The router currently served; swapped atomically on reload.
    pub router: ArcSwap<RouterSnapshot>,
    /// Pooled upstream client.
    pub client: HttpClient,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Prepares the router's next versions.
    pub builder: SnapshotBuilder,
    /// The bundle being served and its content hash; held while a new version is swapped in,
    /// so the watchers and a manual reload never race.
    pub served: Mutex<(u64, Arc<RouterBundle>)>,
    /// Bounds shadow traffic.
    pub shadow_slots: Arc<Semaphore>,
    /// Set on shutdown: `/readyz` turns 503 so load balancers stop sending.
    pub draining: AtomicBool,
    /// Memory shared by every buffered request body.
    pub body_budget: Arc<crate::request::body_budget::BodyBudget>,
    /// Starts request traces, when the gateway exports them.
    pub tracer: Option<Arc<crate::telemetry::Tracer>>,
}

impl AppState {
    /// Counts one upstream attempt.
    pub fn count_attempt(
        &self,
        snap: &RouterSnapshot,
        backend: usize,
        result: crate::metrics::AttemptResult,
    ) {
        self.metrics
            .attempts
            .get_or_create(&AttemptLabels {
                router: Arc::clone(&snap.name),
                backend: Arc::clone(&snap.backends[backend].name),
                result,
            })
            .inc();
    }

    /// Refreshes the health gauges from the current snapshot (called when metrics are scraped).
    pub fn refresh_health_gauges(&self) {
        let snap = self.router.load();
        let now = now_ms();
        let mut active = 0;
        for b in &snap.backends {
            let up = b.health.in_service(now);
            active += i64::from(up);
            self.metrics
                .backend_health
                .get_or_create(&BackendLabels {
                    router: Arc::clone(&snap.name),
                    backend: Arc::clone(&b.name),
                })
                .set(i64::from(up));
        }
        self.metrics
            .active_backends
            .get_or_create(&RouterLabels {
                router: Arc::clone(&snap.name),
            })
            .set(active);
    }
}
