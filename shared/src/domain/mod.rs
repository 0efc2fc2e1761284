//! Domain types that parse: once built, they are valid.

use crate::error::FieldError;

pub mod command;
pub mod email;
pub mod instrument;
pub mod qc;
pub mod roles;
pub mod schema;

pub use email::Email;
pub use instrument::{InstrumentStatus, InstrumentType, RunStatus};

/// At most `max` characters, none of them a control character: the rule
/// for short free text (names, units, versions).
pub fn printable_within(text: &str, max: usize) -> bool {
    text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// Checks optional free text.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if value.chars().count() > max {
        problems.push(FieldError::new(
            field,
            format!("Must be at most {max} characters"),
        ));
    }
    Some(value.to_owned())
}
