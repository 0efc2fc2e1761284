//! The file-drop driver: an instrument that writes result files into a
//! folder. A file counts as complete once its size and modification time
//! have not changed for `settle_ms`; it is then uploaded as the raw data of
//! the instrument's active run (`POST /api/v1/runs/:id/data`), in chunks,
//! resuming where the run's upload stands after an interruption, with the
//! file's SHA-256 sent as `Repr-Digest` so the cloud checks it whole. An
//! uploaded file moves to `.antevus-sent/`; one the cloud can never take
//! (the run already has other data, an empty file) to `.antevus-failed/`,
//! with a log line saying why. Files starting with `.` or ending in
//! `.partial` / `.tmp` are left alone. Commands are refused with a reason:
//! such an instrument is operated at its own panel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;
use shared::live::InstrumentStatus;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::agent::Cloud;
use crate::driver::DriverIo;

/// Where uploaded files go, inside the watched folder.
pub const SENT: &str = ".antevus-sent";
/// Where files the cloud cannot take go.
pub const FAILED: &str = ".antevus-failed";

/// How long a file that waits for a run, or whose upload was interrupted,
/// waits before the next try.
const RETRY: Duration = Duration::from_secs(5);

/// The file-drop driver's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub folder: PathBuf,
    pub settle: Duration,
    pub format: Option<String>,
    pub chunk_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
}

/// Watches the folder until the agent stops.
pub async fn run(settings: Settings, mut io: DriverIo, cloud: Cloud) {
    let mut seen: HashMap<PathBuf, (Seen, Instant)> = HashMap::new();
    // Files that found no active run or whose upload was interrupted, with
    // when to try them again (not at every look at the folder).
    let mut retry_at: HashMap<PathBuf, Instant> = HashMap::new();
    io.statuses.set(io.instrument_id, InstrumentStatus::Online);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            order = io.orders.recv() => {
                // Such an instrument is operated at its own panel; it only
                // writes files. A run's start is taken as the run being on
                // (the person at the panel runs it; its file becomes the
                // run's data); any other command is refused.
                let Some(order) = order else { return };
                let _ = order.done.send(if order.command.command == "start" {
                    Ok(serde_json::json!({ "operatedAtPanel": true }))
                } else {
                    Err("this instrument is connected by file drop and takes no commands".into())
                });
                continue;
            }
        }
        let Ok(mut entries) = tokio::fs::read_dir(&settings.folder).await else {
            io.statuses.set(io.instrument_id, InstrumentStatus::Offline);
            continue;
        };
        io.statuses.set(io.instrument_id, InstrumentStatus::Online);
        let mut complete = Vec::new();
        let mut present = Vec::new();
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".partial") || name.ends_with(".tmp") {
                continue;
            }
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            present.push(path.clone());
            let now = Seen {
                len: meta.len(),
                modified: meta.modified().ok(),
            };
            match seen.get(&path) {
                Some((before, since)) if *before == now => {
                    if since.elapsed() >= settings.settle {
                        complete.push((now.modified, path));
                    }
                }
                _ => {
                    seen.insert(path, (now, Instant::now()));
                }
            }
        }
        seen.retain(|path, _| present.contains(path));
        retry_at.retain(|path, _| present.contains(path));
        complete.sort();
        for (_, path) in complete {
            if retry_at.get(&path).is_some_and(|at| Instant::now() < *at) {
                continue;
            }
            match upload(&settings, &io, &cloud, &path).await {
                Ok(Outcome::Sent(run)) => {
                    tracing::info!(instrument = %io.instrument_id, run = %run, file = %path.display(), "file uploaded as the run's data");
                    park(&settings.folder, &path, SENT).await;
                    seen.remove(&path);
                    retry_at.remove(&path);
                }
                Ok(Outcome::NoRun) => {
                    if retry_at
                        .insert(path.clone(), Instant::now() + RETRY)
                        .is_none()
                    {
                        tracing::warn!(instrument = %io.instrument_id, file = %path.display(), "the instrument has no active run; the file waits for one");
                    }
                }
                Ok(Outcome::Refused(why)) => {
                    tracing::error!(instrument = %io.instrument_id, file = %path.display(), "the file cannot be uploaded ({why}); moved to {FAILED}");
                    park(&settings.folder, &path, FAILED).await;
                    seen.remove(&path);
                    retry_at.remove(&path);
                }
                Err(e) => {
                    retry_at.insert(path.clone(), Instant::now() + RETRY);
                    tracing::warn!(instrument = %io.instrument_id, file = %path.display(), "upload interrupted: {e}; it resumes");
                }
            }
        }
    }
}

async fn park(folder: &Path, path: &Path, sub: &str) {
    let target = folder.join(sub);
    if let Err(e) = tokio::fs::create_dir_all(&target).await {
        tracing::error!("cannot create {}: {e}", target.display());
        return;
    }
    let Some(name) = path.file_name() else { return };
    if let Err(e) = tokio::fs::rename(path, target.join(name)).await {
        tracing::error!("cannot move {}: {e}", path.display());
    }
}

enum Outcome {
    Sent(uuid::Uuid),
    NoRun,
    Refused(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataState {
    filename: Option<String>,
    status: String,
    total_bytes: Option<u64>,
    received_bytes: Option<u64>,
    sha256: Option<String>,
}

async fn sha256_of(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((len, hasher.finalize().into()))
}

/// Uploads `path` as the active run's data, from where the run's upload
/// stands.
async fn upload(
    settings: &Settings,
    io: &DriverIo,
    cloud: &Cloud,
    path: &Path,
) -> Result<Outcome, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or("no file name")?;
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| e.to_string())?
        .len();
    if size == 0 {
        return Ok(Outcome::Refused("the file is empty".into()));
    }
    let status = cloud
        .get(&format!("/api/v1/instruments/{}/status", io.instrument_id))
        .await?;
    let Some(run) = status["activeRun"]["id"]
        .as_str()
        .and_then(|id| id.parse::<uuid::Uuid>().ok())
    else {
        return Ok(Outcome::NoRun);
    };
    // Read the whole file only once there is a run to send it to.
    let (len, digest) = sha256_of(path).await.map_err(|e| e.to_string())?;
    let detail = cloud.get(&format!("/api/v1/runs/{run}")).await?;
    let state: Option<DataState> = serde_json::from_value(detail["data"].clone()).ok();
    let hex_digest = hex::encode(digest);
    let mut offset = match &state {
        Some(s) if s.status == "complete" => {
            return Ok(if s.sha256.as_deref() == Some(hex_digest.as_str()) {
                // Uploaded before a crash, not yet moved.
                Outcome::Sent(run)
            } else {
                Outcome::Refused(format!("run {run} already has other data"))
            });
        }
        Some(s)
            if s.status == "uploading"
                && s.filename.as_deref() == Some(name.as_str())
                && s.total_bytes == Some(len) =>
        {
            s.received_bytes.unwrap_or(0)
        }
        _ => 0,
    };
    if offset > 0 {
        tracing::info!(file = %name, offset, "resuming the upload");
    }
    let repr = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut query = vec![("filename", name.as_str())];
    if let Some(format) = &settings.format {
        query.push(("format", format.as_str()));
    }
    let mut redirects = 0;
    while offset < len {
        let size = (settings.chunk_bytes as u64).min(len - offset);
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| e.to_string())?;
        let mut chunk = vec![0u8; size as usize];
        file.read_exact(&mut chunk)
            .await
            .map_err(|e| e.to_string())?;
        let last = offset + size == len;
        let range = format!("bytes {}-{}/{len}", offset, offset + size - 1);
        let answer = cloud
            .post_bytes(
                &format!("/api/v1/runs/{run}/data"),
                &query,
                chunk,
                &range,
                last.then_some(repr.as_str()),
            )
            .await?;
        match answer.status {
            201 => return Ok(Outcome::Sent(run)),
            202 => offset += size,
            409 if answer.upload_offset.is_some() && redirects < 3 => {
                redirects += 1;
                offset = answer.upload_offset.unwrap_or(0);
            }
            400 | 409 | 413 | 422 => {
                return Ok(Outcome::Refused(format!(
                    "{} {}",
                    answer.status, answer.message
                )));
            }
            _ => return Err(format!("{} {}", answer.status, answer.message)),
        }
    }
    Err("the upload ended without the cloud confirming it".into())
}
