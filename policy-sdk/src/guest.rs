//! The guest side of the ABI: what [`export_policy!`](crate::export_policy) wires a policy to.
//! Policy authors never call these directly (and write no `unsafe`).

// The ABI hands raw buffers across the module boundary; this is the one place of the SDK
// that turns them back into owned memory, each use with its SAFETY note.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::abi::pack;
use crate::output::Decision;
use crate::policy::Policy;
use crate::view::Request;
use crate::wire::Writer;

thread_local! {
    /// The last output, kept alive until the next call so the host can read it.
    static OUTPUT: RefCell<Writer> = RefCell::new(Writer::with_capacity(256));
}

/// The metadata section's start: the ABI version, then the policy's own object.
const SECTION_HEAD: &str = "{\"abi\":{\"major\":1,\"minor\":2},\"policy\":";
const _: () = assert!(crate::abi::MAJOR == 1 && crate::abi::MINOR == 2);

/// Whether the policy's metadata gives its own `"version"` (else the crate's is put in).
const fn names_version(meta: &[u8]) -> bool {
    let key = b"\"version\"";
    let mut i = 0;
    while i + key.len() <= meta.len() {
        let mut k = 0;
        while k < key.len() && meta[i + k] == key[k] {
            k += 1;
        }
        if k == key.len() {
            return true;
        }
        i += 1;
    }
    false
}

/// Where the policy's object opens (just past its `{`), and whether anything follows before
/// its `}` (so that the version needs a comma after it).
const fn object_start(meta: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while i < meta.len() && meta[i] != b'{' {
        i += 1;
    }
    let start = if i < meta.len() { i + 1 } else { meta.len() };
    let mut j = start;
    while j < meta.len() && meta[j].is_ascii_whitespace() {
        j += 1;
    }
    (start, j < meta.len() && meta[j] != b'}')
}

/// Length of [`section`]`(meta, version)`.
pub const fn section_len(meta: &str, version: &str) -> usize {
    let meta = meta.as_bytes();
    let mut len = SECTION_HEAD.len() + meta.len() + 1;
    if !names_version(meta) {
        let (_, more) = object_start(meta);
        // "version":"<version>" and a comma when more follows.
        len += 12 + version.len() + more as usize;
    }
    len
}

/// The metadata section at compile time: the ABI version, then the policy's `meta` object with
/// `"version": version` (the crate's version) put first unless `meta` names its own.
/// `N` must be [`section_len`]`(meta, version)`.
pub const fn section<const N: usize>(meta: &str, version: &str) -> [u8; N] {
    let (meta, version) = (meta.as_bytes(), version.as_bytes());
    let mut out = [0u8; N];
    let mut n = 0;
    n = put(&mut out, n, SECTION_HEAD.as_bytes(), 0, SECTION_HEAD.len());
    if names_version(meta) {
        n = put(&mut out, n, meta, 0, meta.len());
    } else {
        let (start, more) = object_start(meta);
        n = put(&mut out, n, meta, 0, start);
        n = put(&mut out, n, b"\"version\":\"", 0, 11);
        n = put(&mut out, n, version, 0, version.len());
        n = put(&mut out, n, b"\",", 0, 1 + more as usize);
        n = put(&mut out, n, meta, start, meta.len());
    }
    put(&mut out, n, b"}", 0, 1);
    out
}

/// Copies `src[from..to]` into `out` at `at`; returns the end.
const fn put<const N: usize>(
    out: &mut [u8; N],
    at: usize,
    src: &[u8],
    from: usize,
    to: usize,
) -> usize {
    let mut i = from;
    while i < to {
        out[at + i - from] = src[i];
        i += 1;
    }
    at + to - from
}

/// `llmkube_alloc`: a zeroed buffer the host writes input into; ownership comes back with the
/// next `configure`/`evaluate` call.
pub fn alloc(len: i32) -> i32 {
    let buf = vec![0u8; len.max(0) as usize].into_boxed_slice();
    Box::into_raw(buf) as *mut u8 as usize as i32
}

/// Takes back a buffer handed out by [`alloc`].
///
/// # Safety
/// `ptr`/`len` must come from one `alloc(len)` call, used once.
unsafe fn take(ptr: i32, len: i32) -> Box<[u8]> {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len.max(0) as usize);
    // SAFETY: the host passes back exactly what `alloc` returned, once.
    unsafe { Box::from_raw(slice) }
}

fn publish(write: impl FnOnce(&mut Writer)) -> i64 {
    OUTPUT.with(|out| {
        let mut out = out.borrow_mut();
        out.buf.clear();
        write(&mut out);
        pack(out.buf.as_ptr() as usize as u32, out.buf.len() as u32)
    })
}

/// `llmkube_configure`: 0 when the JSON config is accepted, else a packed refusal message.
pub fn configure<P: Policy>(
    ptr: i32,
    len: i32,
    slot: &'static LocalKey<RefCell<Option<P>>>,
) -> i64 {
    // SAFETY: the host calls configure with a buffer from `alloc`.
    let input = unsafe { take(ptr, len) };
    let refuse = |msg: String| publish(|w| w.buf.extend_from_slice(msg.as_bytes()));
    let config = match crate::config::from_json::<P::Config>(&input) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    match P::configure(config) {
        Ok(policy) => {
            slot.with(|s| *s.borrow_mut() = Some(policy));
            0
        }
        Err(msg) => refuse(msg),
    }
}

/// `llmkube_evaluate`: decodes the view, runs the policy, returns the packed output. A
/// malformed view or an unconfigured policy traps, which the host treats as a failure.
pub fn evaluate<P: Policy>(ptr: i32, len: i32, slot: &'static LocalKey<RefCell<Option<P>>>) -> i64 {
    // SAFETY: the host calls evaluate with a buffer from `alloc`.
    let input = unsafe { take(ptr, len) };
    let request = Request::decode(&input).expect("malformed request view");
    let decision: Decision = slot.with(|s| {
        let policy = s.borrow();
        let policy = policy.as_ref().expect("evaluate called before configure");
        policy.evaluate(&request)
    });
    publish(|w| decision.encode(w))
}

/// Exports a [`Policy`] as a WebAssembly policy module.
///
/// The metadata is typed (checked by the compiler: a misspelt field or phase does not build)
/// and written into the module's custom section at compile time; see
/// [`crate::meta_spec::MetaSpec`] for the fields and their defaults. `version` defaults to the
/// policy crate's version. A unit test checking the metadata (the configuration schema
/// included) is generated too.
///
/// ```ignore
/// llmkube_policy_sdk::export_policy!(TenantAllowlist {
///     name: "tenant-allowlist",
///     headers: ["x-tenant"],
/// });
/// ```
///
/// The older form, a JSON object literal (`r#"{"name": "...", "needs": {...}}"#`), still
/// works.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty { $($fields:tt)* }) => {
        $crate::export_policy!(@export $policy, {
            const SPEC: $crate::meta_spec::MetaSpec = $crate::__meta_spec!(@fields [] $($fields)*);
            const JSON_LEN: usize = SPEC.encode(&mut []);
            const JSON: [u8; JSON_LEN] = SPEC.to_json::<JSON_LEN>();
            match ::core::str::from_utf8(&JSON) {
                Ok(json) => json,
                Err(_) => panic!("policy metadata is not UTF-8"),
            }
        });
    };
    ($policy:ty, $meta:literal) => {
        $crate::export_policy!(@export $policy, $meta);
    };
    (@export $policy:ty, $meta:expr) => {
        const _: () = {
            const META: &str = $meta;
            const VERSION: &str = env!("CARGO_PKG_VERSION");
            const LEN: usize = $crate::guest::section_len(META, VERSION);

            #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "llmkube.policy"))]
            #[used]
            static METADATA: [u8; LEN] = $crate::guest::section::<LEN>(META, VERSION);

            #[allow(non_upper_case_globals)]
            #[unsafe(no_mangle)]
            static llmkube_abi_major: u32 = $crate::abi::MAJOR;
            #[allow(non_upper_case_globals)]
            #[unsafe(no_mangle)]
            static llmkube_abi_minor: u32 = $crate::abi::MINOR;

            ::std::thread_local! {
                static POLICY: ::std::cell::RefCell<::std::option::Option<$policy>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            impl $crate::metadata::Exported for $policy {
                fn metadata() -> $crate::metadata::PolicyMeta {
                    match $crate::metadata::parse_section(&METADATA) {
                        Ok(section) => section.policy,
                        Err(e) => panic!("{e}"),
                    }
                }
            }

            #[unsafe(no_mangle)]
            extern "C" fn llmkube_alloc(len: i32) -> i32 {
                $crate::guest::alloc(len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn llmkube_configure(ptr: i32, len: i32) -> i64 {
                $crate::guest::configure::<$policy>(ptr, len, &POLICY)
            }

            #[unsafe(no_mangle)]
            extern "C" fn llmkube_evaluate(ptr: i32, len: i32) -> i64 {
                $crate::guest::evaluate::<$policy>(ptr, len, &POLICY)
            }
        };

        #[cfg(test)]
        #[test]
        fn llmkube_policy_metadata_is_valid() {
            const VERSION: &str = env!("CARGO_PKG_VERSION");
            const LEN: usize = $crate::guest::section_len($meta, VERSION);
            let section = $crate::guest::section::<LEN>($meta, VERSION);
            if let Err(e) = $crate::metadata::parse_section(&section) {
                panic!("{e}");
            }
        }
    };
}

/// How loud a log line is; the gateway logs it at the same level, tagged with the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// Worth knowing in normal operation.
    Info,
    /// Detail for troubleshooting.
    Debug,
}

impl Level {
    fn abi(self) -> i32 {
        use crate::abi::log_level;
        match self {
            Level::Error => log_level::ERROR,
            Level::Warn => log_level::WARN,
            Level::Info => log_level::INFO,
            Level::Debug => log_level::DEBUG,
        }
    }
}

/// Sends a line to the gateway's log (at most 4 KiB are kept per line).
pub fn log(level: Level, message: &str) {
    let level = level.abi();
    #[cfg(target_arch = "wasm32")]
    {
        #[link(wasm_import_module = "llmkube")]
        unsafe extern "C" {
            #[link_name = "log"]
            fn host_log(level: i32, ptr: *const u8, len: usize);
        }
        // SAFETY: the host reads `len` bytes at `ptr` from this module's memory.
        unsafe { host_log(level, message.as_ptr(), message.len()) }
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[policy log {level}] {message}");
}

#[cfg(test)]
mod tests {
    use super::{section, section_len};
    use crate::metadata::parse_section;

    /// The section for `meta` built by a crate at version 2.3.4 (`section` writes exactly
    /// `section_len` bytes; a larger array leaves zeros after them).
    fn built(meta: &str) -> crate::metadata::Section {
        let len = section_len(meta, "2.3.4");
        let bytes = section::<512>(meta, "2.3.4");
        parse_section(&bytes[..len]).unwrap_or_else(|e| panic!("{meta}: {e}"))
    }

    #[test]
    fn the_version_defaults_to_the_crate_version() {
        let s = built(r#"{ "name": "a", "needs": { "headers": ["x-team"] } }"#);
        assert_eq!(
            (s.policy.name.as_str(), s.policy.version.as_str()),
            ("a", "2.3.4")
        );
        assert_eq!(s.policy.needs.headers, ["x-team"]);
    }

    #[test]
    fn a_version_the_policy_names_is_kept() {
        let s = built(r#"{"name":"a","version":"0.9.0"}"#);
        assert_eq!(s.policy.version, "0.9.0");
    }

    #[test]
    fn an_object_with_only_whitespace_after_its_brace_gets_no_stray_comma() {
        let meta = "{ }";
        let len = section_len(meta, "1.0.0");
        let bytes = section::<64>(meta, "1.0.0");
        let text = std::str::from_utf8(&bytes[..len]).unwrap();
        assert_eq!(
            text,
            r#"{"abi":{"major":1,"minor":2},"policy":{"version":"1.0.0" }}"#
        );
    }
}
