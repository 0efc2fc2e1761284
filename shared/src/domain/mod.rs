//! Domain types that parse: once built, they are valid.

pub mod command;
pub mod email;
pub mod instrument;
pub mod qc;
pub mod schema;

pub use email::Email;
pub use instrument::{InstrumentStatus, InstrumentType, RunStatus};
