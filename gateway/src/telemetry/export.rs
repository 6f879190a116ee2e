//! The export queue: a bounded channel from the request path to one exporting thread.
//!
//! Pushing never blocks: a full queue drops the item and counts it
//! (`llmkube_otlp_dropped_total{signal}`), so a slow or absent collector costs memory up to the
//! queue's bound and nothing else. The thread wakes every `delay`, or as soon as a full batch
//! waits (one wake-up per batch, not per item), and exports on the runtime the queue was
//! started from: the OTLP clients need tokio, and a blocked export only delays this thread.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

/// Bounds and pace of one queue (the `OTEL_BSP_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Items held at most; more are dropped.
    pub capacity: usize,
    /// Items per export call at most.
    pub batch: usize,
    /// Longest an item waits before it is exported.
    pub delay: Duration,
}

impl Default for QueueSettings {
    /// The OpenTelemetry defaults, except the delay: 1 s rather than 5, so that a busy
    /// gateway's queue turns over before it fills.
    fn default() -> Self {
        QueueSettings {
            capacity: 2048,
            batch: 512,
            delay: Duration::from_secs(1),
        }
    }
}

/// A running queue of `T`.
pub struct ExportQueue<T> {
    tx: SyncSender<T>,
    queued: Arc<AtomicUsize>,
    batch: usize,
    dropped: Counter,
    closing: Arc<AtomicBool>,
    waker: Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static> ExportQueue<T> {
    /// Starts the exporting thread `name`; `export` sends one batch. Must be called inside a
    /// tokio runtime, which the exports then run on.
    pub fn start<F, Fut>(
        name: &str,
        settings: QueueSettings,
        dropped: Counter,
        export: F,
    ) -> std::io::Result<Self>
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| std::io::Error::other(format!("OTLP export needs a runtime: {e}")))?;
        let (tx, rx) = sync_channel(settings.capacity.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let drain = Drain {
            rx,
            queued: Arc::clone(&queued),
            closing: Arc::clone(&closing),
            settings,
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || drain.run(&runtime, export))?;
        Ok(ExportQueue {
            tx,
            queued,
            batch: settings.batch.max(1),
            dropped,
            closing,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one item. Never blocks.
    pub fn push(&self, item: T) {
        if self.tx.try_send(item).is_err() {
            if self.dropped.inc().is_multiple_of(1000) {
                tracing::warn!("OTLP export is not keeping up; telemetry is being dropped");
            }
            return;
        }
        if (self.queued.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(self.batch) {
            self.waker.unpark();
        }
    }

    /// Exports what is queued and stops the thread (at shutdown). Blocks: call it off the
    /// runtime's worker threads.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The exporting thread's side.
struct Drain<T> {
    rx: Receiver<T>,
    queued: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    settings: QueueSettings,
}

impl<T> Drain<T> {
    fn run<F, Fut>(self, runtime: &tokio::runtime::Handle, mut export: F)
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let batch = self.settings.batch.max(1);
        loop {
            std::thread::park_timeout(self.settings.delay);
            let stop = self.closing.load(Ordering::Acquire);
            loop {
                let mut items = Vec::with_capacity(batch.min(self.queued.load(Ordering::Relaxed)));
                let disconnected = loop {
                    if items.len() == batch {
                        break false;
                    }
                    match self.rx.try_recv() {
                        Ok(item) => items.push(item),
                        Err(TryRecvError::Empty) => break false,
                        Err(TryRecvError::Disconnected) => break true,
                    }
                };
                let (n, full) = (items.len(), items.len() == batch);
                if n > 0 {
                    self.queued.fetch_sub(n, Ordering::Relaxed);
                    runtime.block_on(export(items));
                }
                if disconnected {
                    return;
                }
                if !full {
                    break;
                }
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(capacity: usize, batch: usize) -> (ExportQueue<u32>, Counter, Batches) {
        let dropped = Counter::default();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let settings = QueueSettings {
            capacity,
            batch,
            delay: Duration::from_secs(3600),
        };
        let queue = ExportQueue::start("test-export", settings, dropped.clone(), move |b| {
            let _ = tx.send(b);
            async {}
        })
        .unwrap();
        (queue, dropped, rx)
    }

    type Batches = tokio::sync::mpsc::UnboundedReceiver<Vec<u32>>;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_full_queue_drops_and_counts_and_close_exports_the_rest() {
        let (queue, dropped, mut rx) = start(4, 100);
        for i in 0..10 {
            queue.push(i);
        }
        assert_eq!(dropped.get(), 6, "four fit, six did not");
        tokio::task::spawn_blocking(move || queue.close())
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap(), vec![0, 1, 2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_full_batch_is_exported_without_waiting_for_the_delay() {
        let (queue, dropped, mut rx) = start(16, 3);
        for i in 0..3 {
            queue.push(i);
        }
        let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(
            batch.unwrap().unwrap(),
            vec![0, 1, 2],
            "the delay is an hour"
        );
        assert_eq!(dropped.get(), 0);
    }
}
