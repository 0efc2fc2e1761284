//! The lab agent (issue 6): a disk-backed queue so far; drivers, uplink and
//! the cloud end are to come.

pub mod queue;
