//! The two entry points besides `evaluate`: where the host writes its input, and accepting
//! the (empty) configuration.

use wasm_encoder::{BlockType, Function};

/// `llmkube_alloc(len)`: the input area starts after the data; grow memory to fit, trap if it
/// cannot.
pub fn alloc(input_base: u32) -> Function {
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
pub fn configure() -> Function {
    let mut f = Function::new([]);
    f.instructions().i64_const(0).end();
    f
}
