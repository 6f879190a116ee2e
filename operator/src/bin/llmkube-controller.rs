//! `llmkube-controller`: the LLMKube operator. Reconciles `Model`, `InferenceService` and
//! `ModelRouter` (`inference.llmkube.dev/v1alpha1`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::Parser;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use llmkube_operator::controller::metrics::Metrics;
use llmkube_operator::controller::run::run_controllers;
use llmkube_operator::controller::server::{Health, serve};
use llmkube_operator::controller::traces::{TraceSettings, Traces};
use llmkube_operator::controller::{Context, Settings};
use llmkube_operator::reconcile::admission::Allowance;
use llmkube_operator::reconcile::inference_service::{Images, Settings as InferenceSettings};
use llmkube_operator::reconcile::model_cache::ModelCache;
use llmkube_operator::reconcile::model_router::{OtlpTarget, Settings as RouterSettings};
use llmkube_router::otel_env::OtlpProtocol;
use llmkube_router::spec::{RedisStoreSpec, SecretRef};

/// The gateway image this controller version deploys, unless `--router-proxy-image` says otherwise.
const GATEWAY_IMAGE: &str = concat!(
    "ghcr.io/llmkube/llmkube-gateway:",
    env!("CARGO_PKG_VERSION")
);

#[derive(Parser, Debug)]
#[command(
    name = "llmkube-controller",
    version,
    about = "The LLMKube operator: reconciles Model, InferenceService and ModelRouter (inference.llmkube.dev/v1alpha1)"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Serve /metrics here.
    #[arg(
        global = true,
        long,
        env = "LLMKUBE_METRICS_BIND_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    metrics_bind_address: SocketAddr,
    /// Serve /healthz and /readyz here.
    #[arg(
        global = true,
        long,
        env = "LLMKUBE_HEALTH_PROBE_BIND_ADDRESS",
        default_value = "0.0.0.0:8081"
    )]
    health_probe_bind_address: SocketAddr,
    /// OTLP collector base URL for a span per reconcile (e.g. http://otel-collector:4318),
    /// overriding the OTEL_EXPORTER_OTLP_*ENDPOINT variables; traces are on when either is set.
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// OTLP transport: grpc or http/protobuf (default: OTEL_EXPORTER_OTLP_PROTOCOL, else
    /// http/protobuf).
    #[arg(long)]
    otlp_protocol: Option<OtlpProtocol>,
    /// OTLP collector base URL the gateways send traces and `otlp` audit records to (their
    /// OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(global = true, long, env = "LLMKUBE_GATEWAY_OTLP_ENDPOINT")]
    gateway_otlp_endpoint: Option<String>,
    /// The gateways' OTLP transport: grpc or http/protobuf.
    #[arg(global = true, long, env = "LLMKUBE_GATEWAY_OTLP_PROTOCOL", value_parser = ["grpc", "http/protobuf"])]
    gateway_otlp_protocol: Option<String>,
    /// Hold a Lease so that only one replica reconciles.
    #[arg(global = true, long, env = "LLMKUBE_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: the controller's own namespace).
    #[arg(global = true, long, env = "LLMKUBE_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// A ConfigMap (key `ca.crt`) in each InferenceService's namespace holding the site CA that
    /// model-downloader init containers trust.
    #[arg(global = true, long, env = "LLMKUBE_CA_CERT_CONFIGMAP")]
    ca_cert_configmap: Option<String>,
    /// Gateway (router-proxy) image for ModelRouters.
    #[arg(global = true, long, env = "LLMKUBE_ROUTER_PROXY_IMAGE", default_value = GATEWAY_IMAGE)]
    router_proxy_image: String,
    /// The model-downloader init container image (needs sh, curl, sha256sum).
    #[arg(global = true, long, env = "LLMKUBE_INIT_CONTAINER_IMAGE", default_value_t = Images::default().init)]
    init_container_image: String,
    /// Base URL of litellm backends that set no `external.url`.
    #[arg(global = true, long, env = "LLMKUBE_DEFAULT_LITELLM_URL")]
    default_litellm_url: Option<String>,
    /// Redis (`host:port`) where routers with `policy.budgets` and no `policy.budgetStore`
    /// keep their counts, shared by their replicas.
    #[arg(global = true, long, env = "LLMKUBE_DEFAULT_BUDGET_REDIS_ADDRESS")]
    default_budget_redis_address: Option<String>,
    /// Secret (in each router's namespace) with `REDIS_PASSWORD` for that Redis.
    #[arg(
        global = true,
        long,
        env = "LLMKUBE_DEFAULT_BUDGET_REDIS_SECRET",
        requires = "default_budget_redis_address"
    )]
    default_budget_redis_secret: Option<String>,
    /// llama.cpp runtime image.
    #[arg(global = true, long, env = "LLMKUBE_LLAMACPP_IMAGE", default_value_t = Images::default().llamacpp)]
    llamacpp_image: String,
    /// vLLM runtime image.
    #[arg(global = true, long, env = "LLMKUBE_VLLM_IMAGE", default_value_t = Images::default().vllm)]
    vllm_image: String,
    /// TGI runtime image.
    #[arg(global = true, long, env = "LLMKUBE_TGI_IMAGE", default_value_t = Images::default().tgi)]
    tgi_image: String,
    /// Ollama runtime image.
    #[arg(global = true, long, env = "LLMKUBE_OLLAMA_IMAGE", default_value_t = Images::default().ollama)]
    ollama_image: String,
    /// Pull secret added to every pod the controller creates (repeatable).
    #[arg(
        global = true,
        long = "image-pull-secret",
        env = "LLMKUBE_IMAGE_PULL_SECRETS",
        value_delimiter = ','
    )]
    image_pull_secrets: Vec<String>,
    /// Do not pin gateway pods to uid 65532 (OpenShift restricted-v2 assigns one).
    #[arg(global = true, long, env = "LLMKUBE_NO_FIXED_UID")]
    no_fixed_uid: bool,
    /// Let InferenceServices ask for privileged, root, added capabilities or an unconfined
    /// seccomp profile (beyond the Kubernetes `restricted` Pod Security profile).
    #[arg(global = true, long, env = "LLMKUBE_ALLOW_PRIVILEGED_PODS")]
    allow_privileged_pods: bool,
    /// Let InferenceService `env` reference Secrets of its namespace.
    #[arg(global = true, long, env = "LLMKUBE_ALLOW_SECRET_ENV")]
    allow_secret_env: bool,
    /// A host directory `file://` model sources may come from (repeatable); none by default.
    #[arg(
        global = true,
        long = "allowed-model-host-path",
        env = "LLMKUBE_ALLOWED_MODEL_HOST_PATHS",
        value_delimiter = ','
    )]
    allowed_model_host_paths: Vec<String>,
    /// A registry or repository prefix that InferenceService `image` and ModelRouter
    /// `proxy.image` may name (repeatable); the controller's own images are always allowed.
    #[arg(
        global = true,
        long = "allowed-image-prefix",
        env = "LLMKUBE_ALLOWED_IMAGE_PREFIXES",
        value_delimiter = ','
    )]
    allowed_image_prefixes: Vec<String>,
    /// Keep `https://` and `file://` models on a per-namespace cache volume (claim
    /// `llmkube-model-cache`) the controller creates with this size, e.g. `200Gi`: downloaded
    /// once per namespace instead of once per pod start.
    #[arg(
        global = true,
        long,
        env = "LLMKUBE_MODEL_CACHE_SIZE",
        conflicts_with = "model_cache_claim"
    )]
    model_cache_size: Option<String>,
    /// Storage class of the cache claims (default: the cluster's default class).
    #[arg(global = true, long, env = "LLMKUBE_MODEL_CACHE_STORAGE_CLASS")]
    model_cache_storage_class: Option<String>,
    /// Access mode of the cache claims: `ReadWriteMany` when pods of one namespace run on
    /// several nodes, `ReadWriteOnce` on a single node.
    #[arg(
        global = true,
        long,
        env = "LLMKUBE_MODEL_CACHE_ACCESS_MODE",
        default_value = "ReadWriteMany",
        value_parser = ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
    )]
    model_cache_access_mode: String,
    /// Use this existing claim, in every namespace that serves models, as the model cache
    /// (instead of claims the controller creates).
    #[arg(global = true, long, env = "LLMKUBE_MODEL_CACHE_CLAIM")]
    model_cache_claim: Option<String>,
    /// Remove from each namespace's model cache the files no Model there references any more
    /// (a Job per change of the set; one volume per namespace is assumed).
    #[arg(global = true, long, env = "LLMKUBE_MODEL_CACHE_CLEANUP")]
    model_cache_cleanup: bool,
    /// Print the CustomResourceDefinitions as YAML and exit.
    #[arg(global = true, long)]
    print_crds: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print, as YAML, every object the controller (with these flags) would apply for the
    /// Models, InferenceServices and ModelRouters of a file, with no API server. Refusals go to
    /// stderr with the controller's messages; exit code 1 when there is one, 2 when the file
    /// cannot be read.
    Render {
        /// The manifests (`-` for standard input).
        #[arg(short = 'f', long = "filename")]
        file: std::path::PathBuf,
        /// The namespace of objects that name none.
        #[arg(short = 'n', long, default_value = llmkube_router::DEFAULT_NAMESPACE)]
        namespace: String,
    },
}

impl Args {
    fn model_cache(&self) -> Option<ModelCache> {
        if let Some(claim) = &self.model_cache_claim {
            return Some(ModelCache::Existing {
                claim: claim.clone(),
            });
        }
        self.model_cache_size
            .as_ref()
            .map(|size| ModelCache::Managed {
                size: size.clone(),
                storage_class: self.model_cache_storage_class.clone(),
                access_mode: self.model_cache_access_mode.clone(),
            })
    }

    fn settings(&self) -> Settings {
        let allowance = Allowance {
            privileged: self.allow_privileged_pods,
            secret_env: self.allow_secret_env,
            model_host_paths: self.allowed_model_host_paths.clone(),
            image_prefixes: self.allowed_image_prefixes.clone(),
            no_fixed_uid: self.no_fixed_uid,
        };
        Settings {
            inference: InferenceSettings {
                images: Images {
                    llamacpp: self.llamacpp_image.clone(),
                    vllm: self.vllm_image.clone(),
                    tgi: self.tgi_image.clone(),
                    ollama: self.ollama_image.clone(),
                    init: self.init_container_image.clone(),
                },
                ca_cert_configmap: self.ca_cert_configmap.clone(),
                image_pull_secrets: self.image_pull_secrets.clone(),
                allowance: allowance.clone(),
                model_cache: self.model_cache(),
                model_cache_cleanup: self.model_cache_cleanup,
            },
            router: RouterSettings {
                gateway_image: self.router_proxy_image.clone(),
                image_pull_secrets: self.image_pull_secrets.clone(),
                default_litellm_url: self.default_litellm_url.clone(),
                default_budget_store: self.default_budget_redis_address.as_ref().map(|address| {
                    RedisStoreSpec {
                        address: address.clone(),
                        credentials_secret_ref: self
                            .default_budget_redis_secret
                            .as_ref()
                            .map(|name| SecretRef { name: name.clone() }),
                        ..RedisStoreSpec::default()
                    }
                }),
                fixed_uid: !self.no_fixed_uid,
                allowance,
                otlp: self
                    .gateway_otlp_endpoint
                    .clone()
                    .map(|endpoint| OtlpTarget {
                        endpoint,
                        protocol: self.gateway_otlp_protocol.clone(),
                    }),
            },
        }
    }
}

/// `render`: the objects to stdout, refusals to stderr.
fn render(file: &std::path::Path, namespace: &str, settings: &Settings) -> ExitCode {
    let read = match file.to_str() {
        Some("-") => std::io::read_to_string(std::io::stdin()),
        _ => std::fs::read_to_string(file),
    };
    let text = match read {
        Ok(text) => text,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let manifests = match llmkube_operator::render::parse(&text, namespace) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let rendered = llmkube_operator::render::render(&manifests, settings);
    for doc in &rendered.documents {
        print!("---\n{doc}");
    }
    for refusal in &rendered.refusals {
        eprintln!(
            "{}: refused: {}",
            refusal.object,
            refusal.message.replace('\n', "; ")
        );
    }
    match rendered.refusals.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.model_cache_cleanup && args.model_cache().is_none() {
        <Args as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--model-cache-cleanup needs a model cache: --model-cache-size or --model-cache-claim",
            )
            .exit();
    }
    if let Some(Command::Render { file, namespace }) = &args.command {
        return Ok(render(file, namespace, &args.settings()));
    }
    if args.print_crds {
        for crd in llmkube_operator::crd::crds() {
            print!("---\n{}", serde_yaml_ng::to_string(&crd)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();

    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    serve(
        args.metrics_bind_address,
        Arc::clone(&health),
        Arc::clone(&metrics),
    )
    .await?;
    if args.health_probe_bind_address != args.metrics_bind_address {
        serve(
            args.health_probe_bind_address,
            Arc::clone(&health),
            Arc::clone(&metrics),
        )
        .await?;
    }

    let client = Client::try_default().await?;
    let trace_settings = TraceSettings {
        endpoint: args.otlp_endpoint.clone(),
        protocol: args.otlp_protocol,
    };
    let mut ctx = Context::new(client.clone(), args.settings(), Arc::clone(&metrics));
    ctx.traces = Traces::start(&trace_settings)?.map(Arc::new);
    let traces = ctx.traces.clone();
    let ctx = Arc::new(ctx);
    // Alive (and ready to take over) while waiting for the Lease.
    health.ready.store(true, Ordering::Relaxed);

    if !args.leader_elect {
        metrics.leader.set(1);
        run_controllers(client, ctx).await;
        if let Some(t) = traces {
            // Blocks until the last spans are sent.
            let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let namespace = args
        .leader_election_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("llmkube-controller-{}", std::process::id()));
    let lease = LeaseManagerBuilder::new(client.clone(), "llmkube-controller-leader")
        .with_namespace(namespace.clone())
        .with_identity(identity.clone())
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (mut leader, _lease_task) = lease.watch().await;
    tracing::info!(%identity, %namespace, "waiting for the leader Lease llmkube-controller-leader");
    while !*leader.borrow_and_update() {
        leader.changed().await?;
    }
    tracing::info!("leading");
    metrics.leader.set(1);
    let lost = async move {
        while *leader.borrow_and_update() {
            if leader.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = run_controllers(client, ctx) => Ok(ExitCode::SUCCESS),
        () = lost => {
            metrics.leader.set(0);
            // Exit so that the pod restarts as a follower: no two replicas ever reconcile at once.
            Err("lost the leader Lease; exiting".into())
        }
    }
}
