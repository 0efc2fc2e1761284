//! The lab agent (issue 6): enrollment, the disk-backed queue and the
//! simulated instruments so far; the agent loop, other drivers, uplink and
//! the cloud end are to come.

pub mod enroll;
pub mod queue;
pub mod simulator;
