//! CyberArk credential retrieval through the Central Credential Provider (CCP).
//!
//! The host owns one CCP client (one `[cyberark]` table in the host config, one
//! application ID, one client certificate) and offers lookups to plugins as a host
//! service. A lookup is a query (`Safe=Salesforce;Folder=Root;Object=acme-prod`) and the
//! names of the account properties wanted; an empty name means the password (`Content`).
//!
//! - [`config`]: the `[cyberark]` table ([`CyberArkConfig`], [`parse_section`], [`load`]).
//! - [`client`]: [`CcpClient`], async, one `GET {url}{path}?AppID=..&Safe=..` per lookup.
//! - [`blocking`]: [`BlockingCcpClient`], the same for synchronous callers (the plugin
//!   vault callback).
//! - [`account`]: [`VaultAccount`], the properties of one account as [`Secret`]s.
//! - [`error`]: [`CyberArkError`], one variant per provider or connection condition, each
//!   message saying what to do next; converts to a `VAULT` plugin error.
//!
//! Values never reach a log or an error message: they live in [`Secret`]s, logs at
//! `debug` carry the query, status, error code and property names only, and errors never
//! quote a response body.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use invhost::cyberark::{CcpClient, load};
//!
//! let config = load(std::path::Path::new("/var/lib/invhost/invhost.toml"))?
//!     .ok_or("no [cyberark] table")?;
//! let client = CcpClient::new(&config)?;
//! let values = client
//!     .lookup("Safe=Salesforce;Object=acme-prod", &["ConsumerSecret".into(), "".into()])
//!     .await?;
//! assert_eq!(values.len(), 2);
//! # Ok(()) }
//! ```
//!
//! [`Secret`]: invhost_plugin_api::Secret

pub mod account;
pub mod blocking;
pub mod client;
pub mod config;
pub mod error;

pub use self::account::{CONTENT, VaultAccount};
pub use self::blocking::BlockingCcpClient;
pub use self::client::CcpClient;
pub use self::config::{
    ConfigError, ConfigProblem, CyberArkConfig, DEFAULT_PATH, DEFAULT_TIMEOUT_SECS, load,
    parse_section,
};
pub use self::error::CyberArkError;
