//! `runs`: an instrument's runs, their lifecycle (pending -> running ->
//! completed / failed / aborted, legal transitions only), results, and the
//! summaries of their data file and signatures.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::Scope;
use super::page::Cursor;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::{InstrumentStatus, RunStatus, UploadStatus};
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;

/// A run's columns (from `runs r` joined to `instruments i`, and its data
/// file `d` when there is one).
pub const COLUMNS: &str = "r.id, r.instrument_id, i.name AS instrument_name, i.type AS instrument_type, i.status AS instrument_status, \
     r.name, r.status, r.started_at, r.completed_at, r.operator_id, r.metadata, r.results, r.end_reason, \
     r.version, r.created_at, r.updated_at, \
     CASE WHEN d.run_id IS NULL THEN NULL ELSE jsonb_build_object( \
         'filename', d.filename, 'contentType', d.content_type, 'format', d.format, 'status', d.status, \
         'totalBytes', d.total_bytes, 'receivedBytes', d.received_bytes, \
         'sha256', encode(d.sha256, 'hex'), 'completedAt', d.completed_at) END AS data, \
     (SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'meaning', s.meaning, 'printedName', s.printed_name, \
         'signedAt', s.signed_at, 'runVersion', s.run_version, 'current', s.run_version = r.version) \
         ORDER BY s.signed_at, s.id), '[]'::jsonb) \
      FROM run_signatures s WHERE s.organization_id = r.organization_id AND s.run_id = r.id) AS signatures";

/// `FROM` clause matching [`COLUMNS`].
pub const FROM: &str = "runs r JOIN instruments i ON i.organization_id = r.organization_id AND i.id = r.instrument_id \
     LEFT JOIN run_data d ON d.run_id = r.id";

/// A run as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Run {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub instrument_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::InstrumentType))]
    pub instrument_type: String,
    /// The instrument's status now.
    pub instrument_status: InstrumentStatus,
    pub name: Option<String>,
    pub status: RunStatus,
    /// When the instrument acknowledged the start.
    pub started_at: Option<Timestamp>,
    /// When the run ended.
    pub completed_at: Option<Timestamp>,
    /// The user who started it.
    pub operator_id: Option<uuid::Uuid>,
    /// Free-form, as given at the start.
    pub metadata: Value,
    /// Parsed from the run's data file (`POST .../data?format=`), with the
    /// computed QC metrics under `metrics`.
    pub results: Option<Value>,
    /// The reason given when it was stopped.
    pub end_reason: Option<String>,
    /// Grows with every change (also the `ETag`).
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The run's data file, when one was uploaded (or is being uploaded).
    pub data: Option<DataSummary>,
    /// Its electronic signatures (`current`: made on this version; see
    /// `/signatures` for the full check).
    pub signatures: Vec<SignatureSummary>,
}

/// A run's data file, as a run shows it.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DataSummary {
    pub filename: String,
    pub content_type: String,
    /// The format it was parsed as (`plate_reader_csv`, `qpcr_ct_csv`), if any.
    pub format: Option<String>,
    pub status: UploadStatus,
    pub total_bytes: i64,
    /// Where an unfinished upload continues (its `Upload-Offset`).
    pub received_bytes: i64,
    /// Hex SHA-256 of the whole file, once complete.
    pub sha256: Option<String>,
    /// As PostgreSQL renders a time in JSON (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub completed_at: Option<String>,
}

/// An electronic signature, as a run shows it.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureSummary {
    pub id: uuid::Uuid,
    /// `review`, `approval`, `responsibility` or `authorship`.
    pub meaning: String,
    pub printed_name: String,
    /// As PostgreSQL renders a time in JSON (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub signed_at: String,
    pub run_version: i64,
    /// Made on the run's current version.
    pub current: bool,
}

/// Run `id`, if the organization has it.
pub async fn load<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Run>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1 AND r.organization_id = $2"),
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// Run `id`; 404 when the organization has none.
pub async fn get<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Run, ApiError> {
    load(db, scope, id).await?.ok_or(ApiError::NotFound)
}

/// What a list of runs asks for.
pub struct ListFilter {
    pub instrument_id: Option<uuid::Uuid>,
    pub status: Option<RunStatus>,
    pub operator_id: Option<uuid::Uuid>,
    pub started_from: Option<OffsetDateTime>,
    pub started_to: Option<OffsetDateTime>,
    /// Continues after this run (by start time when a start window is
    /// given, else by creation).
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl ListFilter {
    /// A start-time window lists by start time (its own index).
    pub fn by_start(&self) -> bool {
        self.started_from.is_some() || self.started_to.is_some()
    }
}

/// The organization's runs, newest first.
pub async fn list<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    filter: &ListFilter,
) -> Result<Vec<Run>, DbError> {
    let key = if filter.by_start() {
        "r.started_at"
    } else {
        "r.created_at"
    };
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM {FROM} \
                     WHERE r.organization_id = $1 \
                       AND ($2::uuid IS NULL OR r.instrument_id = $2) \
                       AND ($3::text IS NULL OR r.status = $3) \
                       AND ($4::uuid IS NULL OR r.operator_id = $4) \
                       AND ($5::timestamptz IS NULL OR r.started_at >= $5) \
                       AND ($6::timestamptz IS NULL OR r.started_at <= $6) \
                       AND ($7::timestamptz IS NULL OR ({key}, r.id) < ($7::timestamptz, $8::uuid)) \
                     ORDER BY {key} DESC, r.id DESC LIMIT $9"
                ),
                params![
                    scope.organization_id(),
                    filter.instrument_id,
                    filter.status.map(RunStatus::as_str),
                    filter.operator_id,
                    filter.started_from,
                    filter.started_to,
                    filter.after.as_ref().map(|c| c.created_at),
                    filter.after.as_ref().map(|c| c.id),
                    filter.limit,
                ],
            ),
        )
        .await
}

/// A run to start.
pub struct NewRun<'a> {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub name: Option<&'a str>,
    pub metadata: &'a Value,
    pub operator_id: uuid::Uuid,
    /// The instrument status the checks were made against; the run is only
    /// created while it still holds.
    pub observed_status: InstrumentStatus,
}

/// Creates the run `pending`, only while its instrument is in service and
/// still in the observed state; returns its `id` (no row: the state moved).
pub fn insert(scope: &Scope, new: &NewRun<'_>) -> Statement {
    statement(
        "INSERT INTO runs (id, organization_id, instrument_id, status, name, metadata, operator_id, created_by) \
         SELECT $1, $2, $3, 'pending', $4, $5::jsonb, $6, $6 FROM instruments \
          WHERE id = $3 AND organization_id = $2 AND status = $7 AND deleted_at IS NULL RETURNING id",
        params![
            new.id,
            scope.organization_id(),
            new.instrument_id,
            new.name,
            new.metadata,
            new.operator_id,
            new.observed_status.as_str(),
        ],
    )
}

/// The violated constraint when an instrument already has an active run.
pub const ONE_ACTIVE_RUN: &str = "runs_one_active_idx";

/// Ends run `id` as `outcome` (with `reason`) if it is still in one of the
/// states `from`; returns `id, instrument_id` (no row: someone else moved it).
pub fn end(
    scope: &Scope,
    id: uuid::Uuid,
    outcome: RunStatus,
    reason: Option<&str>,
    from: &[RunStatus],
) -> Statement {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    statement(
        "UPDATE runs SET status = $3, end_reason = $4, completed_at = now(), version = version + 1, updated_at = now() \
         WHERE id = $1 AND organization_id = $2 AND status = ANY($5::text[]) RETURNING id, instrument_id",
        params![id, scope.organization_id(), outcome.as_str(), reason, from,],
    )
}

/// A command and its instrument; for a run's start command, its run.
#[derive(Debug, Deserialize)]
pub struct Started {
    pub command_id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    /// The run it starts (start commands of runs only).
    pub run_id: Option<uuid::Uuid>,
}

/// Commands `ids` with their instruments, and of the runs' start commands
/// their runs.
pub async fn started_by<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    ids: &[uuid::Uuid],
) -> Result<Vec<Started>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT id AS command_id, instrument_id, CASE WHEN command = 'start' THEN run_id END AS run_id \
                   FROM instrument_commands \
                  WHERE organization_id = $1 \
                    AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
                params![
                    scope.organization_id(),
                    Value::from(ids.iter().map(ToString::to_string).collect::<Vec<_>>())
                ],
            ),
        )
        .await
}

/// Run `run_id` goes `running` (started at `at`, when the instrument's
/// driver saw the start) if it is still `pending` and its start command
/// `command_id` is acknowledged or completed (earlier in the transaction);
/// returns `id`.
pub fn start_taken(
    scope: &Scope,
    run_id: uuid::Uuid,
    command_id: uuid::Uuid,
    at: OffsetDateTime,
) -> Statement {
    statement(
        "UPDATE runs SET status = 'running', started_at = $4, version = version + 1, updated_at = now() \
          WHERE organization_id = $1 AND id = $2 AND status = 'pending' \
            AND EXISTS (SELECT 1 FROM instrument_commands c WHERE c.organization_id = $1 AND c.id = $3 \
                        AND c.run_id = $2 AND c.command = 'start' AND c.status IN ('acknowledged', 'completed')) \
         RETURNING id",
        params![scope.organization_id(), run_id, command_id, at],
    )
}

/// Run `run_id` fails (ended at `at`, with `reason`) if it is still
/// `pending`, or `running` on the bridge's acknowledgement alone, and its
/// start command `command_id` failed on the instrument (earlier in the
/// transaction); returns `id`.
pub fn start_refused(
    scope: &Scope,
    run_id: uuid::Uuid,
    command_id: uuid::Uuid,
    at: OffsetDateTime,
    reason: &str,
) -> Statement {
    statement(
        "UPDATE runs SET status = 'failed', completed_at = $4, end_reason = $5, version = version + 1, updated_at = now() \
          WHERE organization_id = $1 AND id = $2 AND status IN ('pending', 'running') \
            AND EXISTS (SELECT 1 FROM instrument_commands c WHERE c.organization_id = $1 AND c.id = $3 \
                        AND c.run_id = $2 AND c.command = 'start' AND c.status = 'failed') \
         RETURNING id",
        params![scope.organization_id(), run_id, command_id, at, reason],
    )
}

/// Run `run_id` of instrument `instrument_id` ends as `outcome` (with
/// `reason`) if it is still `running` and bridge `bridge_id`, which reported
/// the instrument no longer running, serves it; returns `id`.
pub fn end_reported(
    scope: &Scope,
    run_id: uuid::Uuid,
    instrument_id: uuid::Uuid,
    bridge_id: uuid::Uuid,
    outcome: RunStatus,
    reason: &str,
) -> Statement {
    statement(
        "UPDATE runs SET status = $5, end_reason = $6, completed_at = now(), version = version + 1, updated_at = now() \
          WHERE organization_id = $1 AND id = $2 AND instrument_id = $3 AND status = 'running' \
            AND EXISTS (SELECT 1 FROM instruments i WHERE i.organization_id = $1 AND i.id = $3 AND i.bridge_id = $4) \
         RETURNING id",
        params![
            scope.organization_id(),
            run_id,
            instrument_id,
            bridge_id,
            outcome.as_str(),
            reason
        ],
    )
}

/// What a run's QC report is computed from.
#[derive(Debug, Deserialize)]
pub struct QcSource {
    pub instrument_type: String,
    pub configuration: Value,
    pub results: Option<Value>,
}

/// Run `id`'s results and its instrument's type and configuration.
pub async fn qc_source<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<QcSource>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT i.type AS instrument_type, i.configuration, r.results \
                 FROM runs r JOIN instruments i ON i.organization_id = r.organization_id AND i.id = r.instrument_id \
                 WHERE r.id = $1 AND r.organization_id = $2",
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// Records run `id`'s parsed `results`, only once its data file is
/// complete with SHA-256 `sha256` (in the transaction that completes it);
/// returns `id`.
pub fn record_results(
    scope: &Scope,
    id: uuid::Uuid,
    results: &Value,
    sha256: Option<&str>,
) -> Statement {
    statement(
        "UPDATE runs SET results = $3::jsonb, version = version + 1, updated_at = now() \
         WHERE id = $1 AND organization_id = $2 \
           AND EXISTS (SELECT 1 FROM run_data WHERE run_id = $1 AND status = 'complete' AND sha256 = decode($4, 'hex')) \
         RETURNING id",
        params![id, scope.organization_id(), results, sha256],
    )
}
