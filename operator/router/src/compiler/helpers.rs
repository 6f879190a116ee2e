//! Helper functions every compiled rule module contains, emitted once.
//!
//! Strings in the request view are `u32` length + bytes; string sets in data are tables of
//! `(ptr u32, len u32)`. Label depths are noted where a branch leaves a construct.

use wasm_encoder::{BlockType, Function, InstructionSink, MemArg, ValType};

use super::funcs::Func;

/// A byte load.
pub fn byte() -> MemArg {
    MemArg {
        offset: 0,
        align: 0,
        memory_index: 0,
    }
}

/// A `u32` load.
pub fn word() -> MemArg {
    MemArg {
        offset: 0,
        align: 2,
        memory_index: 0,
    }
}

fn i32_locals(n: u32) -> Function {
    Function::new([(n, ValType::I32)])
}

/// `eq(a, alen, b, blen)`: byte equality. Locals: i = 4.
pub fn eq() -> Function {
    let mut f = i32_locals(1);
    let (a, alen, b, blen, i) = (0, 1, 2, 3, 4);
    f.instructions()
        .local_get(alen)
        .local_get(blen)
        .i32_ne()
        .if_(BlockType::Empty)
        .i32_const(0)
        .return_()
        .end()
        .i32_const(0)
        .local_set(i)
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(i)
        .local_get(alen)
        .i32_ge_u()
        .br_if(1)
        .local_get(a)
        .local_get(i)
        .i32_add()
        .i32_load8_u(byte())
        .local_get(b)
        .local_get(i)
        .i32_add()
        .i32_load8_u(byte())
        .i32_ne()
        .if_(BlockType::Empty)
        .i32_const(0)
        .return_()
        .end()
        .local_get(i)
        .i32_const(1)
        .i32_add()
        .local_set(i)
        .br(0)
        .end()
        .end()
        .i32_const(1)
        .end();
    f
}

/// Pushes "is the byte in local `c` ASCII whitespace" (space, \t, \n, \x0c, \r).
fn is_ascii_ws(s: &mut InstructionSink<'_>, c: u32) {
    s.local_get(c).i32_const(32).i32_eq();
    for ws in [9, 10, 12, 13] {
        s.local_get(c).i32_const(ws).i32_eq().i32_or();
    }
}

/// `eq_ci_trim(s, slen, lit, litlen)`: `s` with ASCII whitespace trimmed equals the lowercase
/// literal, ASCII case-insensitively. Locals: i = 4, c = 5.
pub fn eq_ci_trim() -> Function {
    let mut f = i32_locals(2);
    let (s, slen, lit, litlen, i, c) = (0, 1, 2, 3, 4, 5);
    let mut sink = f.instructions();
    // Trim the front.
    sink.block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(slen)
        .i32_eqz()
        .br_if(1)
        .local_get(s)
        .i32_load8_u(byte())
        .local_set(c);
    is_ascii_ws(&mut sink, c);
    sink.i32_eqz()
        .br_if(1)
        .local_get(s)
        .i32_const(1)
        .i32_add()
        .local_set(s)
        .local_get(slen)
        .i32_const(1)
        .i32_sub()
        .local_set(slen)
        .br(0)
        .end()
        .end();
    // Trim the back.
    sink.block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(slen)
        .i32_eqz()
        .br_if(1)
        .local_get(s)
        .local_get(slen)
        .i32_add()
        .i32_const(1)
        .i32_sub()
        .i32_load8_u(byte())
        .local_set(c);
    is_ascii_ws(&mut sink, c);
    sink.i32_eqz()
        .br_if(1)
        .local_get(slen)
        .i32_const(1)
        .i32_sub()
        .local_set(slen)
        .br(0)
        .end()
        .end();
    sink.local_get(slen)
        .local_get(litlen)
        .i32_ne()
        .if_(BlockType::Empty)
        .i32_const(0)
        .return_()
        .end()
        .i32_const(0)
        .local_set(i)
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(i)
        .local_get(slen)
        .i32_ge_u()
        .br_if(1)
        .local_get(s)
        .local_get(i)
        .i32_add()
        .i32_load8_u(byte())
        .local_set(c)
        // ASCII uppercase -> lowercase: c - 'A' < 26 (unsigned) ? c + 32 : c
        .local_get(c)
        .i32_const(32)
        .i32_add()
        .local_get(c)
        .local_get(c)
        .i32_const(65)
        .i32_sub()
        .i32_const(26)
        .i32_lt_u()
        .select()
        .local_get(lit)
        .local_get(i)
        .i32_add()
        .i32_load8_u(byte())
        .i32_ne()
        .if_(BlockType::Empty)
        .i32_const(0)
        .return_()
        .end()
        .local_get(i)
        .i32_const(1)
        .i32_add()
        .local_set(i)
        .br(0)
        .end()
        .end()
        .i32_const(1)
        .end();
    f
}

/// `glob(p, plen, s, slen)`: wildcard match over bytes (`*` any run, `?` one byte, everything
/// else literal), with single-star backtracking. Locals: pi = 4, si = 5, star = 6, mark = 7,
/// pc = 8 (pattern byte, 256 past the end).
pub fn glob() -> Function {
    let mut f = i32_locals(5);
    let (p, plen, s, slen, pi, si, star, mark, pc) = (0, 1, 2, 3, 4, 5, 6, 7, 8);
    let mut k = f.instructions();
    k.i32_const(-1).local_set(star);
    k.block(BlockType::Empty) // $fail
        .block(BlockType::Empty) // $done
        .loop_(BlockType::Empty) // $main: 0 = loop, 1 = $done, 2 = $fail
        .local_get(si)
        .local_get(slen)
        .i32_ge_u()
        .br_if(1)
        .local_get(pi)
        .local_get(plen)
        .i32_lt_u()
        .if_(BlockType::Result(ValType::I32))
        .local_get(p)
        .local_get(pi)
        .i32_add()
        .i32_load8_u(byte())
        .else_()
        .i32_const(256)
        .end()
        .local_set(pc);
    // '?': consume one byte of each. Inside an `if`, 1 = $main.
    k.local_get(pc)
        .i32_const(b'?' as i32)
        .i32_eq()
        .if_(BlockType::Empty)
        .local_get(pi)
        .i32_const(1)
        .i32_add()
        .local_set(pi)
        .local_get(si)
        .i32_const(1)
        .i32_add()
        .local_set(si)
        .br(1)
        .end();
    // '*': remember where, match nothing for now.
    k.local_get(pc)
        .i32_const(b'*' as i32)
        .i32_eq()
        .if_(BlockType::Empty)
        .local_get(pi)
        .local_set(star)
        .local_get(si)
        .local_set(mark)
        .local_get(pi)
        .i32_const(1)
        .i32_add()
        .local_set(pi)
        .br(1)
        .end();
    // Literal byte.
    k.local_get(pc)
        .local_get(s)
        .local_get(si)
        .i32_add()
        .i32_load8_u(byte())
        .i32_eq()
        .if_(BlockType::Empty)
        .local_get(pi)
        .i32_const(1)
        .i32_add()
        .local_set(pi)
        .local_get(si)
        .i32_const(1)
        .i32_add()
        .local_set(si)
        .br(1)
        .end();
    // Mismatch: let the last star swallow one more byte, or fail.
    k.local_get(star)
        .i32_const(-1)
        .i32_ne()
        .if_(BlockType::Empty)
        .local_get(star)
        .i32_const(1)
        .i32_add()
        .local_set(pi)
        .local_get(mark)
        .i32_const(1)
        .i32_add()
        .local_tee(mark)
        .local_set(si)
        .br(1)
        .end()
        .br(2)
        .end() // loop
        .end(); // $done
    // The subject is used up: only stars may remain in the pattern.
    k.block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(pi)
        .local_get(plen)
        .i32_lt_u()
        .if_(BlockType::Result(ValType::I32))
        .local_get(p)
        .local_get(pi)
        .i32_add()
        .i32_load8_u(byte())
        .i32_const(b'*' as i32)
        .i32_eq()
        .else_()
        .i32_const(0)
        .end()
        .i32_eqz()
        .br_if(1)
        .local_get(pi)
        .i32_const(1)
        .i32_add()
        .local_set(pi)
        .br(0)
        .end()
        .end()
        .local_get(pi)
        .local_get(plen)
        .i32_eq()
        .return_()
        .end() // $fail
        .i32_const(0)
        .end();
    f
}

/// `any_in_set(list, n, set, set_n)`: some string of the request list equals some entry of the
/// set table. Locals: i = 4, len = 5, j = 6, str = 7.
pub fn any_in_set() -> Function {
    let mut f = i32_locals(4);
    let (list, n, set, set_n, i, len, j, str_) = (0, 1, 2, 3, 4, 5, 6, 7);
    f.instructions()
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(i)
        .local_get(n)
        .i32_ge_u()
        .br_if(1)
        .local_get(list)
        .i32_load(word())
        .local_set(len)
        .local_get(list)
        .i32_const(4)
        .i32_add()
        .local_set(str_)
        .i32_const(0)
        .local_set(j)
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(j)
        .local_get(set_n)
        .i32_ge_u()
        .br_if(1)
        .local_get(str_)
        .local_get(len)
        .local_get(set)
        .local_get(j)
        .i32_const(8)
        .i32_mul()
        .i32_add()
        .i32_load(word())
        .local_get(set)
        .local_get(j)
        .i32_const(8)
        .i32_mul()
        .i32_add()
        .i32_const(4)
        .i32_add()
        .i32_load(word())
        .call(Func::Eq.index())
        .if_(BlockType::Empty)
        .i32_const(1)
        .return_()
        .end()
        .local_get(j)
        .i32_const(1)
        .i32_add()
        .local_set(j)
        .br(0)
        .end()
        .end()
        .local_get(str_)
        .local_get(len)
        .i32_add()
        .local_set(list)
        .local_get(i)
        .i32_const(1)
        .i32_add()
        .local_set(i)
        .br(0)
        .end()
        .end()
        .i32_const(0)
        .end();
    f
}

/// The header-list walk shared by [`has_header`] (any occurrence with exactly the value) and
/// [`first_header_ci_eq`] (the first occurrence decides, compared trimmed and case-insensitively).
fn header_walk(first_match_decides: bool) -> Function {
    // Params: hdrs 0, n 1, name 2, nlen 3, x 4, xlen 5. Locals: i 6, k 7, kl 8, v 9, vl 10.
    let mut f = i32_locals(5);
    let (hdrs, n, name, nlen, x, xlen, i, k, kl, v, vl) = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    let mut s = f.instructions();
    s.block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(i)
        .local_get(n)
        .i32_ge_u()
        .br_if(1)
        .local_get(hdrs)
        .i32_load(word())
        .local_set(kl)
        .local_get(hdrs)
        .i32_const(4)
        .i32_add()
        .local_tee(k)
        .local_get(kl)
        .i32_add()
        .local_tee(hdrs)
        .i32_load(word())
        .local_set(vl)
        .local_get(hdrs)
        .i32_const(4)
        .i32_add()
        .local_tee(v)
        .local_get(vl)
        .i32_add()
        .local_set(hdrs)
        .local_get(k)
        .local_get(kl)
        .local_get(name)
        .local_get(nlen)
        .call(Func::Eq.index())
        .if_(BlockType::Empty);
    if first_match_decides {
        s.local_get(v)
            .local_get(vl)
            .local_get(x)
            .local_get(xlen)
            .call(Func::EqCiTrim.index())
            .return_();
    } else {
        s.local_get(v)
            .local_get(vl)
            .local_get(x)
            .local_get(xlen)
            .call(Func::Eq.index())
            .if_(BlockType::Empty)
            .i32_const(1)
            .return_()
            .end();
    }
    s.end()
        .local_get(i)
        .i32_const(1)
        .i32_add()
        .local_set(i)
        .br(0)
        .end()
        .end()
        .i32_const(0)
        .end();
    f
}

/// `has_header(hdrs, n, name, nlen, value, vlen)`: some occurrence of the header has exactly
/// this value.
pub fn has_header() -> Function {
    header_walk(false)
}

/// `first_header_ci_eq(hdrs, n, name, nlen, lit, litlen)`: the first occurrence of the header
/// equals the literal (trimmed, case-insensitive); false without one.
pub fn first_header_ci_eq() -> Function {
    header_walk(true)
}

/// `skip_strs(p, n)`: the address after `n` consecutive strings.
pub fn skip_strs() -> Function {
    let mut f = i32_locals(0);
    let (p, n) = (0, 1);
    f.instructions()
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(n)
        .i32_eqz()
        .br_if(1)
        .local_get(p)
        .local_get(p)
        .i32_load(word())
        .i32_add()
        .i32_const(4)
        .i32_add()
        .local_set(p)
        .local_get(n)
        .i32_const(1)
        .i32_sub()
        .local_set(n)
        .br(0)
        .end()
        .end()
        .local_get(p)
        .end();
    f
}
