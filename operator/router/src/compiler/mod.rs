//! The rule compiler: a `ModelRouter` spec becomes a WebAssembly policy module that implements
//! the whole routing decision of [`RoutingTable::decide`].
//!
//! The module speaks the policy ABI (`llmkube-policy-sdk`): it reads the request view (model,
//! classifications, headers) and returns an encoded decision. Matching is compiled code — rule
//! order, ANDed conditions, classification membership, header equality, task complexity,
//! model globs — calling a few helpers emitted once. Every possible answer (each rule's route,
//! its local-only variant for sensitive requests, fail-closed and no-route denials, each
//! backend-name and default route) is encoded ahead of time into the data segment, so an
//! evaluation only selects one. `requiredCapabilities` is resolved at compile time.
//!
//! Output is deterministic: the same spec gives the same bytes, so the module's sha256 names the
//! rule set.

mod data;
mod decode;
mod helpers;

use std::time::Duration;

use llmkube_policy_sdk::abi;
use llmkube_policy_sdk::output::{Action, Decision as Answer, Strategy as AbiStrategy};
use sha2::{Digest, Sha256};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, CustomSection, DataSection, ExportKind, ExportSection,
    Function, FunctionSection, GlobalSection, GlobalType, MemorySection, MemoryType, Module,
    TypeSection, ValType,
};

use crate::defaults::TASK_COMPLEXITY_HEADER;
use crate::routing::{RoutingTable, RuleEntry, fail_closed_message};
use crate::spec::{ModelRouterSpec, Strategy, Tier};
use crate::validate::ValidationErrors;

pub use decode::{decode_decision, resolve_backends, route_from, strategy_from_abi};

use data::{Data, Span};
use helpers::{idx, ty, word};

/// Annotation key naming how a route was chosen when no rule chose it.
pub const VIA_ANNOTATION: &str = "via";
/// Annotation key naming the fail-closed rule of a denial.
pub const RULE_ANNOTATION: &str = "rule";
/// Annotation key set (to `true`) when the request was sensitive.
pub const SENSITIVE_ANNOTATION: &str = "sensitive";
/// Reject code of a request nothing routes.
pub const NO_ROUTE_CODE: &str = "no_route";
/// Reject code of a fail-closed denial.
pub const FAIL_CLOSED_CODE: &str = "fail_closed";
/// Name of the compiled module in its metadata.
pub const MODULE_NAME: &str = "llmkube-rules";
/// Largest memory the module may grow to, in 64 KiB pages (16 MiB).
const MAX_PAGES: u64 = 256;

/// A compiled rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRules {
    /// The module.
    pub wasm: Vec<u8>,
    /// Lowercase hex sha256 of `wasm`.
    pub sha256: String,
    /// Header names the module reads (lowercase): give them in the request view.
    pub headers: Vec<String>,
}

/// Validates and compiles a spec.
pub fn compile(spec: &ModelRouterSpec) -> Result<CompiledRules, ValidationErrors> {
    Ok(compile_table(&RoutingTable::new(spec)?))
}

/// Header names a rule module must see: those of `match.headers` plus the task-complexity header.
pub fn view_headers(table: &RoutingTable) -> Vec<String> {
    let mut names = table.header_names.clone();
    names.push(TASK_COMPLEXITY_HEADER.to_owned());
    names.sort();
    names.dedup();
    names
}

/// Compiles a prepared table.
pub fn compile_table(table: &RoutingTable) -> CompiledRules {
    let mut data = Data::default();
    let major = data.bytes(&abi::MAJOR.to_le_bytes());
    let minor = data.bytes(&abi::MINOR.to_le_bytes());
    let evaluate = emit_evaluate(table, &mut data);
    let input_base = data.end().next_multiple_of(16);
    let min_pages = u64::from(input_base).div_ceil(65536) + 1;

    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32; 2], [ValType::I64]);
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    types.ty().function([ValType::I32; 6], [ValType::I32]);
    types.ty().function([ValType::I32; 2], [ValType::I32]);

    let mut functions = FunctionSection::new();
    for t in [
        ty::I_I,
        ty::II_L,
        ty::II_L,
        ty::IIII_I,
        ty::IIII_I,
        ty::IIII_I,
        ty::IIII_I,
        ty::IIIIII_I,
        ty::IIIIII_I,
        ty::II_I,
    ] {
        functions.function(t);
    }

    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: min_pages,
        maximum: Some(MAX_PAGES),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });

    let mut globals = GlobalSection::new();
    let constant = GlobalType {
        val_type: ValType::I32,
        mutable: false,
        shared: false,
    };
    globals.global(constant, &ConstExpr::i32_const(major.ptr as i32));
    globals.global(constant, &ConstExpr::i32_const(minor.ptr as i32));

    let mut exports = ExportSection::new();
    exports.export(abi::EXPORT_MEMORY, ExportKind::Memory, 0);
    exports.export(abi::EXPORT_MAJOR, ExportKind::Global, 0);
    exports.export(abi::EXPORT_MINOR, ExportKind::Global, 1);
    exports.export(abi::EXPORT_ALLOC, ExportKind::Func, idx::ALLOC);
    exports.export(abi::EXPORT_CONFIGURE, ExportKind::Func, idx::CONFIGURE);
    exports.export(abi::EXPORT_EVALUATE, ExportKind::Func, idx::EVALUATE);

    let mut code = CodeSection::new();
    code.function(&emit_alloc(input_base));
    code.function(&emit_configure());
    code.function(&evaluate);
    code.function(&helpers::eq());
    code.function(&helpers::eq_ci_trim());
    code.function(&helpers::glob());
    code.function(&helpers::any_in_set());
    code.function(&helpers::has_header());
    code.function(&helpers::first_header_ci_eq());
    code.function(&helpers::skip_strs());

    let mut segments = DataSection::new();
    segments.active(
        0,
        &ConstExpr::i32_const(data::DATA_BASE as i32),
        data.into_bytes(),
    );

    let metadata = serde_json::json!({
        "abi": { "major": abi::MAJOR, "minor": abi::MINOR },
        "policy": {
            "name": MODULE_NAME,
            "version": env!("CARGO_PKG_VERSION"),
            "needs": { "headers": view_headers(table) },
            "reuse": true,
            "description": "ModelRouter rules compiled by llmkube-operator",
        }
    });

    let mut module = Module::new();
    module
        .section(&types)
        .section(&functions)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code)
        .section(&segments)
        .section(&CustomSection {
            name: abi::METADATA_SECTION.into(),
            data: metadata.to_string().into_bytes().into(),
        });
    let wasm = module.finish();
    let sha256 = hex(&Sha256::digest(&wasm));
    CompiledRules {
        wasm,
        sha256,
        headers: view_headers(table),
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `llmkube_alloc(len)`: the input area starts after the data; grow memory to fit, trap if it
/// cannot.
fn emit_alloc(input_base: u32) -> Function {
    let mut f = Function::new([]);
    f.instructions()
        // needed pages = ceil((base + len) / 64Ki) - current pages
        .local_get(0)
        .i32_const(input_base as i32)
        .i32_add()
        .i32_const(65535)
        .i32_add()
        .i32_const(16)
        .i32_shr_u()
        .memory_size(0)
        .i32_sub()
        .local_tee(0)
        .i32_const(0)
        .i32_gt_s()
        .if_(BlockType::Empty)
        .local_get(0)
        .memory_grow(0)
        .i32_const(-1)
        .i32_eq()
        .if_(BlockType::Empty)
        .unreachable()
        .end()
        .end()
        .i32_const(input_base as i32)
        .end();
    f
}

/// `llmkube_configure`: the rules are compiled in; any config is accepted.
fn emit_configure() -> Function {
    let mut f = Function::new([]);
    f.instructions().i64_const(0).end();
    f
}

/// A route answer, before encoding.
struct RouteAnswer<'a> {
    backends: &'a [usize],
    strategy: Strategy,
    fail_closed: bool,
    timeout: Option<Duration>,
    rule: Option<&'a str>,
    via: Option<&'a str>,
    sensitive: bool,
}

impl RouteAnswer<'_> {
    /// A single-backend, primary-fallback answer (backend-name and default routes).
    fn single<'a>(backend: &'a [usize], via: &'a str, sensitive: bool) -> RouteAnswer<'a> {
        RouteAnswer {
            backends: backend,
            strategy: Strategy::PrimaryFallback,
            fail_closed: sensitive,
            timeout: None,
            rule: None,
            via: Some(via),
            sensitive,
        }
    }

    fn encode(&self, table: &RoutingTable) -> Answer {
        let mut answer = Answer::route(
            self.backends
                .iter()
                .map(|&b| table.backends[b].name.clone()),
        );
        if let Action::Route {
            strategy,
            fail_closed,
            timeout_ms,
            rule,
            ..
        } = &mut answer.action
        {
            *strategy = Some(match self.strategy {
                Strategy::PrimaryFallback => AbiStrategy::PrimaryFallback,
                Strategy::Weighted => AbiStrategy::Weighted,
                Strategy::Shadow => AbiStrategy::Shadow,
            });
            *fail_closed = self.fail_closed;
            *timeout_ms = self
                .timeout
                .map(|t| t.as_millis().min(u128::from(u32::MAX)) as u32);
            *rule = self.rule.map(str::to_owned);
        }
        if let Some(via) = self.via {
            answer = answer.annotate(VIA_ANNOTATION, via);
        }
        if self.sensitive {
            answer = answer.annotate(SENSITIVE_ANNOTATION, "true");
        }
        answer
    }
}

/// A 503 denial answer.
fn deny_answer(code: &str, message: String, rule: Option<&str>) -> Answer {
    let answer = Answer::reject(503, message).with_code(code);
    match rule {
        Some(r) => answer.annotate(RULE_ANNOTATION, r),
        None => answer,
    }
}

/// Locals of `evaluate`: params ptr 0, len 1; p 2, model 3, model_len 4, cls 5, cls_n 6,
/// hdrs 7, hdrs_n 8, sensitive 9.
const P: u32 = 2;
const MODEL: u32 = 3;
const MODEL_LEN: u32 = 4;
const CLS: u32 = 5;
const CLS_N: u32 = 6;
const HDRS: u32 = 7;
const HDRS_N: u32 = 8;
const SENSITIVE: u32 = 9;

fn emit_evaluate(table: &RoutingTable, data: &mut Data) -> Function {
    let mut f = Function::new([(8, ValType::I32)]);
    let mut s = f.instructions();
    // The view: version byte, flags, method, path, model, classifications, headers, ...
    s.local_get(0)
        .i32_load8_u(helpers::byte())
        .i32_const(1)
        .i32_ne()
        .if_(BlockType::Empty)
        .unreachable()
        .end()
        .local_get(0)
        .i32_const(2)
        .i32_add()
        .i32_const(2)
        .call(idx::SKIP_STRS)
        .local_set(P)
        .local_get(P)
        .i32_load(word())
        .local_set(MODEL_LEN)
        .local_get(P)
        .i32_const(4)
        .i32_add()
        .local_set(MODEL)
        .local_get(MODEL)
        .local_get(MODEL_LEN)
        .i32_add()
        .local_tee(P)
        .i32_load(word())
        .local_set(CLS_N)
        .local_get(P)
        .i32_const(4)
        .i32_add()
        .local_tee(CLS)
        .local_get(CLS_N)
        .call(idx::SKIP_STRS)
        .local_tee(P)
        .i32_load(word())
        .local_set(HDRS_N)
        .local_get(P)
        .i32_const(4)
        .i32_add()
        .local_set(HDRS);
    if table.sensitive.is_empty() {
        s.i32_const(0).local_set(SENSITIVE);
    } else {
        let (set, n) = data.set(&table.sensitive);
        s.local_get(CLS)
            .local_get(CLS_N)
            .i32_const(set as i32)
            .i32_const(n as i32)
            .call(idx::ANY_IN_SET)
            .local_set(SENSITIVE);
    }

    let ret = |s: &mut wasm_encoder::InstructionSink<'_>, span: Span| {
        s.i64_const(span.packed()).return_();
    };
    let put = |data: &mut Data, answer: &Answer| data.bytes(&answer.to_bytes());

    for rule in &table.rules {
        if rule.backends.is_empty() {
            continue; // requiredCapabilities left no backend: the rule can never match
        }
        let local: Vec<usize> = rule
            .backends
            .iter()
            .copied()
            .filter(|&b| table.backends[b].tier == Tier::Local)
            .collect();
        let routed = |backends, sensitive| RouteAnswer {
            backends,
            strategy: rule.strategy,
            fail_closed: rule.fail_closed || sensitive,
            timeout: rule.timeout,
            rule: Some(&rule.name),
            via: None,
            sensitive,
        };
        let all = put(data, &routed(&rule.backends, false).encode(table));
        let sensitive_answer = if !local.is_empty() {
            Some(put(data, &routed(&local, true).encode(table)))
        } else if rule.fail_closed {
            Some(put(
                data,
                &deny_answer(
                    FAIL_CLOSED_CODE,
                    fail_closed_message(Some(&rule.name)),
                    Some(&rule.name),
                ),
            ))
        } else {
            None
        };
        s.block(BlockType::Empty);
        emit_conditions(&mut s, rule, data);
        s.local_get(SENSITIVE).if_(BlockType::Empty);
        match sensitive_answer {
            Some(span) => ret(&mut s, span),
            None => {
                s.br(1); // fall through to the next rule
            }
        }
        s.end();
        ret(&mut s, all);
        s.end();
    }

    if table.backend_name_match {
        for (b, backend) in table.backends.iter().enumerate() {
            let id = data.str(&backend.model_id);
            let plain = put(
                data,
                &RouteAnswer::single(&[b], "backend-name", false).encode(table),
            );
            s.local_get(MODEL)
                .local_get(MODEL_LEN)
                .i32_const(id.ptr as i32)
                .i32_const(id.len as i32)
                .call(idx::EQ)
                .if_(BlockType::Empty);
            if backend.tier == Tier::Local {
                let sens = put(
                    data,
                    &RouteAnswer::single(&[b], "backend-name", true).encode(table),
                );
                s.local_get(SENSITIVE).if_(BlockType::Empty);
                ret(&mut s, sens);
                s.end();
            } else {
                s.local_get(SENSITIVE).br_if(0);
            }
            ret(&mut s, plain);
            s.end();
        }
    }

    if let Some(d) = table.default_route {
        let plain = put(
            data,
            &RouteAnswer::single(&[d], "default-route", false).encode(table),
        );
        if table.backends[d].tier == Tier::Local {
            let sens = put(
                data,
                &RouteAnswer::single(&[d], "default-route", true).encode(table),
            );
            s.local_get(SENSITIVE).if_(BlockType::Empty);
            ret(&mut s, sens);
            s.end();
            ret(&mut s, plain);
        } else {
            s.local_get(SENSITIVE).i32_eqz().if_(BlockType::Empty);
            ret(&mut s, plain);
            s.end();
        }
    }

    let closed = put(
        data,
        &deny_answer(FAIL_CLOSED_CODE, fail_closed_message(None), None),
    );
    let no_route = put(
        data,
        &deny_answer(
            NO_ROUTE_CODE,
            "no rule, backend or default route matches this request".into(),
            None,
        ),
    );
    s.local_get(SENSITIVE).if_(BlockType::Empty);
    ret(&mut s, closed);
    s.end();
    ret(&mut s, no_route);
    s.end();
    f
}

/// Emits `br_if 0` (to the end of the rule's block) for every condition that does not hold.
fn emit_conditions(s: &mut wasm_encoder::InstructionSink<'_>, rule: &RuleEntry, data: &mut Data) {
    if !rule.classifications.is_empty() {
        let (set, n) = data.set(&rule.classifications);
        s.local_get(CLS)
            .local_get(CLS_N)
            .i32_const(set as i32)
            .i32_const(n as i32)
            .call(idx::ANY_IN_SET)
            .i32_eqz()
            .br_if(0);
    }
    if let Some(want) = &rule.task_complexity {
        header_check(
            s,
            data,
            idx::FIRST_HEADER_CI_EQ,
            TASK_COMPLEXITY_HEADER,
            want,
        );
    }
    for (name, value) in &rule.headers {
        header_check(s, data, idx::HAS_HEADER, name, value);
    }
    if !rule.models.is_empty() {
        for (k, pattern) in rule.models.iter().enumerate() {
            let p = data.str(pattern);
            s.i32_const(p.ptr as i32)
                .i32_const(p.len as i32)
                .local_get(MODEL)
                .local_get(MODEL_LEN)
                .call(idx::GLOB);
            if k > 0 {
                s.i32_or();
            }
        }
        s.i32_eqz().br_if(0);
    }
}

/// Emits `helper(hdrs, n, name, value)` and `br_if 0` when it is false.
fn header_check(
    s: &mut wasm_encoder::InstructionSink<'_>,
    data: &mut Data,
    helper: u32,
    name: &str,
    value: &str,
) {
    let (name, value) = (data.str(name), data.str(value));
    s.local_get(HDRS)
        .local_get(HDRS_N)
        .i32_const(name.ptr as i32)
        .i32_const(name.len as i32)
        .i32_const(value.ptr as i32)
        .i32_const(value.len as i32)
        .call(helper)
        .i32_eqz()
        .br_if(0);
}
