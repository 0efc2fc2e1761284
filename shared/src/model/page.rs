//! Keyset pagination: an opaque cursor naming the last item of a page, by
//! `(created_at, id)` ([`Cursor`], the default order of lists) or by a text
//! column and `id` ([`TextCursor`], lists sorted by name); [`Page`] is what a
//! list answers.

use base64::Engine as _;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::FieldError;

/// One page of a list and the cursor of the next, if any.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A whole list in one answer (short lists that need no cursor).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Items<T> {
    pub items: Vec<T>,
}

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 100;

/// Position after the last item of a page: `(created_at, id)`.
pub struct Cursor {
    pub created_at: OffsetDateTime,
    pub id: uuid::Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let text = format!(
            "{}|{}",
            self.created_at.format(&Rfc3339).unwrap_or_default(),
            self.id
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    pub fn decode(raw: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ts, id) = text.split_once('|')?;
        Some(Cursor {
            created_at: OffsetDateTime::parse(ts, &Rfc3339).ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// Position after the last item of a page sorted by a text column:
/// `(key, id)`. Encoded apart from [`Cursor`] so that a cursor of one order
/// is refused by another.
pub struct TextCursor {
    pub key: String,
    pub id: uuid::Uuid,
}

impl TextCursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("t|{}|{}", self.id, self.key))
    }

    pub fn decode(raw: &str) -> Option<TextCursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, key) = text.strip_prefix("t|")?.split_once('|')?;
        Some(TextCursor {
            key: key.to_owned(),
            id: id.parse().ok()?,
        })
    }
}

/// A cursor's text form.
pub trait Position {
    fn encode(&self) -> String;
}

impl Position for Cursor {
    fn encode(&self) -> String {
        Cursor::encode(self)
    }
}

impl Position for TextCursor {
    fn encode(&self) -> String {
        TextCursor::encode(self)
    }
}

/// Parses `limit` (default [`DEFAULT_LIMIT`], 1..=[`MAX_LIMIT`]).
pub fn limit(raw: Option<&str>, problems: &mut Vec<FieldError>) -> i64 {
    match raw.map(str::parse::<i64>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            problems.push(FieldError::new(
                "limit",
                format!("Must be an integer from 1 to {MAX_LIMIT}"),
            ));
            DEFAULT_LIMIT
        }
    }
}

/// Parses `cursor`.
pub fn cursor(raw: Option<&str>, problems: &mut Vec<FieldError>) -> Option<Cursor> {
    raw.and_then(|raw| {
        Cursor::decode(raw).or_else(|| {
            problems.push(FieldError::new("cursor", "Invalid cursor"));
            None
        })
    })
}

/// Trims a page fetched with `limit + 1` rows and returns the cursor of the
/// next page, if there is one.
pub fn finish<T, C: Position>(
    items: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> C,
) -> Option<String> {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|last| key(last).encode())
    } else {
        None
    }
}
