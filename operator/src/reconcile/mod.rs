//! Reconcilers as pure functions: desired state and observations in, status and objects out.
//! The controller glue (watches, patches) calls these and stays thin.

pub mod admission;
pub mod downloader;
pub mod inference_service;
pub mod model;
pub mod model_router;
