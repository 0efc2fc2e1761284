//! Domain types that parse: once built, they are valid.

use crate::error::FieldError;

/// An enum of the stored `snake_case` names (`as_str`, `parse`, `ALL`,
/// `expected`, serde by name).
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(value: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value)
            }

            /// The accepted values, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

pub mod audit;
pub mod command;
pub mod email;
pub mod instrument;
pub mod qc;
pub mod roles;
pub mod schema;
pub mod status;
pub mod timestamp;

pub use email::Email;
pub use instrument::{InstrumentStatus, InstrumentType, RunStatus};
pub use status::{CommandStatus, MaintenanceKind, MaintenanceStatus, UploadStatus};
pub use timestamp::Timestamp;

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
