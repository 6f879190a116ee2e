//! `llmkube-gateway`: run the gateway from a ModelRouter YAML file, or from its ConfigMap
//! through the Kubernetes API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// mimalloc: the request path allocates small, short-lived buffers on every worker thread;
/// glibc's malloc showed up as about 5% of the gateway's CPU under load (bench/RESULTS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use llmkube_gateway::ServerLimits;
use llmkube_gateway::policy::EngineSettings;
use llmkube_gateway::{
    GatewayConfig, OtlpConfig, OtlpProtocol, ResolveOptions, RouterSource, start,
};
use llmkube_router::duration::parse_duration;

/// OpenAI-compatible policy-routing gateway for LLMKube.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// ModelRouter YAML file (one object or a multi-document file); hot-reloaded on change.
    #[arg(long, env = "LLMKUBE_ROUTER_FILE")]
    router: Option<PathBuf>,
    /// Kubernetes mode: serve the router in this ConfigMap (written by llmkube-controller),
    /// watched through the API and hot-swapped on change.
    #[arg(long, env = "LLMKUBE_CONFIG_MAP", conflicts_with = "router")]
    config_map: Option<String>,
    /// Namespace of --config-map (default: the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// Which ModelRouter of the file to serve, when it holds several.
    #[arg(long, env = "LLMKUBE_ROUTER_NAME")]
    router_name: Option<String>,
    /// Address of the OpenAI-compatible API.
    #[arg(long, env = "LLMKUBE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Separate address for /metrics (e.g. 0.0.0.0:9090); /metrics is also on --listen.
    #[arg(long, env = "LLMKUBE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Where to dial a backend, NAME=URL (repeatable). Local backends default to their
    /// in-cluster Service, http://<inferenceService>.<namespace>.svc.cluster.local:8080.
    #[arg(long = "backend-address", env = "LLMKUBE_BACKEND_ADDRESSES", value_delimiter = ',', value_parser = parse_pair)]
    backend_addresses: Vec<(String, String)>,
    /// Directory of mounted Secrets: <dir>/<secretName>/<KEY> (e.g. OPENAI_API_KEY). Without
    /// it, or when the file is missing, the key is read from the environment.
    #[arg(long, env = "LLMKUBE_CREDENTIALS_DIR")]
    credentials_dir: Option<PathBuf>,
    /// URL for litellm backends that set no external.url.
    #[arg(long, env = "LLMKUBE_DEFAULT_LITELLM_URL")]
    default_litellm_url: Option<String>,
    /// Extra CA bundle (PEM) trusted for https backends, besides the system roots.
    #[arg(long, env = "LLMKUBE_EXTRA_CA_FILE")]
    extra_ca_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "LLMKUBE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "LLMKUBE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs whose client certificates the TLS listener accepts (mutual TLS;
    /// a router's spec.auth.clientCertificates then authenticates by them).
    #[arg(long, env = "LLMKUBE_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Upstream TCP connect timeout.
    #[arg(long, default_value = "5s", value_parser = duration)]
    connect_timeout: Duration,
    /// How long streams in flight may take to finish after SIGTERM.
    #[arg(long, env = "LLMKUBE_SHUTDOWN_GRACE", default_value = "30s", value_parser = duration)]
    shutdown_grace: Duration,
    /// Directory of built-in policies (llmkube_pii_detector.wasm); default: policies/ next to
    /// the binary, else /usr/share/llmkube/policies.
    #[arg(long, env = "LLMKUBE_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// CPU-time budget of one policy evaluation (wall-clock cap: ten times this).
    #[arg(long, env = "LLMKUBE_POLICY_DEADLINE", default_value = "5ms", value_parser = duration)]
    policy_deadline: Duration,
    /// Largest linear memory of one policy instance, in MiB.
    #[arg(long, env = "LLMKUBE_POLICY_MEMORY_MIB", default_value_t = 16)]
    policy_memory_mib: usize,
    /// Most policy instances alive at once; beyond it evaluations fail (closed).
    #[arg(long, env = "LLMKUBE_POLICY_MAX_INSTANCES", default_value_t = 512)]
    policy_max_instances: u32,
    /// Do not watch the router file for changes.
    #[arg(long)]
    no_watch: bool,
    /// Threads that serve requests (default: the CPUs this process may use, its cgroup's CPU
    /// quota included). With one, the runtime is single-threaded: no work-stealing
    /// bookkeeping on a core that has no peer to steal from.
    #[arg(long, env = "LLMKUBE_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Most client connections open at once; more are refused at accept.
    #[arg(long, env = "LLMKUBE_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Time from accept (or the previous request) to a request's complete headers.
    #[arg(long, env = "LLMKUBE_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = duration)]
    header_read_timeout: Duration,
    /// A client connection with no request in flight for this long is closed.
    #[arg(long, env = "LLMKUBE_IDLE_TIMEOUT", default_value = "120s", value_parser = duration)]
    idle_timeout: Duration,
    /// HTTP/2 keep-alive ping interval (and the time a ping may go unanswered).
    #[arg(long, env = "LLMKUBE_H2_KEEP_ALIVE", default_value = "30s", value_parser = duration)]
    h2_keep_alive: Duration,
    /// Memory shared by every buffered request body, in MiB; beyond it requests wait, then 503.
    #[arg(long, env = "LLMKUBE_BODY_MEMORY_MIB", default_value_t = 512)]
    body_memory_mib: u64,
    /// How long a request waits for body memory before it is refused with 503 and Retry-After.
    #[arg(long, env = "LLMKUBE_BODY_MEMORY_WAIT", default_value = "2s", value_parser = duration)]
    body_memory_wait: Duration,
    /// Log format.
    #[arg(long, env = "LLMKUBE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Export a span tree per request over OTLP. On by default when an OTLP endpoint is set
    /// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or --otlp-endpoint);
    /// OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true turn it off.
    #[arg(long)]
    otlp_traces: bool,
    /// OTLP collector base URL for traces and the otlp audit sink, overriding the
    /// OTEL_EXPORTER_OTLP_*ENDPOINT variables (e.g. http://otel-collector:4318).
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// OTLP transport: grpc or http/protobuf (default: OTEL_EXPORTER_OTLP_PROTOCOL, else
    /// http/protobuf).
    #[arg(long)]
    otlp_protocol: Option<OtlpProtocol>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a policy's fixture file against its built .wasm under production limits, and
    /// print the sha256 to pin in the router.
    PolicyTest {
        /// The built module (target/wasm32-unknown-unknown/release/<name>.wasm).
        #[arg(long)]
        module: PathBuf,
        /// Fixture file (see llmkube_policy_sdk::fixtures).
        #[arg(long)]
        fixtures: PathBuf,
        /// CPU-time budget of one evaluation (wall-clock cap: ten times this).
        #[arg(long, default_value = "5ms", value_parser = duration)]
        deadline: Duration,
    },
    /// Write a new policy crate (its own workspace, anywhere): an example post-phase policy
    /// with typed metadata, fixture cases, a native test, a small-module release profile and
    /// pin.sh. Then: cd NAME && cargo test && ./pin.sh
    PolicyNew {
        /// Crate and policy name (lowercase letters, digits, dashes).
        name: String,
        /// Directory to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A checkout's policy-sdk directory to depend on (default: this binary's own
        /// checkout when it still exists, else the SDK version from a crates mirror).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Print what the gateway would do with one request, without sending it: the
    /// classification and its source, each policy's result, each rule and why it did or did
    /// not match, the candidate backends in order with tier and reachability, and the answer.
    /// Runs the server's compiled rules and policies. Exit code 0: routed; 1: refused;
    /// 2: the router or the request could not be read.
    Explain(ExplainArgs),
}

/// The arguments of `explain`.
#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// The ModelRouter YAML file, as for the server's --router.
    #[arg(long)]
    router: PathBuf,
    /// Which ModelRouter of the file, when it holds several.
    #[arg(long)]
    router_name: Option<String>,
    /// A request header, 'name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The body's model (set in --body, or a one-message chat request for it).
    #[arg(long)]
    model: Option<String>,
    /// The request body, a JSON file (- for standard input).
    #[arg(long)]
    body: Option<PathBuf>,
    /// The endpoint the request is for.
    #[arg(long, default_value = "/v1/chat/completions")]
    path: String,
    /// Where to dial a backend, NAME=URL (repeatable), as for the server.
    #[arg(long = "backend-address", value_delimiter = ',', value_parser = parse_pair)]
    backend_addresses: Vec<(String, String)>,
    /// Directory of built-in policies, as for the server.
    #[arg(long, env = "LLMKUBE_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// Do not try a TCP connection to each candidate backend.
    #[arg(long)]
    no_probe: bool,
    /// Output format.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("{s:?} is not NAME=URL"))
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not 'name: value'"))
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    if let Some(Command::PolicyTest {
        module,
        fixtures,
        deadline,
    }) = &args.command
    {
        return policy_test(module, fixtures, *deadline);
    }
    if let Some(Command::PolicyNew { name, dir, sdk }) = &args.command {
        return policy_new(name, dir.as_deref(), sdk.as_deref());
    }
    if let Some(Command::Explain(explain_args)) = args.command {
        return explain(explain_args);
    }
    let workers = args.worker_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut builder = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

fn explain(args: ExplainArgs) -> ExitCode {
    use llmkube_gateway::explain::{ExplainRequest, explain};
    let body = match args.body.as_deref().map(|p| match p.to_str() {
        Some("-") => std::io::read_to_string(std::io::stdin()).map(String::into_bytes),
        _ => std::fs::read(p),
    }) {
        None => None,
        Some(Ok(bytes)) => Some(bytes.into()),
        Some(Err(e)) => {
            eprintln!("explain: cannot read the body: {e}");
            return ExitCode::from(2);
        }
    };
    let request = ExplainRequest {
        router: args.router,
        router_name: args.router_name,
        headers: args.headers,
        model: args.model,
        body,
        path: args.path,
        resolve: ResolveOptions {
            addresses: args.backend_addresses.into_iter().collect(),
            ..ResolveOptions::default()
        },
        policy_dir: args.policy_dir,
        probe: (!args.no_probe).then_some(Duration::from_secs(1)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(explain(&request)) {
        Ok(explanation) => {
            match args.output.as_str() {
                "json" => println!("{}", explanation.to_json()),
                _ => print!("{explanation}"),
            }
            match explanation.routed() {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            eprintln!("explain: {e}");
            ExitCode::from(2)
        }
    }
}

fn policy_new(
    name: &str,
    dir: Option<&std::path::Path>,
    sdk: Option<&std::path::Path>,
) -> ExitCode {
    use llmkube_gateway::policy::scaffold::{SdkSource, write};
    let dir = dir.map_or_else(|| PathBuf::from(name), std::path::Path::to_path_buf);
    let checkout = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy-sdk"));
    let sdk = match sdk {
        Some(p) => SdkSource::Path(p.canonicalize().unwrap_or_else(|_| p.to_path_buf())),
        None if checkout.join("Cargo.toml").exists() => SdkSource::Path(
            checkout
                .canonicalize()
                .unwrap_or_else(|_| checkout.to_path_buf()),
        ),
        None => SdkSource::Version(env!("CARGO_PKG_VERSION").to_owned()),
    };
    match write(name, &dir, &sdk) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            println!("next: cd {} && cargo test && ./pin.sh", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("policy new: {e}");
            ExitCode::FAILURE
        }
    }
}

fn policy_test(
    module: &std::path::Path,
    fixtures: &std::path::Path,
    deadline: Duration,
) -> ExitCode {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let run = || -> Result<llmkube_gateway::policy::harness::Report, String> {
        let wasm = read(module)?;
        let json = String::from_utf8(read(fixtures)?).map_err(|e| e.to_string())?;
        let engine = llmkube_gateway::policy::PolicyEngine::new(EngineSettings {
            deadline,
            ..EngineSettings::default()
        })
        .map_err(|e| e.to_string())?;
        llmkube_gateway::policy::harness::run_fixtures(&engine, &wasm, &json)
    };
    let run = || {
        let report = run()?;
        println!("metadata: {}", report.metadata);
        Ok::<_, String>(report)
    };
    match run() {
        Ok(report) if report.failures.is_empty() => {
            println!("{} passed, 0 failed", report.cases);
            println!("sha256: {}", report.digest);
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for f in &report.failures {
                println!("FAILED {f}");
            }
            println!(
                "{} passed, {} failed",
                report.cases - report.failures.len(),
                report.failures.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("policy-test: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let source = match (args.router, args.config_map) {
        (Some(file), _) => RouterSource::File(file),
        (None, Some(name)) => match config_map_source(name, args.namespace).await {
            Ok(source) => source,
            Err(e) => {
                eprintln!("llmkube-gateway: cannot reach the Kubernetes API: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => {
            eprintln!(
                "llmkube-gateway: --router (or LLMKUBE_ROUTER_FILE) or --config-map is required"
            );
            return ExitCode::FAILURE;
        }
    };
    let mut otlp = OtlpConfig {
        traces: args.otlp_traces,
        endpoint: args.otlp_endpoint,
        protocol: args.otlp_protocol,
        ..OtlpConfig::default()
    };
    if let Err(e) = otlp.apply_env() {
        eprintln!("llmkube-gateway: {e}");
        return ExitCode::FAILURE;
    }
    let config = GatewayConfig {
        otlp,
        source,
        router_name: args.router_name,
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        tls: args.tls_cert.zip(args.tls_key),
        tls_client_ca: args.tls_client_ca,
        extra_ca_file: args.extra_ca_file,
        resolve: ResolveOptions {
            addresses: args.backend_addresses.into_iter().collect(),
            credentials_dir: args.credentials_dir,
            default_litellm_url: args.default_litellm_url,
        },
        connect_timeout: args.connect_timeout,
        shutdown_grace: args.shutdown_grace,
        watch: !args.no_watch,
        policy: EngineSettings {
            deadline: args.policy_deadline,
            memory_limit: args.policy_memory_mib << 20,
            max_instances: args.policy_max_instances,
        },
        policy_dir: args.policy_dir,
        limits: ServerLimits {
            max_connections: args.max_connections.max(1),
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            h2_keep_alive: args.h2_keep_alive,
            body_memory_bytes: args.body_memory_mib << 20,
            body_memory_wait: args.body_memory_wait,
        },
    };
    let gateway = match start(config).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("llmkube-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    gateway.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(feature = "kubernetes")]
async fn config_map_source(
    name: String,
    namespace: Option<String>,
) -> Result<RouterSource, kube::Error> {
    let client = kube::Client::try_default().await?;
    let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_owned());
    Ok(RouterSource::ConfigMap(llmkube_gateway::ConfigMapSource {
        client,
        namespace,
        name,
    }))
}

#[cfg(not(feature = "kubernetes"))]
async fn config_map_source(_: String, _: Option<String>) -> Result<RouterSource, String> {
    Err("this gateway was built without the kubernetes feature".into())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LLMKUBE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr; stdout carries the audit lines.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
