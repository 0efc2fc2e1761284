//! Installs what a fresh machine of this kind lacks, and skips what is there:
//! rustup wasm targets, wasm-bindgen-cli (the exact version in Cargo.lock),
//! worker-build, wasmtime-cli, the npm tools under `infra/workerd`, the
//! PostgreSQL server, and moto (an S3-compatible server from PyPI, for the
//! object storage tests) in a virtualenv under `.antevus/tools/moto`.

use std::fs;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::util::{output, root, run};

pub const WORKER_BUILD_VERSION: &str = "0.8.7";
pub const WASMTIME_VERSION: &str = "48.0.8";
/// What `pip` installs for the S3-compatible test server.
pub const MOTO_REQUIREMENTS: &[&str] = &["moto[s3]==5.2.5", "flask<4", "flask-cors<7"];

/// The S3-compatible server the tests start.
pub fn moto_server() -> std::path::PathBuf {
    root().join(".antevus/tools/moto/bin/moto_server")
}

/// The wasm-bindgen version pinned in Cargo.lock.
pub fn wasm_bindgen_version() -> anyhow::Result<String> {
    let lock = fs::read_to_string(root().join("Cargo.lock")).context("Cargo.lock is missing")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_owned());
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

fn has_version(program: &str, version: &str) -> bool {
    output(Command::new(program).arg("--version")).is_some_and(|v| v.contains(version))
}

fn cargo_install(krate: &str, version: &str) -> anyhow::Result<()> {
    // No --locked: some locked versions of these tools' dependencies are not served.
    run(Command::new("cargo").args(["install", krate, "--version", version]))
}

pub fn setup() -> anyhow::Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    for target in ["wasm32-unknown-unknown", "wasm32-wasip2"] {
        if !installed.lines().any(|l| l.trim() == target) {
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    let bindgen = wasm_bindgen_version()?;
    if !has_version("wasm-bindgen", &bindgen) {
        cargo_install("wasm-bindgen-cli", &bindgen)?;
    }
    if !has_version("worker-build", WORKER_BUILD_VERSION) {
        cargo_install("worker-build", WORKER_BUILD_VERSION)?;
    }
    if !has_version("wasmtime", WASMTIME_VERSION) {
        cargo_install("wasmtime-cli", WASMTIME_VERSION)?;
    }
    if output(Command::new("node").arg("--version")).is_none() {
        apt_install(&["nodejs", "npm"])?;
    }
    // The npm packages: workerd's host, and Neon's driver for the proxy's tests.
    for dir in NPM_PACKAGES {
        npm_ci(&root().join(dir))?;
    }
    if !crate::pg::installed() {
        apt_install(&["postgresql"])?;
    }
    if !std::path::Path::new(CHROMIUM).exists() {
        apt_install(&["chromium"])?;
    }
    install_moto()
}

/// valgrind, for the benchmark's instruction counts (Debian's package).
pub fn valgrind() -> anyhow::Result<()> {
    if output(Command::new("valgrind").arg("--version")).is_none() {
        apt_install(&["valgrind"])?;
    }
    Ok(())
}

/// The folders with a `package-lock.json` that setup installs.
/// (`web`: the web application's build and its browser tests' driver.)
const NPM_PACKAGES: &[&str] = &["infra/workerd", "infra/sql-proxy/tests/neon", "web"];

/// Debian's Chromium, which the browser tests drive (playwright-core
/// never downloads one).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// `npm ci` in `dir`, unless its lock file is already installed.
fn npm_ci(dir: &std::path::Path) -> anyhow::Result<()> {
    let stamp = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (
        fs::metadata(&stamp).and_then(|m| m.modified()),
        fs::metadata(&lock).and_then(|m| m.modified()),
    ) {
        (Ok(installed), Ok(locked)) => installed >= locked,
        _ => false,
    };
    if !fresh {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir))?;
    }
    Ok(())
}

fn install_moto() -> anyhow::Result<()> {
    let venv = root().join(".antevus/tools/moto");
    let stamp = venv.join("antevus-requirements.txt");
    let wanted = MOTO_REQUIREMENTS.join("\n");
    if moto_server().exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    if output(Command::new("python3").arg("--version")).is_none() {
        apt_install(&["python3", "python3-venv"])?;
    }
    let _ = fs::remove_dir_all(&venv);
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(MOTO_REQUIREMENTS))?;
    fs::write(&stamp, wanted)?;
    Ok(())
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages))
}
