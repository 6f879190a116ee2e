//! Schemas that Kubernetes' structural-schema rules need and derive macros cannot infer.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A free-form JSON object (`x-kubernetes-preserve-unknown-fields`).
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// A map of resource quantities (`cpu: 1`, `memory: 256Mi`): integers or strings.
pub fn quantity_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-int-or-string": true }
    })
}
