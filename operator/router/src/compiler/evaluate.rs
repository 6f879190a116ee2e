//! `llmkube_evaluate`: the routing decision as straight-line code. It reads the request view,
//! then tries, in the order of [`RoutingTable::decide`], each rule, each backend name and the
//! default route, returning the first answer that applies; every answer was encoded into the
//! data segment beforehand (see [`super::answers`]), so the code only selects one.

use llmkube_policy_sdk::output::Decision as Answer;
use wasm_encoder::{BlockType, Function, InstructionSink, ValType};

use super::answers::{RouteAnswer, deny_answer};
use super::data::{Data, Span};
use super::funcs::Func;
use super::helpers::{byte, word};
use super::{FAIL_CLOSED_CODE, NO_ROUTE_CODE};
use crate::defaults::TASK_COMPLEXITY_HEADER;
use crate::routing::{RoutingTable, RuleEntry, fail_closed_message};
use crate::spec::Tier;

/// Locals of `evaluate`: the parameters are ptr 0 and len 1; then a cursor, the model string,
/// the classifications and the headers (pointer and count), and whether the request is
/// sensitive.
const P: u32 = 2;
const MODEL: u32 = 3;
const MODEL_LEN: u32 = 4;
const CLS: u32 = 5;
const CLS_N: u32 = 6;
const HDRS: u32 = 7;
const HDRS_N: u32 = 8;
const SENSITIVE: u32 = 9;
const LOCALS: u32 = 8;

/// Emits `evaluate` for `table`, laying its answers out in `data`.
pub fn evaluate(table: &RoutingTable, data: &mut Data) -> Function {
    let mut f = Function::new([(LOCALS, ValType::I32)]);
    let mut s = f.instructions();
    read_view(&mut s, table, data);
    for rule in &table.rules {
        // requiredCapabilities left no backend: the rule can never match.
        if !rule.backends.is_empty() {
            try_rule(&mut s, table, rule, data);
        }
    }
    if table.backend_name_match {
        for b in 0..table.backends.len() {
            try_backend_name(&mut s, table, b, data);
        }
    }
    if let Some(d) = table.default_route {
        try_default_route(&mut s, table, d, data);
    }
    refuse(&mut s, data);
    s.end();
    f
}

/// Reads the view (version byte, flags, method, path, model, classifications, headers, ...)
/// into the locals, and whether any classification is sensitive.
fn read_view(s: &mut InstructionSink<'_>, table: &RoutingTable, data: &mut Data) {
    s.local_get(0)
        .i32_load8_u(byte())
        .i32_const(1)
        .i32_ne()
        .if_(BlockType::Empty)
        .unreachable()
        .end()
        .local_get(0)
        .i32_const(2)
        .i32_add()
        .i32_const(2)
        .call(Func::SkipStrs.index())
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
        .call(Func::SkipStrs.index())
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
            .call(Func::AnyInSet.index())
            .local_set(SENSITIVE);
    }
}

/// One rule: when its conditions hold, its route; for a sensitive request its local backends,
/// a fail-closed denial, or on to the next rule when it has neither.
fn try_rule(s: &mut InstructionSink<'_>, table: &RoutingTable, rule: &RuleEntry, data: &mut Data) {
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
        let message = fail_closed_message(Some(&rule.name));
        let deny = deny_answer(FAIL_CLOSED_CODE, message, Some(&rule.name));
        Some(put(data, &deny))
    } else {
        None
    };
    s.block(BlockType::Empty);
    conditions(s, rule, data);
    s.local_get(SENSITIVE).if_(BlockType::Empty);
    match sensitive_answer {
        Some(span) => ret(s, span),
        None => {
            s.br(1); // fall through to the next rule
        }
    }
    s.end();
    ret(s, all);
    s.end();
}

/// A model naming backend `b`: that backend, unless the request is sensitive and it is not
/// local.
fn try_backend_name(s: &mut InstructionSink<'_>, table: &RoutingTable, b: usize, data: &mut Data) {
    let backend = &table.backends[b];
    let id = data.str(&backend.model_id);
    let plain = put(
        data,
        &RouteAnswer::single(&[b], "backend-name", false).encode(table),
    );
    s.local_get(MODEL)
        .local_get(MODEL_LEN)
        .i32_const(id.ptr as i32)
        .i32_const(id.len as i32)
        .call(Func::Eq.index())
        .if_(BlockType::Empty);
    if backend.tier == Tier::Local {
        let sens = put(
            data,
            &RouteAnswer::single(&[b], "backend-name", true).encode(table),
        );
        s.local_get(SENSITIVE).if_(BlockType::Empty);
        ret(s, sens);
        s.end();
    } else {
        s.local_get(SENSITIVE).br_if(0);
    }
    ret(s, plain);
    s.end();
}

/// The default route, unless the request is sensitive and it is not local.
fn try_default_route(s: &mut InstructionSink<'_>, table: &RoutingTable, d: usize, data: &mut Data) {
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
        ret(s, sens);
        s.end();
        ret(s, plain);
    } else {
        s.local_get(SENSITIVE).i32_eqz().if_(BlockType::Empty);
        ret(s, plain);
        s.end();
    }
}

/// Nothing applied: a sensitive request fails closed, any other has no route.
fn refuse(s: &mut InstructionSink<'_>, data: &mut Data) {
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
    ret(s, closed);
    s.end();
    ret(s, no_route);
}

/// Emits `br_if 0` (to the end of the rule's block) for every condition that does not hold.
fn conditions(s: &mut InstructionSink<'_>, rule: &RuleEntry, data: &mut Data) {
    if !rule.classifications.is_empty() {
        let (set, n) = data.set(&rule.classifications);
        s.local_get(CLS)
            .local_get(CLS_N)
            .i32_const(set as i32)
            .i32_const(n as i32)
            .call(Func::AnyInSet.index())
            .i32_eqz()
            .br_if(0);
    }
    if let Some(want) = &rule.task_complexity {
        header_check(s, data, Func::FirstHeaderCiEq, TASK_COMPLEXITY_HEADER, want);
    }
    for (name, value) in &rule.headers {
        header_check(s, data, Func::HasHeader, name, value);
    }
    if !rule.models.is_empty() {
        for (k, pattern) in rule.models.iter().enumerate() {
            let p = data.str(pattern);
            s.i32_const(p.ptr as i32)
                .i32_const(p.len as i32)
                .local_get(MODEL)
                .local_get(MODEL_LEN)
                .call(Func::Glob.index());
            if k > 0 {
                s.i32_or();
            }
        }
        s.i32_eqz().br_if(0);
    }
}

/// Emits `helper(hdrs, n, name, value)` and `br_if 0` when it is false.
fn header_check(
    s: &mut InstructionSink<'_>,
    data: &mut Data,
    helper: Func,
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
        .call(helper.index())
        .i32_eqz()
        .br_if(0);
}

/// Returns the answer at `span`.
fn ret(s: &mut InstructionSink<'_>, span: Span) {
    s.i64_const(span.packed()).return_();
}

/// Lays an answer out in the data segment.
fn put(data: &mut Data, answer: &Answer) -> Span {
    data.bytes(&answer.to_bytes())
}
