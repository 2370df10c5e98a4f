//! `query`, `queryAll`, their `nextRecordsUrl` pages, and `sobjects/X/describe`,
//! served from the synthetic org ([`crate::SimConfig::org`]).
//!
//! - `GET /services/data/vNN.N/query?q=SOQL` (and `queryAll`, which answers the same:
//!   the synthetic org has no deleted rows): `{"totalSize","done"[,"nextRecordsUrl"],
//!   "records"}` in pages of [`crate::OrgSpec::page_size`] rows, or fewer when the
//!   `Sforce-Query-Options: batchSize=N` header (clamped to 200..=2000) asks for fewer: as
//!   on Salesforce, the batch size is a hint that the server may answer with smaller pages,
//!   and `page_size` plays the server's own limit (wide rows make Salesforce page sooner).
//!   `nextRecordsUrl` is `/services/data/vNN.N/query/01g…AAA-OFFSET`; fetching it again
//!   (after a 401, say) answers the same page. An unknown locator answers 400
//!   `INVALID_QUERY_LOCATOR`.
//! - `GET /services/data/vNN.N/sobjects/OBJECT/describe`: `{"name","label","queryable",
//!   "fields":[{"name","label","type","nillable","relationshipName","referenceTo"}]}`.
//! - `Accept-Encoding: gzip` gets a gzip body with `Content-Encoding: gzip`.
//! - Faults ([`crate::Faults`]) may cut an answer's JSON (`truncated_json_once`), drop the
//!   connection halfway through an answer's body (`dropped_body_once`), or damage one page of
//!   a chain: its JSON (`truncated_json_at_page`) or the gzip stream it is sent in
//!   (`damaged_gzip_at_page`).
//! - Without an org every object is unknown: 400 `INVALID_TYPE` / 404 for describe; so are
//!   the org's [`crate::OrgSpec::hidden_objects`]. A feature flag the org lacks
//!   ([`crate::OrgSpec::features`]) is missing from describe and answers `INVALID_FIELD`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Query, State};
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::control::ServedPage;
use crate::data::{Kind, Obj, SyntheticOrg};
use crate::query::{Plan, QueryError, parse};
use crate::rest::{not_found, refused};
use crate::state::{ApiRefusal, Chain, Shared};

/// `[{"message","errorCode"}]` with a message built at run time.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

pub(crate) fn query_error(e: &QueryError) -> Response {
    error(StatusCode::BAD_REQUEST, e.code, &e.message)
}

/// `"62.0"` from `/services/data/v62.0/...`.
pub(crate) fn version_of(path: &str) -> String {
    path.strip_prefix("/services/data/v")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|param| param.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// `Sforce-Query-Options: batchSize=N`, clamped to 200..=2000.
fn batch_size(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get("sforce-query-options")?.to_str().ok()?;
    value
        .split(',')
        .filter_map(|option| option.trim().strip_prefix("batchSize="))
        .find_map(|n| n.trim().parse::<usize>().ok())
        .map(|n| n.clamp(200, 2000))
}

/// A 200 JSON answer, gzipped if asked, cut in half if [`crate::Faults::truncated_json_once`]
/// is armed.
fn json_answer<T: serde::Serialize + ?Sized>(shared: &Shared, value: &T, gzip: bool) -> Response {
    damaged_json_answer(shared, value, gzip, Damage::default())
}

/// How a fault damages one query page ([`crate::Faults::truncated_json_at_page`],
/// [`crate::Faults::damaged_gzip_at_page`]).
#[derive(Debug, Clone, Copy, Default)]
struct Damage {
    /// The JSON cut in half (before it is gzipped).
    cut_json: bool,
    /// The bytes sent cut in half (after gzip, if the client asked for it).
    cut_gzip: bool,
}

impl Damage {
    /// The damage `chain` holds for its page `page_no`, cleared from it (it fires once).
    fn take(chain: &mut Chain, page_no: u32) -> Self {
        Damage {
            cut_json: chain.cut_json_at_page.take_if(|k| *k == page_no).is_some(),
            cut_gzip: chain.cut_gzip_at_page.take_if(|k| *k == page_no).is_some(),
        }
    }
}

/// [`json_answer`], damaged as `damage` says. A page whose JSON is cut for `damage` leaves
/// [`crate::Faults::truncated_json_once`] armed for the next answer.
fn damaged_json_answer<T: serde::Serialize + ?Sized>(
    shared: &Shared,
    value: &T,
    gzip: bool,
    damage: Damage,
) -> Response {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    let cut_json = damage.cut_json || std::mem::take(&mut shared.lock().faults.truncated_json_once);
    if cut_json {
        bytes.truncate(bytes.len() / 2);
    }
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json;charset=UTF-8");
    if gzip {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        let compressed = encoder.write_all(&bytes).and_then(|()| encoder.finish());
        if let Ok(compressed) = compressed {
            bytes = compressed;
            builder = builder.header(CONTENT_ENCODING, "gzip");
            shared.lock().count_gzip_answer();
        }
    }
    if damage.cut_gzip {
        bytes.truncate(bytes.len() / 2);
    }
    let body = if std::mem::take(&mut shared.lock().faults.dropped_body_once) {
        dropped_halfway(bytes)
    } else {
        Body::from(bytes)
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A body that sends the first half of `bytes` and then fails, so the server drops the
/// connection in the middle of the answer ([`crate::Faults::dropped_body_once`]). The failure
/// waits a moment, so that the headers and the first half are on the wire first (an error at
/// once would make the server drop the connection before anything was sent).
fn dropped_halfway(mut bytes: Vec<u8>) -> Body {
    use futures_util::StreamExt as _;
    bytes.truncate(bytes.len() / 2);
    let half = futures_util::stream::once(async move { Ok(bytes) });
    let drop = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Err(std::io::Error::other(
            "the simulator dropped the connection",
        ))
    });
    Body::from_stream(half.chain(drop))
}

/// `GET .../query?q=` and `.../queryAll?q=`.
pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    shared.lock().count_query();
    let Some(soql) = params.get("q") else {
        return error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        );
    };
    let plan = match parse(soql) {
        Ok(plan) => plan,
        Err(e) => return query_error(&e),
    };
    let Some(org) = shared.org.clone() else {
        let message = format!("sObject type '{}' is not supported.", plan.obj.name());
        return error(StatusCode::BAD_REQUEST, "INVALID_TYPE", &message);
    };
    let slow = shared.lock().slow_down(plan.obj.name());
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    if shared.lock().refuses_queries_of(plan.obj.name()) {
        return query_error(&QueryError::not_supported(plan.obj.name()));
    }
    let gzip = accepts_gzip(&headers);
    let version = version_of(uri.path());
    if let Err(e) = plan.check_org(&org) {
        return query_error(&e);
    }
    let page_size = batch_size(&headers)
        .map_or(org.spec().page_size, |asked| {
            asked.min(org.spec().page_size)
        })
        .max(1);
    if plan.count_only {
        let body = json!({"totalSize": plan.count(&org), "done": true, "records": []});
        return json_answer(&shared, &body, gzip);
    }
    let plan = Arc::new(plan);
    let (total, sorted) = match result_set(&plan, &org).await {
        Ok(counted) => counted,
        Err(answer) => return answer,
    };
    let mut chain = Chain {
        plan,
        total,
        sorted,
        pages: HashMap::from([(0, (0, 0))]),
        expire_at_page: None,
        cut_json_at_page: None,
        cut_gzip_at_page: None,
        page_size,
    };
    {
        let mut state = shared.lock();
        match state.faults.expire_session_after_page {
            Some(0) => {
                state.faults.expire_session_after_page = None;
                state.expire_access_tokens();
                state.uncount_api_call();
                return refused(ApiRefusal::InvalidSession);
            }
            // Only a chain that has a page k + 1 takes the fault; smaller queries leave it
            // armed for a later one.
            Some(k) if total > u64::from(k) * page_size as u64 => {
                state.faults.expire_session_after_page = None;
                chain.expire_at_page = Some(k);
            }
            _ => {}
        }
        // The page faults go to the first chain that has their page (every query has a
        // first page).
        let has_page = |k: u32| k == 0 || total > u64::from(k) * page_size as u64;
        if let Some(k) = state.faults.truncated_json_at_page
            && has_page(k)
        {
            state.faults.truncated_json_at_page = None;
            chain.cut_json_at_page = Some(k);
        }
        if let Some(k) = state.faults.damaged_gzip_at_page
            && has_page(k)
        {
            state.faults.damaged_gzip_at_page = None;
            chain.cut_gzip_at_page = Some(k);
        }
    }
    serve_page(&shared, &org, chain, None, 0, &version, gzip)
}

/// The rows of a query's result set (`totalSize`) and, for an `ORDER BY` other than `Id`, their
/// positions in order; counting (and sorting) walks every row, so it runs off the async
/// workers. A 500 answer if that task failed.
pub(crate) async fn result_set(
    plan: &Arc<Plan>,
    org: &Arc<SyntheticOrg>,
) -> Result<(u64, Option<Arc<Vec<u64>>>), Response> {
    let (plan, org) = (Arc::clone(plan), Arc::clone(org));
    tokio::task::spawn_blocking(move || {
        if plan.natural_order() {
            (plan.count(&org), None)
        } else {
            let sorted = plan.sorted_positions(&org);
            (sorted.len() as u64, Some(Arc::new(sorted)))
        }
    })
    .await
    .map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred.",
        )
    })
}

/// Up to `max` rows of a result set from `start` (a position, or an index into `sorted`):
/// their positions, and where the rows after them start.
pub(crate) fn positions(
    plan: &Plan,
    org: &SyntheticOrg,
    sorted: Option<&Vec<u64>>,
    start: u64,
    max: usize,
) -> (Vec<u64>, u64) {
    match sorted {
        Some(sorted) => {
            let from = usize::try_from(start)
                .unwrap_or(usize::MAX)
                .min(sorted.len());
            let to = from.saturating_add(max).min(sorted.len());
            (sorted[from..to].to_vec(), to as u64)
        }
        None => plan.scan(org, start, max),
    }
}

/// `GET .../query/01g…-OFFSET`: the next page of a chain.
pub(crate) async fn query_more(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    shared.lock().count_query();
    let invalid = || {
        error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    };
    let locator = uri.path().rsplit('/').next().unwrap_or_default();
    let Some((id, offset)) = locator.split_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<u64>() else {
        return invalid();
    };
    let (Some(org), Some(chain)) = (shared.org.clone(), shared.lock().chains.get(id).cloned())
    else {
        return invalid();
    };
    let Some((_, page_no)) = chain.pages.get(&offset).copied() else {
        return invalid();
    };
    let slow = shared.lock().slow_down(chain.plan.obj.name());
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    if shared.lock().refuses_queries_of(chain.plan.obj.name()) {
        return query_error(&QueryError::not_supported(chain.plan.obj.name()));
    }
    if chain.expire_at_page == Some(page_no) {
        let mut state = shared.lock();
        if let Some(stored) = state.chains.get_mut(id) {
            stored.expire_at_page = None;
        }
        state.expire_access_tokens();
        state.uncount_api_call();
        return refused(ApiRefusal::InvalidSession);
    }
    let version = version_of(uri.path());
    serve_page(
        &shared,
        &org,
        chain,
        Some(id.to_owned()),
        offset,
        &version,
        accepts_gzip(&headers),
    )
}

fn serve_page(
    shared: &Shared,
    org: &SyntheticOrg,
    mut chain: Chain,
    id: Option<String>,
    offset: u64,
    version: &str,
    gzip: bool,
) -> Response {
    let (start, page_no) = chain.pages.get(&offset).copied().unwrap_or((0, 0));
    let remaining = chain.total.saturating_sub(offset);
    let max = usize::try_from(remaining)
        .unwrap_or(usize::MAX)
        .min(chain.page_size);
    let plan: Arc<Plan> = Arc::clone(&chain.plan);
    let (positions, next) = positions(&plan, org, chain.sorted.as_deref(), start, max);
    let delivered = offset + positions.len() as u64;
    let done = delivered >= chain.total || positions.is_empty();
    let total = chain.total;
    let mut next_records_url = None;
    // The chain this page belongs to: the one it came from, or the one it opens.
    let mut chain_id = id.clone();
    let damage = {
        let mut state = shared.lock();
        // A page asked for again is damaged no more: the stored chain is cleared.
        let damage = match id.as_deref().and_then(|id| state.chains.get_mut(id)) {
            Some(stored) => Damage::take(stored, page_no),
            None => Damage::take(&mut chain, page_no),
        };
        state.log_served_page(ServedPage {
            object: plan.obj.name(),
            page: page_no,
            damaged: damage.cut_json || damage.cut_gzip,
        });
        damage
    };
    if !done {
        chain.pages.insert(delivered, (next, page_no + 1));
        let mut state = shared.lock();
        let id = match id {
            Some(id) => {
                if let Some(stored) = state.chains.get_mut(&id) {
                    stored.pages.insert(delivered, (next, page_no + 1));
                }
                id
            }
            None => state.open_chain(chain),
        };
        next_records_url = Some(format!("/services/data/v{version}/query/{id}-{delivered}"));
        chain_id = Some(id);
    }
    let body = PageBody {
        total_size: total,
        done,
        next_records_url,
        records: Records {
            plan: &plan,
            org,
            positions: &positions,
            version,
        },
    };
    let mut answer = damaged_json_answer(shared, &body, gzip, damage);
    if let Some(id) = chain_id {
        answer.extensions_mut().insert(ChainOf(id));
    }
    answer
}

/// The query chain or Bulk API 2.0 job an answer belongs to, for the time served per chain
/// ([`crate::Control::longest_chain_served`]).
#[derive(Debug, Clone)]
pub(crate) struct ChainOf(pub(crate) String);

/// A page as Salesforce writes it: `totalSize`, `done`, `nextRecordsUrl` while not done,
/// `records`.
#[derive(serde::Serialize)]
struct PageBody<'a> {
    #[serde(rename = "totalSize")]
    total_size: u64,
    done: bool,
    #[serde(rename = "nextRecordsUrl", skip_serializing_if = "Option::is_none")]
    next_records_url: Option<String>,
    records: Records<'a>,
}

/// The page's records, serialised one by one straight from the org.
struct Records<'a> {
    plan: &'a Plan,
    org: &'a SyntheticOrg,
    positions: &'a [u64],
    version: &'a str,
}

impl serde::Serialize for Records<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let mut seq = serializer.serialize_seq(Some(self.positions.len()))?;
        for pos in self.positions {
            seq.serialize_element(&self.plan.view(self.org, *pos, self.version))?;
        }
        seq.end()
    }
}

/// `GET .../sobjects/OBJECT/describe`.
pub(crate) async fn describe(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let object = uri
        .path()
        .trim_end_matches('/')
        .trim_end_matches("/describe")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (Some(org), Some(obj)) = (shared.org.as_ref(), Obj::from_name(&object)) else {
        return not_found().await;
    };
    if org.hides(obj) {
        return not_found().await;
    }
    let fields: Vec<Value> = obj
        .fields()
        .iter()
        .filter(|field| org.has_field(obj, field.name))
        .map(|field| {
            let (relationship, reference_to) = match field.kind {
                Kind::Ref(target, rel) => (json!(rel), json!([target.name()])),
                _ => (Value::Null, json!([])),
            };
            json!({
                "name": field.name,
                "label": field.name,
                "type": field.kind.soap_type(),
                "nillable": !matches!(field.kind, Kind::Id | Kind::Bool),
                "relationshipName": relationship,
                "referenceTo": reference_to,
            })
        })
        .collect();
    let body = json!({
        "name": obj.name(),
        "label": obj.name(),
        "queryable": true,
        "retrieveable": true,
        "fields": fields,
    });
    json_answer(&shared, &body, accepts_gzip(&headers))
}
