//! Policy ABI decoding of guest output: whatever bytes a module returns, the host decodes
//! them without panicking and maps them to a decision or a clean error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmkube_router::compiler::decode_decision;
use llmkube_router::manifest::load_router;
use llmkube_router::routing::RoutingTable;
use llmkube_policy_sdk::output::Output;

fn table() -> &'static RoutingTable {
    static TABLE: OnceLock<RoutingTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let yaml = include_str!("../../../examples/seed/secure-router.yaml");
        let router = load_router(yaml, None).expect("the seed router loads");
        RoutingTable::new(&router.spec).expect("the seed router is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(output) = Output::decode(data) else { return };
    let _ = (
        output.add_classifications().count(),
        output.set_headers().count(),
        output.remove_headers().count(),
        output.annotations().count(),
    );
    let _ = decode_decision(table(), &output);
});
