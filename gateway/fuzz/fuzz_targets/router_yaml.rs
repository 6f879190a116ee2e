//! ModelRouter YAML load, validation and compilation: no input panics, and whenever a router
//! loads, its compiled WebAssembly module decides exactly as the reference evaluator for a
//! spread of requests.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmkube_router::compiler::{compile, decode_decision};
use llmkube_router::manifest::load_router;
use llmkube_router::routing::{RequestFacts, RoutingTable};
use llmkube_policy_sdk::abi;
use llmkube_policy_sdk::output::Output;
use llmkube_policy_sdk::view::RequestView;
use wasmtime::{Engine, Instance, Module, Store};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

const MODELS: [&str; 4] = ["", "gpt-4o", "llama-3.1-8b", "local-llama"];
const CLASSES: [&[&str]; 4] = [&[], &["pii"], &["internal"], &["phi", "public"]];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(router) = load_router(text, None) else { return };
    let Ok(table) = RoutingTable::new(&router.spec) else {
        panic!("a router that loads builds a routing table");
    };
    let compiled = compile(&router.spec).expect("a router that loads compiles");
    let module = Module::new(engine(), &compiled.wasm).expect("the compiled module validates");
    let mut store = Store::new(engine(), ());
    let instance = Instance::new(&mut store, &module, &[]).expect("it instantiates");
    let memory = instance.get_memory(&mut store, abi::EXPORT_MEMORY).unwrap();
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut store, abi::EXPORT_ALLOC)
        .unwrap();
    let evaluate = instance
        .get_typed_func::<(i32, i32), i64>(&mut store, abi::EXPORT_EVALUATE)
        .unwrap();
    let header_values = ["x", "high", "simple"];
    for (i, model) in MODELS.iter().enumerate() {
        for classes in CLASSES {
            let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
            let value = header_values[i % header_values.len()];
            // One header list, from which each evaluator's input is derived as the gateway does.
            let mut all: Vec<(&str, &str)> =
                table.header_names.iter().map(|n| (n.as_str(), value)).collect();
            all.push(("x-llmkube-task-complexity", value));
            let task = all
                .iter()
                .find(|(n, _)| *n == "x-llmkube-task-complexity")
                .map(|(_, v)| *v);
            let headers: Vec<(&str, &str)> = all
                .iter()
                .copied()
                .filter(|(n, _)| table.header_names.iter().any(|h| h == n))
                .collect();
            let reference = table.decide(&RequestFacts {
                model,
                classifications: &classes,
                task_complexity: task,
                headers: &headers,
            });
            let view_headers: Vec<(&str, &str)> = all
                .iter()
                .copied()
                .filter(|(n, _)| compiled.headers.iter().any(|h| h == n))
                .collect();
            let view = RequestView {
                method: "POST",
                path: "/v1/chat/completions",
                model,
                classifications: &classes,
                headers: &view_headers,
                ..Default::default()
            };
            let input = view.to_bytes();
            let ptr = alloc.call(&mut store, input.len() as i32).unwrap();
            memory.write(&mut store, ptr as usize, &input).unwrap();
            let packed = evaluate
                .call(&mut store, (ptr, input.len() as i32))
                .expect("the compiled rules never trap");
            let (out_ptr, len) = abi::unpack(packed);
            let out = memory.data(&store)[out_ptr as usize..(out_ptr + len) as usize].to_vec();
            let output = Output::decode(&out).expect("the module's output decodes");
            let compiled_decision = decode_decision(&table, &output).expect("it maps to a decision");
            assert_eq!(reference, compiled_decision, "model {model:?} classes {classes:?}");
        }
    }
});
