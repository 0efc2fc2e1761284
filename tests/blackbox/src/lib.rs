//! The black-box HTTP suite. One list of cases ([`cases`]) runs unchanged
//! against three hosts ([`HostKind`]): the native host, every function on
//! workerd (miniflare), and every function as a Spin component on
//! `wasmtime serve` behind a front that routes by the route table. All three
//! talk to a real PostgreSQL through the real sql-proxy.
//!
//! Each run creates its own database (migrated by `dbctl`), starts the proxy
//! and the host, runs the cases (libtest-mimic, so output and filtering are
//! cargo test's), then stops everything and drops the database. A missing
//! runtime or build fails the run with a clear message; nothing is skipped.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod bridges;
pub mod cases;
pub mod client;
pub mod data;
pub mod envelope;
pub mod headers;
pub mod hub;
pub mod ingest;
pub mod instruments;
pub mod isolation;
pub mod lab;
pub mod limits;
pub mod live;
pub mod maintenance;
pub mod mfa;
pub mod password_reset;
pub mod roles;
pub mod runs;
pub mod sessions;
pub mod stack;
pub mod surface;
pub mod tls;
pub mod walk;
pub mod watch;
pub mod web;
pub mod webhooks;

use std::process::ExitCode;
use std::sync::Arc;

pub use client::TestApp;
pub use stack::{HostKind, Stack};

/// Entry point of each `tests/<host>.rs`.
pub fn main_for(kind: HostKind) -> ExitCode {
    // The kill -9 case runs the agent in a child process of this binary.
    if let Some(code) = live::run_agent_if_asked() {
        return code;
    }
    // ANTEVUS_TEST_LOG=debug (a tracing filter) shows the native host's and
    // the in-process agents' logs.
    if let Ok(filter) = std::env::var("ANTEVUS_TEST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let args = libtest_mimic::Arguments::from_args();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.list {
        let trials = cases::trials(None, runtime.handle().clone());
        return match libtest_mimic::run(&args, trials).exit_code() {
            code if code == ExitCode::SUCCESS => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        };
    }
    let stack = match runtime.block_on(Stack::start(kind)) {
        Ok(stack) => Arc::new(stack),
        Err(e) => {
            eprintln!("\nthe {kind:?} test stack did not start: {e:#}\n");
            return ExitCode::FAILURE;
        }
    };
    let app = Arc::new(TestApp::new(stack.clone()));
    let trials = cases::trials(Some(app), runtime.handle().clone());
    let conclusion = libtest_mimic::run(&args, trials);
    runtime.block_on(stack.stop());
    if conclusion.has_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
