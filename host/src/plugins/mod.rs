//! Plugins from the host's side: finding and loading libraries, calling them, and checking them.
//!
//! * [`loader`]: scans plugin directories and loads every library with abi_stable's
//!   `lib_header_from_path`; refuses each bad one with a one-line reason.
//! * [`library`]: a loaded plugin and the typed calls into it.
//! * [`callbacks`]: the host services a plugin reaches during a call.
//! * [`registry`]: the loaded plugins by source type.
//! * [`check`]: the conformance check behind `invhost plugins check`.
//! * [`version`]: which plugin-api versions this host accepts.

pub mod callbacks;
pub mod check;
pub mod library;
pub mod loader;
pub mod registry;
pub mod version;

pub use callbacks::{CallHandler, NoInteraction};
pub use library::{CallError, LoadedPlugin};
pub use loader::{Refusal, RefusalKind};
pub use registry::Registry;
