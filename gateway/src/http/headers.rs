//! Header hygiene: the headers the gateway owns on every hop, in one list that forwarding and
//! policy answers both apply.

use http::HeaderName;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Headers the gateway owns on every hop: hop-by-hop, framing, `Host`, `Expect` and the
/// client's own credentials. Never forwarded from the client, and a policy may neither set nor
/// remove them. The one list of header hygiene.
pub fn gateway_owned(name: &HeaderName) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n)
        || matches!(
            n,
            "transfer-encoding"
                | "host"
                | "content-length"
                | "authorization"
                | "x-api-key"
                | "expect"
        )
}
