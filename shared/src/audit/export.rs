//! Audit exports an auditor can verify offline: the exported events (JSON
//! Lines or CSV, every field the chain covers) and a manifest naming the
//! range, the count, the chain's head, the file's SHA-256 and the keys that
//! signed (Ed25519 public keys with their periods; HMAC keys of events from
//! before Ed25519 by id only), signed with the audit key. [`verify`] is
//! what `antevus-audit verify-export` runs: with public keys alone.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::{self, Content};
use crate::config::{AuditKeys, PublicKey, SigningKey};

/// Tag of the manifest format: v2 names its keys and is signed with
/// Ed25519.
pub const MANIFEST_VERSION: &str = "antevus.audit.export.v2";
/// The manifests made before Ed25519 (HMAC-signed, no keys named); still
/// verified, with the HMAC key.
pub const MANIFEST_VERSION_V1: &str = "antevus.audit.export.v1";

/// File formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ExportFormat))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExportedEvent {
    /// The event's position on its chain.
    pub sequence: i64,
    pub id: uuid::Uuid,
    pub organization_id: Option<uuid::Uuid>,
    pub user_id: Option<uuid::Uuid>,
    pub event_type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::audit::Severity))]
    pub severity: String,
    pub action: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::audit::Outcome))]
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
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    /// The chain hash of the event before, hex (zeros for the first).
    pub previous_hash: String,
    /// This event's chain hash, hex: over the previous hash, the sequence
    /// and the content hash.
    pub hash: String,
    /// SHA-256 of the signed fields, hex.
    pub content_hash: String,
    /// The signature over the content hash, hex: Ed25519, or HMAC-SHA256
    /// for events from before Ed25519; none for legacy unsigned events.
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
    /// When the event was recorded (and signed), if `createdAt` parses.
    pub fn recorded_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.created_at, &Rfc3339).ok()
    }

    fn created_at_micros(&self) -> Result<i64, String> {
        self.recorded_at()
            .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
            .ok_or_else(|| format!("event {}: createdAt is not RFC 3339", self.sequence))
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// `antevus.audit.export.v2` (`v1`: HMAC-signed, from before Ed25519).
    pub version: String,
    /// The organization whose chain this is.
    pub chain_id: uuid::Uuid,
    pub format: Format,
    /// The filters the export was made with.
    pub filters: Value,
    /// Events in the file.
    pub count: u64,
    pub first_sequence: Option<i64>,
    pub last_sequence: Option<i64>,
    /// When more events matched than one export holds: continue with
    /// `after=<lastSequence>`.
    pub truncated: bool,
    /// The chain's head when the export was made.
    pub head_sequence: i64,
    pub head_hash: Option<String>,
    /// RFC 3339; also when the manifest was signed.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub exported_at: String,
    /// SHA-256 of the export file, hex.
    pub sha256: String,
    /// The keys that signed the manifest and its events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<ManifestKey>,
    /// The key that signed the manifest.
    pub key_id: String,
    /// The Ed25519 signature over [`Manifest::message`] (HMAC-SHA256 in a
    /// v1 manifest), hex.
    pub signature: String,
}

/// A key a manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManifestKey {
    pub kid: String,
    /// `Ed25519`, or `HMAC-SHA256` for events signed before Ed25519 (whose
    /// key is secret: checking them needs it).
    pub algorithm: String,
    /// The Ed25519 public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The start of the key's period (RFC 3339), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub valid_from: Option<String>,
    /// The end of the key's period (RFC 3339), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub valid_until: Option<String>,
}

impl ManifestKey {
    /// How a manifest names key `kid` of `keys` (`None`: an unknown key).
    pub fn describe(keys: &AuditKeys, kid: &str) -> Option<ManifestKey> {
        let rfc3339 = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
        if let Some(key) = keys.public.iter().find(|k| k.kid == kid) {
            return Some(ManifestKey {
                kid: kid.to_owned(),
                algorithm: ED25519.into(),
                public_key: Some(key.x()),
                valid_from: rfc3339(key.valid_from),
                valid_until: rfc3339(key.valid_until),
            });
        }
        keys.legacy
            .iter()
            .any(|k| k.kid == kid)
            .then(|| ManifestKey {
                kid: kid.to_owned(),
                algorithm: HMAC_SHA256.into(),
                public_key: None,
                valid_from: None,
                valid_until: None,
            })
    }

    /// This key as an entry of a public-key list (`None` for HMAC).
    fn entry(&self) -> Option<String> {
        let x = self.public_key.as_deref()?;
        Some(match (&self.valid_from, &self.valid_until) {
            (None, None) => format!("{}:{x}", self.kid),
            (from, until) => format!(
                "{}:{x}:{}..{}",
                self.kid,
                from.as_deref().unwrap_or_default(),
                until.as_deref().unwrap_or_default()
            ),
        })
    }
}

/// The name of Ed25519 in a manifest.
pub const ED25519: &str = "Ed25519";
/// The name of the HMAC of events signed before Ed25519.
pub const HMAC_SHA256: &str = "HMAC-SHA256";

/// The key ids that signed the events seen so far, in order of first
/// use, each with the algorithm its signatures' length shows (64 bytes
/// Ed25519, else the HMAC of events from before); unsigned legacy events
/// name none. Kept while an export streams.
#[derive(Debug, Default)]
pub struct Signers(Vec<(String, &'static str)>);

impl Signers {
    pub fn add(&mut self, event: &ExportedEvent) {
        if event.key_id == chain::LEGACY_KEY_ID || self.0.iter().any(|(k, _)| *k == event.key_id) {
            return;
        }
        let ed25519 = event.signature.as_ref().is_some_and(|s| s.len() == 128);
        self.0.push((
            event.key_id.clone(),
            if ed25519 { ED25519 } else { HMAC_SHA256 },
        ));
    }

    pub fn list(&self) -> &[(String, &'static str)] {
        &self.0
    }
}

/// The key ids that signed `events` ([`Signers`]).
pub fn signers(events: &[ExportedEvent]) -> Vec<(String, &'static str)> {
    let mut signers = Signers::default();
    events.iter().for_each(|event| signers.add(event));
    signers.0
}

/// The last line of a streamed (JSON Lines) export: its manifest, or why
/// it stopped short. The manifest's `sha256` covers every line before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Trailer {
    /// `{"manifest": {...}}`
    Manifest(Manifest),
    /// `{"error": {"code", "message", "requestId"}}`: the export failed
    /// after it began; the lines before are not a verifiable export.
    Error(TrailerError),
}

/// Why a streamed export stopped short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TrailerError {
    /// An error code, as in the error envelope.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::error::ErrorCode))]
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl Trailer {
    /// The trailer as the file's last line (with its newline).
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// A streamed export split into its events and its manifest: the last
/// line must be the manifest ([`Trailer`]); an error line, or none, is
/// the reason it is not an export.
pub fn split_streamed(file: &[u8]) -> Result<(&[u8], Manifest), String> {
    let trimmed = file.strip_suffix(b"\n").unwrap_or(file);
    let start = trimmed
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    match serde_json::from_slice::<Trailer>(&trimmed[start..]) {
        Ok(Trailer::Manifest(manifest)) => Ok((&file[..start], manifest)),
        Ok(Trailer::Error(e)) => Err(format!(
            "the export stopped short: {} ({}, request {})",
            e.message, e.code, e.request_id
        )),
        Err(_) => Err("the file does not end with its manifest line (cut short?)".into()),
    }
}

/// The Ed25519 keys a manifest names, as keys to verify with (what an
/// auditor checks against when given no keys of their own: it shows the
/// export is intact and consistent, not who made it).
pub fn named_keys(manifest: &Manifest) -> Result<Vec<PublicKey>, String> {
    let entries: Vec<String> = manifest
        .keys
        .iter()
        .filter_map(ManifestKey::entry)
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    crate::config::ed25519::parse_public_keys("manifest keys", &entries.join(",")).map_err(|e| e.0)
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

    /// Signs the manifest with `key`, naming it and every key in `signers`
    /// (the events', [`signers`]): Ed25519 ones with their public key and
    /// period as `keys` publish them.
    pub fn sign(&mut self, key: &SigningKey, keys: &AuditKeys, signers: &[(String, &'static str)]) {
        self.version = MANIFEST_VERSION.into();
        self.key_id = key.kid.clone();
        let mut named = vec![(key.kid.clone(), ED25519)];
        for (kid, algorithm) in signers {
            if !named.iter().any(|(k, _)| k == kid) {
                named.push((kid.clone(), algorithm));
            }
        }
        self.keys = named
            .into_iter()
            .map(|(kid, algorithm)| {
                ManifestKey::describe(keys, &kid).unwrap_or_else(|| ManifestKey {
                    // The signing key itself when it is not (yet) among the
                    // published ones; an HMAC key, by id only.
                    public_key: (kid == key.kid).then(|| key.x()),
                    kid,
                    algorithm: algorithm.into(),
                    valid_from: None,
                    valid_until: None,
                })
            })
            .collect();
        self.signature = hex::encode(chain::sign(key, &self.message()));
    }

    /// When the manifest was signed (its `exportedAt`).
    fn signed_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.exported_at, &Rfc3339).ok()
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
/// signatures, each by a key whose period covers when it was signed; a
/// key the manifest names differently from `keys` is a problem too.
pub fn verify(body: &[u8], manifest: &Manifest, keys: &AuditKeys) -> Verdict {
    let mut verdict = Verdict {
        signatures_checked: !keys.public.is_empty() || !keys.legacy.is_empty(),
        ..Verdict::default()
    };
    let problems = &mut verdict.problems;
    if manifest.version != MANIFEST_VERSION && manifest.version != MANIFEST_VERSION_V1 {
        problems.push(format!("unknown manifest version {}", manifest.version));
        return verdict;
    }
    if hex::encode(Sha256::digest(body)) != manifest.sha256 {
        problems.push("the file's SHA-256 differs from the manifest's".into());
    }
    for named in &manifest.keys {
        let given = keys.public.iter().find(|k| k.kid == named.kid);
        if let (Some(given), Some(x)) = (given, &named.public_key)
            && given.x() != *x
        {
            problems.push(format!(
                "the manifest names key {} with another public key than the one given",
                named.kid
            ));
        }
    }
    if verdict.signatures_checked {
        let signature = hex::decode(&manifest.signature).unwrap_or_default();
        let at = manifest.signed_at().unwrap_or(OffsetDateTime::UNIX_EPOCH);
        if !chain::knows(keys, &manifest.key_id) {
            problems.push(format!(
                "the manifest is signed with unknown key {}",
                manifest.key_id
            ));
        } else if !chain::verify_by(keys, &manifest.key_id, &manifest.message(), &signature, at) {
            problems.push("the manifest's signature does not verify".into());
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
            if verdict.signatures_checked {
                // Unparseable, it already failed the content check above.
                let at = event.recorded_at().unwrap_or(OffsetDateTime::UNIX_EPOCH);
                if !chain::knows(keys, &event.key_id) {
                    problems.push(format!(
                        "event {n}: signed with key {}, which was not given",
                        event.key_id
                    ));
                } else if !chain::verify_by(
                    keys,
                    &event.key_id,
                    &decode(&event.content_hash),
                    &event.signature.as_deref().map(decode).unwrap_or_default(),
                    at,
                ) {
                    problems.push(format!("event {n}: its signature does not verify"));
                }
            }
        }
        previous = Some(event);
    }
    verdict
}
