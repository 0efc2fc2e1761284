//! A point in time as the API, the live protocol and the database rows spell
//! it: RFC 3339 (`2026-12-01T09:30:00.25Z`). Every timestamp field of a reply,
//! a request or a row is a [`Timestamp`], so none repeats how it is written.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant, written and read as RFC 3339. It dereferences to the
/// [`OffsetDateTime`] it holds, for arithmetic and formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// The instant itself.
    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    /// Reads RFC 3339; `None` for anything else.
    pub fn parse(text: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(Timestamp)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(at: OffsetDateTime) -> Timestamp {
        Timestamp(at)
    }
}

impl From<Timestamp> for OffsetDateTime {
    fn from(at: Timestamp) -> OffsetDateTime {
        at.0
    }
}

impl Deref for Timestamp {
    type Target = OffsetDateTime;

    fn deref(&self) -> &OffsetDateTime {
        &self.0
    }
}

impl PartialEq<OffsetDateTime> for Timestamp {
    fn eq(&self, other: &OffsetDateTime) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<OffsetDateTime> for Timestamp {
    fn partial_cmp(&self, other: &OffsetDateTime) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "An instant in RFC 3339, e.g. `2026-12-01T09:30:00.25Z`.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        at: Timestamp,
        until: Option<Timestamp>,
    }

    #[test]
    fn written_and_read_as_rfc3339() {
        let row = Row {
            at: datetime!(2026-12-01 09:30:00.25 UTC).into(),
            until: None,
        };
        let text = serde_json::to_string(&row).expect("serializes");
        assert_eq!(text, r#"{"at":"2026-12-01T09:30:00.25Z","until":null}"#);
        assert_eq!(serde_json::from_str::<Row>(&text).expect("reads back"), row);
    }

    #[test]
    fn an_absent_optional_timestamp_is_none() {
        let row: Row =
            serde_json::from_str(r#"{"at":"2026-12-01T10:30:00+01:00"}"#).expect("reads");
        assert_eq!(row.at, datetime!(2026-12-01 09:30 UTC));
        assert_eq!(row.until, None);
    }

    #[test]
    fn anything_but_rfc3339_is_refused() {
        for bad in [
            r#"{"at":"2026-12-01"}"#,
            r#"{"at":1764581400}"#,
            r#"{"at":"yesterday"}"#,
        ] {
            assert!(
                serde_json::from_str::<Row>(bad).is_err(),
                "{bad} must be refused"
            );
        }
        assert_eq!(Timestamp::parse("2026-12-01 09:30"), None);
        assert_eq!(
            Timestamp::parse("2026-12-01T09:30:00Z")
                .map(|t| t.to_string())
                .as_deref(),
            Some("2026-12-01T09:30:00Z")
        );
    }
}
