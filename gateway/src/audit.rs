//! The audit log: one JSON line per request, written off the request path (to stdout or a
//! file here; to an OpenTelemetry collector through [`crate::telemetry::AuditLogs`]).
//!
//! Lines go through a bounded channel to a writer thread, so a slow disk or a blocked stdout
//! never stalls a request. If the channel is full the line is counted in
//! `llmkube_audit_dropped_total` and a warning is logged, instead of growing memory without bound.
//!
//! The writer wakes on a short interval and writes everything queued at once, instead of being
//! woken by every request: a wake-up per line cost two context switches per request on the
//! request path's core (found by profiling, see bench/RESULTS.md).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use prometheus_client::metrics::counter::Counter;

/// Lines buffered between requests and the writer thread.
const QUEUE: usize = 16 * 1024;
/// How often the writer drains the queue: an audit line reaches its sink within this.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Standard output.
    Stdout,
    /// Appended to a file.
    File(PathBuf),
    /// OTLP log records to the configured collector.
    Otlp,
}

/// A running audit writer.
pub struct AuditWriter {
    target: AuditTarget,
    sink: Sink,
}

enum Sink {
    Lines(LineWriter),
    Otlp(crate::telemetry::AuditLogs),
}

/// The writer thread of the stdout and file sinks.
struct LineWriter {
    tx: SyncSender<String>,
    dropped: Counter,
    /// Set by [`AuditWriter::close`]: write what is queued and stop.
    closing: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// A writer for the OTLP sink.
    pub fn otlp(logs: crate::telemetry::AuditLogs) -> Self {
        AuditWriter {
            target: AuditTarget::Otlp,
            sink: Sink::Otlp(logs),
        }
    }

    /// Starts a writer thread for a stdout or file `target`; `dropped` counts lines that could
    /// not be queued.
    pub fn start(target: AuditTarget, dropped: Counter) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match &target {
            AuditTarget::Stdout => Box::new(std::io::stdout()),
            AuditTarget::File(path) => Box::new(open_append(path)?),
            AuditTarget::Otlp => {
                return Err(std::io::Error::other(
                    "the OTLP sink starts with AuditWriter::otlp",
                ));
            }
        };
        let (tx, rx) = sync_channel(QUEUE);
        let closing = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&closing);
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_lines(rx, out, &stop))?;
        Ok(AuditWriter {
            target,
            sink: Sink::Lines(LineWriter {
                tx,
                dropped,
                closing,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Writes every queued line now and stops the writer (at shutdown, so that no line of a
    /// finished request is lost when the process exits). Lines queued later are dropped.
    /// Blocks: call it off the runtime's worker threads.
    pub fn close(&self) {
        let w = match &self.sink {
            Sink::Lines(w) => w,
            Sink::Otlp(logs) => return logs.close(),
        };
        w.closing.store(true, Ordering::Release);
        let thread = w.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }

    /// Where this writer writes.
    pub fn target(&self) -> &AuditTarget {
        &self.target
    }

    /// Queues one line (without its newline). Never blocks.
    pub fn write(&self, line: String) {
        let w = match &self.sink {
            Sink::Lines(w) => w,
            Sink::Otlp(logs) => return logs.write(line),
        };
        match w.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if w.dropped.inc().is_multiple_of(1000) {
                    tracing::warn!("audit writer is not keeping up; audit lines are being dropped");
                }
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>, closing: &AtomicBool) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    loop {
        // Nobody waits on the channel, so sending a line never wakes this thread; `close`
        // unparks it.
        std::thread::park_timeout(FLUSH_INTERVAL);
        let stop = closing.load(Ordering::Acquire);
        let (mut ok, mut wrote) = (true, false);
        let disconnected = loop {
            match rx.try_recv() {
                Ok(line) => {
                    ok &= writeln!(out, "{line}").is_ok();
                    wrote = true;
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if wrote && !(ok && out.flush().is_ok()) {
            tracing::error!("failed to write audit lines");
        }
        if disconnected || stop {
            return;
        }
    }
}
