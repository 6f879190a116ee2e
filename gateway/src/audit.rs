//! The audit log: one JSON line per request, written off the request path (to stdout or a
//! file, or as OTLP log records through [`crate::telemetry::audit_logs`]).
//!
//! Lines go through a bounded [`ExportQueue`] to a writer thread that wakes every 10 ms, so a
//! slow disk or a blocked stdout never stalls a request. If the queue is full the line is
//! counted in `llmkube_audit_dropped_total` and a warning is logged, instead of growing memory
//! without bound.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use prometheus_client::metrics::counter::Counter;

use crate::export_queue::{ExportQueue, QueueSettings};

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
    queue: ExportQueue<String>,
}

impl AuditWriter {
    /// A writer for the OTLP sink, over the queue [`crate::telemetry::audit_logs`] starts.
    pub fn otlp(queue: ExportQueue<String>) -> Self {
        AuditWriter {
            target: AuditTarget::Otlp,
            queue,
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
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        let settings = QueueSettings {
            capacity: QUEUE,
            batch: QUEUE,
            delay: FLUSH_INTERVAL,
        };
        let queue = ExportQueue::start("audit-writer", settings, dropped, move |lines| {
            // Every line is tried, whatever happened to the one before.
            let failed = lines
                .iter()
                .filter(|line| writeln!(out, "{line}").is_err())
                .count();
            let ok = failed == 0;
            if !(ok && out.flush().is_ok()) {
                tracing::error!("failed to write audit lines");
            }
        })?;
        Ok(AuditWriter { target, queue })
    }

    /// Writes every queued line now and stops the writer (at shutdown, so that no line of a
    /// finished request is lost when the process exits). Lines queued later are dropped.
    /// Blocks: call it off the runtime's worker threads.
    pub fn close(&self) {
        self.queue.close();
    }

    /// Where this writer writes.
    pub fn target(&self) -> &AuditTarget {
        &self.target
    }

    /// Queues one line (without its newline). Never blocks.
    pub fn write(&self, line: String) {
        self.queue.push(line);
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
}
