//! The lab agent (issue 6): enrollment, configuration, the disk-backed
//! queue, the instrument drivers and the agent loop that relays readings
//! and commands.

pub mod agent;
pub mod config;
pub mod driver;
pub mod enroll;
pub mod filedrop;
pub mod queue;
pub mod simulator;
pub mod tls;
mod websocket;
