//! The events the trail publishes: what lab systems subscribe to (webhooks)
//! and people are told about. The one list in code; `docs/EVENTS.md` is
//! rendered from it by `cargo xtask routes` (and `--check` fails when it
//! drifts), with each type's JSON Schema.
//!
//! Every event derives from an audit event and is written by the statement
//! that writes it ([`derive`] reads the audit event; the statements of
//! `model::audit_event` insert the event and queue a delivery for every
//! enabled webhook of the organization subscribed to its type): no change,
//! no audit event, no event. An event is `{type, timestamp, data}`; `data`
//! is the type's schema at its `version`, and a change that is not
//! backwards compatible (a field removed, renamed or retyped) is a new
//! version.

use serde::Serialize;
use serde_json::Value;

use super::catalogue::{EventType, Kind};
use crate::domain::Timestamp;

macro_rules! events {
    ($(
        $(#[doc = $about:literal])+
        $variant:ident = $name:literal, v = $version:literal, $data:ident, [$($from:ident),+];
    )+) => {
        /// A published event type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Topic {
            $($(#[doc = $about])+ $variant,)+
        }

        impl Topic {
            /// Every type, in catalogue order.
            pub const ALL: &'static [Topic] = &[$(Topic::$variant),+];

            /// The name subscribers see (`type`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Topic::$variant => $name,)+
                }
            }

            /// The version of its `data`'s schema.
            pub fn version(self) -> i32 {
                match self {
                    $(Topic::$variant => $version,)+
                }
            }

            /// The audit event types it derives from.
            pub fn derives_from(self) -> &'static [EventType] {
                match self {
                    $(Topic::$variant => &[$(EventType::$from),+],)+
                }
            }

            /// When it is published.
            pub fn about(self) -> &'static str {
                match self {
                    $(Topic::$variant => concat!($($about),+).trim_ascii(),)+
                }
            }

            /// The name of its `data`'s schema.
            pub fn data_schema(self) -> &'static str {
                match self {
                    $(Topic::$variant => stringify!($data),)+
                }
            }

            /// The type of `name`, if catalogued.
            pub fn parse(name: &str) -> Option<Topic> {
                Topic::ALL.iter().copied().find(|t| t.as_str() == name)
            }
        }
    };
}

events! {
    /// An instrument's bridge reported a new status (any change, offline included).
    InstrumentStatusChanged = "instrument.status_changed", v = 1, InstrumentStatusData, [InstrumentStatusChanged];
    /// An instrument's bridge reported it offline: the bridge cannot reach it.
    InstrumentOffline = "instrument.offline", v = 1, InstrumentStatusData, [InstrumentStatusChanged];
    /// A run is running: its instrument took the start.
    RunStarted = "run.started", v = 1, RunData, [RunRunning];
    /// A run completed, as its instrument reported or as someone recorded.
    RunCompleted = "run.completed", v = 1, RunData, [RunFinished, RunStopped];
    /// A run failed: its instrument reported an error or refused the start, or someone recorded it failed.
    RunFailed = "run.failed", v = 1, RunData, [RunFinished, RunStopped];
    /// A run was aborted by someone.
    RunAborted = "run.aborted", v = 1, RunData, [RunStopped];
    /// A run's data file was parsed and a QC check of its results failed (data quality `poor`), against its instrument's thresholds.
    QcFailed = "qc.failed", v = 1, QcData, [RunResultsRecorded];
    /// A control command completed on its instrument.
    CommandCompleted = "command.completed", v = 1, CommandData, [InstrumentCommandCompleted];
    /// A control command failed on its instrument.
    CommandFailed = "command.failed", v = 1, CommandData, [InstrumentCommandFailed];
    /// A bridge stopped reporting: no heartbeat for two minutes (its instruments' readings wait in its disk queue, or are not read).
    BridgeDisconnected = "bridge.disconnected", v = 1, BridgeData, [BridgeDisconnected];
    /// Scheduled maintenance of an instrument fell due and is not done.
    MaintenanceDue = "maintenance.due", v = 1, MaintenanceData, [MaintenanceDue];
    /// An instrument's calibration is past its due date.
    CalibrationOverdue = "calibration.overdue", v = 1, CalibrationData, [CalibrationOverdue];
    /// Something a security officer must look at: an account locked by repeated wrong passwords, a spent refresh token presented again (its logins were ended), or one user refused for lack of permission ten times within ten minutes.
    SecurityAlert = "security.alert", v = 1, SecurityAlertData, [AuthAccountLocked, AuthRefreshReuse, AccessDenied];
}

/// `data` of `instrument.status_changed` and `instrument.offline`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstrumentStatusData {
    pub instrument_id: uuid::Uuid,
    /// The status now.
    pub status: String,
    /// The status before.
    pub previous_status: Option<String>,
    /// The bridge that reported it.
    pub bridge_id: Option<uuid::Uuid>,
}

/// `data` of the `run.*` events.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunData {
    pub run_id: uuid::Uuid,
    pub instrument_id: Option<uuid::Uuid>,
    /// `running`, `completed`, `failed` or `aborted`.
    pub status: String,
    /// Why it ended, when it ended with a reason.
    pub reason: Option<String>,
}

/// `data` of `qc.failed`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QcData {
    pub run_id: uuid::Uuid,
    pub instrument_id: Option<uuid::Uuid>,
    /// The run's grade (`GET /api/v1/runs/:id/qc`): `poor`.
    pub data_quality: String,
    /// The metrics whose checks failed, e.g. `zPrime`.
    pub failed_checks: Vec<String>,
}

/// `data` of the `command.*` events.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommandData {
    pub command_id: uuid::Uuid,
    pub instrument_id: Option<uuid::Uuid>,
    /// `completed` or `failed`.
    pub status: String,
    /// What the instrument answered, when it answered something.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// `data` of `bridge.disconnected`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BridgeData {
    pub bridge_id: uuid::Uuid,
    pub name: Option<String>,
    pub hostname: Option<String>,
    /// Its last heartbeat.
    pub last_heartbeat_at: Option<Timestamp>,
}

/// `data` of `maintenance.due`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceData {
    pub maintenance_id: uuid::Uuid,
    pub instrument_id: Option<uuid::Uuid>,
    /// `calibration`, `preventive`, `repair` or `inspection`.
    pub kind: Option<String>,
    pub title: Option<String>,
    pub scheduled_for: Option<Timestamp>,
}

/// `data` of `calibration.overdue`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CalibrationData {
    pub instrument_id: uuid::Uuid,
    pub name: Option<String>,
    pub calibration_due_at: Option<Timestamp>,
}

/// `data` of `security.alert`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecurityAlertData {
    /// `account_locked`, `refresh_token_reuse` or `repeated_denials`.
    pub kind: String,
    /// The account concerned.
    pub user_id: Option<uuid::Uuid>,
    /// What happened, in words.
    pub detail: String,
}

/// An event to publish with its audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: Topic,
    /// The body subscribers receive: `{type, timestamp, data}`.
    pub payload: Value,
}

impl Outgoing {
    fn new(topic: Topic, at: Timestamp, data: impl Serialize) -> Option<Outgoing> {
        let data = serde_json::to_value(data).ok()?;
        Some(Outgoing {
            topic,
            payload: serde_json::json!({ "type": topic.as_str(), "timestamp": at, "data": data }),
        })
    }
}

/// A string field of an audit event's values.
fn text(values: Option<&Value>, field: &str) -> Option<String> {
    values?.get(field)?.as_str().map(str::to_owned)
}

/// A time field of an audit event's metadata.
fn time_in(metadata: &Value, field: &str) -> Option<Timestamp> {
    Timestamp::parse(metadata.get(field)?.as_str()?)
}

/// A uuid field of an audit event's metadata.
fn id_in(metadata: &Value, field: &str) -> Option<uuid::Uuid> {
    metadata.get(field)?.as_str()?.parse().ok()
}

/// The events an audit event publishes (none for most), stamped `at` (the
/// audit event's time). Only events of an organization publish.
pub fn derive(event: &super::Event<'_>, at: Timestamp) -> Vec<Outgoing> {
    let (Kind::Catalogued(kind), Some(_)) = (event.event_type, event.organization_id) else {
        return Vec::new();
    };
    if kind == EventType::AccessDenied {
        // Only the denial that makes a burst (`audit::record_refusal`).
        let Some(count) = event.metadata["repeatedDenials"].as_i64() else {
            return Vec::new();
        };
        let minutes = event.metadata["withinMinutes"].as_i64().unwrap_or(0);
        let data = SecurityAlertData {
            kind: "repeated_denials".into(),
            user_id: event.user_id,
            detail: format!(
                "{count} requests refused for lack of permission within {minutes} minutes (the last: {} {})",
                event.metadata["method"].as_str().unwrap_or("?"),
                event.metadata["path"].as_str().unwrap_or("?"),
            ),
        };
        return Outgoing::new(Topic::SecurityAlert, at, data)
            .into_iter()
            .collect();
    }
    let Some(record) = event.record_id else {
        return Vec::new();
    };
    let new = event.new_values.as_ref();
    let old = event.old_values.as_ref();
    let metadata = &event.metadata;
    let status = text(new, "status");
    let mut out = Vec::new();
    match kind {
        EventType::InstrumentStatusChanged => {
            let data = InstrumentStatusData {
                instrument_id: record,
                status: status.clone().unwrap_or_default(),
                previous_status: text(old, "status"),
                bridge_id: id_in(metadata, "bridgeId"),
            };
            if status.as_deref() == Some("offline") {
                out.extend(Outgoing::new(Topic::InstrumentOffline, at, &data));
            }
            out.extend(Outgoing::new(Topic::InstrumentStatusChanged, at, data));
        }
        EventType::RunRunning | EventType::RunFinished | EventType::RunStopped => {
            let topic = match (kind, status.as_deref()) {
                (EventType::RunRunning, _) => Some(Topic::RunStarted),
                (_, Some("completed")) => Some(Topic::RunCompleted),
                (_, Some("failed")) => Some(Topic::RunFailed),
                (EventType::RunStopped, Some("aborted")) => Some(Topic::RunAborted),
                _ => None,
            };
            if let Some(topic) = topic {
                let data = RunData {
                    run_id: record,
                    instrument_id: id_in(metadata, "instrumentId"),
                    status: status.unwrap_or_default(),
                    reason: event.reason.map(str::to_owned),
                };
                out.extend(Outgoing::new(topic, at, data));
            }
        }
        EventType::RunResultsRecorded => {
            let qc = &metadata["qc"];
            if qc["dataQuality"] == "poor" {
                let data = QcData {
                    run_id: record,
                    instrument_id: id_in(metadata, "instrumentId"),
                    data_quality: "poor".into(),
                    failed_checks: qc["failed"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| m.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                out.extend(Outgoing::new(Topic::QcFailed, at, data));
            }
        }
        EventType::InstrumentCommandCompleted | EventType::InstrumentCommandFailed => {
            let topic = if kind == EventType::InstrumentCommandCompleted {
                Topic::CommandCompleted
            } else {
                Topic::CommandFailed
            };
            let data = CommandData {
                command_id: record,
                instrument_id: id_in(metadata, "instrumentId"),
                status: status.unwrap_or_default(),
                result: new
                    .and_then(|v| v.get("result"))
                    .filter(|v| !v.is_null())
                    .cloned(),
                error: text(new, "error"),
            };
            out.extend(Outgoing::new(topic, at, data));
        }
        EventType::BridgeDisconnected => {
            let data = BridgeData {
                bridge_id: record,
                name: text(Some(metadata), "name"),
                hostname: text(Some(metadata), "hostname"),
                last_heartbeat_at: time_in(metadata, "lastHeartbeatAt"),
            };
            out.extend(Outgoing::new(Topic::BridgeDisconnected, at, data));
        }
        EventType::MaintenanceDue => {
            let data = MaintenanceData {
                maintenance_id: record,
                instrument_id: id_in(metadata, "instrumentId"),
                kind: text(Some(metadata), "kind"),
                title: text(Some(metadata), "title"),
                scheduled_for: time_in(metadata, "scheduledFor"),
            };
            out.extend(Outgoing::new(Topic::MaintenanceDue, at, data));
        }
        EventType::CalibrationOverdue => {
            let data = CalibrationData {
                instrument_id: record,
                name: text(Some(metadata), "name"),
                calibration_due_at: time_in(metadata, "calibrationDueAt"),
            };
            out.extend(Outgoing::new(Topic::CalibrationOverdue, at, data));
        }
        EventType::AuthAccountLocked => {
            let data = SecurityAlertData {
                kind: "account_locked".into(),
                user_id: Some(record),
                detail: event.action.to_owned(),
            };
            out.extend(Outgoing::new(Topic::SecurityAlert, at, data));
        }
        EventType::AuthRefreshReuse => {
            let data = SecurityAlertData {
                kind: "refresh_token_reuse".into(),
                user_id: event.user_id,
                detail: event.action.to_owned(),
            };
            out.extend(Outgoing::new(Topic::SecurityAlert, at, data));
        }
        _ => {}
    }
    out
}

/// `docs/EVENTS.md`'s table: every type with its version, the audit events
/// it derives from and when it is published.
pub fn catalogue_markdown() -> String {
    let mut out = String::from(
        "| event type | version | `data` schema | derives from | published when |\n|---|---|---|---|---|\n",
    );
    for topic in Topic::ALL {
        let from: Vec<String> = topic
            .derives_from()
            .iter()
            .map(|t| format!("`{}`", t.as_str()))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | [`{}`](#{}) | {} | {} |\n",
            topic.as_str(),
            topic.version(),
            topic.data_schema(),
            topic.data_schema().to_lowercase(),
            from.join(", "),
            topic.about(),
        ));
    }
    out
}

/// Each `data` schema as JSON Schema (OpenAPI 3.1's dialect), by name.
#[cfg(feature = "openapi")]
pub fn data_schemas() -> Vec<(&'static str, Value)> {
    use utoipa::PartialSchema;
    let schema = |s: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| {
        serde_json::to_value(s).unwrap_or(Value::Null)
    };
    vec![
        (
            "InstrumentStatusData",
            schema(InstrumentStatusData::schema()),
        ),
        ("RunData", schema(RunData::schema())),
        ("QcData", schema(QcData::schema())),
        ("CommandData", schema(CommandData::schema())),
        ("BridgeData", schema(BridgeData::schema())),
        ("MaintenanceData", schema(MaintenanceData::schema())),
        ("CalibrationData", schema(CalibrationData::schema())),
        ("SecurityAlertData", schema(SecurityAlertData::schema())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;
    use serde_json::json;

    fn at() -> Timestamp {
        Timestamp::parse("2026-12-03T12:00:00Z").expect("a timestamp")
    }

    fn event(kind: EventType, new: Value, metadata: Value) -> Event<'static> {
        Event {
            organization_id: Some(uuid::Uuid::nil()),
            record_id: Some(uuid::Uuid::max()),
            new_values: Some(new),
            metadata,
            ..Event::new(uuid::Uuid::nil(), kind)
        }
    }

    #[test]
    fn names_are_unique_dotted_and_derive_from_what_they_say() {
        let mut names: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Topic::ALL.len());
        for topic in Topic::ALL {
            assert!(topic.as_str().contains('.'), "{}", topic.as_str());
            assert_eq!(Topic::parse(topic.as_str()), Some(*topic));
        }
        // Every audit event type, with every status it may carry: what it
        // derives is declared as derived from it.
        for kind in EventType::ALL {
            for status in [
                "offline",
                "idle",
                "running",
                "completed",
                "failed",
                "aborted",
            ] {
                let e = event(*kind, json!({ "status": status }), json!({}));
                for out in derive(&e, at()) {
                    assert!(
                        out.topic.derives_from().contains(kind),
                        "{} from {}",
                        out.topic.as_str(),
                        kind.as_str()
                    );
                    assert_eq!(out.payload["type"], out.topic.as_str());
                }
            }
        }
    }

    #[test]
    fn a_run_ending_publishes_by_its_outcome() {
        let instrument = uuid::Uuid::from_u128(7);
        let e = event(
            EventType::RunFinished,
            json!({ "status": "failed" }),
            json!({ "instrumentId": instrument }),
        );
        let out = derive(
            &Event {
                reason: Some("The instrument reported an error"),
                ..e
            },
            at(),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].topic, Topic::RunFailed);
        assert_eq!(
            out[0].payload,
            json!({ "type": "run.failed", "timestamp": "2026-12-03T12:00:00Z", "data": {
                "runId": uuid::Uuid::max(), "instrumentId": instrument, "status": "failed",
                "reason": "The instrument reported an error" } })
        );
        // An instrument cannot abort a run; only a person can.
        let e = event(
            EventType::RunFinished,
            json!({ "status": "aborted" }),
            json!({}),
        );
        assert!(derive(&e, at()).is_empty());
    }

    #[test]
    fn results_publish_qc_failed_only_when_a_check_failed() {
        let poor = event(
            EventType::RunResultsRecorded,
            json!({ "results": {} }),
            json!({ "instrumentId": uuid::Uuid::from_u128(7),
                    "qc": { "dataQuality": "poor", "failed": ["zPrime"] } }),
        );
        let out = derive(&poor, at());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].topic, Topic::QcFailed);
        assert_eq!(out[0].payload["data"]["failedChecks"], json!(["zPrime"]));
        for quality in ["excellent", "good", "fair", "not_available"] {
            let e = event(
                EventType::RunResultsRecorded,
                json!({}),
                json!({ "qc": { "dataQuality": quality, "failed": [] } }),
            );
            assert!(derive(&e, at()).is_empty(), "{quality}");
        }
    }

    #[test]
    fn the_watchs_events_carry_what_it_saw() {
        let e = event(
            EventType::BridgeDisconnected,
            json!({}),
            json!({ "name": "Bench PC", "hostname": "lab-2", "lastHeartbeatAt": "2026-12-03T11:50:00Z" }),
        );
        let out = derive(&e, at());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].payload["data"],
            json!({ "bridgeId": uuid::Uuid::max(), "name": "Bench PC", "hostname": "lab-2",
                    "lastHeartbeatAt": "2026-12-03T11:50:00Z" })
        );
        let e = event(
            EventType::CalibrationOverdue,
            json!({}),
            json!({ "name": "Freezer B", "calibrationDueAt": "2026-12-02T00:00:00Z" }),
        );
        assert_eq!(derive(&e, at())[0].topic, Topic::CalibrationOverdue);
    }

    #[test]
    fn going_offline_is_both_a_status_change_and_offline() {
        let e = event(
            EventType::InstrumentStatusChanged,
            json!({ "status": "offline" }),
            json!({}),
        );
        let topics: Vec<Topic> = derive(&e, at()).into_iter().map(|o| o.topic).collect();
        assert_eq!(
            topics,
            [Topic::InstrumentOffline, Topic::InstrumentStatusChanged]
        );
    }

    #[test]
    fn events_of_no_organization_publish_nothing() {
        let e = Event {
            organization_id: None,
            ..event(EventType::AuthAccountLocked, json!({}), json!({}))
        };
        assert!(derive(&e, at()).is_empty());
    }
}
