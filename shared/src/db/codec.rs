//! Typed decoding of wire rows: values are normalised by column type
//! (`dataTypeID`) so that rows deserialize straight into structs.
//!
//! - int2/int4/int8/oid text becomes a JSON number,
//! - float4/float8 text becomes a JSON number when finite,
//! - bool text (`t`/`f`) becomes a JSON bool,
//! - json/jsonb text becomes the JSON value,
//! - timestamptz/timestamp text (`2025-01-18 10:00:00.5+00`) becomes RFC 3339
//!   (`2025-01-18T10:00:00.5Z`), so a [`Timestamp`](crate::domain::Timestamp) reads it.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::wire::QueryResult;

/// Type OIDs the codec knows.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const VARCHAR: u32 = 1043;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// A row that did not fit the requested type.
#[derive(Debug, thiserror::Error)]
#[error("row {row} does not decode: {message}")]
pub struct DecodeError {
    pub row: usize,
    pub message: String,
}

impl QueryResult {
    /// Decodes every row into `T` (columns by name).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Vec<T>, DecodeError> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let object = self.row_object(row);
                serde_json::from_value(Value::Object(object)).map_err(|e| DecodeError {
                    row: i,
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// One row as a `{column: normalised value}` map.
    pub fn row_object(&self, row: &Value) -> Map<String, Value> {
        let mut object = Map::with_capacity(self.fields.len());
        for (i, field) in self.fields.iter().enumerate() {
            let raw = match row {
                Value::Array(values) => values.get(i).cloned(),
                Value::Object(map) => map.get(&field.name).cloned(),
                _ => None,
            };
            object.insert(
                field.name.clone(),
                normalize(raw.unwrap_or(Value::Null), field.data_type_id),
            );
        }
        object
    }
}

/// Normalises one wire value of type `oid` (see the module docs).
pub fn normalize(value: Value, type_oid: u32) -> Value {
    let Value::String(text) = value else {
        return value;
    };
    match type_oid {
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text)),
        oid::FLOAT4 | oid::FLOAT8 => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Value::from(f),
            _ => Value::String(text),
        },
        oid::BOOL => match text.as_str() {
            "t" | "true" => Value::Bool(true),
            "f" | "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        oid::JSON | oid::JSONB => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        oid::TIMESTAMPTZ | oid::TIMESTAMP => match parse_pg_timestamp(&text) {
            Some(ts) => ts
                .format(&Rfc3339)
                .map(Value::String)
                .unwrap_or(Value::String(text)),
            None => Value::String(text),
        },
        _ => Value::String(text),
    }
}

/// Parses PostgreSQL's text form of `timestamptz` / `timestamp` (ISO
/// DateStyle), or RFC 3339. A timestamp without offset is taken as UTC.
pub fn parse_pg_timestamp(text: &str) -> Option<OffsetDateTime> {
    if let Ok(ts) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(ts.to_offset(UtcOffset::UTC));
    }
    let with_offset = format_description!(
        version = 2,
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]][offset_hour sign:mandatory][optional [:[offset_minute]]]"
    );
    if let Ok(ts) = OffsetDateTime::parse(text, &with_offset) {
        return Some(ts.to_offset(UtcOffset::UTC));
    }
    let without_offset = format_description!(
        version = 2,
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, &without_offset)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// PostgreSQL's text form of a UTC timestamp (ISO `DateStyle`), the form
/// [`parse_pg_timestamp`] reads.
pub fn format_pg_timestamp(ts: OffsetDateTime) -> String {
    let ts = ts.to_offset(UtcOffset::UTC);
    let (year, month, day) = (ts.year(), u8::from(ts.month()), ts.day());
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        ts.hour(),
        ts.minute(),
        ts.second()
    );
    let micros = ts.microsecond();
    if micros != 0 {
        let frac = format!("{micros:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str("+00");
    out
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::db::wire::Field;

    fn field(name: &str, oid: u32) -> Field {
        serde_json::from_value(json!({ "name": name, "dataTypeID": oid })).expect("field")
    }

    #[test]
    fn values_are_normalised_by_column_type() {
        assert_eq!(normalize(json!("42"), oid::INT8), json!(42));
        assert_eq!(normalize(json!("-7"), oid::INT2), json!(-7));
        assert_eq!(normalize(json!("1.5"), oid::FLOAT8), json!(1.5));
        // Not finite, not a JSON number: left as text.
        assert_eq!(normalize(json!("NaN"), oid::FLOAT8), json!("NaN"));
        assert_eq!(normalize(json!("t"), oid::BOOL), json!(true));
        assert_eq!(normalize(json!("f"), oid::BOOL), json!(false));
        assert_eq!(
            normalize(json!("{\"a\":[1]}"), oid::JSONB),
            json!({"a": [1]})
        );
        assert_eq!(
            normalize(json!("2025-01-18 10:00:00.5+00"), oid::TIMESTAMPTZ),
            json!("2025-01-18T10:00:00.5Z")
        );
        assert_eq!(
            normalize(json!("2025-01-18 12:00:00+02"), oid::TIMESTAMPTZ),
            json!("2025-01-18T10:00:00Z")
        );
        // Text, uuids, numerics and already-typed values pass through.
        assert_eq!(normalize(json!("12.30"), oid::NUMERIC), json!("12.30"));
        assert_eq!(normalize(json!("abc"), oid::TEXT), json!("abc"));
        assert_eq!(normalize(json!(3), oid::INT4), json!(3));
        assert_eq!(normalize(Value::Null, oid::INT4), Value::Null);
        // A value that does not parse as its type stays as it came.
        assert_eq!(normalize(json!("x"), oid::INT4), json!("x"));
    }

    #[test]
    fn timestamps_parse_in_every_form_postgres_writes() {
        for text in [
            "2025-01-18 10:00:00+00",
            "2025-01-18 10:00:00.000001+00",
            "2025-01-18 11:00:00+01:00",
            "2025-01-18 10:00:00",
            "2025-01-18T10:00:00Z",
        ] {
            let ts = parse_pg_timestamp(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(ts.unix_timestamp(), 1_737_194_400, "{text}");
        }
        assert!(parse_pg_timestamp("yesterday").is_none());
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Row {
        id: i64,
        name: String,
        active: bool,
    }

    #[test]
    fn rows_decode_by_column_name_as_objects_or_arrays() {
        let fields = vec![
            field("id", oid::INT8),
            field("name", oid::TEXT),
            field("active", oid::BOOL),
        ];
        let as_objects = QueryResult {
            command: "SELECT".into(),
            row_count: Some(1),
            rows: vec![json!({"id": "1", "name": "a", "active": "t"})],
            fields: fields.clone(),
            row_as_array: false,
        };
        let as_arrays = QueryResult {
            rows: vec![json!(["1", "a", "t"])],
            row_as_array: true,
            ..as_objects.clone()
        };
        let expected = vec![Row {
            id: 1,
            name: "a".into(),
            active: true,
        }];
        assert_eq!(as_objects.decode::<Row>().expect("objects"), expected);
        assert_eq!(as_arrays.decode::<Row>().expect("arrays"), expected);
        let wrong = QueryResult {
            rows: vec![json!({"id": "x", "name": "a", "active": "t"})],
            ..as_objects
        };
        let err = wrong.decode::<Row>().expect_err("not a number");
        assert_eq!(err.row, 0);
    }
}
