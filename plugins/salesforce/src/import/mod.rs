//! The import: one Salesforce org read into the inventory model and streamed to the host.
//!
//! 1. The access token is refreshed (a rotated refresh token is stored first, as in the
//!    connection test), and the newest API version is picked from the (unbilled) versions
//!    list.
//! 2. `Organization` is read, and `User` described, at once and alone, with the count of
//!    `LoginHistory`'s rows in the window when `import.login_history_api` is `auto`
//!    ([`login_history::measure`], which `User` does not wait for): their answers'
//!    `Sforce-Limit-Info` tells the org's daily allowance before anything else runs
//!    ([`budget`]).
//! 3. `User`'s page chain, the longest, starts (with the feature flags describe found, so a
//!    flag the org lacks is never selected), its first page before any other request
//!    ([`limiter::CHAIN`]), and so does `LoginHistory` ([`login_history`]: time windows
//!    through the REST API, or one Bulk API 2.0 job when large, whose creation goes before the
//!    small tables). Meanwhile the small tables are read concurrently: `UserLicense`,
//!    `Profile`, `PermissionSetLicense`, `PackageLicense`, the frozen `UserLogin` rows, and
//!    the latest `ActiveFeatureLicenseMetric` and `ActivePermSetLicenseMetric` snapshots
//!    ([`limiter::URGENT`]). `UserLogin` and the metrics are optional: an org that lacks them,
//!    or a user who may not read them, gets a warning in the summary instead of a failure.
//!    `User`'s rows are mapped once they are in; if `User`'s chain fails meanwhile, the run
//!    ends at once.
//! 4. The other big objects stream at once: `PermissionSetLicenseAssign` and
//!    `UserPackageLicense`, their first pages after `User`'s ([`limiter::EARLY`]).
//! 5. Feature licenses of an org without metrics are emitted last, their consumption counted
//!    while `User` streamed (active users with the flag).
//!
//! At most `import.max_concurrent_queries` requests are in flight at once, a freed slot going
//! to the query with the most rows left ([`limiter`]); every request goes through
//! [`api::Api::get`] (budget, session refresh, retries). Big objects are never held
//! whole: each page is mapped, emitted and dropped while the next one is being fetched
//! ([`stream`](mod@stream)). Only the small tables stay in memory (licenses, profiles, frozen user ids,
//! metrics).
//!
//! # What the host receives
//!
//! - Records arrive in batches, one or more per page, in no particular order across objects:
//!   an assignment or a usage record may come before the account it names. Every reference
//!   points at a record of the same import once it has ended.
//! - Ids: see [`mapping`]. Each record is sent once, except `usage`.
//! - `usage` records (`application_id` null, `window_days` = `import.login_history_days`) may
//!   come several times for one account: **the host merges usage records with the same
//!   `(account_id, application_id)` within a run by adding up `logins` and keeping the latest
//!   `last_interactive_at` and `last_api_at`**. The import relies on that rule: it sums
//!   `LoginHistory`'s windows in a bounded aggregator without holding every user's totals
//!   ([`usage`]).
//! - [`ImportSummary`]: record counts per kind, the billed API calls this run made
//!   (`api_calls`), and warnings. A failed import's error carries `{"api_calls": N}` in its
//!   details too.

pub mod api;
pub mod budget;
pub mod bulk;
pub mod limiter;
pub mod login_history;
pub mod mapping;
pub mod queries;
pub mod rows;
pub mod stream;
pub mod usage;

use std::sync::Arc;

use invhost_plugin_api::{
    Error, Host,
    model::Record,
    protocol::{ImportRequest, ImportSummary},
    sdk::RecordBatch,
};
use tracing::info;

use crate::{
    config::ImportSettings,
    import::{
        api::{Api, SharedApi, Tokens},
        budget::Budget,
        limiter::{CHAIN, EARLY},
        mapping::UserContext,
        queries::{UserDescribe, optional},
        rows::{
            FeatureMetricRow, OrganizationRow, PackageLicenseRow, PermSetMetricRow,
            PermissionSetLicenseAssignRow, PermissionSetLicenseRow, ProfileRow, UserLicenseRow,
            UserLoginRow, UserPackageLicenseRow, UserRow,
        },
        stream::{Emitter, Sink, Task, collect, fetch, stream, stream_from},
    },
};

/// How often, and how many times, a failed import looks whether the requests it had sent
/// have been answered, before reporting its API calls (at most 5 s).
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(10);
const SETTLE_POLLS: u32 = 500;

/// Imports the org the request's settings point at; see the module documentation.
pub async fn import(request: &ImportRequest, host: &Host) -> Result<ImportSummary, Error> {
    let crate::plugin::Connected {
        settings,
        http,
        oauth,
        rotation,
        tokens,
        refresh_token,
        session,
        version,
    } = crate::plugin::connect(&request.settings, host).await?;
    let api = Arc::new(Api::new(
        http,
        session.instance_url().clone(),
        version,
        Tokens::new(
            oauth,
            rotation,
            host.clone(),
            tokens.access_token.clone(),
            refresh_token,
        ),
        Budget::new(settings.import.api_budget_percent),
        usize::try_from(settings.import.max_concurrent_queries).unwrap_or(1),
        host.clone(),
    ));
    let result = run(&api, &settings.import, host).await;
    if result.is_err() {
        // Requests other queries had already sent still get answered (and billed): count
        // them too, waiting a little for their answers.
        for _ in 0..SETTLE_POLLS {
            if api.budget.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
    let calls = api.budget.calls();
    match result {
        Ok(summary) => {
            info!(
                connection = %request.connection.name,
                api_calls = calls,
                records = ?summary.counts,
                "Import finished."
            );
            Ok(summary)
        }
        Err(error) => Err(with_api_calls(error, calls)),
    }
}

/// Adds `{"api_calls": N}` to an error's details (keeping what is there), so the run history
/// shows what a failed run spent.
pub fn with_api_calls(mut error: Error, calls: u64) -> Error {
    let mut details = match std::mem::take(&mut error.details) {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("detail".to_owned(), other)]),
    };
    details.insert("api_calls".to_owned(), calls.into());
    error.details = serde_json::Value::Object(details);
    error
}

/// Maps each row to one record.
struct Each<F>(F);

impl<R, F> Sink<R> for Each<F>
where
    F: FnMut(R) -> Record + Send + 'static,
{
    fn page(&mut self, rows: Vec<R>, out: &mut RecordBatch) -> Result<(), Error> {
        out.extend(rows.into_iter().map(&mut self.0));
        Ok(())
    }
}

/// `User` into accounts and their profile and feature assignments, counting active holders
/// of each feature flag.
struct Users {
    context: UserContext,
    holders: Vec<u64>,
}

impl Sink<UserRow> for Users {
    fn page(&mut self, rows: Vec<UserRow>, out: &mut RecordBatch) -> Result<(), Error> {
        for row in rows {
            mapping::user(row, &self.context, &mut self.holders, out);
        }
        Ok(())
    }
}

/// What every streamed query of one import shares.
struct Streams {
    api: SharedApi,
    emitter: Emitter,
    host: Host,
}

impl Streams {
    /// Streams `soql` into `sink` in a task of its own, its first page with priority `first`.
    fn spawn<R, S>(
        &self,
        object: &'static str,
        soql: String,
        first: u64,
        sink: S,
    ) -> Task<Result<(S, u64), Error>>
    where
        R: serde::de::DeserializeOwned + Send + 'static,
        S: Sink<R>,
    {
        Task::spawn(stream::<R, S>(
            Arc::clone(&self.api),
            self.emitter.clone(),
            self.host.clone(),
            object,
            (soql, first),
            sink,
        ))
    }
}

/// The small tables of phase 1.
struct Tables {
    user_licenses: Vec<UserLicenseRow>,
    profiles: Vec<ProfileRow>,
    permission_set_licenses: Vec<PermissionSetLicenseRow>,
    packages: Vec<PackageLicenseRow>,
    frozen: Result<Vec<UserLoginRow>, String>,
    feature_metrics: Result<Vec<FeatureMetricRow>, String>,
    perm_set_metrics: Result<Vec<PermSetMetricRow>, String>,
}

async fn tables(api: &SharedApi) -> Result<Tables, Error> {
    let (
        user_licenses,
        profiles,
        permission_set_licenses,
        packages,
        frozen,
        feature_metrics,
        perm_set_metrics,
    ) = tokio::try_join!(
        collect::<UserLicenseRow>(api, "UserLicense", queries::USER_LICENSES),
        collect::<ProfileRow>(api, "Profile", queries::PROFILES),
        collect::<PermissionSetLicenseRow>(
            api,
            "PermissionSetLicense",
            queries::PERMISSION_SET_LICENSES
        ),
        collect::<PackageLicenseRow>(api, "PackageLicense", queries::PACKAGE_LICENSES),
        async { optional(collect::<UserLoginRow>(api, "UserLogin", queries::FROZEN_USERS).await) },
        async {
            optional(
                queries::latest::<FeatureMetricRow>(
                    api,
                    "ActiveFeatureLicenseMetric",
                    queries::FEATURE_METRICS,
                )
                .await,
            )
        },
        async {
            optional(
                queries::latest::<PermSetMetricRow>(
                    api,
                    "ActivePermSetLicenseMetric",
                    queries::PERM_SET_METRICS,
                )
                .await,
            )
        },
    )?;
    Ok(Tables {
        user_licenses,
        profiles,
        permission_set_licenses,
        packages,
        frozen,
        feature_metrics,
        perm_set_metrics,
    })
}

/// `User`'s stream: its sink (with the feature holders counted) and the rows read.
type UsersTask = Task<Result<(Users, u64), Error>>;

/// `User`'s page chain, the longest, started at once (its first page before any other
/// request waiting for a slot); its mapping waits for the small tables (`context`, sent once
/// they are read).
fn start_users(
    streams: &Streams,
    describe: &UserDescribe,
    context: tokio::sync::oneshot::Receiver<Users>,
) -> Result<UsersTask, Error> {
    let first = fetch::<UserRow>(
        &streams.api,
        "User",
        streams.api.query_url(&queries::users(describe))?,
        CHAIN,
    );
    let sink = async {
        context
            .await
            .map_err(|_| Error::internal("User's mapping never got its tables; this is a bug"))
    };
    Ok(Task::spawn(stream_from::<UserRow, Users>(
        Arc::clone(&streams.api),
        streams.emitter.clone(),
        streams.host.clone(),
        "User",
        first,
        sink,
    )))
}

async fn run(
    api: &SharedApi,
    settings: &ImportSettings,
    host: &Host,
) -> Result<ImportSummary, Error> {
    let emitter = Emitter::new(host.clone());
    let mut warnings = Vec::new();

    // The requests made before the org's allowance is known ([`budget`]): `User`'s chain
    // waits for describe; `LoginHistory` for its count, which may take Salesforce longer
    // and so has a task of its own.
    // With fewer than three slots, the count would take one of the two those need: it
    // follows them then.
    let now = chrono::Utc::now();
    let count = || {
        let (api, settings) = (Arc::clone(api), settings.clone());
        Task::spawn(async move { login_history::measure(&api, &settings, now).await })
    };
    let counting = (settings.max_concurrent_queries >= 3).then(count);
    let (organization, describe) = tokio::try_join!(
        collect::<OrganizationRow>(api, "Organization", queries::ORGANIZATION),
        queries::describe_user(api),
    )?;
    let login_rows = counting.unwrap_or_else(count);
    let organization = organization
        .into_iter()
        .next()
        .ok_or_else(|| Error::upstream("Organization: Salesforce answered no row"))?;
    emitter
        .emit(vec![mapping::tenant(&organization, api.version())])
        .await?;

    let streams = Streams {
        api: Arc::clone(api),
        emitter: emitter.clone(),
        host: host.clone(),
    };
    // `User`, the longest chain, starts now; the small tables are read meanwhile, before
    // `PermissionSetLicenseAssign` and `UserPackageLicense` start, whose first pages would
    // otherwise take the slots they need. `User`'s mapping waits for them.
    let (send_context, context_ready) = tokio::sync::oneshot::channel();
    let mut users = start_users(&streams, &describe, context_ready)?;
    // `LoginHistory` too, once counted: a Bulk API 2.0 job's creation goes before the small
    // tables ([`limiter::CHAIN`]), so that the job runs while they are read.
    let logins = {
        let (api, emitter, host, settings) = (
            Arc::clone(api),
            emitter.clone(),
            host.clone(),
            settings.clone(),
        );
        Task::spawn(async move {
            let rows = login_rows.join().await??;
            login_history::read(api, emitter, host, settings, (now, rows)).await
        })
    };
    // `User`'s stream cannot end before it has its tables: if it does, it failed (an error
    // of its chain), and the run ends now, before the other big objects send requests; so
    // does a failure of `LoginHistory`, which may also end well meanwhile (a small org's).
    let mut logins = std::pin::pin!(async move { logins.join().await? });
    let mut logins_ended = None;
    let mut reading = std::pin::pin!(tables(api));
    let tables = loop {
        tokio::select! {
            // A failure first, so that nothing more is started after it.
            biased;
            ended = users.wait() => return Err(match ended {
                Ok(Err(error)) | Err(error) => error,
                Ok(Ok(_)) => Error::internal("User's stream ended before it had its tables; this is a bug"),
            }),
            ended = &mut logins, if logins_ended.is_none() => logins_ended = Some(ended?),
            tables = &mut reading => break tables?,
        }
    };
    let permission_set_assignments = streams.spawn::<PermissionSetLicenseAssignRow, _>(
        "PermissionSetLicenseAssign",
        queries::PERMISSION_SET_ASSIGNMENTS.to_owned(),
        EARLY,
        Each(mapping::permission_set_assignment),
    );
    let package_assignments = streams.spawn::<UserPackageLicenseRow, _>(
        "UserPackageLicense",
        queries::PACKAGE_ASSIGNMENTS.to_owned(),
        EARLY,
        Each(mapping::package_assignment),
    );

    let mut records = Vec::new();
    for row in &tables.user_licenses {
        records.extend(mapping::user_license(row));
    }
    let perm_set_metrics = tables.perm_set_metrics.unwrap_or_else(|reason| {
        warnings.push(format!(
            "ActivePermSetLicenseMetric could not be read ({reason}): permission set licenses \
             lack its active and assigned user counts (their purchased and used seats come from \
             PermissionSetLicense itself)"
        ));
        Vec::new()
    });
    for row in &tables.permission_set_licenses {
        let metric = perm_set_metrics
            .iter()
            .find(|m| m.permission_set_license_id == row.id);
        records.extend(mapping::permission_set_license(row, metric));
    }
    for row in &tables.packages {
        records.extend(mapping::package_license(row));
    }
    let feature_metrics = match tables.feature_metrics {
        Ok(rows) => rows,
        Err(reason) => {
            warnings.push(format!(
                "ActiveFeatureLicenseMetric could not be read ({reason}): feature licenses show \
                 no purchased count, and their consumption counts the active users with each \
                 flag"
            ));
            Vec::new()
        }
    };
    let features = describe.features.clone();
    let mut counted_later = Vec::new();
    for field in &features {
        records.push(mapping::feature_application(field));
        let metric = feature_metrics
            .iter()
            .find(|m| m.feature_type == mapping::feature_type(field));
        match metric {
            Some(metric) => records.push(mapping::feature_license(field, Some(metric), 0)),
            None => counted_later.push(field.clone()),
        }
    }
    emitter.emit(records).await?;

    let frozen = match tables.frozen {
        Ok(rows) => Some(rows.into_iter().map(|row| row.user_id).collect()),
        Err(reason) => {
            warnings.push(format!(
                "UserLogin could not be read ({reason}): whether users are frozen is unknown; \
                 the importing user needs Manage Users to read it"
            ));
            None
        }
    };
    let context = UserContext {
        profiles: mapping::profile_table(tables.profiles),
        frozen,
        features: features.clone(),
    };
    let holders = vec![0; features.len()];
    // Fails only if `User`'s stream has ended already, with the error its join returns.
    let _ = send_context.send(Users { context, holders });

    let (users, _, _, login_warnings) = tokio::try_join!(
        async { users.join().await? },
        async { permission_set_assignments.join().await? },
        async { package_assignments.join().await? },
        async {
            match logins_ended.take() {
                Some(warnings) => Ok(warnings),
                None => logins.await,
            }
        },
    )?;

    let (users, _) = users;
    warnings.extend(login_warnings);
    let late: Vec<Record> = counted_later
        .iter()
        .filter_map(|field| {
            let k = features.iter().position(|f| f == field)?;
            Some(mapping::feature_license(field, None, users.holders[k]))
        })
        .collect();
    emitter.emit(late).await?;

    if api.budget.latest().is_none() {
        warnings.push(
            "Salesforce sent no Sforce-Limit-Info header, so import.api_budget_percent could \
             not be enforced"
                .to_owned(),
        );
    }
    Ok(ImportSummary {
        counts: emitter.counts(),
        api_calls: Some(api.budget.calls()),
        warnings,
    })
}
