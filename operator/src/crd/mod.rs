//! Custom resource types of `inference.llmkube.dev/v1alpha1`.

pub mod cel;
pub mod condition;
#[cfg(feature = "controller")]
pub mod inference_service;
#[cfg(feature = "controller")]
pub mod model;
pub mod model_router;
pub mod schema;

/// The CustomResourceDefinitions of every kind, as the chart installs them.
#[cfg(feature = "controller")]
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        model::Model::crd(),
        inference_service::InferenceService::crd(),
        model_router::ModelRouter::crd(),
    ]
}

/// API group of every LLMKube kind.
pub const GROUP: &str = "inference.llmkube.dev";
/// API version of every LLMKube kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "inference.llmkube.dev/v1alpha1";
