//! `llmkube-bench`: an HTTP load driver for OpenAI-style endpoints.
//!
//! Closed loop (`--concurrency N`: N clients, each sending its next request when the last one
//! ends) or open loop (`--rate R`: requests start on a fixed schedule whatever the answers do,
//! so a slow answer never delays the next request and cannot hide itself: no coordinated
//! omission). Open-loop latency is measured from the moment each request is sent; the timer
//! that releases them has millisecond resolution, so requests due in the same millisecond
//! leave together. With `--stream` it reads SSE answers frame by frame and records time to first
//! byte of the body (first token) and the gaps between frames. Prints one JSON object with
//! HDR-histogram percentiles in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Full URL, e.g. http://127.0.0.1:8080/v1/chat/completions.
    #[arg(long)]
    url: String,
    /// Closed loop: this many clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Open loop: requests per second (overrides the closed loop).
    #[arg(long)]
    rate: Option<u64>,
    /// Measured time, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before it.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Ask for an SSE stream and measure first-token time and inter-chunk gaps.
    #[arg(long)]
    stream: bool,
    /// `model` of the request.
    #[arg(long, default_value = "mock")]
    model: String,
    /// Prompt text (the PII scenario sends a longer one).
    #[arg(long, default_value = "Say hello in one word.")]
    prompt: String,
    /// Extra request header, `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Label copied into the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Closed loop: send exactly this many requests (no warm-up, no time limit) instead of
    /// running for `--duration`; for instruction counts, which want a known number of requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Worker threads of the driver (1 keeps it on one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// What one worker measured.
struct Stats {
    latency: Histogram<u64>,
    ttft: Histogram<u64>,
    gaps: Histogram<u64>,
    ok: u64,
    errors: u64,
}

impl Stats {
    fn new() -> Stats {
        let h = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
        Stats {
            latency: h(),
            ttft: h(),
            gaps: h(),
            ok: 0,
            errors: 0,
        }
    }

    fn merge(&mut self, other: &Stats) {
        // Same bounds: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttft.add(&other.ttft);
        let _ = self.gaps.add(&other.gaps);
        self.ok += other.ok;
        self.errors += other.errors;
    }
}

struct Target {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    stream: bool,
}

/// A request that takes longer than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Target {
    /// [`Target::one`] with a timeout.
    async fn timed(&self, started: Instant, stats: &mut Stats, record: bool) {
        let done = tokio::time::timeout(REQUEST_TIMEOUT, self.one(started, stats, record)).await;
        if done.is_err() && record {
            stats.errors += 1;
        }
    }

    /// Sends one request, reads the whole answer, records it if `record`.
    async fn one(&self, started: Instant, stats: &mut Stats, record: bool) {
        let mut req = Request::post(self.uri.clone())
            .header("content-type", "application/json")
            .body(Full::new(self.body.clone()))
            .expect("valid request");
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let Ok(resp) = self.client.request(req).await else {
            stats.errors += u64::from(record);
            return;
        };
        let ok = resp.status().is_success();
        let mut body = resp.into_body();
        let mut first = None;
        let mut last = None::<Instant>;
        let mut gaps = Vec::new();
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if frame.is_data() {
                        let now = Instant::now();
                        first.get_or_insert(now);
                        if let Some(prev) = last {
                            gaps.push(now - prev);
                        }
                        last = Some(now);
                    }
                }
                Some(Err(_)) => {
                    stats.errors += u64::from(record);
                    return;
                }
                None => break,
            }
        }
        if !record {
            return;
        }
        if !ok {
            stats.errors += 1;
            return;
        }
        let micros = |d: Duration| (d.as_micros() as u64).max(1);
        stats.ok += 1;
        let _ = stats.latency.record(micros(started.elapsed()));
        if self.stream {
            if let Some(first) = first {
                let _ = stats.ttft.record(micros(first - started));
            }
            for g in gaps {
                let _ = stats.gaps.record(micros(g));
            }
        }
    }
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    if h.is_empty() {
        return serde_json::Value::Null;
    }
    json!({
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
        "mean": (h.mean() * 10.0).round() / 10.0,
        "count": h.len(),
    })
}

async fn closed_loop(target: Arc<Target>, args: &Args) -> (Stats, Duration) {
    let began = Instant::now();
    // With `--requests` the count ends the run, and every request is measured.
    let (warm_until, end) = match args.requests {
        Some(_) => (began, None),
        None => (
            began + args.warmup,
            Some(began + args.warmup + args.duration),
        ),
    };
    // Requests left to send with `--requests` (unbounded otherwise).
    let left = Arc::new(AtomicU64::new(args.requests.unwrap_or(u64::MAX)));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (target, left) = (Arc::clone(&target), Arc::clone(&left));
            tokio::spawn(async move {
                let mut stats = Stats::new();
                loop {
                    let started = Instant::now();
                    let more = left
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok();
                    if end.is_some_and(|end| started >= end) || !more {
                        break;
                    }
                    target
                        .timed(started, &mut stats, started >= warm_until)
                        .await;
                }
                stats
            })
        })
        .collect();
    let mut total = Stats::new();
    for w in workers {
        if let Ok(s) = w.await {
            total.merge(&s);
        }
    }
    let measured = match args.requests {
        Some(_) => began.elapsed(),
        None => args.duration,
    };
    (total, measured)
}

async fn open_loop(target: Arc<Target>, args: &Args, rate: u64) -> (Stats, Duration) {
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let warm_until = start + args.warmup;
    let end = warm_until + args.duration;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Stats>();
    let mut n: u32 = 0;
    loop {
        let scheduled = start + interval * n;
        if scheduled >= end {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let (target, tx) = (Arc::clone(&target), tx.clone());
        tokio::spawn(async move {
            let mut stats = Stats::new();
            // Latency counts from the scheduled start: a late send is the server's delay.
            target
                .timed(scheduled, &mut stats, scheduled >= warm_until)
                .await;
            let _ = tx.send(stats);
        });
        n += 1;
    }
    drop(tx);
    let mut total = Stats::new();
    while let Some(s) = rx.recv().await {
        total.merge(&s);
    }
    (total, args.duration)
}

fn main() {
    let args = Args::parse();
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(connector);
    let headers = args
        .headers
        .iter()
        .filter_map(|h| {
            let (k, v) = h.split_once(':')?;
            Some((
                HeaderName::from_bytes(k.trim().as_bytes()).ok()?,
                HeaderValue::from_str(v.trim()).ok()?,
            ))
        })
        .collect();
    let body = json!({
        "model": args.model,
        "stream": args.stream,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": args.prompt}],
    });
    let target = Arc::new(Target {
        client,
        uri: args.url.parse().expect("a valid --url"),
        headers,
        body: Bytes::from(body.to_string()),
        stream: args.stream,
    });
    let (stats, measured) = match args.rate {
        Some(rate) => open_loop(target, &args, rate).await,
        None => closed_loop(target, &args).await,
    };
    let out = json!({
        "label": args.label,
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "concurrency": args.concurrency,
        "rate": args.rate,
        "stream": args.stream,
        "ok": stats.ok,
        "errors": stats.errors,
        "rps": (stats.ok as f64 / measured.as_secs_f64()).round(),
        "latency_us": percentiles(&stats.latency),
        "ttft_us": percentiles(&stats.ttft),
        "gap_us": percentiles(&stats.gaps),
    });
    println!("{out}");
}
