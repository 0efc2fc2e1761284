//! `edge-bridge`: the lab agent that reads instruments and relays readings
//! over WebSockets. Not built yet (issue 6); this binary only says so.

fn main() {
    eprintln!("edge-bridge: not implemented yet; see issue 6 (edge bridge and the live path)");
    std::process::exit(2);
}
