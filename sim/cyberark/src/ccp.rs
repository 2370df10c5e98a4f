//! The GetPassword web service: `GET {path}?AppID=..&Safe=..&...`, answered in the CCP's
//! own JSON shapes, and IIS-like HTML pages for everything else.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value, json};
use tracing::debug;

use crate::config::{Account, Faults};
use crate::control::Shared;

/// The parameters the web service knows, spelled as CyberArk's clients send them. Names
/// are matched case-insensitively (`AppId` works too).
const PARAMETERS: [&str; 13] = [
    "AppID",
    "Safe",
    "Folder",
    "Object",
    "UserName",
    "Address",
    "Database",
    "PolicyID",
    "Reason",
    "ConnectionTimeout",
    "Query",
    "QueryFormat",
    "FailRequestOnPasswordChange",
];

/// The parameters that select accounts (ignored when `Query` is present).
const SEARCH_PARAMETERS: [&str; 7] = [
    "Safe", "Folder", "Object", "UserName", "Address", "Database", "PolicyID",
];

/// The router: the web service path, an IIS welcome page on `/`, an IIS 404 page
/// elsewhere; every request is counted.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(&shared.path, get(accounts))
        .route("/", get(welcome_page))
        .fallback(not_found_page)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), count))
        .with_state(shared)
}

async fn count(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared.count_request();
    debug!(method = %request.method(), path = request.uri().path(), "CCP simulator request.");
    next.run(request).await
}

async fn accounts(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let faults = shared.faults();
    if !faults.latency().is_zero() {
        tokio::time::sleep(faults.latency()).await;
    }
    if let Some(raw) = faults.raw_answer {
        if let Ok(Query(params)) = &query {
            shared.record_params(params);
        }
        let status = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, [(header::CONTENT_TYPE, raw.content_type)], raw.body).into_response();
    }
    let reply = match query {
        Ok(Query(params)) => {
            shared.record_params(&params);
            answer(&shared.app_ids, &shared.accounts, &faults, &params)
        }
        Err(rejection) => Reply::error(
            StatusCode::BAD_REQUEST,
            "AIMWS030E",
            format!("Invalid query format. The query string could not be decoded: {rejection}"),
        ),
    };
    reply.into_response()
}

/// A status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Reply {
    fn error(status: StatusCode, code: &str, message: String) -> Reply {
        Reply {
            status,
            body: json!({ "ErrorCode": code, "ErrorMsg": message }),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// Answers one request: checks the parameters, the vault, the application, then searches.
pub(crate) fn answer(
    app_ids: &[String],
    accounts: &[Account],
    faults: &Faults,
    params: &[(String, String)],
) -> Reply {
    let request = match Search::parse(params) {
        Ok(request) => request,
        Err(reply) => return reply,
    };
    if faults.vault_unreachable {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "APPAP007E",
            "Connection to the Vault has failed (Diagnostic Info: 1). Check that the Vault \
             is running and that the Provider can reach it."
                .to_owned(),
        );
    }
    if !app_ids
        .iter()
        .any(|id| id.eq_ignore_ascii_case(&request.app_id))
    {
        return Reply::error(
            StatusCode::FORBIDDEN,
            "APPAP306E",
            format!(
                "Failed to authenticate application [{}] (Diagnostic Info: 3). Check the \
                 application's authentication methods in the Vault.",
                request.app_id
            ),
        );
    }
    let found: Vec<&Account> = accounts
        .iter()
        .filter(|account| readable_by(account, &request.app_id))
        .filter(|account| request.matches(account))
        .collect();
    match found.as_slice() {
        [] => Reply::error(
            StatusCode::NOT_FOUND,
            "APPAP004E",
            format!(
                "Password object matching query [{}] was not found (Diagnostic Info: 5). \
                 Please check that there is a password object that answers your query in \
                 the Vault and that both the Provider and the application user have the \
                 appropriate permissions needed in order to use the password.",
                request.describe()
            ),
        ),
        [account] => {
            let changing = faults
                .password_change_in_progress
                .iter()
                .any(|object| object.eq_ignore_ascii_case(&account.object));
            if changing && request.fail_on_change {
                return Reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "APPAP282E",
                    format!(
                        "Password object [{}] is currently being changed by the CPM \
                         (Diagnostic Info: 282). Try again later.",
                        account.object
                    ),
                );
            }
            Reply {
                status: StatusCode::OK,
                body: Value::Object(account_json(account, changing)),
            }
        }
        several => Reply::error(
            StatusCode::BAD_REQUEST,
            "APPAP227E",
            format!(
                "Too many password objects ({}) match query [{}] (Diagnostic Info: 41). \
                 Refine the query so that it matches one object.",
                several.len(),
                request.describe()
            ),
        ),
    }
}

fn readable_by(account: &Account, app_id: &str) -> bool {
    account.apps.is_empty() || account.apps.iter().any(|a| a.eq_ignore_ascii_case(app_id))
}

/// The success body: `Content` and the properties defined on the account, all strings.
fn account_json(account: &Account, changing: bool) -> Map<String, Value> {
    let mut body = Map::new();
    let mut put = |name: &str, value: &str| {
        if !body.keys().any(|key| key.eq_ignore_ascii_case(name)) {
            body.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    };
    put("Content", &account.content);
    if !account.user_name.is_empty() {
        put("UserName", &account.user_name);
    }
    if !account.address.is_empty() {
        put("Address", &account.address);
    }
    put("Safe", &account.safe);
    put("Folder", &account.folder);
    put("Name", &account.object);
    put(
        "PasswordChangeInProcess",
        if changing { "True" } else { "False" },
    );
    for (name, value) in &account.properties {
        put(name, value);
    }
    body
}

/// A checked request.
#[derive(Debug)]
struct Search {
    app_id: String,
    criteria: Vec<Criterion>,
    fail_on_change: bool,
}

/// One `Key=Value` condition on an account.
#[derive(Debug)]
struct Criterion {
    key: String,
    value: String,
    pattern: Option<Regex>,
}

fn malformed(detail: String) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        "AIMWS030E",
        format!("Invalid query format. {detail}"),
    )
}

impl Search {
    fn parse(params: &[(String, String)]) -> Result<Search, Reply> {
        let mut known: Vec<(&'static str, &str)> = Vec::new();
        for (name, value) in params {
            let Some(canonical) = PARAMETERS.iter().find(|p| p.eq_ignore_ascii_case(name)) else {
                return Err(malformed(format!("Unknown parameter [{name}].")));
            };
            if known.iter().any(|(seen, _)| seen == canonical) {
                return Err(malformed(format!(
                    "Parameter [{canonical}] is given twice."
                )));
            }
            known.push((canonical, value.as_str()));
        }
        let get = |name: &str| known.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);

        let app_id = match get("AppID").map(str::trim) {
            Some(app_id) if !app_id.is_empty() => app_id.to_owned(),
            _ => {
                return Err(Reply::error(
                    StatusCode::BAD_REQUEST,
                    "AIMWS031E",
                    "Invalid query format. Missing mandatory parameter [AppID].".to_owned(),
                ));
            }
        };
        let regexp = match get("QueryFormat") {
            None => false,
            Some(format) if format.eq_ignore_ascii_case("Exact") => false,
            Some(format) if format.eq_ignore_ascii_case("Regexp") => true,
            Some(other) => {
                return Err(malformed(format!(
                    "QueryFormat [{other}] is not Exact or Regexp."
                )));
            }
        };
        let fail_on_change = match get("FailRequestOnPasswordChange") {
            None => false,
            Some(flag) if flag.eq_ignore_ascii_case("true") => true,
            Some(flag) if flag.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(malformed(format!(
                    "FailRequestOnPasswordChange [{other}] is not true or false."
                )));
            }
        };
        if let Some(timeout) = get("ConnectionTimeout")
            && timeout.trim().parse::<u32>().is_err()
        {
            return Err(malformed(format!(
                "ConnectionTimeout [{timeout}] is not a number of seconds."
            )));
        }

        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(query) = get("Query") {
            for part in query.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                match part.split_once('=') {
                    Some((key, value)) if !key.trim().is_empty() => {
                        pairs.push((key.trim().to_owned(), value.trim().to_owned()));
                    }
                    _ => {
                        return Err(malformed(format!("Query part [{part}] is not Key=Value.")));
                    }
                }
            }
            if pairs.is_empty() {
                return Err(malformed("Query is empty.".to_owned()));
            }
        } else {
            for name in SEARCH_PARAMETERS {
                if let Some(value) = get(name) {
                    pairs.push((name.to_owned(), value.to_owned()));
                }
            }
            if pairs.is_empty() {
                return Err(malformed(
                    "Give at least one of Safe, Folder, Object, UserName, Address, Database, \
                     PolicyID or Query."
                        .to_owned(),
                ));
            }
        }
        let mut criteria = Vec::with_capacity(pairs.len() + 1);
        for (key, value) in pairs {
            let pattern = if regexp {
                Some(
                    RegexBuilder::new(&format!("^(?:{value})$"))
                        .case_insensitive(true)
                        .build()
                        .map_err(|_| {
                            malformed(format!("[{value}] is not a valid regular expression."))
                        })?,
                )
            } else {
                None
            };
            criteria.push(Criterion {
                key,
                value,
                pattern,
            });
        }
        // The folder defaults to Root, matched exactly.
        if !criteria
            .iter()
            .any(|c| c.key.eq_ignore_ascii_case("Folder"))
        {
            let at = criteria
                .iter()
                .position(|c| c.key.eq_ignore_ascii_case("Safe"))
                .map_or(0, |safe| safe + 1);
            let root = Criterion {
                key: "Folder".to_owned(),
                value: "Root".to_owned(),
                pattern: None,
            };
            criteria.insert(at, root);
        }
        Ok(Search {
            app_id,
            criteria,
            fail_on_change,
        })
    }

    fn matches(&self, account: &Account) -> bool {
        self.criteria.iter().all(|c| c.matches(account))
    }

    /// `Safe=..;Folder=..;Object=..`, for messages.
    fn describe(&self) -> String {
        self.criteria
            .iter()
            .map(|c| format!("{}={}", c.key, c.value))
            .collect::<Vec<_>>()
            .join(";")
    }
}

impl Criterion {
    fn matches(&self, account: &Account) -> bool {
        let key = self.key.as_str();
        let actual = if key.eq_ignore_ascii_case("Safe") {
            Some(account.safe.as_str())
        } else if key.eq_ignore_ascii_case("Folder") {
            Some(account.folder.as_str())
        } else if key.eq_ignore_ascii_case("Object") || key.eq_ignore_ascii_case("Name") {
            Some(account.object.as_str())
        } else if key.eq_ignore_ascii_case("UserName") {
            Some(account.user_name.as_str())
        } else if key.eq_ignore_ascii_case("Address") {
            Some(account.address.as_str())
        } else {
            account
                .properties
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value.as_str())
        };
        match (actual, &self.pattern) {
            (None, _) => false,
            (Some(actual), Some(pattern)) => pattern.is_match(actual),
            (Some(actual), None) => actual.eq_ignore_ascii_case(&self.value),
        }
    }
}

/// What IIS shows on its root when no default document is set up.
async fn welcome_page() -> Response {
    html(
        StatusCode::OK,
        "<!DOCTYPE html>\n<html><head><title>IIS Windows Server</title></head>\
         <body><h1>Internet Information Services</h1></body></html>\n",
    )
}

/// IIS's 404 page, as a wrong `path` gets it.
async fn not_found_page() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html>\n<html><head><title>404 - File or directory not found.</title></head>\
         <body><h2>404 - File or directory not found.</h2>\
         <p>The resource you are looking for might have been removed, had its name changed, \
         or is temporarily unavailable.</p></body></html>\n",
    )
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Vec<Account> {
        vec![
            Account::new("Salesforce", "acme-prod", "pw-prod")
                .user_name("integration@acme.example")
                .property("ConsumerSecret", "cs-prod"),
            Account::new("Salesforce", "acme-dev", "pw-dev"),
            Account::new("Proxy", "corp-proxy", "pw-proxy").folder("Network"),
            Account::new("Restricted", "hidden", "pw-hidden").apps(&["OtherApp"]),
        ]
    }

    /// Answers `query` (`k=v&k=v`, already decoded) with default faults.
    fn check(query: &str) -> Reply {
        check_with(query, &Faults::default())
    }

    fn check_with(query: &str, faults: &Faults) -> Reply {
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        answer(&["InventoryHost".to_owned()], &accounts(), faults, &params)
    }

    fn code(reply: &Reply) -> (u16, &str) {
        (
            reply.status.as_u16(),
            reply.body["ErrorCode"].as_str().unwrap_or("none"),
        )
    }

    #[test]
    fn errors_have_the_documented_codes_and_statuses() {
        let cases = [
            ("Safe=Salesforce&Object=acme-prod", 200, "none"),
            (
                "AppId=InventoryHost&Safe=Salesforce&Object=ACME-PROD",
                200,
                "none",
            ),
            (
                "AppID=InventoryHost&Safe=Salesforce&Object=nope",
                404,
                "APPAP004E",
            ),
            ("AppID=InventoryHost&Safe=Salesforce", 400, "APPAP227E"),
            (
                "AppID=Stranger&Safe=Salesforce&Object=acme-prod",
                403,
                "APPAP306E",
            ),
            ("AppID=InventoryHost", 400, "AIMWS030E"),
            (
                "AppID=InventoryHost&Safe=Salesforce&Colour=red",
                400,
                "AIMWS030E",
            ),
            ("AppID=InventoryHost&Query=Safe", 400, "AIMWS030E"),
            (
                "AppID=InventoryHost&Safe=X&QueryFormat=Fuzzy",
                400,
                "AIMWS030E",
            ),
            ("AppID=InventoryHost&Safe=X&Safe=Y", 400, "AIMWS030E"),
            (
                "AppID=InventoryHost&Safe=X&ConnectionTimeout=soon",
                400,
                "AIMWS030E",
            ),
            (
                "AppID=InventoryHost&Safe=Restricted&Object=hidden",
                404,
                "APPAP004E",
            ),
        ];
        for (query, status, error) in cases {
            let query = if query.to_ascii_lowercase().contains("appid=") {
                query.to_owned()
            } else {
                format!("AppID=InventoryHost&{query}")
            };
            assert_eq!(code(&check(&query)), (status, error), "{query}");
        }
        assert_eq!(code(&check("Safe=Salesforce")), (400, "AIMWS031E"));
    }

    #[test]
    fn success_has_content_properties_and_string_flags() {
        let reply = check("AppID=InventoryHost&Safe=Salesforce&Object=acme-prod");
        assert_eq!(
            reply.body,
            json!({
                "Content": "pw-prod",
                "UserName": "integration@acme.example",
                "Safe": "Salesforce",
                "Folder": "Root",
                "Name": "acme-prod",
                "PasswordChangeInProcess": "False",
                "ConsumerSecret": "cs-prod",
            })
        );
    }

    #[test]
    fn query_parameter_overrides_the_others_and_folder_defaults_to_root() {
        let by_query = check("AppID=InventoryHost&Safe=Nowhere&Query=Safe=Proxy;Folder=Network");
        assert_eq!(by_query.body["Name"], "corp-proxy");
        assert_eq!(
            code(&check("AppID=InventoryHost&Safe=Proxy&Object=corp-proxy")),
            (404, "APPAP004E")
        );
        let regexp =
            check("AppID=InventoryHost&Query=Safe=Sales.*;Object=.*prod&QueryFormat=Regexp");
        assert_eq!(regexp.body["Name"], "acme-prod");
        assert_eq!(
            check("AppID=InventoryHost&Query=ConsumerSecret=cs-prod").body["Name"],
            "acme-prod"
        );
    }

    #[test]
    fn faults_change_the_answers() {
        let unreachable = Faults {
            vault_unreachable: true,
            ..Faults::default()
        };
        let query = "AppID=InventoryHost&Safe=Salesforce&Object=acme-prod";
        assert_eq!(code(&check_with(query, &unreachable)), (400, "APPAP007E"));

        let changing = Faults {
            password_change_in_progress: vec!["ACME-prod".to_owned()],
            ..Faults::default()
        };
        let reply = check_with(query, &changing);
        assert_eq!(reply.body["PasswordChangeInProcess"], "True");
        let strict = format!("{query}&FailRequestOnPasswordChange=true");
        assert_eq!(code(&check_with(&strict, &changing)), (500, "APPAP282E"));
    }
}
