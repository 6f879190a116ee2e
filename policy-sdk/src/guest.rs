//! The guest side of the ABI: what [`export_policy!`](crate::export_policy) wires a policy to.
//! Policy authors never call these directly (and write no `unsafe`).

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

/// Copies a string into a byte array at compile time (for the metadata section).
pub const fn bytes_of<const N: usize>(s: &str) -> [u8; N] {
    let src = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = src[i];
        i += 1;
    }
    out
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
    let config = match serde_json::from_slice::<P::Config>(&input) {
        Ok(c) => c,
        Err(e) => return refuse(format!("invalid config: {e}")),
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
/// The second argument is the policy's metadata as a JSON object literal (`name`, `version`,
/// and optionally `needs`, `reuse`, `phase`, `configSchema`, `description`); the ABI version
/// is added for you. A unit test checking the metadata is generated too.
///
/// ```ignore
/// llmkube_policy_sdk::export_policy!(TenantAllowlist, r#"{
///     "name": "tenant-allowlist",
///     "version": "0.1.0",
///     "needs": { "headers": ["x-tenant"] }
/// }"#);
/// ```
#[macro_export]
macro_rules! export_policy {
    ($policy:ty, $meta:literal) => {
        const _: () = {
            const META: &str =
                concat!("{\"abi\":{\"major\":1,\"minor\":0},\"policy\":", $meta, "}");
            const _: () = assert!($crate::abi::MAJOR == 1 && $crate::abi::MINOR == 0);

            #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "llmkube.policy"))]
            #[used]
            static METADATA: [u8; META.len()] = $crate::guest::bytes_of::<{ META.len() }>(META);

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
            let meta = concat!("{\"abi\":{\"major\":1,\"minor\":0},\"policy\":", $meta, "}");
            if let Err(e) = $crate::metadata::parse_section(meta.as_bytes()) {
                panic!("{e}");
            }
        }
    };
}

/// How loud a log line is; the gateway logs it at the same level, tagged with the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
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
