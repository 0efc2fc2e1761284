//! The black-box suite against the wasmtime host.

fn main() -> std::process::ExitCode {
    blackbox::main_for(blackbox::HostKind::Wasmtime)
}
