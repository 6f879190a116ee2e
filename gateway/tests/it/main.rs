//! Gateway integration tests: real HTTP over loopback against in-process mock backends.

mod boundary;
mod dispatch;
mod errors;
#[cfg(feature = "kubernetes")]
mod kubernetes;
mod lifecycle;
mod observability;
mod openai_sdk;
mod policies;
mod reload;
mod resilience;
mod routing;
mod streaming;
mod support;
