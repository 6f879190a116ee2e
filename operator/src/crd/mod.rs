//! Custom resource types of `inference.llmkube.dev/v1alpha1` besides `ModelRouter` (in
//! `llmkube-router`), and the CRDs of all three.

pub mod inference_service;
pub mod model;

/// The CustomResourceDefinitions of every kind, as the chart installs them.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        model::Model::crd(),
        inference_service::InferenceService::crd(),
        llmkube_router::spec::ModelRouter::crd(),
    ]
}
