//! A 100,000-user org: built without per-user state, first page of `User` served.
//!
//! Its own test binary (one test) so the counting allocator sees nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use invhost_sim_salesforce::{OrgSpec, SimConfig, Simulator, SyntheticOrg};
use serde_json::Value;

/// Counts live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const USERS: usize = 100_000;

#[tokio::test]
async fn a_big_org_needs_no_per_user_memory_and_pages_at_once() {
    let spec = OrgSpec {
        users: USERS,
        ..OrgSpec::default()
    };
    // Building the org walks every user once but keeps nothing per user: the peak
    // heap growth stays far below even one byte per user.
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let org = SyntheticOrg::new(&spec, chrono_now());
    let grown = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        grown < USERS / 4,
        "building the org peaked at {grown} bytes"
    );
    assert_eq!(org.ground_truth().users.total, USERS as u64);
    drop(org);

    let sim = Simulator::start(SimConfig {
        device_interval_secs: 1,
        org: Some(spec),
        ..SimConfig::default()
    })
    .await
    .expect("starts");
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sim.base_url());
    let codes: Value = http
        .post(url("/services/oauth2/token"))
        .form(&[
            ("response_type", "device_code"),
            ("client_id", "SIM_CONSUMER_KEY"),
        ])
        .send()
        .await
        .expect("codes")
        .json()
        .await
        .expect("JSON");
    assert!(
        sim.control()
            .approve(codes["user_code"].as_str().expect("user code"))
    );
    let tokens: Value = http
        .post(url("/services/oauth2/token"))
        .form(&[
            ("grant_type", "device"),
            ("client_id", "SIM_CONSUMER_KEY"),
            ("code", codes["device_code"].as_str().expect("device code")),
        ])
        .send()
        .await
        .expect("tokens")
        .json()
        .await
        .expect("JSON");
    let token = tokens["access_token"].as_str().expect("token");

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let page: Value = http
        .get(url("/services/data/v62.0/query"))
        .query(&[(
            "q",
            "SELECT Id, Username, IsActive, LastLoginDate, Profile.UserLicense.Name FROM User",
        )])
        .bearer_auth(token)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    let grown = PEAK.load(Ordering::Relaxed) - before;
    assert_eq!(page["totalSize"], USERS);
    assert_eq!(page["done"], false);
    assert_eq!(page["records"].as_array().map(Vec::len), Some(2000));
    // One page of 2000 records, not 100,000 users: well under 100 bytes per user.
    assert!(
        grown < USERS * 100,
        "the first page peaked at {grown} bytes"
    );
    sim.shutdown();
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
