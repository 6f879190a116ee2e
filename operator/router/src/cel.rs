//! The ModelRouter apply-time gate as CRD validation rules (CEL `x-kubernetes-validations`),
//! so `kubectl apply` refuses a router that would let sensitive data leave the local tier,
//! without a webhook. The controller runs the same checks (and more) in the `validate` module.
//!
//! The API server estimates the cost of every rule from the schema's bounds, which is why the
//! lists and strings these rules walk have `maxItems` / `maxLength`.

use schemars::Schema;
use serde_json::{Value, json};

/// The sensitive classifications, lowercased: the spec's list, else `pii` and `phi`.
const SENSITIVE: &str = "(has(self.policy) && has(self.policy.classification) && has(self.policy.classification.sensitiveClassifications) ? self.policy.classification.sensitiveClassifications.map(s, s.trim().lowerAscii()) : ['pii', 'phi'])";

/// A rule `r` matches a sensitive classification.
fn sensitive(r: &str) -> String {
    format!(
        "(has({r}.match) && has({r}.match.dataClassification) && {r}.match.dataClassification.exists(c, c.lowerAscii() in {SENSITIVE}))"
    )
}

/// The CEL rules of `ModelRouterSpec`.
pub fn spec_rules() -> Vec<Value> {
    let sensitive = sensitive("r");
    vec![
        json!({
            "rule": format!("!has(self.rules) || self.rules.all(r, !{sensitive} || (has(r.failClosed) && r.failClosed))"),
            "message": "a rule matching a sensitive classification (default: pii, phi) must set failClosed: true",
            "fieldPath": ".rules",
            "reason": "FieldValueInvalid",
        }),
        json!({
            "rule": format!("!has(self.rules) || self.rules.all(r, !{sensitive} || self.backends.all(b, !(b.name in r.route.backends) || (has(b.tier) ? b.tier == 'local' : !has(b.external))))"),
            "message": "a rule matching a sensitive classification (default: pii, phi) may only name local-tier backends",
            "fieldPath": ".rules",
            "reason": "FieldValueForbidden",
        }),
        json!({
            "rule": "!has(self.rules) || self.rules.all(r, r.route.backends.all(n, self.backends.exists(b, b.name == n)))",
            "message": "rules may only name backends listed in spec.backends",
            "fieldPath": ".rules",
            "reason": "FieldValueInvalid",
        }),
        json!({
            "rule": "self.backends.all(b, self.backends.exists_one(x, x.name == b.name))",
            "message": "backend names must be unique",
            "fieldPath": ".backends",
            "reason": "FieldValueDuplicate",
        }),
        json!({
            "rule": "!has(self.defaultRoute) || self.backends.exists(b, b.name == self.defaultRoute)",
            "message": "defaultRoute must name a backend listed in spec.backends",
            "fieldPath": ".defaultRoute",
            "reason": "FieldValueInvalid",
        }),
    ]
}

/// The CEL rules of `Backend`.
pub fn backend_rules_list() -> Vec<Value> {
    vec![json!({
        "rule": "has(self.inferenceServiceRef) != has(self.external)",
        "message": "a backend needs exactly one of inferenceServiceRef and external",
    })]
}

/// schemars transform: adds the spec rules.
pub fn model_router_rules(schema: &mut Schema) {
    schema.insert(
        "x-kubernetes-validations".into(),
        Value::Array(spec_rules()),
    );
}

/// schemars transform: adds the backend rules.
pub fn backend_rules(schema: &mut Schema) {
    schema.insert(
        "x-kubernetes-validations".into(),
        Value::Array(backend_rules_list()),
    );
}
