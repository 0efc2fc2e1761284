//! `edge-bridge`: the lab agent that reads instruments and relays readings
//! over WebSockets. Only its disk queue exists so far (issue 6); this
//! binary says so.

fn main() {
    eprintln!("edge-bridge: not implemented yet; see issue 6 (edge bridge and the live path)");
    std::process::exit(2);
}
