//! The compiled rule module against the reference evaluator: random specs x random requests
//! must give identical decisions, run under real wasmtime.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use llmkube_policy_sdk::abi;
use llmkube_policy_sdk::output::Output;
use llmkube_policy_sdk::view::RequestView;
use llmkube_router::compiler::{CompiledRules, compile, compile_table, decode_decision};
use llmkube_router::routing::{Decision, RequestFacts, RoutingTable};
use llmkube_router::spec::{
    Backend, ClassificationSpec, DefaultRouteStrategy, ExternalBackend, InferenceServiceRef,
    ModelRouterSpec, PolicySpec, Provider, RouteSpec, Rule, RuleMatch, Strategy as RouteStrategy,
    Tier,
};
use proptest::prelude::*;
use wasmtime::{Engine, Instance, Memory, Module, Store, TypedFunc};

/// A minimal host: instantiate once, evaluate many views.
struct Runner {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    evaluate: TypedFunc<(i32, i32), i64>,
}

impl Runner {
    fn new(engine: &Engine, compiled: &CompiledRules) -> Self {
        let module = Module::new(engine, &compiled.wasm).expect("the compiled module validates");
        let mut store = Store::new(engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        Runner {
            memory: instance.get_memory(&mut store, abi::EXPORT_MEMORY).unwrap(),
            alloc: instance
                .get_typed_func(&mut store, abi::EXPORT_ALLOC)
                .unwrap(),
            evaluate: instance
                .get_typed_func(&mut store, abi::EXPORT_EVALUATE)
                .unwrap(),
            store,
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, wasmtime::Error> {
        let ptr = self.alloc.call(&mut self.store, input.len() as i32)?;
        self.memory.write(&mut self.store, ptr as usize, input)?;
        let packed = self
            .evaluate
            .call(&mut self.store, (ptr, input.len() as i32))?;
        let (ptr, len) = abi::unpack(packed);
        Ok(self.memory.data(&self.store)[ptr as usize..(ptr + len) as usize].to_vec())
    }
}

/// A request as both evaluators see it: one header list, from which the reference evaluator's
/// facts and the module's view are derived exactly as the gateway derives them.
#[derive(Debug, Clone)]
struct Req {
    model: String,
    classes: Vec<String>,
    headers: Vec<(String, String)>,
}

fn decide_both(
    table: &RoutingTable,
    compiled: &CompiledRules,
    runner: &mut Runner,
    req: &Req,
) -> (Decision, Decision) {
    let task = req
        .headers
        .iter()
        .find(|(n, _)| n == "x-llmkube-task-complexity")
        .map(|(_, v)| v.as_str());
    let fact_headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| table.header_names.contains(n))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let reference = table.decide(&RequestFacts {
        model: &req.model,
        classifications: &req.classes,
        task_complexity: task,
        headers: &fact_headers,
    });
    let view_headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| compiled.headers.contains(n))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let view = RequestView {
        method: "POST",
        path: "/v1/chat/completions",
        model: &req.model,
        classifications: &req.classes,
        headers: &view_headers,
        ..Default::default()
    };
    let out = runner
        .run(&view.to_bytes())
        .expect("evaluation does not trap");
    let output = Output::decode(&out).expect("the module's output decodes");
    let compiled_decision =
        decode_decision(table, &output).expect("the module's output maps to a decision");
    (reference, compiled_decision)
}

fn pick<T: Clone + std::fmt::Debug>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(items, 0..=items.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

const CLASSES: &[&str] = &["pii", "phi", "internal", "public", "x"];
const CAPS: &[&str] = &["chat", "vision", "long"];
const PATTERNS: &[&str] = &[
    "m*",
    "*1",
    "m?",
    "*",
    "b*x",
    "exact",
    "?",
    "a*b*c",
    "llama-*-8b",
    "**",
    "*?*",
    "",
];
const MODELS: &[&str] = &[
    "m0",
    "m1",
    "b0",
    "b2",
    "exact",
    "llama-3-8b",
    "xyz",
    "",
    "m",
    "b1x",
    "abc",
    "aXbYc",
    "é",
    "m\u{e9}",
];
const HEADER_NAMES: &[&str] = &["x-team", "x-env", "x-llmkube-task-complexity", "x-other"];
const HEADER_VALUES: &[&str] = &["a", "b", "A", " high ", "HIGH", "low", "mid", "Mid\t", ""];

fn backend() -> impl Strategy<Value = (bool, Option<Tier>, bool, Vec<String>, Option<&'static str>)>
{
    (
        any::<bool>(),
        proptest::option::of(pick(&[Tier::Local, Tier::Cloud])),
        any::<bool>(),
        subset(CAPS),
        proptest::option::of(pick(&["250ms", "1.5s", "2m", "100ms"])),
    )
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        any::<bool>(),
        subset(CLASSES),
        proptest::option::of(pick(&["high", "Low", " mid "])),
        proptest::collection::btree_map(
            pick(&["x-team", "X-Env", "x-llmkube-task-complexity"]).prop_map(String::from),
            pick(&["a", "b", "A", "high"]).prop_map(String::from),
            0..2,
        ),
        proptest::collection::vec(pick(PATTERNS).prop_map(String::from), 0..3),
        subset(CAPS),
        proptest::collection::vec(0..5usize, 1..4),
        pick(&[
            RouteStrategy::PrimaryFallback,
            RouteStrategy::Weighted,
            RouteStrategy::Shadow,
        ]),
        any::<bool>(),
        proptest::option::of(pick(&["300ms", "8s", "1.25s"])),
    )
        .prop_map(
            |(
                has_match,
                classes,
                task,
                headers,
                models,
                caps,
                backends,
                strategy,
                fail_closed,
                timeout,
            )| Rule {
                name: String::new(),
                match_: has_match.then(|| RuleMatch {
                    data_classification: classes,
                    task_complexity: task.map(String::from),
                    required_capabilities: caps,
                    latency_slo_ms: None,
                    headers,
                    models: models.into_iter().filter(|p| !p.is_empty()).collect(),
                }),
                route: RouteSpec {
                    backends: backends.into_iter().map(|b| format!("b{b}")).collect(),
                    strategy: Some(strategy),
                },
                fail_closed,
                timeout: timeout.map(String::from),
            },
        )
}

prop_compose! {
    fn spec()(
        backends in proptest::collection::vec(backend(), 1..6),
        rules in proptest::collection::vec(rule(), 0..6),
        default in proptest::option::of(0..6usize),
        bnm in any::<bool>(),
        sensitive in proptest::option::of(subset(&["pii", "phi", "internal"])),
    ) -> ModelRouterSpec {
        let n = backends.len();
        let backends: Vec<Backend> = backends
            .into_iter()
            .enumerate()
            .map(|(i, (external, tier, display, caps, timeout))| Backend {
                name: format!("b{i}"),
                display_name: display.then(|| format!("m{i}")),
                inference_service_ref: (!external).then(|| InferenceServiceRef { name: format!("isvc{i}") }),
                external: external.then(|| ExternalBackend { provider: Provider::Openai, ..Default::default() }),
                tier: if external { tier } else { tier.filter(|t| *t == Tier::Local) },
                capabilities: caps,
                timeout: timeout.map(String::from),
                ..Default::default()
            })
            .collect();
        let mut spec = ModelRouterSpec {
            backends,
            default_route: default.filter(|d| *d < n).map(|d| format!("b{d}")),
            default_route_strategy: Some(if bnm { DefaultRouteStrategy::BackendNameMatch } else { DefaultRouteStrategy::Static }),
            policy: sensitive.map(|s| PolicySpec {
                classification: Some(ClassificationSpec { sensitive_classifications: Some(s), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sensitive_set = llmkube_router::defaults::sensitive_classifications(&spec);
        spec.rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.name = format!("r{i}");
                r.route.backends.retain(|b| b[1..].parse::<usize>().is_ok_and(|k| k < n));
                if r.route.backends.is_empty() {
                    r.route.backends.push("b0".into());
                }
                if let Some(m) = &mut r.match_ {
                    // Keep the apply-time gate satisfied: sensitive rules are fail-closed and local.
                    if m.data_classification.iter().any(|c| sensitive_set.contains(c)) {
                        let local: Vec<String> = r.route.backends.iter().filter(|b| {
                            spec.backends.iter().any(|x| &x.name == *b && x.effective_tier() == Tier::Local)
                        }).cloned().collect();
                        if local.is_empty() {
                            m.data_classification.retain(|c| !sensitive_set.contains(c));
                        } else {
                            r.route.backends = local;
                            r.fail_closed = true;
                        }
                    }
                    let has_all = |b: &String| spec.backends.iter().any(|x| &x.name == b && m.required_capabilities.iter().all(|c| x.capabilities.contains(c)));
                    if !r.route.backends.iter().any(has_all) {
                        m.required_capabilities.clear();
                    }
                }
                r
            })
            .collect();
        spec
    }
}

prop_compose! {
    fn request()(
        model in pick(MODELS),
        classes in subset(CLASSES),
        headers in proptest::collection::vec((pick(HEADER_NAMES), pick(HEADER_VALUES)), 0..5),
    ) -> Req {
        Req {
            model: model.to_owned(),
            classes,
            headers: headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn compiled_rules_agree_with_the_reference_evaluator(spec in spec(), requests in proptest::collection::vec(request(), 1..24)) {
        let table = RoutingTable::new(&spec).map_err(|e| TestCaseError::fail(format!("generator made an invalid spec: {e}")))?;
        let compiled = compile_table(&table);
        let engine = Engine::default();
        let mut runner = Runner::new(&engine, &compiled);
        for req in &requests {
            let (reference, compiled_decision) = decide_both(&table, &compiled, &mut runner, req);
            prop_assert_eq!(&reference, &compiled_decision, "request {:?}", req);
        }
    }
}

#[test]
fn compilation_is_deterministic_and_the_digest_names_the_rules() {
    let yaml = include_str!("../../../examples/quickstart/router.yaml");
    let spec = llmkube_router::manifest::load_router(yaml, None)
        .unwrap()
        .spec;
    let (a, b) = (compile(&spec).unwrap(), compile(&spec).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.sha256.len(), 64);
    let mut changed = spec.clone();
    changed.rules[0].timeout = Some("9s".into());
    assert_ne!(compile(&changed).unwrap().sha256, a.sha256);
    wasmparser::Validator::new()
        .validate_all(&a.wasm)
        .expect("valid wasm");
}

#[test]
fn the_quickstart_router_decides_as_documented() {
    let yaml = include_str!("../../../examples/quickstart/router.yaml");
    let spec = llmkube_router::manifest::load_router(yaml, None)
        .unwrap()
        .spec;
    let table = RoutingTable::new(&spec).unwrap();
    let compiled = compile_table(&table);
    let mut runner = Runner::new(&Engine::default(), &compiled);
    let cases = [
        (
            Req {
                model: "any".into(),
                classes: vec!["pii".into()],
                headers: vec![],
            },
            "Route(pii-stays-local -> local-llama)",
        ),
        (
            Req {
                model: "any".into(),
                classes: vec![],
                headers: vec![],
            },
            "default -> internal-litellm",
        ),
        (
            Req {
                model: "llama-3-8b".into(),
                classes: vec![],
                headers: vec![],
            },
            "name -> local-llama",
        ),
        (
            Req {
                model: "x".into(),
                classes: vec![],
                headers: vec![("x-llmkube-task-complexity".into(), "High".into())],
            },
            "complex-tasks",
        ),
    ];
    for (req, what) in cases {
        let (reference, compiled_decision) = decide_both(&table, &compiled, &mut runner, &req);
        assert_eq!(reference, compiled_decision, "{what}");
        assert!(
            matches!(compiled_decision, Decision::Route(_)),
            "{what}: {compiled_decision:?}"
        );
    }
}

#[test]
fn a_malformed_view_traps_instead_of_deciding() {
    let spec = llmkube_router::manifest::load_router(
        include_str!("../../../examples/seed/secure-router.yaml"),
        None,
    )
    .unwrap()
    .spec;
    let mut runner = Runner::new(&Engine::default(), &compile(&spec).unwrap());
    assert!(runner.run(&[9, 0, 0]).is_err(), "wrong view version");
    assert!(
        runner.run(&[1, 0, 0xff, 0xff, 0xff, 0x7f]).is_err(),
        "lengths past the end of memory"
    );
}
