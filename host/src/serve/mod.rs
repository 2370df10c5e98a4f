//! `invhost serve`: the scheduler and the read-only HTTP API, in one long-running process.
//!
//! * [`lock`]: one `serve` per data directory (`serve.lock`).
//! * [`scheduler`]: every second, reads the schedules and connections from the database and
//!   starts the due imports through the same [`Runner`] as `invhost run`, on threads of their
//!   own; retries transient failures within the slot; catches up a missed run once.
//! * [`http`]: `GET /api/v1/...` (health, version, plugins, connections redacted, runs,
//!   schedules), JSON only.
//!
//! Shutdown (SIGTERM, or SIGINT / Ctrl-C): no new imports start, running ones are cancelled
//! through their cancellation flag (they end `cancelled`, the previous snapshot stays current),
//! and the process exits once they ended, or after [`STOP_GRACE`] at most (a run still going
//! then is marked interrupted by the next start). A second signal exits at once.
//!
//! Plugin calls block, so imports never run on the async runtime's threads: each attempt gets
//! a thread of its own; the runtime only waits for it.

pub mod http;
pub mod lock;
pub mod scheduler;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use invhost_plugin_api::sdk::CANCEL_GRACE;
use tokio::sync::watch;

use crate::{
    connections::session::Vault,
    plugins::Registry,
    runner::{RunError, RunSettings, Runner},
    store::{Store, StoreError},
};
use lock::{ServeLock, ServeLockError};

/// How long shutdown waits for cancelled imports to end before exiting anyway: longer than a
/// plugin built with the SDK lets a cancelled call finish its request in flight
/// ([`CANCEL_GRACE`]), so that a token exchange under way can store a rotated token.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

const _: () = assert!(STOP_GRACE.as_secs() >= CANCEL_GRACE.as_secs() + 5);

/// How `invhost serve` runs.
pub struct ServeOptions {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The HTTP API's address.
    pub listen: SocketAddr,
    /// The loaded plugins.
    pub registry: Arc<Registry>,
    /// The vault for connections whose secrets live in CyberArk.
    pub vault: Option<Arc<dyn Vault>>,
    /// `[runs] keep_snapshots`.
    pub run_settings: RunSettings,
    /// `[runs] max_parallel`: imports running at the same time.
    pub max_parallel: usize,
    /// Waits before each retry of a transiently failed scheduled import (its length is the
    /// number of retries).
    pub retry_delays: Vec<Duration>,
    /// How often the scheduler looks for due imports.
    pub tick: Duration,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("max_parallel", &self.max_parallel)
            .field("retry_delays", &self.retry_delays)
            .finish_non_exhaustive()
    }
}

/// Why `invhost serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another serve holds the data directory.
    #[error(transparent)]
    Lock(#[from] ServeLockError),
    /// The HTTP address could not be bound.
    #[error(
        "cannot listen on {address}: {source}; stop the program using that address or choose another with --listen ADDRESS:PORT"
    )]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Runs of dead processes could not be swept.
    #[error(transparent)]
    Sweep(#[from] RunError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The HTTP server failed.
    #[error("the HTTP API stopped: {0}")]
    Http(std::io::Error),
}

/// The shutdown signal: a flag every running import watches (its cancellation flag) and a
/// channel the async parts wait on.
#[derive(Debug, Clone)]
pub struct Shutdown {
    cancel: Arc<AtomicBool>,
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            cancel: Arc::new(AtomicBool::new(false)),
            sender: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Starts shutting down: running imports see their cancellation flag set.
    pub fn trigger(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.sender.send_replace(true);
    }

    /// Whether shutdown started.
    pub fn is_triggered(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The cancellation flag to give a run.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Resolves once shutdown started.
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}

/// Runs `invhost serve` until SIGTERM or SIGINT. Takes the serve lock, sweeps runs of dead
/// processes, binds the HTTP address, then schedules.
pub fn run(options: ServeOptions) -> Result<(), ServeError> {
    // Creates the data directory (private) and migrates the database.
    drop(Store::open(&options.data_dir)?);
    let _lock = ServeLock::acquire(&options.data_dir)?;
    let swept = Runner::new(
        &options.data_dir,
        &options.registry,
        None,
        options.run_settings,
    )
    .sweep()?;
    if swept > 0 {
        tracing::warn!(
            runs = swept,
            "Marked runs left running by a stopped process as interrupted."
        );
    }
    // Held here so that the vault (which owns a runtime of its own) is dropped outside any
    // async context, after the runtime below has shut down.
    let vault = options.vault.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("invhost-serve")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let result = runtime.block_on(serve(options));
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(vault);
    result
}

async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: options.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: options.listen,
        source,
    })?;
    if !address.ip().is_loopback() {
        tracing::warn!(
            %address,
            "The HTTP API has no authentication yet and listens beyond this machine; it shows connection names, schedules and run history (never secrets). Prefer a loopback address."
        );
    }
    let shutdown = Shutdown::default();
    let signals = Signals::install()?;
    tokio::spawn(signals.watch(shutdown.clone()));
    let app = http::router(http::AppState::new(
        options.data_dir.clone(),
        options.registry.clone(),
    ));
    let http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.wait().await })
            .await
    });
    tracing::info!(
        %address,
        data_dir = %options.data_dir.display(),
        plugins = options.registry.plugins().len(),
        max_parallel = options.max_parallel,
        "Serving: the scheduler is running and the HTTP API listens."
    );
    scheduler::Scheduler::new(&options, shutdown.clone())
        .run()
        .await;
    // The scheduler returns only once shutdown started; the server stops with it.
    let served = match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(Err(error))) => Err(ServeError::Http(error)),
        _ => Ok(()),
    };
    tracing::info!("Stopped.");
    served
}

/// The signals that stop `serve`, installed before it starts working.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServeError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                terminate: signal(SignalKind::terminate()).map_err(ServeError::Runtime)?,
                interrupt: signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }

    /// The first signal starts the shutdown; a second one exits at once.
    async fn watch(mut self, shutdown: Shutdown) {
        let signal = self.next().await;
        tracing::info!(
            signal,
            "Stopping: no new imports; cancelling the running ones (a second signal exits at once)."
        );
        shutdown.trigger();
        let signal = self.next().await;
        tracing::warn!(
            signal,
            "Exiting at once; running imports will show as interrupted."
        );
        std::process::exit(130);
    }
}
