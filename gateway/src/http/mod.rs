//! The HTTP layer: connections and their HTTP version, the client, the bodies the gateway
//! sends, and errors in the OpenAI shape.

pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod error_shape;
pub(crate) mod headers;
pub(crate) mod protocol;
pub(crate) mod server;
pub(crate) mod sse;
pub(crate) mod tls;
