//! The Salesforce.com inventory-source plugin for invhost.
//!
//! * [`config`]: the settings document (login URL, consumer key, credentials, proxy) and its
//!   validation;
//! * [`client`]: the HTTP client (rustls, proxy) and transport failures as operator messages;
//! * [`auth`]: Salesforce's OAuth device flow and the refresh-token flow;
//! * [`rest`]: REST API calls the connection test makes (versions, limits);
//! * [`import`]: the import: licenses, users, assignments and usage, streamed to the host;
//! * [`plugin`]: the [`invhost_plugin_api::Plugin`] implementation and the manifest;
//! * `demo` (feature `demo`, on by default): the simulated org behind `invhost demo`.
//!
//! Built as a `cdylib` that the host loads, and as an `rlib` so that its logic is tested
//! in-process.

// Settings doc comments become schema descriptions that forms show as plain text, so URLs in
// them stay bare rather than wrapped in rustdoc's `<...>`.
#![allow(rustdoc::bare_urls)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod import;
pub mod plugin;
pub mod rest;

pub use plugin::Salesforce;

invhost_plugin_api::export_plugin!(plugin::Salesforce);
