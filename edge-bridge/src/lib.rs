//! The lab agent (issue 6): enrollment and the disk-backed queue so far;
//! drivers, uplink and the cloud end are to come.

pub mod enroll;
pub mod queue;
