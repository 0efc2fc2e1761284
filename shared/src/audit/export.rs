//! Audit exports an auditor can verify offline: the exported events (JSON
//! Lines or CSV, every field the chain covers) and a manifest naming the
//! range, the count, the chain's head and the file's SHA-256, signed with
//! the audit key. [`verify`] is what `antevus-audit verify-export` runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::{self, Content};
use crate::config::HmacKey;

/// Tag of the manifest format.
pub const MANIFEST_VERSION: &str = "antevus.audit.export.v1";

/// File formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn parse(raw: &str) -> Option<Format> {
        match raw {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// One stored event as it is exported and verified: everything needed to
/// recompute its hashes (read with `model::audit_event::CHAIN_COLUMNS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedEvent {
    pub sequence: i64,
    pub id: uuid::Uuid,
    pub organization_id: Option<uuid::Uuid>,
    pub user_id: Option<uuid::Uuid>,
    pub event_type: String,
    pub severity: String,
    pub action: String,
    pub outcome: String,
    pub record_type: Option<String>,
    pub record_id: Option<uuid::Uuid>,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
    pub reason: Option<String>,
    pub metadata: Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    /// RFC 3339, microseconds.
    pub created_at: String,
    pub previous_hash: String,
    pub hash: String,
    pub content_hash: String,
    pub signature: Option<String>,
    pub key_id: String,
}

/// The CSV header, in column order.
pub const CSV_COLUMNS: [&str; 24] = [
    "sequence",
    "id",
    "organizationId",
    "userId",
    "eventType",
    "severity",
    "action",
    "outcome",
    "recordType",
    "recordId",
    "oldValues",
    "newValues",
    "reason",
    "metadata",
    "ipAddress",
    "userAgent",
    "requestId",
    "sessionId",
    "createdAt",
    "previousHash",
    "hash",
    "contentHash",
    "signature",
    "keyId",
];

fn text<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn json_text(value: &Option<Value>) -> String {
    value.as_ref().map(Value::to_string).unwrap_or_default()
}

impl ExportedEvent {
    fn created_at_micros(&self) -> Result<i64, String> {
        OffsetDateTime::parse(&self.created_at, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
            .map_err(|_| format!("event {}: createdAt is not RFC 3339", self.sequence))
    }

    /// The signed content of this event.
    pub fn content(&self) -> Result<Content<'_>, String> {
        Ok(Content {
            id: self.id,
            organization_id: self.organization_id,
            user_id: self.user_id,
            event_type: &self.event_type,
            severity: &self.severity,
            action: &self.action,
            outcome: &self.outcome,
            record_type: self.record_type.as_deref(),
            record_id: self.record_id,
            old_values: self.old_values.as_ref(),
            new_values: self.new_values.as_ref(),
            reason: self.reason.as_deref(),
            metadata: &self.metadata,
            ip_address: self.ip_address.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_id: self.request_id.as_deref(),
            session_id: self.session_id.as_deref(),
            created_at_micros: self.created_at_micros()?,
        })
    }

    /// The CSV record of this event ([`CSV_COLUMNS`]); JSON fields as JSON
    /// text, absent values empty.
    pub fn csv_record(&self) -> [String; 24] {
        [
            self.sequence.to_string(),
            self.id.to_string(),
            text(&self.organization_id),
            text(&self.user_id),
            self.event_type.clone(),
            self.severity.clone(),
            self.action.clone(),
            self.outcome.clone(),
            text(&self.record_type),
            text(&self.record_id),
            json_text(&self.old_values),
            json_text(&self.new_values),
            text(&self.reason),
            self.metadata.to_string(),
            text(&self.ip_address),
            text(&self.user_agent),
            text(&self.request_id),
            text(&self.session_id),
            self.created_at.clone(),
            self.previous_hash.clone(),
            self.hash.clone(),
            self.content_hash.clone(),
            text(&self.signature),
            self.key_id.clone(),
        ]
    }

    fn from_csv(record: &csv::StringRecord) -> Result<ExportedEvent, String> {
        let field = |i: usize| record.get(i).unwrap_or_default();
        let optional = |i: usize| Some(field(i).to_owned()).filter(|s| !s.is_empty());
        let uuid = |i: usize| -> Result<Option<uuid::Uuid>, String> {
            optional(i)
                .map(|s| {
                    s.parse()
                        .map_err(|_| format!("column {} is not a UUID", CSV_COLUMNS[i]))
                })
                .transpose()
        };
        let json = |i: usize| -> Result<Option<Value>, String> {
            optional(i)
                .map(|s| {
                    serde_json::from_str(&s)
                        .map_err(|_| format!("column {} is not JSON", CSV_COLUMNS[i]))
                })
                .transpose()
        };
        Ok(ExportedEvent {
            sequence: field(0)
                .parse()
                .map_err(|_| "sequence is not a number".to_owned())?,
            id: field(1)
                .parse()
                .map_err(|_| "id is not a UUID".to_owned())?,
            organization_id: uuid(2)?,
            user_id: uuid(3)?,
            event_type: field(4).to_owned(),
            severity: field(5).to_owned(),
            action: field(6).to_owned(),
            outcome: field(7).to_owned(),
            record_type: optional(8),
            record_id: uuid(9)?,
            old_values: json(10)?,
            new_values: json(11)?,
            reason: optional(12),
            metadata: json(13)?.unwrap_or(Value::Null),
            ip_address: optional(14),
            user_agent: optional(15),
            request_id: optional(16),
            session_id: optional(17),
            created_at: field(18).to_owned(),
            previous_hash: field(19).to_owned(),
            hash: field(20).to_owned(),
            content_hash: field(21).to_owned(),
            signature: optional(22),
            key_id: field(23).to_owned(),
        })
    }
}

/// Writes events in `format`.
pub fn render(format: Format, events: &[ExportedEvent]) -> Result<Vec<u8>, String> {
    match format {
        Format::Jsonl => {
            let mut out = Vec::new();
            for event in events {
                serde_json::to_writer(&mut out, event).map_err(|e| e.to_string())?;
                out.push(b'\n');
            }
            Ok(out)
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer
                .write_record(CSV_COLUMNS)
                .map_err(|e| e.to_string())?;
            for event in events {
                writer
                    .write_record(event.csv_record())
                    .map_err(|e| e.to_string())?;
            }
            writer.into_inner().map_err(|e| e.to_string())
        }
    }
}

/// Reads events back from an export file.
pub fn parse(format: Format, body: &[u8]) -> Result<Vec<ExportedEvent>, String> {
    match format {
        Format::Jsonl => body
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", i + 1))
            })
            .collect(),
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(body);
            let header = reader.headers().map_err(|e| e.to_string())?.clone();
            if header.iter().ne(CSV_COLUMNS) {
                return Err("the CSV header is not an Antevus audit export's".into());
            }
            reader
                .records()
                .enumerate()
                .map(|(i, record)| {
                    record
                        .map_err(|e| e.to_string())
                        .and_then(|r| ExportedEvent::from_csv(&r))
                        .map_err(|e| format!("record {}: {e}", i + 1))
                })
                .collect()
        }
    }
}

/// What an export holds, signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: String,
    pub chain_id: uuid::Uuid,
    pub format: Format,
    /// The filters the export was made with.
    pub filters: Value,
    pub count: u64,
    pub first_sequence: Option<i64>,
    pub last_sequence: Option<i64>,
    /// When more events matched than one export holds: continue with
    /// `after=<lastSequence>`.
    pub truncated: bool,
    /// The chain's head when the export was made.
    pub head_sequence: i64,
    pub head_hash: Option<String>,
    pub exported_at: String,
    /// SHA-256 of the export file, hex.
    pub sha256: String,
    pub key_id: String,
    /// HMAC-SHA256 over [`Manifest::message`], hex.
    pub signature: String,
}

impl Manifest {
    /// What the signature covers: the manifest without its signature, as
    /// JSON with sorted keys.
    pub fn message(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.remove("signature");
        }
        // serde_json's map keeps keys sorted (no `preserve_order`): the
        // encoding is canonical.
        let sorted: std::collections::BTreeMap<String, Value> = value
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        serde_json::to_vec(&sorted).unwrap_or_default()
    }

    pub fn sign(&mut self, key: &HmacKey) {
        self.key_id = key.kid.clone();
        self.signature = hex::encode(chain::sign(key, &self.message()));
    }
}

/// The outcome of checking an export against its manifest.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub events: u64,
    /// Whether signatures were checked (keys given).
    pub signatures_checked: bool,
    /// Everything wrong, in file order; empty when the export verifies.
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks an export file against its manifest: the file's digest, count
/// and range, every event's content hash and chain link, links between
/// consecutive events, and (with `keys`) the manifest's and events'
/// signatures.
pub fn verify(body: &[u8], manifest: &Manifest, keys: &[HmacKey]) -> Verdict {
    let mut verdict = Verdict {
        signatures_checked: !keys.is_empty(),
        ..Verdict::default()
    };
    let problems = &mut verdict.problems;
    if manifest.version != MANIFEST_VERSION {
        problems.push(format!("unknown manifest version {}", manifest.version));
        return verdict;
    }
    if hex::encode(Sha256::digest(body)) != manifest.sha256 {
        problems.push("the file's SHA-256 differs from the manifest's".into());
    }
    if !keys.is_empty() {
        match keys.iter().find(|k| k.kid == manifest.key_id) {
            None => problems.push(format!(
                "the manifest is signed with unknown key {}",
                manifest.key_id
            )),
            Some(key) => {
                let signature = hex::decode(&manifest.signature).unwrap_or_default();
                if !chain::verify(key, &manifest.message(), &signature) {
                    problems.push("the manifest's signature does not verify".into());
                }
            }
        }
    }
    let events = match parse(manifest.format, body) {
        Ok(events) => events,
        Err(e) => {
            problems.push(format!("the file does not parse: {e}"));
            return verdict;
        }
    };
    verdict.events = events.len() as u64;
    if events.len() as u64 != manifest.count {
        problems.push(format!(
            "the file holds {} events, the manifest says {}",
            events.len(),
            manifest.count
        ));
    }
    if events.first().map(|e| e.sequence) != manifest.first_sequence
        || events.last().map(|e| e.sequence) != manifest.last_sequence
    {
        problems.push("the file's sequence range differs from the manifest's".into());
    }
    let mut previous: Option<&ExportedEvent> = None;
    for event in &events {
        let n = event.sequence;
        if let Some(before) = previous {
            if n <= before.sequence {
                problems.push(format!("event {n} is out of order"));
            } else if n == before.sequence + 1 && event.previous_hash != before.hash {
                problems.push(format!(
                    "event {n} does not follow event {}",
                    before.sequence
                ));
            }
        }
        let decode = |h: &str| hex::decode(h).unwrap_or_default();
        let link = chain::link(
            &decode(&event.previous_hash),
            n,
            &decode(&event.content_hash),
        );
        if hex::encode(link) != event.hash {
            problems.push(format!("event {n}: its chain hash does not match"));
        }
        if event.key_id != chain::LEGACY_KEY_ID {
            match event.content() {
                Err(e) => problems.push(e),
                Ok(content) if hex::encode(content.hash()) != event.content_hash => {
                    problems.push(format!("event {n}: its fields differ from what was signed"));
                }
                Ok(_) => {}
            }
            if !keys.is_empty() {
                let signed = chain::verify_by(
                    keys,
                    &event.key_id,
                    &decode(&event.content_hash),
                    &event.signature.as_deref().map(decode).unwrap_or_default(),
                );
                if !signed {
                    problems.push(format!("event {n}: its signature does not verify"));
                }
            }
        }
        previous = Some(event);
    }
    verdict
}
