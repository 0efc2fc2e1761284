//! Local secrets (`.antevus/secrets.env`, mode 0600, never committed):
//! generated on first use, reused afterwards.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::util::{random_secret, root};

pub struct Secrets {
    values: BTreeMap<String, String>,
}

const GENERATED: &[(&str, usize)] = &[
    ("PG_SUPERUSER_PASSWORD", 24),
    ("APP_DB_PASSWORD", 24),
    ("JWT_KEY", 32),
    ("AUDIT_KEY", 32),
    ("AUDIT_SIGNING_SEED", 32),
    ("SQL_PROXY_KEY", 32),
    ("ENCRYPTION_KEY", 32),
    ("SCHEDULER_KEY", 32),
];

fn path() -> PathBuf {
    root().join(".antevus/secrets.env")
}

impl Secrets {
    /// Loads the file, generating whatever is missing.
    pub fn load() -> anyhow::Result<Secrets> {
        let path = path();
        let mut values = BTreeMap::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    values.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        let mut changed = false;
        for (name, bytes) in GENERATED {
            if !values.contains_key(*name) {
                values.insert((*name).to_owned(), random_secret(*bytes)?);
                changed = true;
            }
        }
        if changed {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
            }
            let text: String = values.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            fs::write(&path, text)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        Ok(Secrets { values })
    }

    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// `JWT_SIGNING_KEY` of the functions that issue tokens: the Ed25519
    /// seed, id `k1`.
    pub fn jwt_signing_key(&self) -> String {
        format!("k1:{}", self.get("JWT_KEY"))
    }

    /// `JWT_PUBLIC_KEYS` of every function: the signing key's public half.
    pub fn jwt_public_keys(&self) -> anyhow::Result<String> {
        let key = shared::config::SigningKey::parse("JWT_SIGNING_KEY", &self.jwt_signing_key())?;
        Ok(key.public_entry())
    }

    /// The functions' `SQL_PROXY_KEY` and the proxy's `SQL_PROXY_KEYS`: one
    /// key, id `p1`.
    pub fn proxy_key(&self) -> String {
        format!("p1:{}", self.get("SQL_PROXY_KEY"))
    }

    /// `AUDIT_KEYS` for the functions that verify: the HMAC key, id `a1`,
    /// that signed this machine's events before Ed25519 (they stay
    /// verifiable).
    pub fn audit_keys(&self) -> String {
        format!("a1:{}", self.get("AUDIT_KEY"))
    }

    /// `AUDIT_SIGNING_KEY` of the functions that record events: the Ed25519
    /// seed, id `e1`.
    pub fn audit_signing_key(&self) -> String {
        format!("e1:{}", self.get("AUDIT_SIGNING_SEED"))
    }

    /// `AUDIT_PUBLIC_KEYS`: the audit signing key's public half.
    pub fn audit_public_keys(&self) -> anyhow::Result<String> {
        let key =
            shared::config::SigningKey::parse("AUDIT_SIGNING_KEY", &self.audit_signing_key())?;
        Ok(key.public_entry())
    }

    /// `ENCRYPTION_KEYS` of the functions that seal secrets at rest: one
    /// AES-256 key, id `d1`.
    pub fn encryption_keys(&self) -> String {
        format!("d1:{}", self.get("ENCRYPTION_KEY"))
    }
}
