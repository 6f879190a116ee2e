//! What the benchmarks share: the built policy modules.

use std::path::PathBuf;

/// A policy built with `cargo build --release --target wasm32-unknown-unknown`.
pub fn wasm(file: &str) -> Vec<u8> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let path = dir.join("wasm32-unknown-unknown/release").join(file);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build the policies first", path.display()))
}
