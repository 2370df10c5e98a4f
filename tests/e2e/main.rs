//! End-to-end tests: the real `invhost` binary loading the real plugin libraries built by
//! `cargo xtask test`. One binary made of modules, one module per command family.

mod support;

mod check;
mod compat;
mod connections;
mod cyberark;
mod demo;
mod export;
mod plugins;
mod reports;
mod runs;
mod salesforce_import;
mod schedules;
mod schema;
mod serve;
mod settings;
