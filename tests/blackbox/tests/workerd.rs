//! The black-box suite against the workerd host.

fn main() -> std::process::ExitCode {
    blackbox::main_for(blackbox::HostKind::Workerd)
}
