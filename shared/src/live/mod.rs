//! The live path's protocol between an edge bridge and the cloud, shared by
//! the agent (`edge-bridge`), the ingest and command functions, and the hub.
//!
//! A bridge's disk queue numbers its records 1, 2, 3... within a *stream*
//! (a random id made together with the queue). A [`Batch`] carries records
//! in order with their sequence numbers; the cloud stores each stream's
//! records from its acknowledged sequence on and answers with a cumulative
//! [`BatchAck`]. Sending a batch again changes nothing; a batch that starts
//! past the acknowledged sequence + 1 is refused with the sequence expected,
//! so nothing is skipped. A record is a reading or the outcome of a command.
//!
//! [`persist`] stores batches and hands out commands; it is the only code
//! that writes what bridges send, whatever transport brought it.

pub mod hub;
pub mod persist;

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::domain::InstrumentStatus;
use crate::error::FieldError;

/// At most this many records in one batch.
pub const MAX_BATCH_RECORDS: usize = 1000;
/// At most this many instruments in one heartbeat.
pub const MAX_HEARTBEAT_INSTRUMENTS: usize = 1000;
/// A bridge is shown online while it was heard from this recently.
pub const ONLINE_WITHIN_SECS: i64 = 60;
/// A command handed to a bridge and not acknowledged within this long is
/// handed out again (the bridge may have crashed before recording it).
pub const REDELIVER_AFTER_SECS: i64 = 30;
/// The longest a command poll waits for a command.
pub const MAX_POLL_WAIT_SECS: u64 = 25;

/// One record of a bridge's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = StreamRecord))]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Its position in the stream, from 1.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub seq: u64,
    #[serde(flatten)]
    pub item: Item,
}

/// What a record carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = StreamItem))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Item {
    /// `kind: "reading"`.
    Reading(Reading),
    /// `kind: "commandOutcome"`.
    CommandOutcome(CommandOutcome),
}

/// A value an instrument reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BridgeReading))]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// An instrument of the organization that this bridge serves (or
    /// that no bridge serves yet: the first to report it serves it).
    pub instrument_id: uuid::Uuid,
    /// A letter, then letters, digits, `_` or `.`; 64 characters at most.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9_.]*$")
    )]
    pub metric: String,
    /// A finite number.
    pub value: f64,
    /// At most 32 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 32))]
    pub unit: Option<String>,
    pub recorded_at: Timestamp,
}

/// How far a command got on the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    Acknowledged,
    Completed,
    Failed,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Acknowledged => "acknowledged",
            CommandState::Completed => "completed",
            CommandState::Failed => "failed",
        }
    }
}

/// A command's acknowledgement or result, as the instrument's driver saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommandOutcome {
    /// A command handed to this bridge.
    pub command_id: uuid::Uuid,
    /// Forward only: `sent -> acknowledged -> completed | failed`.
    pub state: CommandState,
    /// What the instrument returned: an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// Why it failed (required when `failed`); at most 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub error: Option<String>,
    /// When the instrument's driver saw it.
    pub at: Timestamp,
}

/// What the bridge says about itself; sent with every batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BridgeHeartbeat))]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The agent's version; at most 64 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub version: Option<String>,
    /// At most 255 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub hostname: Option<String>,
    /// Records waiting in the disk queue.
    pub queue_depth: u64,
    /// The instruments this bridge reaches, with their state (at most
    /// 1000); the commands it is handed are for these.
    #[serde(default)]
    pub instruments: Vec<InstrumentState>,
}

/// An instrument as its bridge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstrumentState {
    pub id: uuid::Uuid,
    /// `online`, `idle`, `running`, `error` or `offline`; `maintenance` is
    /// set by people, never by a bridge.
    pub status: InstrumentStatus,
}

/// Statuses a bridge may report.
pub const BRIDGE_STATUSES: [InstrumentStatus; 5] = [
    InstrumentStatus::Online,
    InstrumentStatus::Idle,
    InstrumentStatus::Running,
    InstrumentStatus::Error,
    InstrumentStatus::Offline,
];

/// What a bridge sends: records of one stream, in order, and its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BridgeBatch))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    /// The stream's id: random, made with the bridge's disk queue.
    pub stream: uuid::Uuid,
    /// At most 1000, their `seq` consecutive and continuing the stream
    /// (records already acknowledged are skipped).
    #[serde(default)]
    pub records: Vec<Record>,
    pub heartbeat: Heartbeat,
}

/// A record the cloud could not store (and will never store: it is
/// acknowledged with the others so the queue moves on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RejectedRecord))]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub seq: u64,
    /// Why it can never be stored.
    pub reason: String,
}

/// The cloud's answer to a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BatchAck {
    pub stream: uuid::Uuid,
    /// Every record up to this sequence is stored (or rejected, below).
    pub acked: u64,
    /// Records of this batch stored now.
    pub stored: u64,
    /// Records of this batch that were already stored.
    pub duplicates: u64,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// A command for one of the bridge's instruments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommandOrder {
    /// The command's id: its outcome names it (`commandId`); a command
    /// handed out again keeps it.
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub command: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    /// Unacknowledged by then, it reads `expired`.
    pub expires_at: Timestamp,
}

/// A metric name: a letter, then letters, digits, `_` or `.`; 64 at most.
pub fn valid_metric(metric: &str) -> bool {
    let mut chars = metric.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && metric.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

impl Reading {
    /// Why this reading cannot be stored, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if !valid_metric(&self.metric) {
            return Some(
                "metric must start with a letter and hold letters, digits, '_' or '.' (64 at most)",
            );
        }
        if !self.value.is_finite() {
            return Some("value must be a finite number");
        }
        if self
            .unit
            .as_ref()
            .is_some_and(|u| !crate::domain::printable_within(u, 32))
        {
            return Some("unit must be at most 32 printable characters");
        }
        None
    }
}

impl CommandOutcome {
    /// Why this outcome cannot be stored, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self
            .error
            .as_ref()
            .is_some_and(|e| e.chars().count() > 1000)
        {
            return Some("error must be at most 1000 characters");
        }
        if self.state == CommandState::Failed && self.error.is_none() {
            return Some("a failed command needs an error");
        }
        if self.result.as_ref().is_some_and(|r| !r.is_object()) {
            return Some("result must be an object");
        }
        None
    }
}

impl Batch {
    /// Checks the whole batch: records in order without gaps, every record
    /// storable, the heartbeat's instruments and statuses. A batch either
    /// passes whole or is refused whole.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut problems = Vec::new();
        if self.records.len() > MAX_BATCH_RECORDS {
            problems.push(FieldError::new(
                "records",
                format!("At most {MAX_BATCH_RECORDS} records per batch"),
            ));
        }
        let mut previous: Option<u64> = None;
        for (i, record) in self.records.iter().enumerate() {
            if record.seq == 0 || previous.is_some_and(|p| record.seq != p + 1) {
                problems.push(FieldError::new(
                    format!("records[{i}].seq"),
                    "Sequences start at 1 and follow each other without gaps",
                ));
            }
            previous = Some(record.seq);
            let problem = match &record.item {
                Item::Reading(r) => r.problem(),
                Item::CommandOutcome(c) => c.problem(),
            };
            if let Some(problem) = problem {
                problems.push(FieldError::new(format!("records[{i}]"), problem));
            }
        }
        let hb = &self.heartbeat;
        if hb.instruments.len() > MAX_HEARTBEAT_INSTRUMENTS {
            problems.push(FieldError::new(
                "heartbeat.instruments",
                format!("At most {MAX_HEARTBEAT_INSTRUMENTS} instruments"),
            ));
        }
        for (i, state) in hb.instruments.iter().enumerate() {
            if !BRIDGE_STATUSES.contains(&state.status) {
                let expected: Vec<&str> = BRIDGE_STATUSES.iter().map(|s| s.as_str()).collect();
                problems.push(FieldError::new(
                    format!("heartbeat.instruments[{i}].status"),
                    format!("Must be one of: {}", expected.join(", ")),
                ));
            }
        }
        for (field, value, max) in [
            ("heartbeat.version", &hb.version, 64),
            ("heartbeat.hostname", &hb.hostname, 255),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| !crate::domain::printable_within(v, max))
            {
                problems.push(FieldError::new(
                    field,
                    format!("Must be at most {max} printable characters"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The first and last sequence, if the batch has records.
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((self.records.first()?.seq, self.records.last()?.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(seq: u64, metric: &str, value: f64) -> Record {
        Record {
            seq,
            item: Item::Reading(Reading {
                instrument_id: uuid::Uuid::nil(),
                metric: metric.into(),
                value,
                unit: Some("C".into()),
                recorded_at: time::OffsetDateTime::UNIX_EPOCH.into(),
            }),
        }
    }

    fn batch(records: Vec<Record>) -> Batch {
        Batch {
            stream: uuid::Uuid::nil(),
            records,
            heartbeat: Heartbeat::default(),
        }
    }

    #[test]
    fn a_record_reads_as_its_kind() {
        let json = serde_json::to_value(reading(3, "temperature", 4.5)).expect("serializes");
        assert_eq!(json["kind"], "reading");
        assert_eq!(json["seq"], 3);
        assert_eq!(json["recordedAt"], "1970-01-01T00:00:00Z");
        let back: Record = serde_json::from_value(json).expect("parses");
        assert_eq!(back, reading(3, "temperature", 4.5));
    }

    #[test]
    fn batches_must_be_contiguous_and_storable() {
        assert!(
            batch(vec![reading(5, "a", 1.0), reading(6, "b.c_1", 2.0)])
                .validate()
                .is_ok()
        );
        let gap = batch(vec![reading(5, "a", 1.0), reading(7, "a", 1.0)]);
        assert_eq!(
            gap.validate().expect_err("a gap")[0].field,
            "records[1].seq"
        );
        assert!(batch(vec![reading(0, "a", 1.0)]).validate().is_err());
        for bad in ["", "1abc", "a b", &"x".repeat(65)] {
            assert!(
                batch(vec![reading(1, bad, 1.0)]).validate().is_err(),
                "{bad}"
            );
        }
        assert!(
            batch(vec![reading(1, "a", f64::INFINITY)])
                .validate()
                .is_err()
        );
        let mut b = batch(vec![]);
        b.heartbeat.instruments.push(InstrumentState {
            id: uuid::Uuid::nil(),
            status: InstrumentStatus::Maintenance,
        });
        assert!(b.validate().is_err());
    }
}
