//! Putting a module together from its functions and its data: the sections, in the order the
//! WebAssembly format requires, and the metadata the policy host reads.

use llmkube_policy_sdk::abi;
use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, DataSection, ExportKind, ExportSection, FunctionSection,
    GlobalSection, GlobalType, MemorySection, MemoryType, Module, TypeSection, ValType,
};

use super::data::{DATA_BASE, Data};
use super::funcs::Func;
use super::{MODULE_NAME, entry, evaluate, helpers};
use crate::routing::RoutingTable;

/// Largest memory the module may grow to, in 64 KiB pages (16 MiB).
const MAX_PAGES: u64 = 256;

/// The module of `table`'s rules; it reads the header names `headers`.
pub fn module(table: &RoutingTable, headers: &[String]) -> Vec<u8> {
    // The data segment: the ABI version, then what `evaluate` lays out; the host's input
    // area starts after it.
    let mut data = Data::default();
    let major = data.bytes(&abi::MAJOR.to_le_bytes());
    let minor = data.bytes(&abi::MINOR.to_le_bytes());
    let evaluate = evaluate::evaluate(table, &mut data);
    let input_base = data.end().next_multiple_of(16);
    let min_pages = u64::from(input_base).div_ceil(65536) + 1;

    // One type per distinct signature, in the order functions first use them.
    let mut signatures: Vec<(usize, ValType)> = Vec::new();
    let mut types = TypeSection::new();
    let mut functions = FunctionSection::new();
    for f in Func::ALL {
        let sig = f.signature();
        let index = match signatures.iter().position(|s| *s == sig) {
            Some(i) => i,
            None => {
                types.ty().function(vec![ValType::I32; sig.0], [sig.1]);
                signatures.push(sig);
                signatures.len() - 1
            }
        };
        functions.function(index as u32);
    }

    let mut code = CodeSection::new();
    for f in Func::ALL {
        let body = match f {
            Func::Alloc => entry::alloc(input_base),
            Func::Configure => entry::configure(),
            Func::Evaluate => {
                code.function(&evaluate);
                continue;
            }
            Func::Eq => helpers::eq(),
            Func::EqCiTrim => helpers::eq_ci_trim(),
            Func::Glob => helpers::glob(),
            Func::AnyInSet => helpers::any_in_set(),
            Func::HasHeader => helpers::has_header(),
            Func::FirstHeaderCiEq => helpers::first_header_ci_eq(),
            Func::SkipStrs => helpers::skip_strs(),
        };
        code.function(&body);
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
    exports.export(abi::EXPORT_ALLOC, ExportKind::Func, Func::Alloc.index());
    exports.export(
        abi::EXPORT_CONFIGURE,
        ExportKind::Func,
        Func::Configure.index(),
    );
    exports.export(
        abi::EXPORT_EVALUATE,
        ExportKind::Func,
        Func::Evaluate.index(),
    );

    let mut segments = DataSection::new();
    segments.active(
        0,
        &ConstExpr::i32_const(DATA_BASE as i32),
        data.into_bytes(),
    );

    let metadata = serde_json::json!({
        "abi": { "major": abi::MAJOR, "minor": abi::MINOR },
        "policy": {
            "name": MODULE_NAME,
            "version": env!("CARGO_PKG_VERSION"),
            "needs": { "headers": headers },
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
    module.finish()
}
