//! The LLMKube operator (`llmkube-controller`): the `Model` and `InferenceService` kinds, pure
//! reconcilers for them and for `ModelRouter` (whose spec, validation and rule compiler live in
//! `llmkube-router`), and the kube-runtime controller that applies what they decide.

pub mod controller;
pub mod crd;
pub mod reconcile;
pub mod render;
