//! `GET /api/v1/instruments/:id/readings?from=&to=&bucket=&metric=`
//! (`instruments:view`): the instrument's readings in a time range,
//! downsampled per metric into buckets of `bucket` seconds (aligned to the
//! Unix epoch) with min, average, max and count, for charts. Defaults: the
//! last hour in one-minute buckets. At most 31 days and 1,440 buckets per
//! metric; `metric` narrows to one signal. Served by the
//! `readings_range_idx` time-range index.

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::live::valid_metric;
use crate::model::instrument;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;
use crate::request::time_field;

super::methods! {
    GET => series,
}

pub const MAX_RANGE_DAYS: i64 = 31;
pub const MAX_BUCKETS: i64 = 1440;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    metric: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
struct Point {
    metric: String,
    unit: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    bucket: OffsetDateTime,
    min: f64,
    avg: f64,
    max: f64,
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
    instrument::get(&ctx.db(), &principal.scope(), instrument_id).await?;
    let points: Vec<Point> = ctx
        .db()
        .fetch_all(
            "SELECT metric, max(unit) AS unit, \
                    date_bin(make_interval(secs => $5), recorded_at, TIMESTAMPTZ 'epoch') AS bucket, \
                    min(value) AS min, avg(value) AS avg, max(value) AS max, count(*) AS count \
               FROM readings \
              WHERE organization_id = $1 AND instrument_id = $2 AND recorded_at >= $3 AND recorded_at < $4 \
                AND ($6::text IS NULL OR metric = $6) \
              GROUP BY metric, bucket ORDER BY metric, bucket",
            params![
                principal.organization_id,
                instrument_id,
                from,
                to,
                bucket,
                query.metric
            ],
        )
        .await?;
    let mut series: Vec<serde_json::Value> = Vec::new();
    for point in points {
        let entry = json!({
            "t": point.bucket.format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?,
            "min": point.min, "avg": point.avg, "max": point.max, "count": point.count,
        });
        match series.last_mut() {
            Some(last) if last["metric"] == point.metric.as_str() => {
                if let Some(points) = last["points"].as_array_mut() {
                    points.push(entry);
                }
            }
            _ => series
                .push(json!({ "metric": point.metric, "unit": point.unit, "points": [entry] })),
        }
    }
    Reply::ok(json!({
        "instrumentId": instrument_id,
        "from": from.format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?,
        "to": to.format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?,
        "bucketSeconds": bucket,
        "series": series,
    }))
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
