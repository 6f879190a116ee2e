//! `llmkube-mock-upstream`: a mock OpenAI-compatible server for demos and benchmarks.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use llmkube_mock_upstream::{Behavior, MockUpstream};

/// Mock OpenAI-compatible inference server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: SocketAddr,
    /// Name reported in answers ("Hello from NAME") and the x-mock-backend header.
    #[arg(long, default_value = "mock")]
    name: String,
    /// SSE chunks per streamed answer.
    #[arg(long, default_value_t = 4)]
    chunks: usize,
    /// Gap between SSE chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    gap_ms: u64,
    /// Delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Status code of every answer.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// Runtime worker threads (default: one per core; 1 runs on a single thread).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let behavior = Behavior {
        status: args.status,
        header_delay: Duration::from_millis(args.delay_ms),
        chunks: args.chunks,
        chunk_gap: Duration::from_millis(args.gap_ms),
        record: false,
        ..Behavior::default()
    };
    let mock = MockUpstream::start_on(args.listen, &args.name, behavior).await?;
    eprintln!("mock upstream {:?} listening on {}", args.name, mock.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
