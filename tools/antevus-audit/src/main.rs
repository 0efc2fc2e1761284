//! `antevus-audit verify-export --file <export> [--manifest <manifest>]`:
//! checks an audit export offline, without the API or the database.
//!
//! A JSON Lines export carries its manifest as its last line (the API
//! streams it; the manifest comes once every event is out). A CSV export's
//! manifest is the JSON in its `Antevus-Manifest` header (base64url-decoded,
//! or as the header's raw value), given with `--manifest`. The check covers the
//! file's digest, count and range, every event's content hash and chain
//! link, the links between consecutive events, and the manifest's and every
//! event's signature with public keys alone: the deployment's published
//! Ed25519 keys (`--public-keys` or `AUDIT_PUBLIC_KEYS`,
//! `kid:base64url[:from..until],...`), or else the keys the manifest names
//! (which shows the export intact and consistent, not who made it: pin the
//! keys to know that). Events signed before Ed25519 carry HMACs, checked
//! only with their secret key (`--legacy-keys` or `AUDIT_KEYS`); an
//! inspector never needs it for anything signed since. Exit status 0 when
//! the export verifies, 1 when it does not, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use shared::audit::export::{self, Manifest};
use shared::config::AuditKeys;

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
        /// The manifest: JSON, or the `Antevus-Manifest` header's value (a
        /// CSV export's); without it, the file's last line.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// The deployment's audit public keys, `kid:base64url[:from..until],...`
        /// (pinned; without them, the keys the manifest names).
        #[arg(long, env = "AUDIT_PUBLIC_KEYS")]
        public_keys: Option<String>,
        /// HMAC keys, `kid:base64url,...`, for events signed before Ed25519.
        #[arg(long, env = "AUDIT_KEYS", hide_env_values = true)]
        legacy_keys: Option<String>,
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

/// The keys to verify with, and whether they were pinned (given, not read
/// from the manifest).
fn keys(
    manifest: &Manifest,
    public: Option<&str>,
    legacy: Option<&str>,
) -> anyhow::Result<(AuditKeys, bool)> {
    let legacy = legacy
        .map(|raw| shared::config::parse_keys("AUDIT_KEYS", raw))
        .transpose()?
        .unwrap_or_default();
    Ok(match public {
        Some(raw) => (
            AuditKeys {
                public: shared::config::ed25519::parse_public_keys("AUDIT_PUBLIC_KEYS", raw)?,
                legacy,
            },
            true,
        ),
        None => (
            AuditKeys {
                public: export::named_keys(manifest).map_err(anyhow::Error::msg)?,
                legacy,
            },
            false,
        ),
    })
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::VerifyExport {
            file,
            manifest,
            public_keys,
            legacy_keys,
        } => {
            let whole =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (body, manifest) = match manifest {
                Some(path) => (whole.as_slice(), read_manifest(&path)?),
                None => match export::split_streamed(&whole) {
                    Ok(split) => split,
                    Err(problem) => {
                        println!("NOT verified: {}", file.display());
                        println!("  - {problem}");
                        return Ok(false);
                    }
                },
            };
            let (keys, pinned) = keys(&manifest, public_keys.as_deref(), legacy_keys.as_deref())?;
            let verdict = export::verify(body, &manifest, &keys);
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
                    match (verdict.signatures_checked, pinned) {
                        (true, true) => ", signatures checked with the keys given",
                        (true, false) => {
                            ", signatures checked with the keys the manifest names (not pinned: pass --public-keys)"
                        }
                        (false, _) => "; signatures not checked (no keys given or named)",
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
