//! Which HTTP version a new connection speaks, decided without taking a byte from it.
//!
//! hyper-util's automatic detection reads the first bytes itself and hands them back to
//! hyper's HTTP/1 reader as a prefix of up to 24 bytes. The reader's first read then returns
//! only that prefix, its 8 KiB buffer cannot take the next 8 KiB without growing, and it stays
//! 16 KiB for the life of the connection (measured with massif: 16,384 bytes per held
//! stream). Peeking at the socket, or reading ALPN from the TLS handshake, leaves the bytes
//! where they are; only a client that has sent part of the HTTP/2 preface and nothing more
//! is left to hyper-util's detection.

use tokio::net::TcpStream;

/// The client connection preface every HTTP/2 connection starts with (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP version a connection was found to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2 (with prior knowledge in plain text, or by ALPN).
    Http2,
}

/// From the first bytes a client sent; `None` while they are empty or a strict prefix of the
/// HTTP/2 preface.
pub fn from_first_bytes(bytes: &[u8]) -> Option<Protocol> {
    let n = bytes.len().min(H2_PREFACE.len());
    if n == 0 {
        None
    } else if bytes[..n] != H2_PREFACE[..n] {
        Some(Protocol::Http1)
    } else if n == H2_PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

/// Waits for a plain connection's first bytes and looks at them without consuming them;
/// `None` when they do not decide (see [`from_first_bytes`]) or the peer closed or failed.
pub async fn sniff(stream: &TcpStream) -> Option<Protocol> {
    let mut first = [0u8; H2_PREFACE.len()];
    match stream.peek(&mut first).await {
        Ok(n) => from_first_bytes(&first[..n]),
        Err(_) => None,
    }
}

/// From the protocol the TLS handshake agreed on; `None` when the client named none.
pub fn from_alpn(alpn: Option<&[u8]>) -> Option<Protocol> {
    match alpn? {
        b"h2" => Some(Protocol::Http2),
        b"http/1.1" | b"http/1.0" => Some(Protocol::Http1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_http1_from_their_first_differing_byte() {
        for first in [
            &b"POST /v1/chat/completions HTTP/1.1\r\n"[..],
            b"GET",
            b"P",
            b"PO",
        ] {
            let want = (first != b"P").then_some(Protocol::Http1);
            assert_eq!(from_first_bytes(first), want, "{first:?}");
        }
    }

    #[test]
    fn the_preface_is_http2_only_when_complete() {
        for n in 0..H2_PREFACE.len() {
            assert_eq!(from_first_bytes(&H2_PREFACE[..n]), None, "{n} bytes");
        }
        assert_eq!(from_first_bytes(H2_PREFACE), Some(Protocol::Http2));
        let mut with_frames = H2_PREFACE.to_vec();
        with_frames.extend_from_slice(&[0, 0, 18, 4, 0]);
        assert_eq!(from_first_bytes(&with_frames), Some(Protocol::Http2));
    }

    #[test]
    fn alpn_names_the_version() {
        assert_eq!(from_alpn(Some(b"h2")), Some(Protocol::Http2));
        assert_eq!(from_alpn(Some(b"http/1.1")), Some(Protocol::Http1));
        assert_eq!(from_alpn(Some(b"spdy/3")), None);
        assert_eq!(from_alpn(None), None);
    }
}
