//! `invhost serve` with the fixture plugin: scheduled runs, schedule changes taken without a
//! restart, SIGKILL and SIGTERM mid-run, one serve per data directory, transient failures
//! retried within the slot, and the read-only HTTP API (JSON, no secrets).
//!
//! Each test runs its own serve on a free loopback port and reads the outcome from the
//! database (as `tests/e2e/runs.rs` does), so that no CLI command sweeps runs on the way.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    process::{Child, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use invhost_testkit::free_port;
use serde_json::{Value, json};

use crate::support::*;

fn schedule(env: &Env, connection: &str, schedule: &str, definition: &[&str]) {
    let mut args = vec!["schedules", "add", schedule];
    args.extend(definition);
    env.run(&args).success();
    env.run(&["connections", "schedule", connection, schedule])
        .success();
}

/// The runs as stored, oldest first: (id, trigger, state, retryable, error_kind, started_at
/// in seconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
struct StoredRun {
    id: i64,
    trigger: String,
    state: String,
    retryable: bool,
    error_kind: Option<String>,
    started: i64,
}

fn stored_runs(env: &Env) -> Vec<StoredRun> {
    let db = db(env);
    let mut statement = db
        .prepare(
            "SELECT id, trigger, state, retryable, error_kind,
                    CAST(strftime('%s', started_at) AS INTEGER)
             FROM runs ORDER BY id",
        )
        .expect("query");
    statement
        .query_map([], |r| {
            Ok(StoredRun {
                id: r.get(0)?,
                trigger: r.get(1)?,
                state: r.get(2)?,
                retryable: r.get(3)?,
                error_kind: r.get(4)?,
                started: r.get(5)?,
            })
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("runs")
}

fn scheduled_successes(env: &Env) -> usize {
    stored_runs(env)
        .iter()
        .filter(|r| r.trigger == "schedule" && r.state == "succeeded")
        .count()
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, serve: Option<&Serve>, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; serve log:\n{}",
            serve.map(Serve::log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a running import has written at least `rows` accounts into its snapshot.
fn wait_for_building_rows(env: &Env, serve: &Serve, rows: i64) {
    wait_until(
        Duration::from_secs(30),
        "an import in progress",
        Some(serve),
        || {
            db(env)
                .query_row(
                    "SELECT COUNT(*) FROM accounts a JOIN snapshots s ON s.id = a.snapshot_id
                 WHERE s.state = 'building'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap_or(0)
                >= rows
        },
    );
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}

/// One HTTP/1.1 request on loopback (no client library needed for a read-only JSON API).
fn http(port: u16, method: &str, path: &str) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("transfer-encoding: chunked"),
        "expected a sized body: {head}"
    );
    assert!(
        lower.contains("content-type: application/json"),
        "JSON only: {head}"
    );
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

/// A running `invhost serve`, killed when dropped. Its stderr (the log) is collected.
struct Serve {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts serve on a free port and waits until its HTTP API answers.
    fn start(env: &Env, extra: &[&str]) -> Serve {
        for _ in 0..3 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut args = vec!["serve", "--listen", listen.as_str()];
            args.extend(extra);
            let mut child = env
                .invhost(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("invhost serve starts");
            let log = Arc::new(Mutex::new(String::new()));
            let stderr = child.stderr.take().expect("stderr");
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut log) = sink.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            });
            let mut serve = Serve { child, port, log };
            match serve.wait_healthy() {
                Ok(()) => return serve,
                // Another test took the port between the check and the bind: try another.
                Err(log) if log.contains("cannot listen on") => continue,
                Err(log) => panic!("serve stopped at start:\n{log}"),
            }
        }
        panic!("could not find a free port for serve");
    }

    /// Waits until `GET /api/v1/health` answers; `Err(log)` when serve exited instead.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(answer) = http(self.port, "GET", "/api/v1/health") {
                assert_eq!(answer.status, 200, "{answer:#?}");
                assert_eq!(answer.json(), json!({"status": "ok"}));
                return Ok(());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return Err(self.log());
            }
            assert!(
                Instant::now() < deadline,
                "serve never answered:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> Answer {
        http(self.port, "GET", path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the process to exit; panics after `limit`. Returns the status and how long
    /// it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "serve did not exit within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_every_5s_schedule_runs_the_connection_again_and_again() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(5, json!({})));
    schedule(&env, "alpha", "fast", &["--every", "5s"]);
    let serve = Serve::start(&env, &[]);
    let started = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "two scheduled runs",
        Some(&serve),
        || scheduled_successes(&env) >= 2,
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(current_accounts(&env, "alpha"), 5);
    // Two slots, not one slot run twice: the second run started in a later five-second slot
    // (slots are multiples of 5 s since the epoch, and a slot is due only after the previous
    // run started).
    let runs = stored_runs(&env);
    assert!(runs[0].started / 5 < runs[1].started / 5, "{runs:?}");
    // The next run time is shown while serve runs.
    let listed = env.run(&["schedules", "list", "--json"]).json();
    assert!(listed[0]["next_run"].is_string(), "{listed}");
    assert_eq!(listed[0]["connections"], json!(["alpha"]));
    let text = env.run(&["schedules", "list"]);
    assert!(
        text.success().contains("every 5s") && text.stdout.contains(" UTC"),
        "{text:#?}"
    );
    // One log line per run start and end, without colours (stderr is not a terminal).
    let log = serve.log();
    assert!(
        log.contains("Import started.") && log.contains("Import ended."),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "no ANSI colours: {log}");
}

#[test]
fn a_schedule_assigned_or_removed_while_serving_takes_effect_without_a_restart() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(5, json!({})));
    env.run(&["schedules", "add", "fast", "--every", "5s"])
        .success();
    let serve = Serve::start(&env, &[]);
    assert!(stored_runs(&env).is_empty());
    env.run(&["connections", "schedule", "alpha", "fast"])
        .success();
    wait_until(
        Duration::from_secs(30),
        "a scheduled run after assigning",
        Some(&serve),
        || scheduled_successes(&env) >= 1,
    );
    env.run(&["connections", "schedule", "alpha", "--none"])
        .success();
    // Wait for a run that was already under way, then for more than one slot: nothing new.
    wait_until(
        Duration::from_secs(30),
        "no run in progress",
        Some(&serve),
        || count(&env, "SELECT COUNT(*) FROM runs WHERE state = 'running'") == 0,
    );
    let after = stored_runs(&env).len();
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(
        stored_runs(&env).len(),
        after,
        "no scheduled run after unassigning:\n{}",
        serve.log()
    );
}

#[test]
fn sigkill_mid_run_is_marked_interrupted_after_a_restart_and_the_schedule_goes_on() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(
        &env,
        "alpha",
        &fixture_settings(3000, json!({"batch": 20, "pause_ms": 50})),
    );
    schedule(&env, "alpha", "fast", &["--every", "5s"]);
    let mut serve = Serve::start(&env, &[]);
    wait_for_building_rows(&env, &serve, 40);
    serve.signal("KILL");
    serve.wait_exit(Duration::from_secs(10));
    let killed = stored_runs(&env);
    let dead = killed.last().expect("a run").clone();
    assert_eq!(dead.state, "running", "nobody marked it yet: {killed:?}");
    // Quick imports from now on.
    update_connection(&env, "alpha", &fixture_settings(7, json!({})));
    let serve = Serve::start(&env, &[]);
    wait_until(
        Duration::from_secs(30),
        "the dead run marked interrupted and a later scheduled run",
        Some(&serve),
        || {
            let runs = stored_runs(&env);
            let marked = runs
                .iter()
                .any(|r| r.id == dead.id && r.state == "interrupted");
            let next = runs
                .iter()
                .any(|r| r.id > dead.id && r.state == "succeeded" && r.trigger == "schedule");
            marked && next
        },
    );
    let error_kind: String = db(&env)
        .query_row(
            "SELECT error_kind FROM runs WHERE id = ?1",
            [dead.id],
            |r| r.get(0),
        )
        .expect("run");
    assert_eq!(error_kind, "interrupted");
    assert_eq!(current_accounts(&env, "alpha"), 7);
}

#[test]
fn sigterm_mid_run_cancels_it_keeps_the_previous_snapshot_and_exits_promptly() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(30, json!({})));
    env.run(&["run", "alpha"]).success();
    update_connection(
        &env,
        "alpha",
        &fixture_settings(5000, json!({"batch": 20, "pause_ms": 100})),
    );
    schedule(&env, "alpha", "fast", &["--every", "5s"]);
    let mut serve = Serve::start(&env, &[]);
    wait_for_building_rows(&env, &serve, 40);
    serve.signal("TERM");
    let (status, took) = serve.wait_exit(Duration::from_secs(10));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(status.code(), Some(0), "a clean stop:\n{}", serve.log());
    let last = stored_runs(&env).last().expect("runs").clone();
    assert_eq!(
        (last.trigger.as_str(), last.state.as_str()),
        ("schedule", "cancelled"),
        "{}",
        serve.log()
    );
    assert_eq!(current_accounts(&env, "alpha"), 30);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 30);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM snapshots WHERE state = 'building'"
        ),
        0
    );
    assert!(serve.log().contains("Stopping"), "{}", serve.log());
    // The slot the shutdown cut short counts as not served: the schedule's progress is before
    // the cancelled run, so the next start catches it up at once.
    let (handled, started, before): (String, String, bool) = db(&env)
        .query_row(
            "SELECT s.handled_through, r.started_at,
                    julianday(s.handled_through) < julianday(r.started_at)
             FROM schedule_state s, runs r WHERE r.id = ?1",
            [last.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("schedule state");
    assert!(
        before,
        "progress {handled} is not before the cancelled run ({started})"
    );
    assert!(
        serve.log().contains("it runs at the next start"),
        "{}",
        serve.log()
    );
}

#[test]
fn a_second_serve_on_the_same_data_directory_is_refused() {
    let env = Env::with_plugins(&[GOOD]);
    let mut first = Serve::start(&env, &[]);
    let port = free_port();
    let second = env.run(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
    let stderr = second.failure();
    assert!(
        stderr.contains(&format!(
            "another `invhost serve` (process {}) is already running on the data directory",
            first.child.id()
        )),
        "{second:#?}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    // The first one goes on, and stops cleanly on Ctrl-C (SIGINT).
    assert_eq!(first.get("/api/v1/health").status, 200);
    first.signal("INT");
    let (status, took) = first.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", first.log());
    assert!(took < Duration::from_secs(10));
    // Once it stopped, another may start.
    let again = Serve::start(&env, &[]);
    assert_eq!(again.get("/api/v1/health").status, 200);
}

#[test]
fn a_busy_listen_address_is_refused_with_its_name() {
    let env = Env::with_plugins(&[GOOD]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let run = env.run(&["serve", "--listen", &address]);
    assert!(
        run.failure()
            .contains(&format!("cannot listen on {address}: "))
            && run.stderr.contains("--listen"),
        "{run:#?}"
    );
    let bad = env.run(&["serve", "--listen", "localhost"]);
    assert!(bad.failure().contains("write IP:PORT"), "{bad:#?}");
}

#[test]
fn a_transient_failure_is_retried_within_the_slot_and_every_attempt_is_recorded() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(
        &env,
        "alpha",
        &fixture_settings(4, json!({"fail_transient_times": 2})),
    );
    schedule(&env, "alpha", "tens", &["--every", "10s"]);
    let serve = Serve::start(&env, &["--retry-delays", "1s,1s"]);
    wait_until(
        Duration::from_secs(40),
        "a scheduled success after two transient failures",
        Some(&serve),
        || scheduled_successes(&env) >= 1,
    );
    let runs = stored_runs(&env);
    let attempts: Vec<(&str, &str, bool, Option<&str>)> = runs
        .iter()
        .take(3)
        .map(|r| {
            (
                r.trigger.as_str(),
                r.state.as_str(),
                r.retryable,
                r.error_kind.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("schedule", "failed", true, Some("network")),
            ("schedule", "failed", true, Some("network")),
            ("schedule", "succeeded", false, None),
        ],
        "{}",
        serve.log()
    );
    // All three within one ten-second slot.
    assert!(
        runs[..3]
            .iter()
            .all(|r| r.started / 10 == runs[0].started / 10),
        "{runs:?}"
    );
    assert_eq!(current_accounts(&env, "alpha"), 4);
    let log = serve.log();
    assert!(
        log.contains("Scheduled import failed with a transient error; retrying."),
        "{log}"
    );
}

#[test]
fn the_http_api_answers_json_and_never_shows_a_secret() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(6, json!({})));
    env.run(&["run", "alpha"]).success();
    env.run(&[
        "schedules",
        "add",
        "nightly",
        "--daily",
        "02:30",
        "--tz",
        "Europe/Berlin",
    ])
    .success();
    env.run(&["connections", "schedule", "alpha", "nightly"])
        .success();
    let serve = Serve::start(&env, &[]);
    let mut bodies = Vec::new();
    let mut get = |path: &str, status: u16| {
        let answer = serve.get(path);
        assert_eq!(answer.status, status, "{path}: {answer:#?}");
        bodies.push(answer.body.clone());
        answer.json()
    };
    assert_eq!(get("/api/v1/health", 200), json!({"status": "ok"}));
    let version = get("/api/v1/version", 200);
    assert!(version["host_version"].is_string() && version["plugin_api_version"].is_string());
    let index = get("/api/v1", 200);
    assert!(
        index["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .any(|r| r["path"] == "/api/v1/runs")
    );
    let plugins = get("/api/v1/plugins", 200);
    assert_eq!(plugins["plugins"][0]["plugin_id"], "fixture");
    assert_eq!(plugins["plugins"][0]["plugin_version"], "1.2.3");
    assert_eq!(plugins["plugins"][0]["source_types"][0]["id"], "fixture");
    let connections = get("/api/v1/connections", 200);
    let alpha = &connections["connections"][0];
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["schedule"], "nightly");
    assert_eq!(alpha["settings"]["token"]["value"], "********");
    let runs = get("/api/v1/runs?limit=5&connection=alpha", 200);
    assert_eq!(runs["runs"][0]["connection"], "alpha");
    assert_eq!(runs["runs"][0]["state"], "succeeded");
    assert_eq!(runs["runs"][0]["trigger"], "manual");
    assert_eq!(
        get("/api/v1/runs?connection=nobody", 200),
        json!({"runs": []})
    );
    let schedules = get("/api/v1/schedules", 200);
    assert_eq!(schedules["schedules"][0]["name"], "nightly");
    assert_eq!(schedules["schedules"][0]["connections"], json!(["alpha"]));
    assert!(schedules["schedules"][0]["next_run"].is_string());
    let missing = get("/api/v1/nothing", 404);
    assert_eq!(missing["error"], "not_found");
    assert_eq!(get("/", 404)["error"], "not_found");
    let bad = get("/api/v1/runs?limit=0", 400);
    assert!(
        bad["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit must be a number from 1 to 1000")),
        "{bad}"
    );
    get("/api/v1/runs?lmit=3", 400);
    let post = http(serve.port, "POST", "/api/v1/connections").expect("POST");
    assert_eq!(post.status, 405, "{post:#?}");
    assert_eq!(post.json()["error"], "method_not_allowed");
    bodies.push(post.body);
    for body in &bodies {
        assert!(
            !body.contains(FIXTURE_TOKEN),
            "a secret in an answer: {body}"
        );
    }
    assert!(!serve.log().contains(FIXTURE_TOKEN), "a secret in the log");
}
