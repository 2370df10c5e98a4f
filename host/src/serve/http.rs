//! The read-only HTTP API of `invhost serve`, under `/api/v1`: JSON only, never a secret.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1` | `{"routes": [...]}`: this table |
//! | `GET /api/v1/health` | `{"status": "ok"}` |
//! | `GET /api/v1/version` | `{"host_version", "plugin_api_version", "database_version"}` |
//! | `GET /api/v1/plugins` | `{"plugins": [{plugin_id, plugin_version, api_version, source_types}]}` |
//! | `GET /api/v1/connections` | `{"connections": [...]}`, settings redacted as in `connections list --json` |
//! | `GET /api/v1/runs?limit=N&connection=NAME` | `{"runs": [...]}`, newest first, as in `runs --json` |
//! | `GET /api/v1/schedules` | `{"schedules": [...]}`, as in `schedules list --json` |
//!
//! Lists are wrapped in an object so that fields (paging, totals) can be added without
//! breaking clients. Errors are `{"error": KIND, "message": ...}` with a 4xx or 5xx status.
//! Database and plugin work runs on blocking threads, never on the runtime's.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    HOST_VERSION,
    connections::Connections,
    plugins::Registry,
    schedules::Schedules,
    store::{Store, migrations},
};

/// The routes, for `GET /api/v1`.
const ROUTES: &[(&str, &str)] = &[
    ("/api/v1/health", "whether the host is up"),
    ("/api/v1/version", "host, plugin API and database versions"),
    ("/api/v1/plugins", "loaded plugins and their source types"),
    ("/api/v1/connections", "connections, secrets redacted"),
    (
        "/api/v1/runs",
        "recent runs, newest first; ?limit=N (1-1000, default 20), ?connection=NAME",
    ),
    (
        "/api/v1/schedules",
        "schedules with their connections and next run",
    ),
];

/// The longest `limit` of `/api/v1/runs`.
const MAX_RUNS: u32 = 1000;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    data_dir: Arc<PathBuf>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state over a data directory and the loaded plugins.
    pub fn new(data_dir: PathBuf, registry: Arc<Registry>) -> AppState {
        AppState {
            data_dir: Arc::new(data_dir),
            registry,
        }
    }
}

/// A JSON error answer.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn internal(message: impl ToString) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.to_string(),
        }
    }

    fn bad_request(message: impl ToString) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_request",
            message: message.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.kind, "message": self.message})),
        )
            .into_response()
    }
}

/// The router: every route under `/api/v1`, JSON 404 and 405 answers for the rest.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1", get(index))
        .route("/api/v1/health", get(health))
        .route("/api/v1/version", get(version))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/connections", get(connections))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/schedules", get(schedules))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Runs blocking work (the database, plugin calls) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(format!("the request's work stopped: {error}")))?
}

async fn index() -> Json<Value> {
    let routes: Vec<Value> = ROUTES
        .iter()
        .map(|(path, what)| json!({"method": "GET", "path": path, "description": what}))
        .collect();
    Json(json!({ "routes": routes }))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn version() -> Json<Value> {
    Json(json!({
        "host_version": HOST_VERSION,
        "plugin_api_version": invhost_plugin_api::API_VERSION,
        "database_version": migrations::latest(),
    }))
}

#[derive(Serialize)]
struct PluginEntry<'a> {
    plugin_id: &'a str,
    plugin_version: &'a str,
    api_version: &'a str,
    source_types: &'a [invhost_plugin_api::SourceType],
}

async fn plugins(State(state): State<AppState>) -> Json<Value> {
    let plugins: Vec<PluginEntry<'_>> = state
        .registry
        .plugins()
        .iter()
        .map(|plugin| PluginEntry {
            plugin_id: plugin.id(),
            plugin_version: &plugin.manifest.plugin_version,
            api_version: &plugin.manifest.api_version,
            source_types: &plugin.manifest.source_types,
        })
        .collect();
    Json(json!({ "plugins": plugins }))
}

async fn connections(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let views = blocking(move || {
        // `list` redacts every secret through the plugin's schema, and shows no settings at
        // all for a connection whose plugin is not loaded.
        Connections::open(&state.data_dir, &state.registry)
            .and_then(|mut connections| connections.list())
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(json!({ "connections": views })))
}

async fn runs(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    if let Some(unknown) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "limit" | "connection"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{unknown}`; use limit and connection"
        )));
    }
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_RUNS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be a number from 1 to {MAX_RUNS} (found `{text}`)"
                ))
            })?,
    };
    let connection = query.get("connection").cloned();
    let rows = blocking(move || {
        Store::open(&state.data_dir)
            .and_then(|mut store| store.runs(connection.as_deref(), limit))
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(json!({ "runs": rows })))
}

async fn schedules(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let views = blocking(move || {
        Schedules::open(&state.data_dir)
            .and_then(|mut schedules| schedules.list())
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(json!({ "schedules": views })))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "not_found",
        message: format!(
            "no route {method} {}; GET /api/v1 lists the routes",
            uri.path()
        ),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        kind: "method_not_allowed",
        message: format!(
            "{method} is not allowed on {}; this API is read-only (GET)",
            uri.path()
        ),
    }
}
