//! Policy engine micro-benchmarks (run: `cargo bench -p llmkube-gateway --bench policy`, after
//! building the policies for wasm32-unknown-unknown in release).
//!
//! - a routing decision through the reused compiled rule module vs the native reference evaluator;
//! - a fresh custom-policy instance (the tenant allowlist) per evaluation;
//! - the PII detector (fresh instance) scanning a 4 KiB prompt.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use llmkube_gateway::policy::{EngineSettings, PolicyEngine, PolicyModule};
use llmkube_policy_sdk::view::RequestView;
use llmkube_router::compiler::{compile_table, decode_decision};
use llmkube_router::manifest::load_router;
use llmkube_router::routing::{RequestFacts, RoutingTable};

fn prompt_4k() -> String {
    let para = "Please summarise the attached quarterly report for the board, keeping the tone neutral and the numbers exact. ";
    let mut text = para.repeat(4096 / para.len() + 1);
    text.truncate(4096 - 40);
    text.push_str(" reach me at jane.doe@example.com today");
    text
}

fn benches(c: &mut Criterion) {
    let engine = PolicyEngine::new(EngineSettings::default()).unwrap();
    let yaml = include_str!("../../examples/quickstart/router.yaml");
    let spec = load_router(yaml, None).unwrap().spec;
    let table = RoutingTable::new(&spec).unwrap();
    let compiled = compile_table(&table);
    let rules = PolicyModule::load(
        &engine,
        "rules",
        &compiled.wasm,
        None,
        &serde_json::Value::Null,
    )
    .unwrap();
    let classes = vec!["internal".to_owned()];
    let headers = [("x-llmkube-task-complexity", "high")];
    let view = RequestView {
        method: "POST",
        path: "/v1/chat/completions",
        model: "llama-3-8b",
        classifications: &classes,
        headers: &headers,
        ..Default::default()
    };
    let input = view.to_bytes();
    let mut group = c.benchmark_group("rule-decision");
    group.bench_function("compiled-wasm-reused-instance", |b| {
        b.iter(|| {
            rules
                .evaluate(black_box(&input), |out| decode_decision(&table, out))
                .unwrap()
        })
    });
    group.bench_function("native-reference-evaluator", |b| {
        b.iter(|| {
            table.decide(black_box(&RequestFacts {
                model: "llama-3-8b",
                classifications: &classes,
                task_complexity: Some("high"),
                headers: &[],
            }))
        })
    });
    group.finish();

    let tenants = PolicyModule::load(
        &engine,
        "tenants",
        &common::wasm("llmkube_tenant_allowlist.wasm"),
        None,
        &serde_json::json!({"tenants": {"acme": ["llama-3-8b"]}}),
    )
    .unwrap();
    let tenant_headers = [("x-tenant", "acme")];
    let tenant_view = RequestView {
        model: "llama-3-8b",
        headers: &tenant_headers,
        ..view
    };
    let tenant_input = tenant_view.to_bytes();
    c.bench_function("custom-policy-fresh-instance", |b| {
        b.iter(|| {
            tenants
                .evaluate(black_box(&tenant_input), |out| Ok(out.to_decision()))
                .unwrap()
        })
    });

    let pii = PolicyModule::load(
        &engine,
        "pii",
        &common::wasm("llmkube_pii_detector.wasm"),
        None,
        &serde_json::json!({}),
    )
    .unwrap();
    let prompt = prompt_4k();
    let pii_view = RequestView {
        prompt: Some(&prompt),
        ..view
    };
    let pii_input = pii_view.to_bytes();
    let decided = pii
        .evaluate(&pii_input, |out| Ok(out.to_decision()))
        .unwrap();
    assert_eq!(
        decided.add_classifications,
        ["pii"],
        "the benchmark prompt holds an e-mail address"
    );
    c.bench_function("pii-detector-4KiB-prompt-fresh-instance", |b| {
        b.iter(|| {
            pii.evaluate(black_box(&pii_input), |out| {
                Ok(out.add_classifications().count())
            })
            .unwrap()
        })
    });
}

criterion_group!(policy, benches);
criterion_main!(policy);
