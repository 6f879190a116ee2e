//! The HTTP layer: connections, the bodies the gateway sends, and errors in the OpenAI shape.

pub(crate) mod body;
pub(crate) mod error;
mod error_shape;
pub(crate) mod headers;
pub(crate) mod server;
pub(crate) mod sse;
pub(crate) mod tls;
