//! The black-box suite against the native host.

fn main() -> std::process::ExitCode {
    blackbox::main_for(blackbox::HostKind::Native)
}
