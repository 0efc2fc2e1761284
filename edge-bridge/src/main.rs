//! `edge-bridge`: the lab agent that reads instruments and relays readings.
//! `edge-bridge enroll` exchanges a join token for the bridge's
//! credentials; `edge-bridge agent --config edge-bridge.toml` runs it.

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
        /// A PEM file of certificate authorities to trust besides the
        /// public ones: the lab's private CA or its TLS-inspecting proxy
        /// (the agent's configuration takes the same file as `tls_ca_file`).
        #[arg(long, env = "EDGE_BRIDGE_TLS_CA_FILE")]
        tls_ca_file: Option<PathBuf>,
    },
    /// Runs the agent: reads the configured instruments, stores every
    /// reading on disk, relays it to Antevus, runs commands.
    Agent {
        /// The TOML configuration (see the README's "Edge bridge").
        #[arg(long, env = "EDGE_BRIDGE_CONFIG", default_value = "edge-bridge.toml")]
        config: PathBuf,
        /// Overrides the configuration's transport: `websocket` (the hub)
        /// or `http` (batches and a command long poll, for deployments
        /// without WebSockets).
        #[arg(long, value_enum)]
        transport: Option<edge_bridge::config::Transport>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDGE_BRIDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
        Command::Agent { config, transport } => {
            let config =
                match edge_bridge::config::Config::load(&config, |name| std::env::var(name).ok()) {
                    Ok(config) => edge_bridge::config::Config {
                        transport: transport.unwrap_or(config.transport),
                        ..config
                    },
                    Err(e) => {
                        eprintln!("edge-bridge agent: {e}");
                        return ExitCode::FAILURE;
                    }
                };
            match runtime.block_on(edge_bridge::agent::run(config, stop_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("edge-bridge agent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Enroll {
            url,
            token,
            dir,
            force,
            tls_ca_file,
        } => {
            let hostname = std::env::var("HOSTNAME").ok();
            let trust = match edge_bridge::tls::Trust::load(tls_ca_file.as_deref()) {
                Ok(trust) => trust,
                Err(e) => {
                    eprintln!("edge-bridge enroll: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(edge_bridge::enroll::enroll(
                &url,
                &token,
                &dir,
                hostname.as_deref(),
                force,
                &trust,
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

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
