//! The functions of a compiled rule module, each declared once: its index is its place in
//! [`Func::ALL`], its signature comes from [`Func::signature`], and its body from the one
//! `match` in `assemble.rs`. Adding a helper is adding a variant; the compiler points at
//! every place that must learn about it.

use wasm_encoder::ValType;

/// A function of the module (the module has no imports, so indices start at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `llmkube_alloc(len) -> ptr`
    Alloc,
    /// `llmkube_configure(ptr, len) -> i64`
    Configure,
    /// `llmkube_evaluate(ptr, len) -> i64`
    Evaluate,
    /// `eq(a, alen, b, blen) -> bool`
    Eq,
    /// `eq_ci_trim(s, slen, lit, litlen) -> bool`: ASCII-trimmed, ASCII case-insensitive.
    EqCiTrim,
    /// `glob(p, plen, s, slen) -> bool`: `*` any bytes, `?` one byte.
    Glob,
    /// `any_in_set(list, n, set, set_n) -> bool`
    AnyInSet,
    /// `has_header(hdrs, n, name, nlen, value, vlen) -> bool`
    HasHeader,
    /// `first_header_ci_eq(hdrs, n, name, nlen, lit, litlen) -> bool`
    FirstHeaderCiEq,
    /// `skip_strs(p, n) -> p'`
    SkipStrs,
}

impl Func {
    /// Every function, in index order.
    pub const ALL: [Func; 10] = [
        Func::Alloc,
        Func::Configure,
        Func::Evaluate,
        Func::Eq,
        Func::EqCiTrim,
        Func::Glob,
        Func::AnyInSet,
        Func::HasHeader,
        Func::FirstHeaderCiEq,
        Func::SkipStrs,
    ];

    /// The function index.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// How many `i32` parameters it takes, and its one result.
    pub const fn signature(self) -> (usize, ValType) {
        match self {
            Func::Alloc => (1, ValType::I32),
            Func::Configure | Func::Evaluate => (2, ValType::I64),
            Func::Eq | Func::EqCiTrim | Func::Glob | Func::AnyInSet => (4, ValType::I32),
            Func::HasHeader | Func::FirstHeaderCiEq => (6, ValType::I32),
            Func::SkipStrs => (2, ValType::I32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Func;

    #[test]
    fn the_index_is_the_place_in_all() {
        for (i, f) in Func::ALL.iter().enumerate() {
            assert_eq!(f.index() as usize, i, "{f:?}");
        }
    }
}
