//! [`BlockingCcpClient`]: the CCP client for synchronous callers (the plugin vault
//! callback, which runs on the plugin's thread).

use std::sync::Arc;
use std::sync::mpsc;

use invhost_plugin_api::protocol::{VaultRequest, VaultResponse};
use invhost_plugin_api::{Error, Secret};
use tokio::runtime::Runtime;

use crate::cyberark::account::VaultAccount;
use crate::cyberark::client::CcpClient;
use crate::cyberark::config::{ConfigError, CyberArkConfig};
use crate::cyberark::error::CyberArkError;

/// A [`CcpClient`] with its own one-thread runtime, so that synchronous code can look up
/// secrets. Calls work from any thread, including one inside another tokio runtime (the
/// request runs on this client's runtime; the caller's thread waits).
#[derive(Debug)]
pub struct BlockingCcpClient {
    client: Arc<CcpClient>,
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
}

impl BlockingCcpClient {
    /// Builds the client and its runtime; validates the settings first.
    pub fn new(config: &CyberArkConfig) -> Result<BlockingCcpClient, ConfigError> {
        let client = Arc::new(CcpClient::new(config)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("invhost-cyberark")
            .enable_all()
            .build()
            .map_err(|error| {
                ConfigError::Client(format!("starting the CyberArk client's runtime: {error}"))
            })?;
        Ok(BlockingCcpClient {
            client,
            runtime: Some(runtime),
        })
    }

    /// The async client inside.
    pub fn client(&self) -> &CcpClient {
        &self.client
    }

    /// [`CcpClient::account`], waiting for the answer.
    pub fn account(&self, query: &str) -> Result<VaultAccount, CyberArkError> {
        let client = Arc::clone(&self.client);
        let query = query.to_owned();
        self.run(async move { client.account(&query).await })
    }

    /// [`CcpClient::lookup`], waiting for the answer.
    pub fn lookup(&self, query: &str, fields: &[String]) -> Result<Vec<Secret>, CyberArkError> {
        let client = Arc::clone(&self.client);
        let query = query.to_owned();
        let fields = fields.to_vec();
        self.run(async move { client.lookup(&query, &fields).await })
    }

    /// Answers a plugin's vault request: one value per field, in order; errors become
    /// [`invhost_plugin_api::ErrorKind::VAULT`] errors.
    pub fn vault(&self, request: &VaultRequest) -> Result<VaultResponse, Error> {
        let values = self.lookup(&request.query, &request.fields)?;
        Ok(VaultResponse { values })
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, CyberArkError>> + Send + 'static,
    ) -> Result<T, CyberArkError> {
        let stopped = || CyberArkError::Request {
            detail: "the CyberArk client's runtime has stopped".to_owned(),
        };
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (sender, receiver) = mpsc::channel();
        runtime.spawn(async move {
            let _ = sender.send(work.await);
        });
        receiver.recv().map_err(|_| stopped())?
    }
}

impl Drop for BlockingCcpClient {
    /// Stops the runtime without waiting, so that dropping is allowed anywhere.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl crate::connections::session::Vault for BlockingCcpClient {
    fn lookup(&self, query: &str, fields: &[String]) -> Result<Vec<Secret>, Error> {
        BlockingCcpClient::lookup(self, query, fields).map_err(Error::from)
    }
}
