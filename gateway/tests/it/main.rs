//! Gateway integration tests: real HTTP over loopback against in-process mock backends.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

mod accounting;
mod anthropic_in;
mod anthropic_out;
mod auth;
mod auth_jwt;
mod auth_mtls;
mod boundary;
mod budgets;
mod dashboard;
mod dispatch;
mod errors;
mod explain;
#[cfg(feature = "kubernetes")]
mod kubernetes;
mod lifecycle;
mod observability;
mod openai_sdk;
mod otlp;
mod policies;
mod policy_new;
mod reload;
mod resilience;
mod routing;
mod streaming;
mod support;
