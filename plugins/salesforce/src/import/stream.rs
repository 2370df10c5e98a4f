//! Reading a query page by page: each page is mapped to records, emitted and dropped before
//! the one after it is mapped, while the next page is already being fetched (one page ahead,
//! no more), so a big object never sits in memory whole.
//!
//! A page chain is only as fast as the time from one answer to the next request. So from the
//! second page on, the next page is asked for as soon as an answer is in: its first kilobyte
//! is inflated and read for `nextRecordsUrl` ([`PageStart`]), before the page is inflated and
//! decoded whole, which happens on the blocking pool ([`Api::call`]) so that the runtime's
//! workers stay free to send requests and take answers. The whole page's `nextRecordsUrl` is
//! checked against it. A query's first page is read whole first ([`fetch`] says why).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use invhost_plugin_api::{Error, Host, model::Record, protocol::Progress, sdk::RecordBatch};
use serde::de::DeserializeOwned;
use tokio::{sync::oneshot, task::JoinHandle};
use tracing::warn;
use url::Url;

#[cfg(doc)]
use crate::import::api::Api;
#[cfg(doc)]
use crate::import::limiter::{CHAIN, EARLY, URGENT};
use crate::{
    client::{Answer, Encoding, body_prefix},
    import::{
        api::{Call, Peek, SharedApi, read_json},
        rows::{PageStart, QueryPage},
    },
};

/// Aborts its task when dropped: a prefetch nobody waits for any more (the import failed or
/// was cancelled) stops instead of spending API calls.
#[derive(Debug)]
pub struct Task<T>(pub JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Task<T> {
    /// Spawns `future` on the runtime.
    pub fn spawn<F>(future: F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        Task(tokio::spawn(future))
    }

    /// Waits for the task; a panic in it becomes an `internal` error.
    pub async fn join(mut self) -> Result<T, Error> {
        self.wait().await
    }

    /// [`Task::join`] without giving the task up, for a `select!`: once it has answered, it
    /// must not be waited for again.
    pub async fn wait(&mut self) -> Result<T, Error> {
        (&mut self.0).await.map_err(|error| {
            Error::internal(format!("an import task failed: {error}; this is a bug"))
        })
    }
}

/// Sends records to the host and counts them per kind.
#[derive(Debug, Clone)]
pub struct Emitter {
    host: Host,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Emitter {
    /// An emitter into `host`.
    pub fn new(host: Host) -> Self {
        Emitter {
            host,
            counts: Arc::default(),
        }
    }

    /// Records sent so far, per kind.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends `records` (a few: for pages of a large object, [`Emitter::send`]).
    pub async fn emit(&self, records: Vec<Record>) -> Result<(), Error> {
        self.send(records.iter().collect()).await
    }

    /// Sends one batch. The host's `emit` blocks (it writes to the database), so it runs on
    /// the blocking pool, never on the runtime's workers, which keep fetching meanwhile.
    pub async fn send(&self, batch: RecordBatch) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            for (kind, n) in batch.counts() {
                *counts.entry((*kind).to_owned()).or_default() += n;
            }
        }
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || host.emit_batch(&batch))
            .await
            .map_err(|error| Error::internal(format!("emitting records failed: {error}")))?
    }
}

/// What a streamed query does with its rows.
pub trait Sink<R>: Send + 'static {
    /// Maps one page of rows into records (pushed to `out`, which encodes them at once).
    fn page(&mut self, rows: Vec<R>, out: &mut RecordBatch) -> Result<(), Error>;

    /// Pushes the records that only the end of the stream completes.
    fn finish(&mut self, out: &mut RecordBatch) {
        let _ = out;
    }
}

/// A page being fetched in a task of its own, and, once the answer is in, its start
/// ([`PageStart`]: the page after it, if any), sent on before the page is inflated and
/// decoded, so that the page after it can be asked for meanwhile.
#[derive(Debug)]
struct Fetching<R> {
    page: Task<Result<QueryPage<R>, Error>>,
    start: Option<oneshot::Receiver<PageStart>>,
}

impl<R: Send + 'static> Fetching<R> {
    /// Waits for the page.
    async fn read(self) -> Result<QueryPage<R>, Error> {
        self.page.join().await?
    }
}

/// How much of an answer is inflated to find where the next page is: the page's start, well
/// before its first record.
const START_BYTES: usize = 1024;

/// Fetches the first page of a query (`url`, the query itself) in a task of its own, with
/// priority `priority` for a slot ([`CHAIN`], [`URGENT`] or [`EARLY`]).
///
/// A first page is read whole before the page after it is asked for: a first page cut short
/// is asked for again by running its query again, which opens a new cursor, so the next page
/// its first answer named would be of a cursor nobody reads on (a billed call for nothing).
pub fn fetch<R>(
    api: &SharedApi,
    object: &'static str,
    url: Url,
    priority: u64,
) -> Task<Result<QueryPage<R>, Error>>
where
    R: DeserializeOwned + Send + 'static,
{
    let api = Arc::clone(api);
    Task::spawn(async move {
        api.get_with_priority::<QueryPage<R>>(object, &url, priority)
            .await
    })
}

/// Fetches a page after the first (`url`, a `nextRecordsUrl`) in a task of its own, with
/// priority `priority` (the query's rows left); the answer's start is sent on as soon as the
/// answer is in ([`Fetching`]).
fn fetch_next<R>(api: &SharedApi, object: &'static str, url: Url, priority: u64) -> Fetching<R>
where
    R: DeserializeOwned + Send + 'static,
{
    let api = Arc::clone(api);
    let (found, start) = oneshot::channel();
    let page = Task::spawn(async move {
        // Sent once: an answer asked for again (cut short) names the same next page, of the
        // same cursor.
        let found = Mutex::new(Some(found));
        let peek = |answer: &Answer| {
            let prefix = body_prefix(&answer.headers, &answer.body, START_BYTES);
            if let Some(start) = PageStart::read(&prefix)
                && let Some(found) = found.lock().unwrap_or_else(|e| e.into_inner()).take()
            {
                let _ = found.send(start);
            }
        };
        let call = Call {
            encoding: Encoding::KeepGzip,
            peek: Some(Peek(&peek)),
            ..Call::get(&url)
        };
        api.call(object, call, priority, read_json::<QueryPage<R>>)
            .await
    });
    Fetching {
        page,
        start: Some(start),
    }
}

/// The page after the one being fetched, asked for as soon as that one's start named it.
#[derive(Debug)]
struct Ahead<R> {
    /// The `nextRecordsUrl` the start named.
    url: String,
    fetching: Fetching<R>,
}

/// Asks for the page after `pending` as soon as its start is in; `None` when no start comes:
/// a first page ([`fetch`]), a page that failed, its query's last, or a start
/// [`PageStart::read`] could not read (the page is then read whole first).
async fn ask_ahead<R>(
    api: &SharedApi,
    object: &'static str,
    pending: &mut Fetching<R>,
    fetched: u64,
) -> Result<Option<Ahead<R>>, Error>
where
    R: DeserializeOwned + Send + 'static,
{
    let Some(receiver) = pending.start.take() else {
        return Ok(None);
    };
    let Ok(start) = receiver.await else {
        return Ok(None);
    };
    let rows_left = start.total_size.saturating_sub(fetched);
    let url = api.url(&start.next_records_url)?;
    Ok(Some(Ahead {
        url: start.next_records_url,
        fetching: fetch_next::<R>(api, object, url, rows_left),
    }))
}

/// Pages a stream reads ahead while its sink is not there yet (each of at most 2,000 rows).
pub const WAITING_PAGES: usize = 3;

/// Runs `soql` to its last page through `sink`, emitting each page's records and reporting
/// progress (stage `object`, rows done, `totalSize`); the first page asks for a slot with
/// priority `first` ([`URGENT`] or [`EARLY`]). Returns the sink and the rows read.
pub async fn stream<R, S>(
    api: SharedApi,
    emitter: Emitter,
    host: Host,
    object: &'static str,
    (soql, first): (String, u64),
    sink: S,
) -> Result<(S, u64), Error>
where
    R: DeserializeOwned + Send + 'static,
    S: Sink<R>,
{
    let first = fetch::<R>(&api, object, api.query_url(&soql)?, first);
    stream_from(
        api,
        emitter,
        host,
        object,
        first,
        std::future::ready(Ok(sink)),
    )
    .await
}

/// [`stream`] from a first page already asked for ([`fetch`]), into the
/// sink `sink` resolves to. A query whose mapping waits for other tables (`User` for the
/// profiles) can so start its page chain before they are read: until the sink is there, the
/// chain goes on and up to [`WAITING_PAGES`] pages wait to be mapped.
pub async fn stream_from<R, S>(
    api: SharedApi,
    emitter: Emitter,
    host: Host,
    object: &'static str,
    first: Task<Result<QueryPage<R>, Error>>,
    sink: impl Future<Output = Result<S, Error>> + Send,
) -> Result<(S, u64), Error>
where
    R: DeserializeOwned + Send + 'static,
    S: Sink<R>,
{
    let mut pending = Some(Fetching {
        page: first,
        start: None,
    });
    let (mut fetched, mut done) = (0_u64, 0_u64);
    let sink_future = sink;
    tokio::pin!(sink_future);
    let mut sink: Option<S> = None;
    // Pages read while the sink is not there yet, mapped once it is.
    let mut waiting: VecDeque<QueryPage<R>> = VecDeque::new();
    while let Some(mut fetching) = pending.take() {
        // The next page is asked for as soon as this answer's start names it.
        let mut ahead = ask_ahead(&api, object, &mut fetching, fetched).await?;
        let page = fetching.read().await?;
        host.check_cancelled()?;
        if !page.done {
            let next = page.next_records_url.as_deref().ok_or_else(|| {
                Error::upstream(format!(
                    "{object}: Salesforce said more rows follow but gave no nextRecordsUrl"
                ))
            })?;
            pending = Some(match ahead.take() {
                Some(Ahead { url, fetching }) if url == next => fetching,
                asked => {
                    if asked.is_some() {
                        warn!(
                            object,
                            "A page's start named another next page than the page did."
                        );
                    }
                    let rows_left = page.total_size.saturating_sub(fetched);
                    fetch_next::<R>(&api, object, api.url(next)?, rows_left)
                }
            });
        } else if ahead.take().is_some() {
            warn!(
                object,
                "A page's start named a next page, but the page was its query's last."
            );
        }
        fetched += page.records.len() as u64;
        waiting.push_back(page);
        if sink.is_none() {
            let now = tokio::select! {
                biased;
                sink = &mut sink_future => Some(sink?),
                () = std::future::ready(()) => None,
            };
            match now {
                Some(ready) => sink = Some(ready),
                // The chain goes on meanwhile, a few pages ahead at most.
                None if pending.is_some() && waiting.len() < WAITING_PAGES => continue,
                None => sink = Some((&mut sink_future).await?),
            }
        }
        let Some(sink) = sink.as_mut() else {
            return Err(Error::internal(
                "a stream's sink went missing; this is a bug",
            ));
        };
        while let Some(page) = waiting.pop_front() {
            let rows = page.records.len() as u64;
            let total = page.total_size;
            let mut out = RecordBatch::new();
            sink.page(page.records, &mut out)?;
            if pending.is_none() && waiting.is_empty() {
                sink.finish(&mut out);
            }
            emitter.send(out).await?;
            done += rows;
            host.progress(&Progress {
                stage: object.to_owned(),
                done,
                total: Some(total),
            });
        }
    }
    let sink = sink.ok_or_else(|| Error::internal("a stream ended before its first page"))?;
    Ok((sink, done))
}

/// Runs `soql` to its last page and keeps every row: for the small tables only.
pub async fn collect<R>(api: &SharedApi, object: &'static str, soql: &str) -> Result<Vec<R>, Error>
where
    R: DeserializeOwned + Send + 'static,
{
    let mut url = api.query_url(soql)?;
    let mut rows = Vec::new();
    loop {
        let page: QueryPage<R> = api.get(object, &url).await?;
        rows.extend(page.records);
        match (page.done, page.next_records_url) {
            (false, Some(next)) => url = api.url(&next)?,
            (false, None) => {
                return Err(Error::upstream(format!(
                    "{object}: Salesforce said more rows follow but gave no nextRecordsUrl"
                )));
            }
            (true, _) => return Ok(rows),
        }
    }
}
