//! `antevus-audit verify-export --file <export> --manifest <manifest>`:
//! checks an audit export offline, without the API or the database.
//!
//! The manifest is the JSON in the export's `Antevus-Manifest` header
//! (base64url-decoded, or as the header's raw value). Without keys the
//! check covers the file's digest, count and range, every event's content
//! hash and chain link and the links between consecutive events; with the
//! organization's audit keys (`--keys` or `AUDIT_KEYS`, `kid:base64url,...`)
//! it also checks the manifest's and every event's signature. Exit status 0
//! when the export verifies, 1 when it does not, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use shared::audit::export::{self, Manifest};
use shared::config::HmacKey;

#[derive(Parser)]
#[command(version, about = "Offline checks of Antevus audit exports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks an export file against its manifest.
    VerifyExport {
        /// The export (JSON Lines or CSV, as downloaded).
        #[arg(long)]
        file: PathBuf,
        /// The manifest: JSON, or the `Antevus-Manifest` header's value.
        #[arg(long)]
        manifest: PathBuf,
        /// Audit keys, `kid:base64url,...`, to check signatures too.
        #[arg(long, env = "AUDIT_KEYS", hide_env_values = true)]
        keys: Option<String>,
    },
}

fn read_manifest(path: &PathBuf) -> anyhow::Result<Manifest> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim();
    let json = if text.starts_with('{') {
        text.as_bytes().to_vec()
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .context("the manifest is neither JSON nor base64url JSON")?
    };
    serde_json::from_slice(&json).context("the manifest is not an Antevus export manifest")
}

fn parse_keys(raw: &str) -> anyhow::Result<Vec<HmacKey>> {
    let config = shared::config::parse_keys("AUDIT_KEYS", raw)?;
    Ok(config)
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::VerifyExport {
            file,
            manifest,
            keys,
        } => {
            let manifest = read_manifest(&manifest)?;
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let keys = keys
                .as_deref()
                .map(parse_keys)
                .transpose()?
                .unwrap_or_default();
            let verdict = export::verify(&body, &manifest, &keys);
            if verdict.ok() {
                println!(
                    "verified: {} events ({}), sequences {} to {}, chain {}{}",
                    verdict.events,
                    file.display(),
                    manifest
                        .first_sequence
                        .map_or("-".into(), |s| s.to_string()),
                    manifest.last_sequence.map_or("-".into(), |s| s.to_string()),
                    manifest.chain_id,
                    if verdict.signatures_checked {
                        ", signatures checked"
                    } else {
                        "; signatures not checked (no keys given)"
                    }
                );
            } else {
                println!("NOT verified: {}", file.display());
                for problem in &verdict.problems {
                    println!("  - {problem}");
                }
            }
            Ok(verdict.ok())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("antevus-audit: {e:#}");
            ExitCode::from(2)
        }
    }
}
