//! `cargo xtask bench`: imports synthetic orgs from the Salesforce simulator with the release
//! build and prints what docs/PERFORMANCE.md reports.
//!
//! For each scenario it starts `invhost-sim-salesforce` (its own process, so that its memory is
//! not counted), adds a connection in a fresh data directory, generates the refresh token with
//! the simulator's automatic approval, then runs `invhost run bench --json` and measures:
//! wall time, records stored, API calls (the run's own count and the simulator's), and the peak
//! resident memory of the `invhost` process (`ru_maxrss` from `wait4`). With `--baseline` it
//! also times `xtask/bench/baseline.py`, a sequential Python client, twice: fetching every object
//! through the REST API's query pages, and making the requests the import makes (`LoginHistory`
//! as a Bulk API 2.0 job, as `import.login_history_api = "auto"` does for a big org).

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// One import to measure.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    users: u64,
    latency_ms: u64,
}

/// What one scenario measured.
#[derive(Debug)]
struct Measured {
    scenario: Scenario,
    seconds: f64,
    records: u64,
    api_calls_run: u64,
    api_calls_sim: u64,
    requests_sim: u64,
    peak_rss_kib: u64,
    /// CPU time (user + system) of the invhost process.
    cpu_seconds: f64,
    /// CPU time the simulator spent during the import.
    sim_cpu_seconds: f64,
    /// The most pages one of the queries the import issued needed (the simulator's count).
    longest_chain: u64,
    /// The most pages one query would need if `LoginHistory` were read unsplit.
    unsplit_chain: u64,
    /// The time the longest chain's requests spent in the simulator (latency and building
    /// each answer), in seconds.
    chain_served_seconds: f64,
    pages_needed: u64,
    /// The Python client: (REST pages only, the import's requests).
    baseline_seconds: Option<(f64, f64)>,
}

const PAGE_SIZE: u64 = 2000;

/// Parses `bench [--users 10000,100000] [--latency-ms 0,100] [--runs N] [--baseline]`.
pub fn bench(args: &[String]) -> Result<(), String> {
    let mut users = vec![10_000, 100_000];
    let mut latencies = vec![0];
    let mut baseline = false;
    let mut runs = 1;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut list = |name: &str| -> Result<Vec<u64>, String> {
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            value
                .split(',')
                .map(|n| n.trim().parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{name} {value}: {e}"))
        };
        match arg.as_str() {
            "--users" => users = list("--users")?,
            "--latency-ms" => latencies = list("--latency-ms")?,
            "--baseline" => baseline = true,
            "--runs" => match list("--runs")?.as_slice() {
                [n] if *n > 0 => runs = *n,
                _ => return Err("--runs needs one number, 1 or more".to_owned()),
            },
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: cargo xtask bench [--users N,N] [--latency-ms MS,MS] [--runs N] [--baseline]"
                ));
            }
        }
    }
    super::cargo(&[
        "build",
        "--release",
        "-p",
        "invhost",
        "-p",
        "invhost-salesforce",
        "-p",
        "invhost-sim-salesforce",
    ])?;
    let release = target_dir().join("release");
    let installed = install(&release)?;
    println!("{}", machine());
    let mut results = Vec::new();
    let mut spreads = Vec::new();
    let mut ratios = Vec::new();
    for &latency_ms in &latencies {
        // Median peak RSS per size, for the ratio of each size to the smallest.
        let mut rss = Vec::new();
        for &users in &users {
            let scenario = Scenario { users, latency_ms };
            let mut measured = Vec::new();
            for run in 1..=runs {
                eprintln!(
                    "xtask: bench: {users} users, {latency_ms} ms latency, run {run} of {runs}"
                );
                let m = run_scenario(&release, &installed, scenario, baseline)?;
                print_row(&m);
                measured.push(m);
            }
            spreads.push(spread(&measured));
            rss.push((
                users,
                median(measured.iter().map(|m| m.peak_rss_kib as f64)),
            ));
            // The table shows the run of median wall time (this machine's noise is in the
            // spread below it).
            measured.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            results.push(measured.swap_remove(measured.len() / 2));
        }
        rss.sort_by_key(|&(users, _)| users);
        if let Some((&(smallest, base), others)) = rss.split_first() {
            for &(users, size_median) in others {
                ratios.push(format!(
                    "- peak RSS at {users} users against {smallest}, {latency_ms} ms, medians of the runs: {:.1} / {:.1} MiB = {:.2}x",
                    size_median / 1024.0,
                    base / 1024.0,
                    size_median / base
                ));
            }
        }
    }
    println!();
    print_table(&results);
    if runs > 1 {
        println!();
        for line in spreads {
            println!("{line}");
        }
    }
    ratios.extend(results.iter().flat_map(target_ratios));
    if !ratios.is_empty() {
        println!();
        for line in ratios {
            println!("{line}");
        }
    }
    Ok(())
}

/// The ratios issue #5's targets are judged by, for the run shown in the table: with latency,
/// the wall time against the longest chain (and the chain `LoginHistory` unsplit would make)
/// times the latency; with `--baseline`, each Python client's time against the import's.
fn target_ratios(m: &Measured) -> Vec<String> {
    let Scenario { users, latency_ms } = m.scenario;
    let mut lines = Vec::new();
    if latency_ms > 0 && m.longest_chain > 0 {
        let chain = |pages: u64| (pages * latency_ms) as f64 / 1000.0;
        lines.push(format!(
            "- {users} users, {latency_ms} ms: wall against the longest chain x latency: {:.2} / {:.1} s = {:.2}x; against LoginHistory's chain unsplit ({} requests): {:.2}x",
            m.seconds,
            chain(m.longest_chain),
            m.seconds / chain(m.longest_chain),
            m.unsplit_chain,
            m.seconds / chain(m.unsplit_chain.max(1)),
        ));
    }
    if let Some((rest, same)) = m.baseline_seconds {
        lines.push(format!(
            "- {users} users, {latency_ms} ms: Python against invhost: REST pages {rest:.2} / {:.2} s = {:.2}x, the import's requests {same:.2} / {:.2} s = {:.2}x",
            m.seconds,
            rest / m.seconds,
            m.seconds,
            same / m.seconds,
        ));
    }
    lines
}

/// The median of `values` (the mean of the middle two of an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Minimum and maximum over the runs of one scenario: wall time, peak RSS, the baseline.
fn spread(runs: &[Measured]) -> String {
    let range = |values: Vec<f64>| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{low:.2} to {high:.2}")
    };
    let scenario = runs.first().map(|m| m.scenario);
    let mut line = format!(
        "- {} users, {} ms, {} runs: wall {} s, peak RSS {} MiB",
        scenario.map_or(0, |s| s.users),
        scenario.map_or(0, |s| s.latency_ms),
        runs.len(),
        range(runs.iter().map(|m| m.seconds).collect()),
        range(
            runs.iter()
                .map(|m| m.peak_rss_kib as f64 / 1024.0)
                .collect()
        ),
    );
    let baselines: Vec<(f64, f64)> = runs.iter().filter_map(|m| m.baseline_seconds).collect();
    if !baselines.is_empty() {
        line.push_str(&format!(
            ", Python REST pages {} s, Python with the import's requests {} s",
            range(baselines.iter().map(|b| b.0).collect()),
            range(baselines.iter().map(|b| b.1).collect())
        ));
    }
    line
}

/// `invhost` and the Salesforce plugin copied alone into `target/bench-install/`, as they are
/// installed, and measured from there: run from `target/release`, `invhost` would also load
/// every other plugin library there (the test fixtures, once the tests were built in release),
/// whose code adds a few MiB to the peak RSS of every run and would make the figures depend on
/// what was built before.
fn install(release: &Path) -> Result<PathBuf, String> {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX, EXE_SUFFIX};
    let installed = target_dir().join("bench-install");
    let _ = std::fs::remove_dir_all(&installed);
    std::fs::create_dir_all(&installed).map_err(|e| format!("{}: {e}", installed.display()))?;
    for file in [
        format!("invhost{EXE_SUFFIX}"),
        format!("{DLL_PREFIX}invhost_salesforce{DLL_SUFFIX}"),
    ] {
        std::fs::copy(release.join(&file), installed.join(&file))
            .map_err(|e| format!("copying {file} to {}: {e}", installed.display()))?;
    }
    Ok(installed)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The CPU model, core count and memory, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!("machine: {model}, {cores} cores, {mem_gib:.0} GiB")
}

/// A simulator process, killed on drop.
struct Sim {
    child: Child,
    base: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(release: &Path, scenario: Scenario) -> Result<Sim, String> {
    let mut child = Command::new(release.join("invhost-sim-salesforce"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--org-users",
            &scenario.users.to_string(),
            "--auto-approve-after",
            "1",
            "--interval",
            "1",
            "--latency-ms",
            &scenario.latency_ms.to_string(),
            "--api-daily-max",
            "100000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("could not start the simulator: {e}"))?;
    let stdout = child.stdout.take().ok_or("no simulator stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the simulator's address: {e}"))?;
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected simulator output: {line}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(Sim { child, base })
}

/// `GET` on the simulator's loopback address; the body as JSON.
fn sim_get(base: &str, path: &str) -> Result<Value, String> {
    let address = base.trim_start_matches("http://");
    let mut stream =
        TcpStream::connect(address).map_err(|e| format!("connecting to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or("an HTTP answer without a body")?;
    if head.contains("Transfer-Encoding: chunked") || head.contains("transfer-encoding: chunked") {
        return Err(format!("{path}: chunked answers are not read here"));
    }
    serde_json::from_str(body).map_err(|e| format!("{path}: {e}"))
}

fn invhost(installed: &Path, data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(installed.join("invhost"));
    command
        .env_remove("INVHOST_DATA_DIR")
        .env_remove("INVHOST_PLUGINS_DIR")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--plugins-dir")
        .arg(installed)
        .args(args);
    command
}

fn checked(mut command: Command, what: &str) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: could not start: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One run: the simulator from `release`, `invhost` from `installed`.
fn run_scenario(
    release: &Path,
    installed: &Path,
    scenario: Scenario,
    baseline: bool,
) -> Result<Measured, String> {
    let sim = start_sim(release, scenario)?;
    let data_dir = std::env::temp_dir().join(format!(
        "invhost-bench-{}-{}-{}",
        std::process::id(),
        scenario.users,
        scenario.latency_ms
    ));
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
    let result = measure(installed, &sim, &data_dir, scenario, baseline);
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

fn measure(
    installed: &Path,
    sim: &Sim,
    data_dir: &Path,
    scenario: Scenario,
    baseline: bool,
) -> Result<Measured, String> {
    let settings = serde_json::json!({
        "login_url": sim.base,
        "consumer_key": "SIM_CONSUMER_KEY",
        "credentials": {"source": "local", "consumer_secret": "SIM_CONSUMER_SECRET", "refresh_token": ""}
    });
    let file = data_dir.join("bench.json");
    std::fs::write(&file, settings.to_string()).map_err(|e| e.to_string())?;
    let file = file.to_str().ok_or("temporary path is not UTF-8")?;
    checked(
        invhost(
            installed,
            data_dir,
            &[
                "connections",
                "add",
                "bench",
                "--type",
                "salesforce",
                "--settings",
                file,
            ],
        ),
        "connections add",
    )?;
    checked(
        invhost(
            installed,
            data_dir,
            &[
                "connections",
                "generate-token",
                "bench",
                "--no-browser",
                "--timeout",
                "60",
            ],
        ),
        "connections generate-token",
    )?;
    let truth = sim_get(&sim.base, "/__sim/ground-truth")?;
    let unsplit_chain = unsplit_chain(&truth);
    let before = sim_get(&sim.base, "/__sim/stats")?;
    let sim_cpu_before = process_cpu_seconds(sim.child.id());
    let started = Instant::now();
    let child = invhost(installed, data_dir, &["run", "bench", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("invhost run: {e}"))?;
    let (output, peak_rss_kib, cpu_seconds) = wait_with_rusage(child)?;
    let seconds = started.elapsed().as_secs_f64();
    let sim_cpu_seconds = process_cpu_seconds(sim.child.id()) - sim_cpu_before;
    let after = sim_get(&sim.base, "/__sim/stats")?;
    let chains = sim_get(&sim.base, "/__sim/chains")?;
    let runs: Value = serde_json::from_str(&output)
        .map_err(|e| format!("invhost run --json printed no JSON ({e}): {output}"))?;
    let run = &runs[0];
    if run["state"] != "succeeded" {
        return Err(format!("the import did not succeed: {run}"));
    }
    let records = run["counts"]
        .as_object()
        .map_or(0, |c| c.values().filter_map(Value::as_u64).sum());
    let delta = |key: &str| {
        after[key]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[key].as_u64().unwrap_or(0))
    };
    let baseline_seconds = if baseline {
        Some((
            python_baseline(&sim.base, "rest")?,
            python_baseline(&sim.base, "bulk")?,
        ))
    } else {
        None
    };
    Ok(Measured {
        scenario,
        seconds,
        records,
        api_calls_run: run["api_calls"].as_u64().unwrap_or(0),
        api_calls_sim: delta("api_calls"),
        requests_sim: delta("requests"),
        peak_rss_kib,
        cpu_seconds,
        sim_cpu_seconds,
        longest_chain: chains["longest_chain"].as_u64().unwrap_or(0),
        unsplit_chain,
        chain_served_seconds: chains["longest_chain_served_ms"].as_f64().unwrap_or(0.0) / 1000.0,
        // Without faults every query page is needed once: the simulator's count of them.
        pages_needed: delta("queries"),
        baseline_seconds,
    })
}

/// The longest page chain if `LoginHistory` were one query, from the ground truth: the most
/// pages any of `User`, `LoginHistory` (every row in the window),
/// `PermissionSetLicenseAssign` and `UserPackageLicense` needs at 2,000 rows a page.
fn unsplit_chain(truth: &Value) -> u64 {
    let pages = |rows: u64| rows.div_ceil(PAGE_SIZE).max(1);
    let users = truth["users"]["total"].as_u64().unwrap_or(0);
    let logins = truth["login_history_rows"].as_u64().unwrap_or(0);
    let assigned = |family: &str| {
        truth["licenses"].as_array().map_or(0, |licenses| {
            licenses
                .iter()
                .filter(|l| l["family"] == family)
                .filter_map(|l| l["assigned"].as_u64())
                .sum::<u64>()
        })
    };
    let chains = [
        pages(users),
        pages(logins),
        pages(assigned("permission_set")),
        pages(assigned("package")),
    ];
    chains.iter().copied().max().unwrap_or(1)
}

/// CPU time (user + system) a running process has used so far, from `/proc/PID/stat`.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after its `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Waits for the child, reading its stdout; returns it with the child's peak RSS in KiB and
/// its CPU time in seconds.
fn wait_with_rusage(mut child: Child) -> Result<(String, u64, f64), String> {
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut output = String::new();
    stdout
        .read_to_string(&mut output)
        .map_err(|e| e.to_string())?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: `usage` is a plain C struct that wait4 fills; pid is our own child, not yet
    // reaped (std's Child has not waited on it).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let errors = err_reader.join().unwrap_or_default();
    if !libc::WIFEXITED(status) {
        return Err(format!("invhost run died: {}", errors.trim()));
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    // Linux reports ru_maxrss in KiB.
    Ok((output, u64::try_from(usage.ru_maxrss).unwrap_or(0), cpu))
}

/// The Python client's time: `mode` `rest` pages through every query, `bulk` reads
/// `LoginHistory` with a Bulk API 2.0 job.
fn python_baseline(base: &str, mode: &str) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/baseline.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(base)
        .arg("90")
        .arg(mode)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the Python baseline failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let answer: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the Python baseline printed no JSON: {e}"))?;
    answer["seconds"]
        .as_f64()
        .ok_or_else(|| "the Python baseline printed no seconds".to_owned())
}

fn print_row(m: &Measured) {
    eprintln!(
        "xtask: bench: {} users: {:.2} s, {} records, {} API calls, {:.1} MiB peak RSS",
        m.scenario.users,
        m.seconds,
        m.records,
        m.api_calls_run,
        m.peak_rss_kib as f64 / 1024.0
    );
}

fn print_table(results: &[Measured]) {
    println!(
        "| users | latency | wall s | records | records/s | API calls (run / sim) | query pages | longest chain (unsplit) | chain x latency s | chain as served s | peak RSS MiB | invhost CPU s | simulator CPU s | Python: REST pages s | Python: the import's requests s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let chain_time = m.longest_chain as f64 * m.scenario.latency_ms as f64 / 1000.0;
        println!(
            "| {} | {} ms | {:.2} | {} | {:.0} | {} / {} | {} | {} ({}) | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {} | {} |",
            m.scenario.users,
            m.scenario.latency_ms,
            m.seconds,
            m.records,
            m.records as f64 / m.seconds.max(1e-9),
            m.api_calls_run,
            m.api_calls_sim,
            m.pages_needed,
            m.longest_chain,
            m.unsplit_chain,
            chain_time,
            m.chain_served_seconds,
            m.peak_rss_kib as f64 / 1024.0,
            m.cpu_seconds,
            m.sim_cpu_seconds,
            m.baseline_seconds
                .map_or_else(|| "-".to_owned(), |s| format!("{:.2}", s.0)),
            m.baseline_seconds
                .map_or_else(|| "-".to_owned(), |s| format!("{:.2}", s.1)),
        );
        let _ = m.requests_sim;
    }
}

#[cfg(test)]
mod tests {
    use super::{Measured, Scenario, median, target_ratios};

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn target_ratios_divide_wall_time_by_chain_and_python_by_wall_time() {
        let measured = |latency_ms, baseline_seconds| Measured {
            scenario: Scenario {
                users: 10_000,
                latency_ms,
            },
            seconds: 1.2,
            records: 0,
            api_calls_run: 0,
            api_calls_sim: 0,
            requests_sim: 0,
            peak_rss_kib: 0,
            cpu_seconds: 0.0,
            sim_cpu_seconds: 0.0,
            longest_chain: 6,
            unsplit_chain: 30,
            chain_served_seconds: 0.0,
            pages_needed: 0,
            baseline_seconds,
        };
        let lines = target_ratios(&measured(100, Some((4.8, 2.4))));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("1.20 / 0.6 s = 2.00x"), "{}", lines[0]);
        assert!(lines[0].contains("(30 requests): 0.40x"), "{}", lines[0]);
        assert!(lines[1].contains("4.80 / 1.20 s = 4.00x"), "{}", lines[1]);
        assert!(lines[1].contains("2.40 / 1.20 s = 2.00x"), "{}", lines[1]);
        // Without latency there is no chain to compare with, without --baseline no Python.
        assert!(target_ratios(&measured(0, None)).is_empty());
    }
}
