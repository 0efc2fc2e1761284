//! `edge-bridge`: the lab agent that reads instruments and relays readings.
//! So far it enrolls (`edge-bridge enroll`) and has its disk queue; the
//! agent loop, drivers and uplink are to come (issue 6).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "The Antevus lab agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exchanges a join token for this bridge's credentials.
    Enroll {
        /// The Antevus API, e.g. https://api.antevus.example.com
        #[arg(long, env = "EDGE_BRIDGE_URL")]
        url: String,
        /// The single-use join token from an administrator (prefer the
        /// environment variable: command lines are visible to other users).
        #[arg(long, env = "EDGE_BRIDGE_JOIN_TOKEN", hide_env_values = true)]
        token: String,
        /// Where the bridge keeps its credentials and queue.
        #[arg(long, env = "EDGE_BRIDGE_DIR", default_value = ".antevus-bridge")]
        dir: PathBuf,
        /// Enroll again even if credentials exist.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edge-bridge: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Enroll {
            url,
            token,
            dir,
            force,
        } => {
            let hostname = std::env::var("HOSTNAME").ok();
            match runtime.block_on(edge_bridge::enroll::enroll(
                &url,
                &token,
                &dir,
                hostname.as_deref(),
                force,
            )) {
                Ok(credentials) => {
                    println!(
                        "enrolled as bridge {} ({}) of organization {}; credentials in {}",
                        credentials.name,
                        credentials.bridge_id,
                        credentials.organization_id,
                        dir.join(edge_bridge::enroll::CREDENTIALS_FILE).display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("edge-bridge enroll: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
