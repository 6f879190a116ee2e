//! The fixture cases on the native build (the gateway's harness runs the same file on the .wasm).

use llmkube_policy_sdk::testing::{configure, run_fixtures};
use llmkube_tenant_allowlist::TenantAllowlist;

#[test]
fn fixtures_pass() {
    let n = run_fixtures::<TenantAllowlist>(include_str!("../fixtures/tenants.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 6);
}

#[test]
fn bad_configs_are_refused() {
    assert!(configure::<TenantAllowlist>(&serde_json::json!({"tenants": {}})).is_err());
    assert!(
        configure::<TenantAllowlist>(&serde_json::json!({"tenant": {"a": ["*"]}})).is_err(),
        "typo"
    );
    assert!(configure::<TenantAllowlist>(&serde_json::json!({"tenants": {"a": ["*"]}})).is_ok());
}
