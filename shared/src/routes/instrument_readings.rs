//! `GET /api/v1/instruments/:id/readings?from=&to=&bucket=&metric=`
//! (`instruments:view`): the instrument's readings in a time range,
//! downsampled per metric into buckets of `bucket` seconds (aligned to the
//! Unix epoch) with min, average, max and count, for charts. Defaults: the
//! last hour in one-minute buckets. At most 31 days and 1,440 buckets per
//! metric; `metric` narrows to one signal. Served by the
//! `readings_range_idx` time-range index.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::live::valid_metric;
use crate::model::{instrument, reading};
use crate::platform::Platform;
use crate::request::Rq;
use crate::request::time_field;

super::methods! {
    GET => series,
}

pub const MAX_RANGE_DAYS: i64 = 31;
pub const MAX_BUCKETS: i64 = 1440;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct Query {
    /// The range's start (RFC 3339, included); default an hour before `to`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    from: Option<String>,
    /// The range's end (RFC 3339, excluded); default now. At most 31 days
    /// after `from`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    to: Option<String>,
    /// The bucket width: whole seconds (`60`) or with a unit (`30s`, `5m`,
    /// `1h`, `1d`); default 60 seconds. At most 1440 buckets per metric.
    bucket: Option<String>,
    /// Only this metric: a letter, then letters, digits, `_` or `.` (64
    /// characters at most).
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9_.]*$")
    )]
    metric: Option<String>,
}

/// The readings of a range, per metric.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReadingSeries))]
#[serde(rename_all = "camelCase")]
struct Series {
    instrument_id: uuid::Uuid,
    from: Timestamp,
    to: Timestamp,
    /// The width of each bucket.
    bucket_seconds: i64,
    /// One entry per metric that has readings in the range, by metric name.
    series: Vec<Metric>,
}

/// One metric's buckets.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReadingMetric))]
struct Metric {
    metric: String,
    unit: Option<String>,
    /// Its buckets that hold readings, oldest first (empty buckets are
    /// left out).
    points: Vec<Point>,
}

/// One bucket: when it starts (`t`) and what fell in it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReadingPoint))]
struct Point {
    /// The bucket's start, aligned to the Unix epoch.
    t: Timestamp,
    min: f64,
    avg: f64,
    max: f64,
    /// How many readings fell in it.
    count: i64,
}

/// A bucket width: whole seconds (`60`) or with a unit (`30s`, `5m`, `1h`,
/// `1d`).
fn bucket_seconds(raw: &str) -> Option<i64> {
    let (number, unit) = match raw.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let n: i64 = number.parse().ok().filter(|n| *n > 0)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// An instrument's readings over time
///
/// Requires `instruments:view`. The readings of `[from, to)` (default: the
/// last hour), per metric (or only `metric`), downsampled into buckets of
/// `bucket` (default one minute, aligned to the Unix epoch) with min,
/// average, max and count, for charts. At most 31 days and 1440 buckets per
/// metric (400 otherwise: widen the bucket or narrow the range).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instruments/{id}/readings",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id"), Query),
    responses((status = 200, description = "The series, one per metric", body = Series))))]
async fn series<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument_id = rq.uuid_param("id")?;
    let query: Query = rq.query()?;
    let mut problems = Vec::new();
    let to = time_field("to", query.to.as_deref(), &mut problems).unwrap_or_else(|| ctx.now());
    let from =
        time_field("from", query.from.as_deref(), &mut problems).unwrap_or(to - Duration::hours(1));
    let bucket = match query.bucket.as_deref() {
        None => Some(60),
        Some(raw) => bucket_seconds(raw).or_else(|| {
            problems.push(FieldError::new(
                "bucket",
                "Must be a positive number of seconds, or with a unit: 30s, 5m, 1h, 1d",
            ));
            None
        }),
    };
    if let Some(metric) = query.metric.as_deref()
        && !valid_metric(metric)
    {
        problems.push(FieldError::new("metric", "Not a metric name"));
    }
    if from >= to {
        problems.push(FieldError::new("from", "Must be before `to`"));
    } else if to - from > Duration::days(MAX_RANGE_DAYS) {
        problems.push(FieldError::new(
            "to",
            format!("The range is at most {MAX_RANGE_DAYS} days"),
        ));
    } else if let Some(bucket) = bucket
        && (to - from).whole_seconds() / bucket > MAX_BUCKETS
    {
        problems.push(FieldError::new(
            "bucket",
            format!(
                "At most {MAX_BUCKETS} buckets per metric: widen the bucket or narrow the range"
            ),
        ));
    }
    let Some(bucket) = bucket.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let scope = principal.scope();
    let db = ctx.db();
    instrument::get(&db, &scope, instrument_id).await?;
    let buckets = reading::buckets(
        &db,
        &scope,
        instrument_id,
        from,
        to,
        bucket,
        query.metric.as_deref(),
    )
    .await?;
    let mut series: Vec<Metric> = Vec::new();
    for bucket in buckets {
        let point = Point {
            t: bucket.bucket,
            min: bucket.min,
            avg: bucket.avg,
            max: bucket.max,
            count: bucket.count,
        };
        match series.last_mut() {
            Some(last) if last.metric == bucket.metric => last.points.push(point),
            _ => series.push(Metric {
                metric: bucket.metric,
                unit: bucket.unit,
                points: vec![point],
            }),
        }
    }
    Reply::ok(Series {
        instrument_id,
        from: from.into(),
        to: to.into(),
        bucket_seconds: bucket,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::bucket_seconds;

    #[test]
    fn bucket_widths() {
        assert_eq!(bucket_seconds("60"), Some(60));
        assert_eq!(bucket_seconds("30s"), Some(30));
        assert_eq!(bucket_seconds("5m"), Some(300));
        assert_eq!(bucket_seconds("1h"), Some(3600));
        assert_eq!(bucket_seconds("2d"), Some(172_800));
        for bad in ["", "0", "-5", "5x", "m", "1.5m", "99999999999999999999"] {
            assert_eq!(bucket_seconds(bad), None, "{bad}");
        }
    }
}
