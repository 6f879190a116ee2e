//! Response bodies: small ones the gateway writes itself, and backend streams passed through
//! frame by frame.
//!
//! A backend stream is moved by its own task (the pump) into a channel of a few frames that
//! the client's connection drains. The pump owns the stream's timers, so they run whether or
//! not the client reads: the backend's idle timeout between chunks, the optional total cap,
//! and the client's: a client that takes no data for the idle timeout gets its stream cut and
//! the backend connection released (a llama.cpp server has only a few slots), with the audit
//! outcome `client_stalled`. A stream cut after it started ends with an SSE `error` event and
//! a clean close when the backend stopped between events; inside an event, or for a non-SSE
//! body, it is aborted instead, the only honest signal left once headers are sent (see
//! [`crate::http::sse`]). Memory per stream stays at the channel's few frames.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::http::error_shape::error_json;
use crate::http::sse::SseFraming;

/// Boxed error of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Frames a stream may hold between the backend and the client: enough to keep both sides
/// busy, few enough that a slow client costs little memory.
const STREAM_BUFFER_FRAMES: usize = 4;

/// Every response body the gateway sends.
pub struct GatewayBody(Kind);

enum Kind {
    Full(Option<Bytes>),
    Upstream(Box<Downstream>),
}

/// The client's end of a pumped backend stream.
struct Downstream {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    /// Set by the pump once everything it will ever send is in the channel.
    complete: Arc<AtomicBool>,
    size: SizeHint,
    done: bool,
}

/// Sees a pumped stream pass; the request record implements it to account for the request
/// (bytes, time to first byte, usage, and its one audit line when the stream ends).
pub trait StreamWatch: Send + 'static {
    /// `data` came from the backend (never empty); returns what goes on to the client, which
    /// may be less (a chunk taken out) or nothing yet (held until it is complete).
    fn pass(&mut self, data: Bytes) -> Bytes;
    /// The backend's body ended: what is still held goes to the client.
    fn flush(&mut self) -> Option<Bytes>;
    /// The stream is over, however it ended.
    fn ended(self, end: StreamEnd);
    /// The SSE `error` event that ends a stream the gateway cut, in the client's format.
    fn error_event(&self, message: &str, code: &str) -> Bytes {
        Bytes::from(format!(
            "event: error\ndata: {}\n\n",
            error_json(message, "stream_error", None, code)
        ))
    }
}

/// How a pumped stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// Everything the backend sent reached the channel; `sse` tells an event stream.
    Complete {
        /// Whether the body was an event stream.
        sse: bool,
    },
    /// The client went away.
    ClientGone,
    /// The client took no data for the idle timeout (the message says how long).
    ClientStalled(String),
    /// The backend failed, idled out or the total cap passed.
    Cut(String),
}

/// The stream's time limits.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Longest wait for the backend's next chunk, and for the client to take one.
    pub idle_timeout: Duration,
    /// Cap on the whole response.
    pub max_duration: Option<Duration>,
}

impl GatewayBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        GatewayBody(Kind::Full(Some(bytes.into())))
    }

    /// A backend's body, streamed through under `limits` by a pump task that tells `watch`
    /// what it sends and, once, how the stream ended.
    pub fn upstream(
        body: Incoming,
        sse: bool,
        limits: StreamLimits,
        watch: impl StreamWatch,
    ) -> Self {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER_FRAMES);
        let complete = Arc::new(AtomicBool::new(false));
        // An SSE stream may gain an error event, so its length is never promised.
        let size = if sse {
            SizeHint::default()
        } else {
            body.size_hint()
        };
        let pump = Pump {
            body,
            tx,
            sse,
            limits,
            watch,
            complete: Arc::clone(&complete),
            framing: SseFraming::default(),
        };
        tokio::spawn(pump.run());
        GatewayBody(Kind::Upstream(Box::new(Downstream {
            rx,
            complete,
            size,
            done: false,
        })))
    }
}

/// Moves one backend stream to its client under the stream's timers.
struct Pump<W> {
    body: Incoming,
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    sse: bool,
    limits: StreamLimits,
    watch: W,
    complete: Arc<AtomicBool>,
    framing: SseFraming,
}

/// Why a stream stopped early.
enum Stop {
    /// The client went away.
    ClientGone,
    /// The client took nothing for the idle timeout.
    ClientStalled,
    /// The backend failed, idled out or the total cap passed.
    Cut(String, &'static str),
}

impl<W: StreamWatch> Pump<W> {
    async fn run(mut self) {
        let started = Instant::now();
        let deadline = self.limits.max_duration.map(|d| started + d);
        let end = match self.pump(deadline).await {
            Ok(()) => {
                self.complete.store(true, Ordering::Release);
                StreamEnd::Complete { sse: self.sse }
            }
            Err(Stop::ClientGone) => StreamEnd::ClientGone,
            Err(Stop::ClientStalled) => {
                let idle = self.limits.idle_timeout.as_secs_f64();
                StreamEnd::ClientStalled(format!("the client took no data for {idle}s"))
            }
            Err(Stop::Cut(message, code)) => {
                let clean = self.sse && self.framing.at_boundary();
                let last = if clean {
                    Ok(Frame::data(self.watch.error_event(&message, code)))
                } else {
                    Err(BoxError::from(message.clone()))
                };
                // The event is best effort: a full channel means a client that is not reading.
                if self.tx.try_send(last).is_ok() && clean {
                    self.complete.store(true, Ordering::Release);
                }
                StreamEnd::Cut(message)
            }
        };
        // Dropping the backend body releases its connection.
        drop(self.body);
        self.watch.ended(end);
    }

    async fn pump(&mut self, deadline: Option<Instant>) -> Result<(), Stop> {
        let idle = self.limits.idle_timeout;
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let cap = deadline.unwrap_or(far);
        loop {
            let wait_until = (Instant::now() + idle).min(cap);
            let next = tokio::select! {
                biased;
                frame = self.body.frame() => frame,
                () = self.tx.closed() => return Err(Stop::ClientGone),
                () = sleep_until(wait_until) => {
                    return Err(if deadline.is_some_and(|d| Instant::now() >= d) {
                        Stop::Cut("the response exceeded the maximum stream duration".into(), "stream_max_duration")
                    } else {
                        Stop::Cut(format!("the backend sent nothing for {}s", idle.as_secs_f64()), "stream_idle_timeout")
                    });
                }
            };
            let frame = match next {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    return Err(Stop::Cut(
                        format!("the backend stream failed: {e}"),
                        "upstream_stream_error",
                    ));
                }
            };
            let end = self.body.is_end_stream();
            match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => {
                    let data = self.watch.pass(data);
                    self.send_data(data, cap).await?;
                }
                // Trailers pass as they are.
                Err(frame) => self.send(frame, cap).await?,
            }
            if end {
                break;
            }
        }
        if let Some(rest) = self.watch.flush() {
            self.send_data(rest, cap).await?;
        }
        Ok(())
    }

    async fn send_data(&mut self, data: Bytes, cap: Instant) -> Result<(), Stop> {
        if data.is_empty() {
            return Ok(());
        }
        if self.sse {
            self.framing.feed(&data);
        }
        self.send(Frame::data(data), cap).await
    }

    /// Hands one frame to the client side, waiting at most the idle timeout for room.
    async fn send(&mut self, frame: Frame<Bytes>, cap: Instant) -> Result<(), Stop> {
        let frame = match self.tx.try_send(Ok(frame)) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Stop::ClientGone),
            Err(mpsc::error::TrySendError::Full(frame)) => frame,
        };
        let until = (Instant::now() + self.limits.idle_timeout).min(cap);
        tokio::select! {
            sent = self.tx.send(frame) => sent.map_err(|_| Stop::ClientGone),
            () = sleep_until(until) => Err(if Instant::now() >= cap {
                Stop::Cut("the response exceeded the maximum stream duration".into(), "stream_max_duration")
            } else {
                Stop::ClientStalled
            }),
        }
    }
}

impl Downstream {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                self.done = true;
                if self.complete.load(Ordering::Acquire) {
                    Poll::Ready(None)
                } else {
                    // The pump gave up (a stalled client): abort rather than end cleanly.
                    Poll::Ready(Some(Err("the stream was cut".into())))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match &mut self.get_mut().0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream(stream) => stream.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(stream) => stream.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream(s) => s.size,
        }
    }
}
