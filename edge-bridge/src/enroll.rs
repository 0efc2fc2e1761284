//! Enrollment: a join token (made by an administrator with
//! `POST /api/v1/bridges/join-tokens`) is exchanged once for the bridge's
//! own credentials, kept in `credentials.json` readable by its owner only.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::tls::Trust;

/// The file the credentials live in, inside the bridge's directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// What the bridge needs to talk to its organization.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub url: String,
    pub bridge_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub name: String,
    pub api_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .field("bridge_id", &self.bridge_id)
            .field("organization_id", &self.organization_id)
            .field("name", &self.name)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}")]
    BadUrl(String),
    #[error("{0} already exists; this bridge is enrolled (use --force to enroll it again)")]
    AlreadyEnrolled(PathBuf),
    #[error(
        "the join token was refused (unknown, already used or expired): ask an administrator for a new one"
    )]
    Rejected,
    #[error("the server refused the enrollment: {0}")]
    Refused(String),
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    #[error("cannot write the credentials: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    bridge_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    name: String,
    api_key: String,
}

/// Exchanges `token` at `url` (trusting `trust`'s certificate
/// authorities) and stores the credentials in `dir`.
pub async fn enroll(
    url: &str,
    token: &str,
    dir: &Path,
    hostname: Option<&str>,
    force: bool,
    trust: &Trust,
) -> Result<Credentials, EnrollError> {
    let url = url.trim_end_matches('/');
    if let Some(problem) = crate::config::cloud_url_problem(url) {
        return Err(EnrollError::BadUrl(problem));
    }
    let path = dir.join(CREDENTIALS_FILE);
    if path.exists() && !force {
        return Err(EnrollError::AlreadyEnrolled(path));
    }
    let client = trust
        .http_client(std::time::Duration::from_secs(30))
        .map_err(|e| EnrollError::Unreachable(e.to_string()))?;
    let response = client
        .post(format!("{url}/api/v1/bridges/enroll"))
        .json(&serde_json::json!({
            "token": token.trim(),
            "version": env!("CARGO_PKG_VERSION"),
            "hostname": hostname,
        }))
        .send()
        .await
        .map_err(|e| EnrollError::Unreachable(chain(e)))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| EnrollError::Refused(format!("{status}: {e}")))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(EnrollError::Rejected);
    }
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        return Err(EnrollError::Refused(format!("{status}: {message}")));
    }
    let enrolled: Enrolled = serde_json::from_value(body["data"].clone())
        .map_err(|e| EnrollError::Refused(format!("unexpected answer: {e}")))?;
    let credentials = Credentials {
        url: url.to_owned(),
        bridge_id: enrolled.bridge_id,
        organization_id: enrolled.organization_id,
        name: enrolled.name,
        api_key: enrolled.api_key,
    };
    save(dir, &credentials)?;
    Ok(credentials)
}

/// A request's error with its causes: reqwest's own message ("error
/// sending request") hides the one a person can act on ("invalid peer
/// certificate: UnknownIssuer").
pub(crate) fn chain(e: reqwest::Error) -> String {
    format!("{:#}", anyhow::Error::new(e))
}

/// Writes the credentials readable and writable by their owner only.
pub fn save(dir: &Path, credentials: &Credentials) -> Result<(), EnrollError> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(CREDENTIALS_FILE);
    let temporary = dir.join(format!("{CREDENTIALS_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(&serde_json::to_vec_pretty(credentials).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    Ok(())
}

/// Reads the credentials written by [`enroll`].
pub fn load(dir: &Path) -> Result<Credentials, EnrollError> {
    let bytes = std::fs::read(dir.join(CREDENTIALS_FILE))?;
    serde_json::from_slice(&bytes).map_err(|e| EnrollError::Io(std::io::Error::other(e)))
}
