//! The policy ABI, version 1: what a policy module exports and imports.
//!
//! A policy is a WebAssembly *core* module (not a component: a core call costs a fraction of a
//! component call) with this contract:
//!
//! | export | type | meaning |
//! |---|---|---|
//! | `memory` | memory | the module's linear memory |
//! | `llmkube_abi_major`, `llmkube_abi_minor` | `i32` globals | address of a little-endian `u32` in `memory` holding the version (how toolchains export statics) |
//! | `llmkube_alloc` | `(len: i32) -> i32` | a buffer of `len` bytes for the host to write input into |
//! | `llmkube_configure` | `(ptr: i32, len: i32) -> i64` | called once at load with the policy's JSON config; `0` accepts it, anything else is a packed `(ptr, len)` of a UTF-8 refusal message |
//! | `llmkube_evaluate` | `(ptr: i32, len: i32) -> i64` | evaluates one request view (`view`); returns a packed `(ptr, len)` of the [output](crate::output) |
//!
//! The only import is `llmkube.log(level: i32, ptr: i32, len: i32)`. No WASI, clock, network or
//! files. A custom section named [`METADATA_SECTION`] holds the [metadata](crate::metadata) JSON.
//! A packed `(ptr, len)` is `(ptr << 32) | len` in an `i64`.

/// ABI major version; a module with another major version is refused at load.
pub const MAJOR: u32 = 1;
/// ABI minor version: additions that older modules and hosts do without. The host encodes
/// each module's view at the module's minor, so a module never sees a field it does not know.
///
/// - 0: the first layout.
/// - 1: the view carries the principal and team (`spec.auth`).
pub const MINOR: u32 = 2;

/// Custom section holding the metadata JSON.
pub const METADATA_SECTION: &str = "llmkube.policy";
/// Export: address of the major version.
pub const EXPORT_MAJOR: &str = "llmkube_abi_major";
/// Export: address of the minor version.
pub const EXPORT_MINOR: &str = "llmkube_abi_minor";
/// Export: input allocator.
pub const EXPORT_ALLOC: &str = "llmkube_alloc";
/// Export: configuration entry.
pub const EXPORT_CONFIGURE: &str = "llmkube_configure";
/// Export: evaluation entry.
pub const EXPORT_EVALUATE: &str = "llmkube_evaluate";
/// Export: linear memory.
pub const EXPORT_MEMORY: &str = "memory";
/// Import module of the log function.
pub const IMPORT_MODULE: &str = "llmkube";
/// Import name of the log function.
pub const IMPORT_LOG: &str = "log";

/// Log levels of the `log` import.
pub mod log_level {
    /// Errors.
    pub const ERROR: i32 = 1;
    /// Warnings.
    pub const WARN: i32 = 2;
    /// Information.
    pub const INFO: i32 = 3;
    /// Debugging.
    pub const DEBUG: i32 = 4;
}

/// Packs a guest pointer and length into the `i64` the entry points return.
pub const fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// Splits a packed `(ptr, len)`.
pub const fn unpack(packed: i64) -> (u32, u32) {
    let v = packed as u64;
    ((v >> 32) as u32, v as u32)
}
