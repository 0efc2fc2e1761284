//! Conversions between the wire format and PostgreSQL.
//!
//! Parameters arrive as JSON; each is bound in PostgreSQL's text format,
//! so PostgreSQL's own input functions read it (as with Neon, whose driver
//! sends text): strings as they are, numbers and booleans as their JSON
//! text, JSON arrays bound to an array type as an array literal
//! (`{"a","b",NULL}`), other arrays and objects as JSON text. A value that
//! does not read as its type is PostgreSQL's own `22P02`-style error.
//! Result columns come back in binary and are rendered by [`crate::render`].

use std::error::Error;
use std::fmt::Write as _;

use bytes::BytesMut;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::render;

type BoxError = Box<dyn Error + Sync + Send>;

/// One JSON parameter, bound as text to whatever type its placeholder has.
#[derive(Debug)]
pub struct JsonParam<'a>(pub &'a Value);

impl ToSql for JsonParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self.0, ty.kind()) {
            (Value::Null, _) => return Ok(IsNull::Yes),
            (Value::String(s), _) => out.extend_from_slice(s.as_bytes()),
            (Value::Array(items), Kind::Array(_)) => {
                let mut literal = String::new();
                array_literal(&mut literal, items);
                out.extend_from_slice(literal.as_bytes());
            }
            (other, _) => out.extend_from_slice(other.to_string().as_bytes()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A JSON array as PostgreSQL's array literal: nested arrays as nested
/// braces, strings quoted, `null` as NULL, objects as quoted JSON.
fn array_literal(out: &mut String, items: &[Value]) {
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => array_literal(out, inner),
            Value::String(s) => render::push_quoted(out, s),
            Value::Object(_) => render::push_quoted(out, &item.to_string()),
            Value::Bool(_) | Value::Number(_) => {
                let _ = write!(out, "{item}");
            }
        }
    }
    out.push('}');
}

/// A column's bytes as PostgreSQL sent them (binary), whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Renders column `i` of `row` as a wire value (see [`render::value`]).
pub fn column_value(row: &Row, i: usize, raw_output: bool) -> Result<Value, BoxError> {
    let raw = row
        .try_get::<_, Option<Raw<'_>>>(i)
        .map_err(|e| -> BoxError { e.to_string().into() })?;
    render::value(row.columns()[i].type_(), raw.map(|r| r.0), raw_output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_arrays_become_array_literals() {
        let mut out = String::new();
        let items = json!(["a", "b,c", "say \"hi\"", null, 1, true, ["x"], {"k": 1}]);
        array_literal(&mut out, items.as_array().expect("an array"));
        assert_eq!(
            out,
            r#"{"a","b,c","say \"hi\"",NULL,1,true,{"x"},"{\"k\":1}"}"#
        );
    }
}
