//! Typed policy metadata for [`crate::export_policy!`]: a misspelt field or phase does not
//! compile, and the custom section's JSON is written at compile time from the checked values.
//!
//! ```ignore
//! export_policy!(TenantAllowlist {
//!     name: "tenant-allowlist",
//!     description: "Refuses unknown tenants",
//!     phase: Pre,                       // or Post
//!     headers: ["x-tenant"],
//!     prompt: false,
//!     reuse: false,
//!     config_schema: r#"{"type": "object"}"#,
//! });
//! ```
//!
//! A misspelt field or phase is a compile error:
//!
//! ```compile_fail
//! const S: llmkube_policy_sdk::meta_spec::MetaSpec =
//!     llmkube_policy_sdk::__meta_spec!(@fields [] name: "p", hedaers: ["x-team"]);
//! ```
//!
//! ```compile_fail
//! const S: llmkube_policy_sdk::meta_spec::MetaSpec =
//!     llmkube_policy_sdk::__meta_spec!(@fields [] name: "p", phase: Psot);
//! ```
//!
//! ```
//! const S: llmkube_policy_sdk::meta_spec::MetaSpec =
//!     llmkube_policy_sdk::__meta_spec!(@fields [] name: "p", phase: Post, headers: ["x-team"]);
//! ```

use crate::metadata::Phase;

/// What a policy declares about itself; every field but `name` has a default.
#[derive(Debug, Clone, Copy)]
pub struct MetaSpec {
    /// Policy name (required).
    pub name: &'static str,
    /// Version (default: the policy crate's).
    pub version: Option<&'static str>,
    /// Free-form description.
    pub description: &'static str,
    /// When it runs (default `Pre`).
    pub phase: Phase,
    /// Headers it reads; no other header reaches it.
    pub headers: &'static [&'static str],
    /// Whether it reads the prompt text.
    pub prompt: bool,
    /// Whether one instance may serve many requests.
    pub reuse: bool,
    /// JSON Schema of its configuration, as JSON text (empty: none). Not parsed at compile
    /// time: the test `export_policy!` generates checks it.
    pub config_schema: &'static str,
}

impl MetaSpec {
    /// The defaults `export_policy!` starts from.
    pub const DEFAULT: MetaSpec = MetaSpec {
        name: "",
        version: None,
        description: "",
        phase: Phase::Pre,
        headers: &[],
        prompt: false,
        reuse: false,
        config_schema: "",
    };

    /// Writes the metadata object's JSON into `out` (when it is long enough) and returns its
    /// length: call with an empty slice to size the buffer.
    pub const fn encode(&self, out: &mut [u8]) -> usize {
        let mut n = raw(out, 0, b"{\"name\":");
        n = string(out, n, self.name);
        if let Some(v) = self.version {
            n = raw(out, n, b",\"version\":");
            n = string(out, n, v);
        }
        n = raw(out, n, b",\"description\":");
        n = string(out, n, self.description);
        n = raw(
            out,
            n,
            match self.phase {
                Phase::Pre => b",\"phase\":\"pre\"",
                Phase::Post => b",\"phase\":\"post\"",
            },
        );
        n = raw(out, n, b",\"needs\":{\"prompt\":");
        n = raw(out, n, if self.prompt { b"true" } else { b"false" });
        n = raw(out, n, b",\"headers\":[");
        let mut i = 0;
        while i < self.headers.len() {
            if i > 0 {
                n = raw(out, n, b",");
            }
            n = string(out, n, self.headers[i]);
            i += 1;
        }
        n = raw(out, n, b"]},\"reuse\":");
        n = raw(out, n, if self.reuse { b"true" } else { b"false" });
        if !self.config_schema.is_empty() {
            n = raw(out, n, b",\"configSchema\":");
            n = raw(out, n, self.config_schema.as_bytes());
        }
        raw(out, n, b"}")
    }

    /// The JSON as a fixed-size array; `N` must be `self.encode(&mut [])`.
    pub const fn to_json<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = self.encode(&mut out);
        assert!(
            n == N,
            "the metadata's length changed between sizing and writing"
        );
        out
    }
}

/// Copies `bytes` to `out` at `at` when they fit; returns the end either way.
const fn raw(out: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        if at + i < out.len() {
            out[at + i] = bytes[i];
        }
        i += 1;
    }
    at + bytes.len()
}

/// `s` as a JSON string: quotes, backslashes and control characters escaped.
const fn string(out: &mut [u8], at: usize, s: &str) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let s = s.as_bytes();
    let mut n = raw(out, at, b"\"");
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        n = match b {
            b'"' => raw(out, n, b"\\\""),
            b'\\' => raw(out, n, b"\\\\"),
            0..0x20 => raw(
                out,
                n,
                &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ],
            ),
            _ => raw(out, n, &[b]),
        };
        i += 1;
    }
    raw(out, n, b"\"")
}

/// Builds a [`MetaSpec`] from `export_policy!`'s fields (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __meta_spec {
    (@fields [$($done:tt)*]) => {
        $crate::meta_spec::MetaSpec { $($done)* ..$crate::meta_spec::MetaSpec::DEFAULT }
    };
    (@fields [$($done:tt)*] phase: $p:ident $(, $($rest:tt)*)?) => {
        $crate::__meta_spec!(@fields [$($done)* phase: $crate::metadata::Phase::$p,] $($($rest)*)?)
    };
    (@fields [$($done:tt)*] headers: [$($h:expr),* $(,)?] $(, $($rest:tt)*)?) => {
        $crate::__meta_spec!(@fields [$($done)* headers: &[$($h),*],] $($($rest)*)?)
    };
    (@fields [$($done:tt)*] version: $v:expr $(, $($rest:tt)*)?) => {
        $crate::__meta_spec!(@fields [$($done)* version: ::core::option::Option::Some($v),] $($($rest)*)?)
    };
    (@fields [$($done:tt)*] $k:ident: $v:expr $(, $($rest:tt)*)?) => {
        $crate::__meta_spec!(@fields [$($done)* $k: $v,] $($($rest)*)?)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_json_the_gateway_reads() {
        const SPEC: MetaSpec = crate::__meta_spec!(@fields []
            name: "a \"quoted\"\nname",
            phase: Post,
            headers: ["x-team", "x-tier"],
            config_schema: r#"{"type":"object"}"#,
        );
        const LEN: usize = SPEC.encode(&mut []);
        const JSON: [u8; LEN] = SPEC.to_json::<LEN>();
        let json = std::str::from_utf8(&JSON).unwrap();
        // As export_policy! does: the crate's version goes in when the spec names none.
        let section = crate::guest::section::<512>(json, "0.3.0");
        let len = crate::guest::section_len(json, "0.3.0");
        let meta = crate::metadata::parse_section(&section[..len])
            .unwrap()
            .policy;
        assert_eq!(meta.version, "0.3.0");
        assert_eq!(meta.name, "a \"quoted\"\nname");
        assert_eq!(meta.phase, Phase::Post);
        assert_eq!(meta.needs.headers, ["x-team", "x-tier"]);
        assert!(!meta.needs.prompt && !meta.reuse);
        assert_eq!(meta.config_schema["type"], "object");
    }
}
