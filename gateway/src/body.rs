//! Response bodies: small ones the gateway writes itself, and backend streams passed through
//! frame by frame.
//!
//! A backend stream is never buffered: every frame is handed to hyper as it arrives, so SSE
//! chunks are flushed one by one and memory per stream stays at one frame. The wrapper enforces
//! the idle timeout between chunks and the optional total cap; a stream cut after it started
//! ends with an SSE `error` event and a clean close (a non-SSE body is aborted instead, the only
//! honest signal left once headers are sent).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::error::error_json;
use crate::record::{Outcome, RequestRecord};

/// Boxed error of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the gateway sends.
pub struct GatewayBody(Kind);

enum Kind {
    Full(Option<Bytes>),
    Upstream(Box<UpstreamStream>),
}

impl GatewayBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        GatewayBody(Kind::Full(Some(bytes.into())))
    }

    /// A backend's body, streamed through under the router's timeouts; `record` is finished
    /// when the stream ends, fails or is dropped.
    pub fn upstream(
        body: Incoming,
        sse: bool,
        idle_timeout: Duration,
        max_duration: Option<Duration>,
        record: RequestRecord,
    ) -> Self {
        let now = Instant::now();
        GatewayBody(Kind::Upstream(Box::new(UpstreamStream {
            body,
            sse,
            idle_timeout,
            last_data: now,
            idle: Box::pin(sleep_until(now + idle_timeout)),
            deadline: max_duration.map(|d| Box::pin(sleep_until(now + d))),
            done: false,
            record,
        })))
    }
}

struct UpstreamStream {
    body: Incoming,
    sse: bool,
    idle_timeout: Duration,
    last_data: Instant,
    idle: Pin<Box<Sleep>>,
    deadline: Option<Pin<Box<Sleep>>>,
    done: bool,
    record: RequestRecord,
}

impl UpstreamStream {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = &mut self.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return self.cut(
                "the response exceeded the maximum stream duration",
                "stream_max_duration",
            );
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && !data.is_empty()
                {
                    self.last_data = Instant::now();
                    let r = &mut self.record;
                    r.ttfb.get_or_insert_with(|| r.started.elapsed());
                    r.bytes_out += data.len() as u64;
                }
                // hyper stops polling once a Content-Length body is complete, so the end must
                // be noticed here rather than from a final `None`.
                if self.body.is_end_stream() {
                    self.finish_ok();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => self.cut(
                &format!("the backend stream failed: {e}"),
                "upstream_stream_error",
            ),
            Poll::Ready(None) => {
                self.finish_ok();
                Poll::Ready(None)
            }
            Poll::Pending => {
                // The idle timer is re-armed lazily, from the last data seen, instead of on
                // every frame.
                loop {
                    ready!(self.idle.as_mut().poll(cx));
                    let due = self.last_data + self.idle_timeout;
                    if Instant::now() >= due {
                        let msg = format!(
                            "the backend sent nothing for {}s",
                            self.idle_timeout.as_secs_f64()
                        );
                        return self.cut(&msg, "stream_idle_timeout");
                    }
                    self.idle.as_mut().reset(due);
                }
            }
        }
    }

    fn finish_ok(&mut self) {
        self.done = true;
        self.record.finish(if self.sse {
            Outcome::OkStream
        } else {
            Outcome::Ok
        });
    }

    fn cut(
        &mut self,
        message: &str,
        code: &'static str,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        tracing::warn!(request_id = %self.record.request_id, code, "{message}");
        self.record.error = Some(message.to_owned());
        self.record.finish(Outcome::StreamError);
        if self.sse {
            let event = format!(
                "event: error\ndata: {}\n\n",
                error_json(message, "stream_error", None, code)
            );
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
        } else {
            Poll::Ready(Some(Err(message.to_owned().into())))
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
            // An SSE stream may gain an error event, so its length is never promised.
            Kind::Upstream(s) if s.sse => SizeHint::default(),
            Kind::Upstream(s) => s.body.size_hint(),
        }
    }
}
