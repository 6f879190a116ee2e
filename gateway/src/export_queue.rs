//! A bounded queue from the request path to one background thread that writes what is queued
//! in batches: audit lines to stdout or a file, spans and audit records to an OTLP collector.
//!
//! Pushing never blocks: a full queue drops the item and counts it (the caller's counter, e.g.
//! `llmkube_audit_dropped_total`), so a slow disk or an absent collector costs memory up to the
//! queue's bound and nothing else. The thread wakes every `delay`, or as soon as a full batch
//! waits, instead of being woken by every item: a wake-up per audit line cost two context
//! switches per request on the request path's core (found by profiling, see bench/RESULTS.md).
//!
//! The channel is unbounded and the bound is the queue's own count: a bounded channel
//! allocates and initialises every slot up front (512 KiB for 2,048 audit lines, seen with
//! massif, on a gateway that may never queue more than a few), while this one holds blocks of
//! items only while they wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

/// Bounds and pace of one queue (for spans, the `OTEL_BSP_*` settings).
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
    tx: Sender<T>,
    /// Items pushed and not yet taken by the thread; never more than `capacity`.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    batch: usize,
    dropped: Counter,
    closing: Arc<AtomicBool>,
    waker: Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static> ExportQueue<T> {
    /// Starts the thread `name`; `export` writes one batch (on that thread: it may block).
    pub fn start(
        name: &str,
        settings: QueueSettings,
        dropped: Counter,
        export: impl FnMut(Vec<T>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel();
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
            .spawn(move || drain.run(export))?;
        Ok(ExportQueue {
            tx,
            queued,
            capacity: settings.capacity.max(1),
            batch: settings.batch.max(1),
            dropped,
            closing,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one item. Never blocks.
    pub fn push(&self, item: T) {
        // Counted before it is sent, so that the thread, which uncounts what it takes, never
        // takes the count below zero.
        let queued = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        // Full, or the thread is gone (after `close`).
        if queued > self.capacity || self.tx.send(item).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            if self.dropped.inc().is_multiple_of(1000) {
                let name = self.waker.name().unwrap_or_default();
                tracing::warn!(
                    queue = name,
                    "a background writer is not keeping up; records are being dropped"
                );
            }
            return;
        }
        if queued.is_multiple_of(self.batch) {
            self.waker.unpark();
        }
    }

    /// Writes what is queued and stops the thread (at shutdown). Items pushed later are
    /// dropped. Blocks: call it off the runtime's worker threads.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The thread's side.
struct Drain<T> {
    rx: Receiver<T>,
    queued: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    settings: QueueSettings,
}

impl<T> Drain<T> {
    fn run(self, mut export: impl FnMut(Vec<T>)) {
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
                    export(items);
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
