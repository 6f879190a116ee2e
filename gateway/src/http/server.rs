//! Accepting connections (plain or TLS, HTTP/1.1 and HTTP/2) and draining them on shutdown.
//!
//! Every connection is bounded whatever the client does: at most `max_connections` are open
//! (more are refused at accept and counted); one that has not completed a request's headers
//! within the header-read timeout from accept is closed (hyper's own timer only starts with
//! the first byte, and HTTP version detection waits for bytes forever); one with no request in
//! flight for the idle timeout is closed; HTTP/2 peers are pinged and dropped when they stop
//! answering.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::http::body::{BoxError, GatewayBody};
use crate::http::protocol::{self, Protocol};
use crate::http::tls::ClientCert;
use crate::router::health::now_ms;
use crate::state::AppState;

/// Longest time a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds on connections and on the memory of buffered request bodies.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Most client connections open at once (per listener).
    pub max_connections: usize,
    /// Time from accept (or the end of the previous request) to a request's complete headers.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed. (An HTTP/1 keep-alive
    /// connection also closes when the next request's headers take longer than
    /// `header_read_timeout`: hyper starts that timer as soon as the previous response ends.)
    pub idle_timeout: Duration,
    /// HTTP/2 ping interval; a peer that does not answer within the same time is dropped.
    pub h2_keep_alive: Duration,
    /// Memory shared by every buffered request body, in bytes.
    pub body_memory_bytes: u64,
    /// How long a request waits for body memory before 503.
    pub body_memory_wait: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            h2_keep_alive: Duration::from_secs(30),
            body_memory_bytes: 512 << 20,
            body_memory_wait: Duration::from_secs(2),
        }
    }
}

/// What a connection is doing, for its idle watchdog.
#[derive(Debug, Default)]
struct Activity {
    /// Requests whose response has not finished.
    in_flight: AtomicUsize,
    /// `now_ms()` when the last request started or ended; 0 before the first.
    last: AtomicU64,
}

/// Marks a request in flight until dropped with its response body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.last.store(now_ms(), Ordering::Release);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last.store(now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    body: GatewayBody,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Resolves when the connection has been idle too long: no complete request headers within
/// the header-read timeout of accept, or no request in flight for the idle timeout.
async fn idle_watch(activity: &Activity, limits: &ServerLimits) {
    let accepted = now_ms();
    loop {
        let last = activity.last.load(Ordering::Acquire);
        let (since, limit) = if last == 0 {
            (accepted, limits.header_read_timeout)
        } else {
            (last, limits.idle_timeout)
        };
        let due = since + limit.as_millis() as u64;
        let now = now_ms();
        if now >= due {
            if activity.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            // Busy: look again after another full period.
            tokio::time::sleep(limit).await;
        } else {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
    }
}

/// Connection builders: one per known HTTP version, which hands the socket to hyper untouched,
/// and one that detects the version by reading (see [`crate::http::protocol`]).
struct Builders {
    detect: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &ServerLimits) -> Self {
        let mut detect = auto::Builder::new(TokioExecutor::new());
        detect
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        detect
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(limits.h2_keep_alive)
            .keep_alive_timeout(limits.h2_keep_alive);
        Builders {
            http1: detect.clone().http1_only(),
            http2: detect.clone().http2_only(),
            detect,
        }
    }

    fn get(&self, protocol: Option<Protocol>) -> &auto::Builder<TokioExecutor> {
        match protocol {
            Some(Protocol::Http1) => &self.http1,
            Some(Protocol::Http2) => &self.http2,
            None => &self.detect,
        }
    }
}

/// Serves `listener` with `handler` until `stop` flips, then lets open connections finish
/// within `grace` (streams in flight included) and returns.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    handler: H,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    limits: ServerLimits,
) where
    H: Fn(Arc<AppState>, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<GatewayBody>, Infallible>> + Send + 'static,
{
    let builders = Arc::new(Builders::new(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            state.metrics.connections_refused.inc();
            tracing::debug!(%peer, "connection refused: at the connection cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        // Set once the TLS handshake is done, when the client presented a certificate.
        let client_cert: Arc<OnceLock<Arc<ClientCert>>> = Arc::default();
        let service = {
            let (state, activity) = (Arc::clone(&state), Arc::clone(&activity));
            let handler = handler.clone();
            let client_cert = Arc::clone(&client_cert);
            service_fn(move |mut req: Request<Incoming>| {
                if let Some(cert) = client_cert.get() {
                    req.extensions_mut().insert(Arc::clone(cert));
                }
                let in_flight = InFlight::start(&activity);
                // Boxed here, so hyper moves a pointer: the request's future is several KiB
                // and was copied whole twice per request (15,600 of the 131,000 instructions
                // of a request with rules and the PII detector, counted with callgrind).
                let response = Box::pin(handler(Arc::clone(&state), req));
                async move {
                    let response = response.await?;
                    Ok::<_, Infallible>(response.map(|body| Tracked {
                        body,
                        _in_flight: in_flight,
                    }))
                }
            })
        };
        let builders = Arc::clone(&builders);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let (limits, state) = (Arc::clone(&limits), Arc::clone(&state));
        state.metrics.connections.inc();
        tokio::spawn(async move {
            let _slot = slot;
            let served = async {
                match tls {
                    None => {
                        let builder = builders.get(protocol::sniff(&stream).await);
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls_stream)) => {
                                let session = tls_stream.get_ref().1;
                                if let Some(cert) = session
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .and_then(|c| ClientCert::from_der(c))
                                {
                                    let _ = client_cert.set(Arc::new(cert));
                                }
                                let builder =
                                    builders.get(protocol::from_alpn(session.alpn_protocol()));
                                let conn =
                                    builder.serve_connection(TokioIo::new(tls_stream), service);
                                watcher.watch(conn.into_owned()).await
                            }
                            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
                            Err(_) => Err("TLS handshake timed out".into()),
                        }
                    }
                }
            };
            tokio::select! {
                result = served => if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended with error: {e}");
                },
                () = idle_watch(&activity, &limits) => {
                    tracing::debug!(%peer, "connection closed: idle");
                }
            }
            state.metrics.connections.dec();
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "grace period of {grace:?} elapsed with connections still open; closing them"
        );
    }
}
