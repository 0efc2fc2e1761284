//! `readings`: what instruments measured, as their bridges reported it
//! (stored by `live::persist`), kept per metric with its unit.

use crate::domain::Timestamp;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Scope;
use super::bridge::{CONTINUES, Position};
use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// One metric's readings in one bucket.
#[derive(Debug, Deserialize)]
pub struct Bucket {
    pub metric: String,
    pub unit: Option<String>,
    /// The bucket's start (aligned to the Unix epoch).
    pub bucket: Timestamp,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub count: i64,
}

/// Instrument `instrument_id`'s readings in `[from, to)`, per metric (or
/// only `metric`) in buckets of `bucket_secs`, by metric then time.
pub async fn buckets<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    instrument_id: uuid::Uuid,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket_secs: i64,
    metric: Option<&str>,
) -> Result<Vec<Bucket>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT metric, max(unit) AS unit, \
                        date_bin(make_interval(secs => $5), recorded_at, TIMESTAMPTZ 'epoch') AS bucket, \
                        min(value) AS min, avg(value) AS avg, max(value) AS max, count(*) AS count \
                   FROM readings \
                  WHERE organization_id = $1 AND instrument_id = $2 AND recorded_at >= $3 AND recorded_at < $4 \
                    AND ($6::text IS NULL OR metric = $6) \
                  GROUP BY metric, bucket ORDER BY metric, bucket",
                params![scope.organization_id(), instrument_id, from, to, bucket_secs, metric],
            ),
        )
        .await
}

/// Stores `readings` (a JSON array of `{seq, instrument_id, metric, value,
/// unit, recorded_at}`) of the batch at `at`: only those past the stream's
/// acknowledged sequence, only if the batch continues the stream, only for
/// the organization's instruments in service that the batch's bridge
/// serves. Returns each stored `sequence`.
pub fn insert_continuing(scope: &Scope, at: &Position, readings: serde_json::Value) -> Statement {
    statement(
        format!(
            "INSERT INTO readings (organization_id, instrument_id, metric, value, unit, recorded_at, \
                                   bridge_id, stream_id, sequence) \
             SELECT $4, r.instrument_id, r.metric, r.value, r.unit, r.recorded_at, $1, $2, r.seq \
               FROM jsonb_to_recordset($5::jsonb) AS r(seq bigint, instrument_id uuid, metric text, \
                                                     value float8, unit text, recorded_at timestamptz) \
               JOIN instruments i ON i.organization_id = $4 AND i.id = r.instrument_id AND i.deleted_at IS NULL \
                                 AND i.bridge_id = $1 \
               JOIN bridge_streams s ON s.bridge_id = $1 AND s.stream_id = $2 \
              WHERE r.seq > s.acked_sequence AND {CONTINUES} \
             RETURNING sequence"
        ),
        params![
            at.bridge_id,
            at.stream,
            at.first,
            scope.organization_id(),
            readings
        ],
    )
}
