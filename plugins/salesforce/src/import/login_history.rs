//! `LoginHistory` into usage records, read through the API `import.login_history_api` picks:
//!
//! | setting | how |
//! |---|---|
//! | `auto` (default) | One `SELECT COUNT()` of the window, made with the run's first requests ([`measure`]), decides: up to [`BULK_ABOVE_ROWS`] rows, the REST windows (below). Beyond, or when the count fails (a warning in the summary), a Bulk API 2.0 job reads the whole window ([`bulk`]). |
//! | `bulk` | A Bulk API 2.0 job. |
//! | `rest` | The REST API, as `import.login_history_windows` time windows read at once. |
//!
//! A Bulk API 2.0 job that cannot be used (Salesforce refuses it, or it ends `Failed`) before
//! any row of it was read is replaced by the REST windows, with a warning in the summary.
//! Every way feeds the same [`UsageAggregator`], which the host's merge rule for usage
//! records makes safe to emit in parts.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use invhost_plugin_api::{Error, ErrorKind, Host, sdk::RecordBatch};
use serde::Deserialize;
use tracing::info;

use crate::{
    config::{ImportSettings, LoginHistoryApi},
    import::{
        api::SharedApi,
        bulk::{self, BulkError},
        limiter::EARLY,
        queries,
        rows::{LoginRow, QueryPage},
        stream::{Emitter, Sink, Task, fetch, stream_from},
        usage::{self, UsageAggregator},
    },
};

/// The object, as progress and errors name it.
const OBJECT: &str = "LoginHistory";

/// With `auto`, a login history of more rows than this is read through Bulk API 2.0
/// (ten REST pages; a job takes at least four calls and some seconds to run).
pub const BULK_ABOVE_ROWS: u64 = 20_000;

/// One stream of `LoginHistory` rows into the aggregator all the streams share.
struct Logins(Arc<Mutex<UsageAggregator>>);

impl Logins {
    fn aggregator(&self) -> std::sync::MutexGuard<'_, UsageAggregator> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink<LoginRow> for Logins {
    fn page(&mut self, rows: Vec<LoginRow>, out: &mut RecordBatch) -> Result<(), Error> {
        self.aggregator().page(rows, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut RecordBatch) {
        self.aggregator().finish(out);
    }
}

/// An aggregator for `streams` streams.
fn aggregator(settings: &ImportSettings, streams: usize) -> Arc<Mutex<UsageAggregator>> {
    Arc::new(Mutex::new(UsageAggregator::new(
        settings.login_history_days,
        streams,
        usage::CAPACITY,
    )))
}

/// What [`measure`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    /// `rest` or `bulk`: nothing to count.
    NotNeeded,
    /// The rows in the window.
    Rows(u64),
    /// The count failed (a `QUERY_TIMEOUT` on a very large org, say): the Bulk API 2.0 job,
    /// made for large reads, reads the window; the text says why, for the summary.
    Failed(String),
}

/// A `COUNT()` answer: `totalSize` is required (an answer without it is no count).
#[derive(Debug, Deserialize)]
struct Counted {
    #[serde(rename = "totalSize")]
    total_size: u64,
}

/// With `import.login_history_api = "auto"`, how many rows the window of the
/// `login_history_days` before `now` holds: one `COUNT()` query (one call, no rows). A count
/// that fails for a reason other than the session, the budget or a cancellation is no
/// failure of the run ([`Count::Failed`]).
pub async fn measure(
    api: &SharedApi,
    settings: &ImportSettings,
    now: DateTime<Utc>,
) -> Result<Count, Error> {
    if settings.login_history_api != LoginHistoryApi::Auto {
        return Ok(Count::NotNeeded);
    }
    let soql = queries::login_history_count(now, settings.login_history_days);
    match api.get::<Counted>(OBJECT, &api.query_url(&soql)?).await {
        Ok(counted) => Ok(Count::Rows(counted.total_size)),
        Err(error)
            if [
                ErrorKind::AUTH,
                ErrorKind::RATE_LIMITED,
                ErrorKind::CANCELLED,
            ]
            .contains(&error.kind) =>
        {
            Err(error)
        }
        Err(error) => Ok(Count::Failed(error.message)),
    }
}

/// Reads the login history of the `login_history_days` before `now` into usage records;
/// `count` is what [`measure`] found. Returns the warnings for the summary.
pub async fn read(
    api: SharedApi,
    emitter: Emitter,
    host: Host,
    settings: ImportSettings,
    (now, count): (DateTime<Utc>, Count),
) -> Result<Vec<String>, Error> {
    let whole = queries::login_history(now, settings.login_history_days, 1)
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("no LoginHistory query; this is a bug"))?;
    let windows = queries::login_history(
        now,
        settings.login_history_days,
        settings.login_history_windows,
    );
    let mut warnings = Vec::new();
    match settings.login_history_api {
        LoginHistoryApi::Rest => {
            let firsts = first_pages(&api, &windows)?;
            rest_windows(&api, &emitter, &host, &settings, firsts).await?;
            return Ok(Vec::new());
        }
        LoginHistoryApi::Bulk => {}
        LoginHistoryApi::Auto => match &count {
            Count::Rows(rows) if *rows <= BULK_ABOVE_ROWS => {
                let firsts = first_pages(&api, &windows)?;
                rest_windows(&api, &emitter, &host, &settings, firsts).await?;
                return Ok(Vec::new());
            }
            Count::Rows(rows) => info!(
                rows,
                "LoginHistory is large; reading it with a Bulk API 2.0 query job."
            ),
            Count::Failed(reason) => {
                info!(
                    %reason,
                    "LoginHistory could not be counted; reading it with a Bulk API 2.0 query job."
                );
                warnings.push(format!(
                    "LoginHistory could not be counted ({reason}), so it was read with a Bulk \
                     API 2.0 query job, as a large login history is"
                ));
            }
            Count::NotNeeded => {
                return Err(Error::internal(
                    "LoginHistory was not counted before it was read; this is a bug",
                ));
            }
        },
    }
    let sink = Logins(aggregator(&settings, 1));
    match bulk::read_logins(&api, &emitter, &host, OBJECT, &whole, sink).await {
        Ok(_) => Ok(warnings),
        Err(BulkError::Failed(error)) => Err(error),
        Err(BulkError::Unusable(error)) => {
            info!(error = %error.message, "The Bulk API 2.0 job could not be used; reading LoginHistory through the REST API.");
            let firsts = first_pages(&api, &windows)?;
            rest_windows(&api, &emitter, &host, &settings, firsts).await?;
            warnings.push(format!(
                "{}; LoginHistory was read through the REST API instead, which takes one API \
                 call per 2,000 rows (set import.login_history_api to \"rest\" to skip the \
                 attempt)",
                error.message
            ));
            Ok(warnings)
        }
    }
}

/// The first page of each window's query, each asked for in a task of its own.
fn first_pages(api: &SharedApi, windows: &[String]) -> Result<Vec<FirstPage>, Error> {
    windows
        .iter()
        .map(|soql| Ok(fetch::<LoginRow>(api, OBJECT, api.query_url(soql)?, EARLY)))
        .collect()
}

/// The first page of a window, being read or read.
type FirstPage = Task<Result<QueryPage<LoginRow>, Error>>;

/// The REST API: the windows' chains from their first pages, all at once.
async fn rest_windows(
    api: &SharedApi,
    emitter: &Emitter,
    host: &Host,
    settings: &ImportSettings,
    firsts: Vec<FirstPage>,
) -> Result<(), Error> {
    let shared = aggregator(settings, firsts.len());
    // Dropping the set (the import failed) aborts the windows still being read.
    let mut reads = tokio::task::JoinSet::new();
    for first in firsts {
        reads.spawn(stream_from::<LoginRow, _>(
            Arc::clone(api),
            emitter.clone(),
            host.clone(),
            OBJECT,
            first,
            std::future::ready(Ok(Logins(Arc::clone(&shared)))),
        ));
    }
    while let Some(window) = reads.join_next().await {
        window.map_err(|error| {
            Error::internal(format!("an import task failed: {error}; this is a bug"))
        })??;
    }
    Ok(())
}
