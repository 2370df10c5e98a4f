//! The invhost host: loads inventory-source plugins, validates their settings, and (in later
//! modules) stores connections, runs imports and reports.
//!
//! The host never names a concrete plugin: everything it knows about a source type comes from a
//! loaded library's manifest and schema.

pub mod cli;
pub mod config;
pub mod connections;
pub mod cyberark;
pub mod export;
pub mod logging;
pub mod memory;
pub mod names;
pub mod paths;
pub mod plugins;
pub mod reports;
pub mod runner;
pub mod schedules;
pub mod secrets;
pub mod serve;
pub mod store;

/// The host's release.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");
