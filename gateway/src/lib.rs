//! `llmkube-gateway`: an OpenAI-compatible gateway that routes each request by `ModelRouter`
//! rules and streams the answer back from local inference servers or external providers.
//!
//! [`start`] runs a gateway from a ModelRouter YAML file (standalone mode) or from its
//! ConfigMap through the Kubernetes API (Kubernetes mode) and returns a handle; the
//! `llmkube-gateway` binary is a thin CLI around it.

mod audit;
mod auth;
mod budget;
mod dialect;
pub mod explain;
mod export_queue;
mod http;
mod metrics;
pub mod policy;
mod request;
mod router;
mod routes;
mod state;
mod telemetry;
mod usage;

pub use dialect::stream::{StreamContext, StreamTranslator};
pub use dialect::{Api, Conversion};
pub use export_queue::QueueSettings;
pub use http::client::ClientError;
pub use http::server::ServerLimits;
pub use http::sse::SseFraming;
pub use http::tls::TlsError;
pub use request::body_text::BodyText;
pub use request::json_body::{JsonBody, parse_json_body};
pub use router::backend::ResolveOptions;
#[cfg(feature = "kubernetes")]
pub use router::kube_source::ConfigMapSource;
pub use router::reload::ReloadError;
pub use telemetry::{OtlpConfig, OtlpProtocol, TelemetryError};
pub use usage::UsageMeter;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::state::AppState;

/// Connections the kernel may queue on a listener before the gateway accepts them.
const LISTEN_BACKLOG: u32 = 4096;

/// Where the router comes from.
#[derive(Debug, Clone)]
pub enum RouterSource {
    /// A ModelRouter YAML file (a single object or a multi-document file).
    File(PathBuf),
    /// The gateway's ConfigMap, read and watched through the Kubernetes API.
    #[cfg(feature = "kubernetes")]
    ConfigMap(ConfigMapSource),
}

/// How to run a gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the router comes from.
    pub source: RouterSource,
    /// Which ModelRouter of the file, when it holds several.
    pub router_name: Option<String>,
    /// API listener (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Separate listener for `/metrics` (the original's port 9090).
    pub metrics_listen: Option<SocketAddr>,
    /// Inbound TLS certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// CA bundle (PEM) client certificates on the TLS listener are verified against; a
    /// router's `spec.auth.clientCertificates` authenticates by them.
    pub tls_client_ca: Option<PathBuf>,
    /// Extra CA bundle (PEM) trusted for upstream TLS, besides the system roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Backend addresses and credentials.
    pub resolve: ResolveOptions,
    /// Upstream TCP connect timeout.
    pub connect_timeout: Duration,
    /// How long streams in flight may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Watch the router file and hot-reload it.
    pub watch: bool,
    /// Limits of policy evaluation.
    pub policy: policy::EngineSettings,
    /// Directory of built-in policies (the PII detector); default: `policies/` next to the
    /// binary, else `/usr/share/llmkube/policies`.
    pub policy_dir: Option<PathBuf>,
    /// Bounds on connections and buffered bodies, whatever the clients do.
    pub limits: ServerLimits,
    /// OpenTelemetry export: request traces and the `otlp` audit sink's collector.
    pub otlp: telemetry::OtlpConfig,
}

impl GatewayConfig {
    /// Defaults for a router file: loopback on a free port, watching the file.
    pub fn new(router_file: impl Into<PathBuf>) -> Self {
        Self::with_source(RouterSource::File(router_file.into()))
    }

    /// Defaults for any source: loopback on a free port, watching for changes.
    pub fn with_source(source: RouterSource) -> Self {
        GatewayConfig {
            source,
            router_name: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            tls: None,
            tls_client_ca: None,
            extra_ca_file: None,
            resolve: ResolveOptions::default(),
            connect_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            watch: true,
            policy: policy::EngineSettings::default(),
            policy_dir: None,
            limits: ServerLimits::default(),
            otlp: telemetry::OtlpConfig::default(),
        }
    }
}

/// Why a gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The router file is missing or invalid.
    #[error(transparent)]
    Router(#[from] ReloadError),
    /// The upstream client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Inbound TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The WebAssembly engine could not be set up.
    #[error(transparent)]
    Engine(#[from] policy::engine::EngineError),
    /// OpenTelemetry export could not be set up.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A running gateway.
pub struct RunningGateway {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// Where the metrics listener listens, if any.
    pub metrics_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    config: GatewayConfig,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
    credentials_watcher: Option<JoinHandle<()>>,
    checker: JoinHandle<()>,
}

/// Loads the router, binds the listeners and starts serving.
pub async fn start(config: GatewayConfig) -> Result<RunningGateway, StartError> {
    let metrics = Arc::new(Metrics::new());
    let client =
        http::client::build_client(config.extra_ca_file.as_deref(), config.connect_timeout)?;
    let mut otlp = config.otlp.clone();
    otlp.extra_ca = otlp.extra_ca.or_else(|| config.extra_ca_file.clone());
    let signal = |signal| metrics::SignalLabels { signal };
    let tracer = if otlp.traces {
        let tracer = telemetry::Tracer::start(
            &otlp,
            metrics
                .otlp_dropped
                .get_or_create(&signal(telemetry::Signal::Traces))
                .clone(),
            (metrics.otlp_export_errors)
                .get_or_create(&signal(telemetry::Signal::Traces))
                .clone(),
        )?;
        tracing::info!(
            "exporting request traces to {}",
            otlp.describe(telemetry::Signal::Traces)
        );
        Some(tracer)
    } else {
        None
    };
    let builder = router::snapshot::SnapshotBuilder {
        resolve: config.resolve.clone(),
        audit_dropped: metrics.audit_dropped.clone(),
        engine: policy::PolicyEngine::new(config.policy.clone())?,
        policy_dir: config.policy_dir.clone(),
        budget_stores: Default::default(),
        http: client.clone(),
        client_certificates: config.tls.is_some() && config.tls_client_ca.is_some(),
        otlp_audit_errors: (metrics.otlp_export_errors)
            .get_or_create(&signal(telemetry::Signal::Logs))
            .clone(),
        otlp: Arc::new(otlp),
    };
    let bundle = match &config.source {
        RouterSource::File(path) => router::reload::read_bundle(path)?,
        #[cfg(feature = "kubernetes")]
        RouterSource::ConfigMap(cm) => cm.fetch().await?,
    };
    let snapshot =
        router::reload::build_snapshot(&bundle, config.router_name.as_deref(), &builder, None)?;
    let hash = bundle.content_hash();
    let tls = match &config.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(http::tls::server_config(
            cert,
            key,
            config.tls_client_ca.as_deref(),
        )?)),
        None => None,
    };
    let body_budget = request::body_budget::BodyBudget::new(
        config.limits.body_memory_bytes,
        config.limits.body_memory_wait,
        metrics.body_bytes.clone(),
    );
    let state = Arc::new(AppState {
        body_budget,
        router: ArcSwap::from_pointee(snapshot),
        client,
        metrics,
        builder,
        served: std::sync::Mutex::new((hash, Arc::new(bundle))),
        shadow_slots: Arc::new(Semaphore::new(state::SHADOW_SLOTS)),
        draining: AtomicBool::new(false),
        tracer,
    });
    let bind = |addr: SocketAddr| async move {
        let listen = || {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            // tokio's default queue of 1,024 pending connections overflows when more clients
            // connect at once (a burst after a restart): the kernel then drops their SYNs and
            // they retry a second or more later. The kernel caps it at net.core.somaxconn.
            socket.listen(LISTEN_BACKLOG)
        };
        listen().map_err(|source| StartError::Bind { addr, source })
    };
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (stop, stop_rx) = watch::channel(false);
    let mut servers = vec![tokio::spawn(http::server::serve(
        listener,
        tls,
        Arc::clone(&state),
        routes::handle,
        stop_rx.clone(),
        config.shutdown_grace,
        config.limits.clone(),
    ))];
    let mut metrics_addr = None;
    if let Some(maddr) = config.metrics_listen {
        let l = bind(maddr).await?;
        metrics_addr = l.local_addr().ok();
        servers.push(tokio::spawn(http::server::serve(
            l,
            None,
            Arc::clone(&state),
            routes::handle_metrics,
            stop_rx,
            Duration::from_secs(1),
            config.limits.clone(),
        )));
    }
    let mut credentials_watcher = None;
    if config.watch
        && let Some(dir) = &config.resolve.credentials_dir
    {
        credentials_watcher = Some(router::reload::spawn_credentials_watcher(
            Arc::clone(&state),
            dir.clone(),
            config.router_name.clone(),
        ));
    }
    let watcher = config.watch.then(|| match &config.source {
        RouterSource::File(path) => router::reload::spawn_watcher(
            Arc::clone(&state),
            path.clone(),
            config.router_name.clone(),
        ),
        #[cfg(feature = "kubernetes")]
        RouterSource::ConfigMap(cm) => {
            cm.spawn_watcher(Arc::clone(&state), config.router_name.clone())
        }
    });
    let checker = tokio::spawn(router::active_checks::run(Arc::clone(&state)));
    let snap = state.router.load();
    tracing::info!(
        %addr,
        router = %snap.name,
        backends = snap.backends.len(),
        rules = snap.table.rules.len(),
        "llmkube-gateway listening"
    );
    drop(snap);
    Ok(RunningGateway {
        addr,
        metrics_addr,
        state,
        config,
        stop,
        servers,
        watcher,
        credentials_watcher,
        checker,
    })
}

impl RunningGateway {
    /// Base URL of the API, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Re-reads the router file now (what the watcher does on change). Returns whether the
    /// router changed; always `false` for a ConfigMap source, which is watched.
    pub fn reload_now(&self) -> Result<bool, ReloadError> {
        match &self.config.source {
            RouterSource::File(path) => {
                router::reload::reload(&self.state, path, self.config.router_name.as_deref(), false)
            }
            #[cfg(feature = "kubernetes")]
            RouterSource::ConfigMap(_) => Ok(false),
        }
    }

    /// The name of the router being served right now.
    pub fn router_name(&self) -> String {
        self.state.router.load().name.to_string()
    }

    /// Stops accepting, lets requests in flight finish within the grace period, and returns.
    pub async fn shutdown(self) {
        self.state.draining.store(true, Ordering::Relaxed);
        for w in self.watcher.iter().chain(&self.credentials_watcher) {
            w.abort();
        }
        self.checker.abort();
        let _ = self.stop.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        // Every request has finished: write the last audit lines and spans before the process
        // exits.
        let audit = Arc::clone(&self.state.router.load().audit);
        let tracer = self.state.tracer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            audit.close();
            if let Some(t) = tracer {
                t.close();
            }
        })
        .await;
    }
}
