//! Conversions between the wire format and PostgreSQL's binary protocol.
//!
//! Parameters arrive as JSON (Neon's driver sends text); [`JsonParam`]
//! converts each to the type PostgreSQL inferred for its placeholder. Result
//! columns come back in binary and are rendered as the wire format's values
//! ([`column_value`]): booleans, int2/int4 and finite floats as JSON scalars,
//! json/jsonb as JSON, arrays as JSON arrays, everything else in PostgreSQL's
//! text form. A type outside this set is refused with a clear message.

use std::error::Error;
use std::net::IpAddr;
use std::str::FromStr;

use bytes::BytesMut;
use rust_decimal::Decimal;
use serde_json::Value;
use shared::db::codec::{format_pg_timestamp, parse_pg_timestamp};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// One JSON parameter, bound to whatever type its placeholder has.
#[derive(Debug)]
pub struct JsonParam<'a>(pub &'a Value);

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse<T: FromStr>(text: &str, ty: &Type) -> Result<T, BoxError> {
    text.trim()
        .parse::<T>()
        .map_err(|_| format!("invalid input syntax for type {ty}: \"{text}\"").into())
}

fn parse_bool(text: &str) -> Result<bool, BoxError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("invalid input syntax for type boolean: \"{text}\"").into()),
    }
}

fn parse_json(value: &Value) -> Result<Value, BoxError> {
    match value {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|e| format!("invalid input syntax for type json: {e}").into()),
        other => Ok(other.clone()),
    }
}

fn array_items(value: &Value) -> Result<Vec<Value>, BoxError> {
    match value {
        Value::Array(items) => Ok(items.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(format!("array parameters must be JSON arrays, got \"{s}\"").into()),
        },
        other => Err(format!("array parameters must be JSON arrays, got {other}").into()),
    }
}

fn timestamptz(text: &str) -> Result<OffsetDateTime, BoxError> {
    parse_pg_timestamp(text.trim())
        .ok_or_else(|| format!("invalid input syntax for type timestamptz: \"{text}\"").into())
}

fn bytea(text: &str) -> Result<Vec<u8>, BoxError> {
    let hex_digits = text
        .strip_prefix("\\x")
        .ok_or("bytea parameters must be hex (\\x...)")?;
    hex::decode(hex_digits).map_err(|e| format!("invalid hex in bytea parameter: {e}").into())
}

impl ToSql for JsonParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if self.0.is_null() {
            return Ok(IsNull::Yes);
        }
        if let Kind::Array(_) = ty.kind() {
            let items = array_items(self.0)?;
            let params: Vec<Option<JsonParam<'_>>> = items
                .iter()
                .map(|v| (!v.is_null()).then_some(JsonParam(v)))
                .collect();
            // Each element converts like a scalar of the element type.
            return params.as_slice().to_sql(ty, out);
        }
        let text = text_of(self.0);
        match *ty {
            Type::BOOL => parse_bool(&text)?.to_sql(ty, out),
            Type::INT2 => parse::<i16>(&text, ty)?.to_sql(ty, out),
            Type::INT4 => parse::<i32>(&text, ty)?.to_sql(ty, out),
            Type::INT8 => parse::<i64>(&text, ty)?.to_sql(ty, out),
            Type::OID => parse::<u32>(&text, ty)?.to_sql(ty, out),
            Type::FLOAT4 => parse::<f32>(&text, ty)?.to_sql(ty, out),
            Type::FLOAT8 => parse::<f64>(&text, ty)?.to_sql(ty, out),
            Type::NUMERIC => parse::<Decimal>(&text, ty)?.to_sql(ty, out),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                text.as_str().to_sql(ty, out)
            }
            Type::UUID => parse::<uuid::Uuid>(&text, ty)?.to_sql(ty, out),
            Type::JSON | Type::JSONB => parse_json(self.0)?.to_sql(ty, out),
            Type::TIMESTAMPTZ => timestamptz(&text)?.to_sql(ty, out),
            Type::TIMESTAMP => {
                let ts = timestamptz(&text)?;
                PrimitiveDateTime::new(ts.date(), ts.time()).to_sql(ty, out)
            }
            Type::DATE => Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
                .map_err(|_| format!("invalid input syntax for type date: \"{text}\""))?
                .to_sql(ty, out),
            Type::INET => parse::<IpAddr>(&text, ty)?.to_sql(ty, out),
            Type::BYTEA => bytea(&text)?.to_sql(ty, out),
            _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            _ => Err(format!(
                "parameters of type {ty} are not supported; cast the placeholder, e.g. $1::text"
            )
            .into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Raw UTF-8 of a type whose binary form is its text (text-likes, enums).
struct RawText(String);

impl<'a> FromSql<'a> for RawText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(RawText(std::str::from_utf8(raw)?.to_owned()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
        ) || matches!(ty.kind(), Kind::Enum(_))
            || ty.name() == "citext"
    }
}

/// Accepts any type and yields nothing (for `void`).
struct Ignored;

impl<'a> FromSql<'a> for Ignored {
    fn from_sql(_: &Type, _: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Ignored)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn float(f: f64, raw: bool) -> Value {
    if raw || !f.is_finite() {
        Value::String(float_text(f))
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        f.to_string()
    }
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<Option<T>, BoxError> {
    row.try_get::<_, Option<T>>(i)
        .map_err(|e| e.to_string().into())
}

/// Renders column `i` of `row` as a wire value.
pub fn column_value(row: &Row, i: usize, raw: bool) -> Result<Value, BoxError> {
    let ty = row.columns()[i].type_().clone();
    if let Kind::Array(element) = ty.kind() {
        return array_value(row, i, element, raw);
    }
    let text = |s: String| Value::String(s);
    let value = match ty {
        Type::BOOL => get::<bool>(row, i)?.map(|b| {
            if raw {
                text(if b { "t" } else { "f" }.into())
            } else {
                Value::Bool(b)
            }
        }),
        Type::INT2 => get::<i16>(row, i)?.map(|n| {
            if raw {
                text(n.to_string())
            } else {
                Value::from(n)
            }
        }),
        Type::INT4 => get::<i32>(row, i)?.map(|n| {
            if raw {
                text(n.to_string())
            } else {
                Value::from(n)
            }
        }),
        Type::INT8 => get::<i64>(row, i)?.map(|n| text(n.to_string())),
        Type::OID => get::<u32>(row, i)?.map(|n| text(n.to_string())),
        Type::FLOAT4 => get::<f32>(row, i)?.map(|f| float(f64::from(f), raw)),
        Type::FLOAT8 => get::<f64>(row, i)?.map(|f| float(f, raw)),
        Type::NUMERIC => get::<Decimal>(row, i)
            .map_err(|_| "numeric value outside the proxy's range; cast it to text")?
            .map(|d| text(d.to_string())),
        Type::UUID => get::<uuid::Uuid>(row, i)?.map(|u| text(u.to_string())),
        Type::JSON | Type::JSONB => {
            get::<Value>(row, i)?.map(|v| if raw { text(v.to_string()) } else { v })
        }
        Type::TIMESTAMPTZ => get::<OffsetDateTime>(row, i)?.map(|ts| text(format_pg_timestamp(ts))),
        Type::TIMESTAMP => get::<PrimitiveDateTime>(row, i)?.map(|ts| {
            let mut s = format_pg_timestamp(ts.assume_utc());
            s.truncate(s.len() - 3);
            text(s)
        }),
        Type::DATE => get::<Date>(row, i)?.map(|d| {
            text(format!(
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ))
        }),
        Type::INET => get::<IpAddr>(row, i)?.map(|ip| text(ip.to_string())),
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map(|b| text(format!("\\x{}", hex::encode(b)))),
        Type::VOID => get::<Ignored>(row, i)?.map(|_| text(String::new())),
        _ if RawText::accepts(&ty) => get::<RawText>(row, i)?.map(|t| text(t.0)),
        _ => {
            return Err(format!(
                "columns of type {ty} are not supported; cast the column, e.g. {}::text",
                row.columns()[i].name()
            )
            .into());
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

fn array_value(row: &Row, i: usize, element: &Type, raw: bool) -> Result<Value, BoxError> {
    fn items<'a, T: FromSql<'a>>(
        row: &'a Row,
        i: usize,
        f: impl Fn(T) -> Value,
    ) -> Result<Value, BoxError> {
        Ok(match get::<Vec<Option<T>>>(row, i)? {
            None => Value::Null,
            Some(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| v.map_or(Value::Null, &f))
                    .collect(),
            ),
        })
    }
    let value = match *element {
        Type::BOOL => items::<bool>(row, i, Value::Bool)?,
        Type::INT2 => items::<i16>(row, i, Value::from)?,
        Type::INT4 => items::<i32>(row, i, Value::from)?,
        Type::INT8 => items::<i64>(row, i, |n| Value::String(n.to_string()))?,
        Type::FLOAT8 => items::<f64>(row, i, |f| float(f, false))?,
        Type::UUID => items::<uuid::Uuid>(row, i, |u| Value::String(u.to_string()))?,
        Type::JSON | Type::JSONB => items::<Value>(row, i, |v| v)?,
        Type::TIMESTAMPTZ => {
            items::<OffsetDateTime>(row, i, |t| Value::String(format_pg_timestamp(t)))?
        }
        _ if RawText::accepts(element) => items::<RawText>(row, i, |t| Value::String(t.0))?,
        _ => {
            return Err(
                format!("arrays of {element} are not supported; cast the column to text").into(),
            );
        }
    };
    Ok(if raw && !value.is_null() {
        Value::String(value.to_string())
    } else {
        value
    })
}
