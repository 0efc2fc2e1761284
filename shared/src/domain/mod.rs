//! Domain types that parse: once built, they are valid.

pub mod email;
pub mod instrument;

pub use email::Email;
pub use instrument::{InstrumentStatus, InstrumentType};
