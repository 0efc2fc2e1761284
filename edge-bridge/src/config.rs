//! The agent's configuration: a TOML file, then environment overrides,
//! checked whole at start so every mistake is reported at once.
//!
//! ```toml
//! dir = ".antevus-bridge"          # credentials.json and queue/
//! transport = "websocket"          # or "http" (no WebSockets, e.g. Spin)
//! metrics_listen = "127.0.0.1:9464"
//! heartbeat_secs = 5
//! batch_max_records = 500
//! flush_ms = 200
//! tls_ca_file = "/etc/antevus/lab-ca.pem"  # optional: the lab's own CA(s)
//!
//! [queue]
//! max_bytes = 1073741824
//! segment_bytes = 8388608
//!
//! [[instruments]]
//! driver = "simulator"
//! id = "6d1f…"                    # the instrument's id in Antevus
//! type = "freezer"
//! interval_ms = 1000
//!
//! [[instruments]]
//! driver = "tcp"
//! id = "9a2c…"
//! address = "10.0.4.17:4001"
//!
//! [[instruments]]
//! driver = "serial"
//! id = "c0de…"
//! path = "/dev/ttyUSB0"
//! baud = 9600
//! ```
//!
//! Environment overrides: `EDGE_BRIDGE_DIR`, `EDGE_BRIDGE_URL` (default:
//! the URL the bridge enrolled with), `EDGE_BRIDGE_TRANSPORT`,
//! `EDGE_BRIDGE_METRICS_LISTEN`, `EDGE_BRIDGE_QUEUE_MAX_BYTES`,
//! `EDGE_BRIDGE_TLS_CA_FILE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::simulator::Fault;

/// How batches and commands travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// HTTPS batch ingest and command long-polling (works everywhere).
    Http,
    /// One WebSocket to the organization's hub.
    Websocket,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    #[serde(default = "default_queue_max")]
    pub max_bytes: u64,
    #[serde(default = "default_segment")]
    pub segment_bytes: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_bytes: default_queue_max(),
            segment_bytes: default_segment(),
        }
    }
}

/// What is wrong with `url` as the cloud's address, if anything: it must
/// be `https://`, or `http://` to this machine only (the bridge's key
/// would otherwise cross the network in clear).
pub fn cloud_url_problem(url: &str) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("url {url:?} is not a URL: {e}")),
    };
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => None,
        "http" if loopback => None,
        "http" => Some(format!(
            "url {url:?}: http:// is allowed only for this machine (localhost, 127.0.0.1, ::1); use https:// so the bridge's key is never sent in clear"
        )),
        _ => Some(format!("url {url:?} must start with https://")),
    }
}

fn default_queue_max() -> u64 {
    1 << 30
}
fn default_segment() -> u64 {
    8 << 20
}
fn default_dir() -> PathBuf {
    PathBuf::from(".antevus-bridge")
}
fn default_transport() -> Transport {
    Transport::Websocket
}
fn default_heartbeat() -> u64 {
    5
}
fn default_batch() -> usize {
    500
}
fn default_flush() -> u64 {
    200
}
fn default_interval() -> u64 {
    1000
}

/// A simulated instrument's fault, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultConfig {
    Drift,
    Spike,
    Stuck,
    Offline,
}

impl FaultConfig {
    pub fn fault(self) -> Fault {
        match self {
            FaultConfig::Drift => Fault::Drift { per_tick: 0.05 },
            FaultConfig::Spike => Fault::Spike,
            FaultConfig::Stuck => Fault::Stuck,
            FaultConfig::Offline => Fault::Offline,
        }
    }
}

/// One instrument and the driver that reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum InstrumentConfig {
    /// A simulated instrument of `type`.
    Simulator {
        id: uuid::Uuid,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default = "default_interval")]
        interval_ms: u64,
        #[serde(default)]
        seed: Option<u64>,
        #[serde(default)]
        fault: Option<FaultConfig>,
    },
    /// An instrument's LAN port speaking newline-delimited JSON.
    Tcp { id: uuid::Uuid, address: String },
    /// A folder the instrument writes result files into; each complete
    /// file becomes the raw data of the instrument's active run.
    FileDrop {
        id: uuid::Uuid,
        folder: PathBuf,
        #[serde(default = "default_settle")]
        settle_ms: u64,
        /// `plate_reader_csv` or `qpcr_ct_csv` also parses the file into
        /// the run's results.
        #[serde(default)]
        format: Option<String>,
        #[serde(default = "default_chunk")]
        chunk_bytes: usize,
    },
    /// An RS-232 line (e.g. `/dev/ttyUSB0`) speaking newline-delimited JSON.
    Serial {
        id: uuid::Uuid,
        path: String,
        #[serde(default = "default_baud")]
        baud: u32,
    },
}

fn default_settle() -> u64 {
    2000
}

/// The cloud's PostgreSQL chunk size; with object storage, the part size
/// its answers report as `chunkBytes`.
fn default_chunk() -> usize {
    2 << 20
}

fn default_baud() -> u32 {
    9600
}

impl InstrumentConfig {
    pub fn id(&self) -> uuid::Uuid {
        match self {
            InstrumentConfig::Simulator { id, .. }
            | InstrumentConfig::Tcp { id, .. }
            | InstrumentConfig::Serial { id, .. }
            | InstrumentConfig::FileDrop { id, .. } => *id,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_transport")]
    pub transport: Transport,
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    #[serde(default = "default_batch")]
    pub batch_max_records: usize,
    /// After a batch that was not full, wait this long for more records
    /// (fewer, larger requests); a full batch is followed at once.
    #[serde(default = "default_flush")]
    pub flush_ms: u64,
    /// A PEM file of certificate authorities to trust besides the public
    /// ones (a private CA, a TLS-inspecting proxy); see [`crate::tls`].
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub instruments: Vec<InstrumentConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    #[error("the configuration is not valid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads `path`, applies the environment (`lookup`), and checks it.
    pub fn load(
        path: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        Config::parse(&text, lookup).map_err(|e| match e {
            ConfigError::Parse(_, message) => ConfigError::Parse(path.to_owned(), message),
            other => other,
        })
    }

    /// Parses TOML text, applies the environment, and checks the result.
    pub fn parse(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse(PathBuf::new(), e.to_string()))?;
        let mut problems = Vec::new();
        if let Some(dir) = lookup("EDGE_BRIDGE_DIR") {
            config.dir = PathBuf::from(dir);
        }
        if let Some(url) = lookup("EDGE_BRIDGE_URL") {
            config.url = Some(url);
        }
        if let Some(transport) = lookup("EDGE_BRIDGE_TRANSPORT") {
            match transport.as_str() {
                "http" => config.transport = Transport::Http,
                "websocket" => config.transport = Transport::Websocket,
                other => problems.push(format!(
                    "EDGE_BRIDGE_TRANSPORT is {other:?}: must be http or websocket"
                )),
            }
        }
        if let Some(listen) = lookup("EDGE_BRIDGE_METRICS_LISTEN") {
            match listen.parse() {
                Ok(addr) => config.metrics_listen = Some(addr),
                Err(_) => problems.push(format!(
                    "EDGE_BRIDGE_METRICS_LISTEN is {listen:?}: must be an address like 127.0.0.1:9464"
                )),
            }
        }
        if let Some(max) = lookup("EDGE_BRIDGE_QUEUE_MAX_BYTES") {
            match max.parse() {
                Ok(max) => config.queue.max_bytes = max,
                Err(_) => problems.push(format!(
                    "EDGE_BRIDGE_QUEUE_MAX_BYTES is {max:?}: must be a number of bytes"
                )),
            }
        }
        if let Some(file) = lookup("EDGE_BRIDGE_TLS_CA_FILE") {
            config.tls_ca_file = Some(PathBuf::from(file));
        }
        config.check(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The certificate authorities the bridge trusts (checked at start).
    pub fn trust(&self) -> Result<crate::tls::Trust, crate::tls::TrustError> {
        crate::tls::Trust::load(self.tls_ca_file.as_deref())
    }

    fn check(&self, problems: &mut Vec<String>) {
        if let Some(problem) = self.url.as_deref().and_then(cloud_url_problem) {
            problems.push(problem);
        }
        if let Err(e) = self.trust() {
            problems.push(e.to_string());
        }
        if !(1..=3600).contains(&self.heartbeat_secs) {
            problems.push("heartbeat_secs must be between 1 and 3600".into());
        }
        if self.flush_ms > 10_000 {
            problems.push("flush_ms must be at most 10000".into());
        }
        if !(1..=shared::live::MAX_BATCH_RECORDS).contains(&self.batch_max_records) {
            problems.push(format!(
                "batch_max_records must be between 1 and {}",
                shared::live::MAX_BATCH_RECORDS
            ));
        }
        if self.queue.segment_bytes < 4096 || self.queue.max_bytes < self.queue.segment_bytes {
            problems.push(
                "queue.segment_bytes must be at least 4096 and at most queue.max_bytes".into(),
            );
        }
        if self.instruments.is_empty() {
            problems.push("no [[instruments]]: the bridge would have nothing to read".into());
        }
        let mut ids = std::collections::HashSet::new();
        for (i, instrument) in self.instruments.iter().enumerate() {
            if !ids.insert(instrument.id()) {
                problems.push(format!(
                    "instruments[{i}]: instrument {} is listed twice",
                    instrument.id()
                ));
            }
            match instrument {
                InstrumentConfig::Simulator {
                    kind, interval_ms, ..
                } => {
                    if crate::simulator::Simulated::new(kind, 0).is_err() {
                        problems.push(format!("instruments[{i}]: no simulator for type {kind:?}"));
                    }
                    if !(10..=3_600_000).contains(interval_ms) {
                        problems.push(format!(
                            "instruments[{i}]: interval_ms must be between 10 and 3600000"
                        ));
                    }
                }
                InstrumentConfig::FileDrop {
                    folder,
                    settle_ms,
                    format,
                    chunk_bytes,
                    ..
                } => {
                    if !folder.is_dir() {
                        problems.push(format!(
                            "instruments[{i}]: folder {} is not a directory",
                            folder.display()
                        ));
                    }
                    if !(100..=3_600_000).contains(settle_ms) {
                        problems.push(format!(
                            "instruments[{i}]: settle_ms must be between 100 and 3600000"
                        ));
                    }
                    if format
                        .as_deref()
                        .is_some_and(|f| shared::domain::qc::Format::parse(f).is_none())
                    {
                        let formats: Vec<&str> = shared::domain::qc::Format::ALL
                            .iter()
                            .map(|f| f.as_str())
                            .collect();
                        problems.push(format!(
                            "instruments[{i}]: format must be one of {}",
                            formats.join(", ")
                        ));
                    }
                    if !(64 * 1024..=64 << 20).contains(chunk_bytes) {
                        problems.push(format!(
                            "instruments[{i}]: chunk_bytes must be between 65536 and 67108864"
                        ));
                    }
                }
                InstrumentConfig::Serial { path, baud, .. } => {
                    if path.is_empty() {
                        problems.push(format!("instruments[{i}]: path is empty"));
                    }
                    if ![
                        1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400,
                    ]
                    .contains(baud)
                    {
                        problems.push(format!(
                            "instruments[{i}]: baud {baud} is not a standard rate"
                        ));
                    }
                }
                InstrumentConfig::Tcp { address, .. } => {
                    if address
                        .rsplit_once(':')
                        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                    {
                        problems.push(format!(
                            "instruments[{i}]: address {address:?} must be host:port"
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        dir = "/var/lib/antevus-bridge"
        metrics_listen = "127.0.0.1:9464"

        [[instruments]]
        driver = "simulator"
        id = "6d1f3c56-8f3b-4a84-9b7c-2a9f5e0c1d11"
        type = "freezer"
        fault = "drift"

        [[instruments]]
        driver = "tcp"
        id = "9a2c0f5e-1b7d-4c3a-8e6f-0d4b2a1c9e22"
        address = "10.0.4.17:4001"
    "#;

    #[test]
    fn a_good_file_with_overrides() {
        let plain = Config::parse(GOOD, |_| None).expect("valid");
        assert_eq!(plain.transport, Transport::Websocket, "the hub by default");
        let config = Config::parse(GOOD, |name| {
            (name == "EDGE_BRIDGE_TRANSPORT").then(|| "http".to_owned())
        })
        .expect("valid");
        assert_eq!(config.transport, Transport::Http);
        assert_eq!(config.instruments.len(), 2);
        assert_eq!(config.heartbeat_secs, 5);
        assert_eq!(config.queue.max_bytes, 1 << 30);
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let text = r#"
            heartbeat_secs = 0
            [[instruments]]
            driver = "simulator"
            id = "6d1f3c56-8f3b-4a84-9b7c-2a9f5e0c1d11"
            type = "toaster"
            [[instruments]]
            driver = "tcp"
            id = "6d1f3c56-8f3b-4a84-9b7c-2a9f5e0c1d11"
            address = "nowhere"
        "#;
        let Err(ConfigError::Invalid(problems)) = Config::parse(text, |n| match n {
            "EDGE_BRIDGE_TRANSPORT" => Some("pigeon".into()),
            "EDGE_BRIDGE_TLS_CA_FILE" => Some("/nonexistent/lab-ca.pem".into()),
            _ => None,
        }) else {
            panic!("must be invalid");
        };
        let all = problems.join("\n");
        for expected in [
            "pigeon",
            "heartbeat_secs",
            "toaster",
            "listed twice",
            "host:port",
            "tls_ca_file /nonexistent/lab-ca.pem: cannot read it",
        ] {
            assert!(all.contains(expected), "{expected} missing from {all}");
        }
    }

    #[test]
    fn unknown_keys_and_drivers_are_errors() {
        for text in [
            "colour = \"blue\"",
            "[[instruments]]\ndriver = \"telepathy\"\nid = \"6d1f3c56-8f3b-4a84-9b7c-2a9f5e0c1d11\"",
            "[[instruments]]\ndriver = \"tcp\"\nid = \"6d1f3c56-8f3b-4a84-9b7c-2a9f5e0c1d11\"\naddress = \"a:1\"\nbaud = 9600",
        ] {
            assert!(
                matches!(Config::parse(text, |_| None), Err(ConfigError::Parse(..))),
                "{text}"
            );
        }
    }

    #[test]
    fn the_key_never_travels_in_clear_beyond_this_machine() {
        for good in [
            "https://api.lab.example",
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
            "http://127.3.2.1",
        ] {
            assert_eq!(cloud_url_problem(good), None, "{good}");
        }
        for bad in [
            "http://api.lab.example",
            "http://10.0.0.5:8787",
            "http://localhost.evil.example",
            "ftp://127.0.0.1",
            "api.lab.example",
            "https://",
        ] {
            assert!(cloud_url_problem(bad).is_some(), "{bad}");
        }
    }
}
