//! A loaded policy module: checked against the ABI at load, then evaluated per request.
//!
//! Modules that declare `reuse` (the compiled rule module does) keep one instance per worker
//! thread; all others get a fresh instance per evaluation, configured and then dropped, so
//! nothing of one request survives into the next.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use llmkube_policy_sdk::abi;
use llmkube_policy_sdk::metadata::{PolicyMeta, parse_section};
use llmkube_policy_sdk::output::Output;
use sha2::{Digest, Sha256};
use wasmtime::{Instance, InstancePre, Memory, Store, Trap, TypedFunc};

use super::PolicyError;
use super::engine::{HostState, InstanceSlot, PolicyEngine, new_store, start_evaluation};

/// Largest output a policy may return.
const MAX_OUTPUT: u32 = 64 << 10;
/// Reused instances one thread keeps at most.
const MAX_REUSED_PER_THREAD: usize = 32;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why a module was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes do not match the pinned digest.
    #[error("sha256 mismatch: the module is {actual}, the manifest pins {expected}")]
    Digest {
        /// Pinned.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// Not a usable policy module.
    #[error("{0}")]
    Invalid(String),
    /// The policy refused its configuration.
    #[error("the policy refused its config: {0}")]
    Refused(String),
}

/// A policy ready to evaluate.
pub struct PolicyModule {
    /// Unique per load (keys reused instances).
    id: u64,
    /// Lowercase hex sha256 of the module bytes.
    pub digest: String,
    /// What the module says about itself.
    pub meta: PolicyMeta,
    /// The ABI minor it was built for: its view is encoded at that minor.
    pub abi_minor: u32,
    /// The name it is known by (`spec.policies[].name`, or the rule module's).
    pub name: Arc<str>,
    pre: InstancePre<HostState>,
    config: Vec<u8>,
    /// sha256 of `config` (the configuration as JSON), for audit lines and reload logs: with
    /// the module's digest it says exactly which policy served a request.
    pub config_digest: Arc<str>,
    engine: Arc<PolicyEngine>,
    alive: Arc<()>,
}

impl std::fmt::Debug for PolicyModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyModule")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish()
    }
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    llmkube_router::compiler::hex(&Sha256::digest(bytes))
}

/// The exports of one instance.
struct Exports {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    configure: TypedFunc<(i32, i32), i64>,
    evaluate: TypedFunc<(i32, i32), i64>,
}

impl Exports {
    fn of(store: &mut Store<HostState>, instance: &Instance) -> Result<Self, String> {
        let memory = instance
            .get_memory(&mut *store, abi::EXPORT_MEMORY)
            .ok_or("does not export `memory`")?;
        let func = |store: &mut Store<HostState>, name: &str| {
            instance
                .get_func(&mut *store, name)
                .ok_or_else(|| format!("does not export `{name}`"))
        };
        let typed_err =
            |name: &str, e: wasmtime::Error| format!("export `{name}` has the wrong type: {e}");
        Ok(Exports {
            memory,
            alloc: func(store, abi::EXPORT_ALLOC)?
                .typed(&*store)
                .map_err(|e| typed_err(abi::EXPORT_ALLOC, e))?,
            configure: func(store, abi::EXPORT_CONFIGURE)?
                .typed(&*store)
                .map_err(|e| typed_err(abi::EXPORT_CONFIGURE, e))?,
            evaluate: func(store, abi::EXPORT_EVALUATE)?
                .typed(&*store)
                .map_err(|e| typed_err(abi::EXPORT_EVALUATE, e))?,
        })
    }

    /// Writes `input` into a guest buffer and returns its pointer.
    fn pass(&self, store: &mut Store<HostState>, input: &[u8]) -> Result<i32, PolicyError> {
        let len = i32::try_from(input.len())
            .map_err(|_| PolicyError::Malformed("input too large".into()))?;
        let ptr = self.alloc.call(&mut *store, len).map_err(classify)?;
        self.memory
            .write(&mut *store, ptr as u32 as usize, input)
            .map_err(|_| {
                PolicyError::Malformed("llmkube_alloc returned a buffer outside memory".into())
            })?;
        Ok(ptr)
    }

    /// The bytes at a packed `(ptr, len)`.
    fn read<'s>(
        &self,
        store: &'s Store<HostState>,
        packed: i64,
        max: u32,
    ) -> Result<&'s [u8], PolicyError> {
        let (ptr, len) = abi::unpack(packed);
        if len > max {
            return Err(PolicyError::Malformed(format!(
                "output of {len} bytes exceeds {max}"
            )));
        }
        let start = ptr as usize;
        self.memory
            .data(store)
            .get(start..start + len as usize)
            .ok_or_else(|| PolicyError::Malformed("output lies outside memory".into()))
    }

    /// Calls `llmkube_configure`.
    fn configure(
        &self,
        store: &mut Store<HostState>,
        config: &[u8],
    ) -> Result<Configured, PolicyError> {
        let ptr = self.pass(store, config)?;
        let status = self
            .configure
            .call(&mut *store, (ptr, config.len() as i32))
            .map_err(classify)?;
        if status == 0 {
            return Ok(Configured::Accepted);
        }
        let message = self.read(store, status, 4096)?;
        Ok(Configured::Refused(
            String::from_utf8_lossy(message).into_owned(),
        ))
    }

    fn evaluate<R>(
        &self,
        store: &mut Store<HostState>,
        input: &[u8],
        decide: impl FnOnce(&Output<'_>) -> Result<R, String>,
    ) -> Result<R, PolicyError> {
        let ptr = self.pass(store, input)?;
        let packed = self
            .evaluate
            .call(&mut *store, (ptr, input.len() as i32))
            .map_err(classify)?;
        let bytes = self.read(store, packed, MAX_OUTPUT)?;
        let output = Output::decode(bytes)
            .map_err(|e| PolicyError::Malformed(format!("undecodable output: {e}")))?;
        decide(&output).map_err(PolicyError::Malformed)
    }
}

/// Turns a wasmtime error into a policy failure.
fn classify(e: wasmtime::Error) -> PolicyError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PolicyError::Deadline,
        Some(trap) => PolicyError::Trap(trap.to_string()),
        None => PolicyError::Trap(format!("{e:#}")),
    }
}

struct Reused {
    module: u64,
    alive: Weak<()>,
    store: Store<HostState>,
    exports: Exports,
    _slot: InstanceSlot,
}

thread_local! {
    static REUSED: RefCell<Vec<Reused>> = const { RefCell::new(Vec::new()) };
}

impl PolicyModule {
    /// Loads a module: checks the digest (when pinned), the metadata section, the ABI version,
    /// imports and exports, and that the policy accepts `config`.
    pub fn load(
        engine: &Arc<PolicyEngine>,
        name: &str,
        wasm: &[u8],
        expected_sha256: Option<&str>,
        config: &serde_json::Value,
    ) -> Result<Arc<Self>, LoadError> {
        let digest = sha256_hex(wasm);
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(LoadError::Digest {
                expected: expected.to_ascii_lowercase(),
                actual: digest,
            });
        }
        let section = metadata_section(wasm).map_err(LoadError::Invalid)?;
        let section = parse_section(section).map_err(LoadError::Invalid)?;
        if section.abi.major != abi::MAJOR {
            return Err(LoadError::Invalid(format!(
                "built for policy ABI {}.{}, this gateway speaks {}.{}",
                section.abi.major,
                section.abi.minor,
                abi::MAJOR,
                abi::MINOR
            )));
        }
        let module = engine.module(&digest, wasm).map_err(LoadError::Invalid)?;
        let pre = engine.linker.instantiate_pre(&module).map_err(|e| {
            LoadError::Invalid(format!("imports something the host does not provide: {e}"))
        })?;
        let config = serde_json::to_vec(config).unwrap_or_else(|_| b"null".to_vec());
        let loaded = PolicyModule {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            digest,
            meta: section.policy,
            abi_minor: section.abi.minor,
            name: Arc::from(name),
            pre,
            config_digest: Arc::from(sha256_hex(&config)),
            config,
            engine: Arc::clone(engine),
            alive: Arc::new(()),
        };
        // A trial instance: exports, the ABI globals, and the configuration.
        let (mut store, instance, exports, _slot) = loaded
            .instantiate()
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        let major = abi_major(&mut store, &instance, &exports).map_err(LoadError::Invalid)?;
        if major != abi::MAJOR {
            return Err(LoadError::Invalid(format!(
                "exports policy ABI major version {major}, this gateway speaks {}",
                abi::MAJOR
            )));
        }
        match exports.configure(&mut store, &loaded.config) {
            Ok(Configured::Accepted) => Ok(Arc::new(loaded)),
            Ok(Configured::Refused(refusal)) => Err(LoadError::Refused(refusal)),
            Err(e) => Err(LoadError::Invalid(format!("configure failed: {e}"))),
        }
    }

    fn instantiate(
        &self,
    ) -> Result<(Store<HostState>, Instance, Exports, InstanceSlot), PolicyError> {
        let slot = self.engine.reserve()?;
        let mut store = new_store(&self.engine, Arc::clone(&self.name));
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
            {
                PolicyError::Exhausted
            } else {
                classify(e)
            }
        })?;
        let exports = Exports::of(&mut store, &instance).map_err(PolicyError::Malformed)?;
        Ok((store, instance, exports, slot))
    }

    /// Evaluates one encoded request view and hands the decoded output to `decide`, whose
    /// error counts as a malformed output.
    pub fn evaluate<R>(
        &self,
        input: &[u8],
        decide: impl FnOnce(&Output<'_>) -> Result<R, String>,
    ) -> Result<R, PolicyError> {
        if !self.meta.reuse {
            let (mut store, _, exports, _slot) = self.instantiate()?;
            exports.configure(&mut store, &self.config)?.accepted()?;
            return exports.evaluate(&mut store, input, decide);
        }
        REUSED.with(|cell| {
            let mut reused = cell.borrow_mut();
            let at = match reused.iter().position(|r| r.module == self.id) {
                Some(i) => i,
                None => {
                    reused.retain(|r| r.alive.strong_count() > 0);
                    if reused.len() >= MAX_REUSED_PER_THREAD {
                        reused.remove(0);
                    }
                    let (mut store, _, exports, slot) = self.instantiate()?;
                    exports.configure(&mut store, &self.config)?.accepted()?;
                    reused.push(Reused {
                        module: self.id,
                        alive: Arc::downgrade(&self.alive),
                        store,
                        exports,
                        _slot: slot,
                    });
                    reused.len() - 1
                }
            };
            let entry = &mut reused[at];
            start_evaluation(&mut entry.store);
            let result = entry.exports.evaluate(&mut entry.store, input, decide);
            if result.is_err() {
                // Never reuse an instance after a failure.
                reused.remove(at);
            }
            result
        })
    }
}

/// The major version the `llmkube_abi_major` global points at.
fn abi_major(
    store: &mut Store<HostState>,
    instance: &Instance,
    exports: &Exports,
) -> Result<u32, String> {
    let global = instance
        .get_global(&mut *store, abi::EXPORT_MAJOR)
        .ok_or_else(|| format!("does not export `{}`", abi::EXPORT_MAJOR))?;
    let addr = global
        .get(&mut *store)
        .i32()
        .ok_or_else(|| format!("`{}` is not an i32 global", abi::EXPORT_MAJOR))?
        as u32 as usize;
    let bytes = exports
        .memory
        .data(&*store)
        .get(addr..addr + 4)
        .ok_or_else(|| format!("`{}` points outside memory", abi::EXPORT_MAJOR))?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The contents of the `llmkube.policy` custom section.
fn metadata_section(wasm: &[u8]) -> Result<&[u8], String> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(reader))
                if reader.name() == abi::METADATA_SECTION =>
            {
                return Ok(reader.data());
            }
            Ok(_) => {}
            Err(e) => return Err(format!("not a WebAssembly module: {e}")),
        }
    }
    Err(format!(
        "has no `{}` metadata section (build it with llmkube-policy-sdk's export_policy!)",
        abi::METADATA_SECTION
    ))
}

/// What a module answered to its configuration.
enum Configured {
    Accepted,
    /// The module's own message.
    Refused(String),
}

impl Configured {
    /// At evaluation time a refusal (the module accepted the same config at load) is the
    /// module misbehaving.
    fn accepted(self) -> Result<(), PolicyError> {
        match self {
            Configured::Accepted => Ok(()),
            Configured::Refused(refusal) => Err(PolicyError::Malformed(format!(
                "refused its config: {refusal}"
            ))),
        }
    }
}
