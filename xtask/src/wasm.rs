//! Builds every function for both targets, each target in one cargo
//! invocation, then packages each Workers build with worker-build (which
//! finds the cargo build fresh and only runs wasm-bindgen and esbuild).

use std::process::Command;

use shared::routes::functions;

use crate::util::{root, run};

fn packages() -> Vec<String> {
    functions()
        .flat_map(|function| ["-p".to_owned(), function.to_owned()])
        .collect()
}

pub fn build_spin() -> anyhow::Result<()> {
    run(Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(packages())
        .current_dir(root()))
}

pub fn build_workers() -> anyhow::Result<()> {
    run(Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .args(packages())
        .current_dir(root()))?;
    let bindgen = which("wasm-bindgen")?;
    let esbuild = root().join("infra/workerd/node_modules/.bin/esbuild");
    for function in functions() {
        run(Command::new("worker-build")
            .args(["--release", "--no-opt"])
            .env("WASM_BINDGEN_BIN", &bindgen)
            .env("ESBUILD_BIN", &esbuild)
            .env("CARGO_TARGET_DIR", root().join("target"))
            .current_dir(root().join("functions").join(function)))?;
    }
    Ok(())
}

/// Lints the functions and their hosts for both wasm targets.
pub fn clippy() -> anyhow::Result<()> {
    for (target, host) in [
        ("wasm32-wasip2", "host-spin"),
        ("wasm32-unknown-unknown", "host-workers"),
    ] {
        run(Command::new("cargo")
            .args([
                "clippy",
                "--release",
                "--target",
                target,
                "-p",
                host,
                "-p",
                "shared",
            ])
            .args(packages())
            .args(["--", "-D", "warnings"])
            .current_dir(root()))?;
    }
    Ok(())
}

fn which(program: &str) -> anyhow::Result<String> {
    crate::util::output(Command::new("which").arg(program))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{program} is not installed; run `cargo xtask setup`"))
}
