//! Test support: isolated data and plugin directories, and a copy of the `invhost` binary in a
//! directory of its own (so that "plugins beside the binary" means only what a test puts there).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use tempfile::TempDir;

/// The directory holding the built binaries and libraries (`target/debug`).
pub fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/debug/deps/e2e-HASH -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_owned()
}

/// The path of a built library by crate name (`fixture_good`, `invhost_salesforce`).
pub fn library(name: &str) -> PathBuf {
    let file = format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = artifacts_dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo xtask test`, which builds the plugin libraries first",
        path.display()
    );
    path
}

/// The plugin libraries the tests use, by short name.
pub const SALESFORCE: &str = "invhost_salesforce";
pub const GOOD: &str = "fixture_good";
pub const PANICS: &str = "fixture_panics";
pub const BAD_API: &str = "fixture_bad_api";
pub const INIT_FAILS: &str = "fixture_init_fails";
pub const NOT_A_PLUGIN: &str = "fixture_not_a_plugin";
pub const OTHER_LAYOUT: &str = "fixture_other_layout";
/// Built against plugin-api 1.0 with a frozen copy of its ABI (source type `api_one_zero`).
pub const API_1_0: &str = "fixture_api_1_0";
/// Supersedes: source types `successor` (supersedes `salesforce`) and `fixture_successor`
/// (supersedes `fixture`).
pub const SUCCESSOR: &str = "fixture_successor";

/// A copy of the `invhost` binary alone in its directory, made once per test run.
fn isolated_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let source = artifacts_dir().join(format!("invhost{}", std::env::consts::EXE_SUFFIX));
        assert!(
            source.is_file(),
            "{} is missing: run `cargo xtask test`",
            source.display()
        );
        let dir = artifacts_dir().join("e2e-bin");
        std::fs::create_dir_all(&dir).expect("create e2e-bin");
        let target = dir.join(source.file_name().expect("file name"));
        std::fs::copy(&source, &target).expect("copy the invhost binary");
        target
    })
}

/// An isolated host: its own data directory and plugin directory.
pub struct Env {
    dir: TempDir,
    binary: PathBuf,
}

impl Env {
    /// A host with the given libraries in its plugin directory.
    pub fn with_plugins(names: &[&str]) -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
            binary: isolated_binary().to_owned(),
        };
        std::fs::create_dir_all(env.plugins_dir()).expect("plugin dir");
        for name in names {
            env.add_plugin(name, None);
        }
        env
    }

    /// A host whose binary sits in a directory of its own, for tests of the default directories.
    pub fn with_own_binary() -> Env {
        let mut env = Env::with_plugins(&[]);
        let dir = env.root().join("bin");
        std::fs::create_dir_all(&dir).expect("bin dir");
        let binary = dir.join(isolated_binary().file_name().expect("file name"));
        std::fs::copy(isolated_binary(), &binary).expect("copy binary");
        env.binary = binary;
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.root().join("plugins")
    }

    /// The invhost binary this environment runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn binary_dir(&self) -> PathBuf {
        self.binary.parent().expect("binary dir").to_owned()
    }

    /// Copies a library into `dir` (default: the plugin directory), optionally renamed.
    pub fn add_plugin_to(&self, dir: &Path, name: &str, rename: Option<&str>) -> PathBuf {
        let source = library(name);
        std::fs::create_dir_all(dir).expect("dir");
        let file = match rename {
            Some(stem) => format!(
                "{}{stem}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ),
            None => source
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        };
        let target = dir.join(file);
        std::fs::copy(&source, &target).expect("copy library");
        target
    }

    pub fn add_plugin(&self, name: &str, rename: Option<&str>) -> PathBuf {
        self.add_plugin_to(&self.plugins_dir(), name, rename)
    }

    /// `invhost --data-dir D --plugins-dir P ARGS`, with a clean environment for invhost.
    pub fn invhost(&self, args: &[&str]) -> Command {
        let mut command = self.invhost_bare(args);
        command.arg("--plugins-dir").arg(self.plugins_dir());
        command
    }

    /// `invhost --data-dir D ARGS`, without `--plugins-dir`.
    pub fn invhost_bare(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env_remove("INVHOST_PLUGINS_DIR")
            .env_remove("INVHOST_DATA_DIR")
            .env_remove("INVHOST_LOG")
            .env_remove("INVHOST_FIXTURE_PANIC_IN_INIT")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args);
        command
    }

    /// Runs `invhost ARGS` with the plugin directory.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.invhost(args), None)
    }

    /// Runs `invhost ARGS` with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        Run::of(self.invhost(args), Some(input))
    }

    /// Writes a file in the environment and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.root().join(name);
        std::fs::write(&path, content).expect("write file");
        path
    }
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(mut command: Command, input: Option<&str>) -> Run {
        use std::io::Write as _;
        command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("invhost starts");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("invhost ends");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn success(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts a normal non-zero exit (not a signal) and returns stderr.
    #[track_caller]
    pub fn failure(&self) -> &str {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a clean failure: {self:#?}"
        );
        &self.stderr
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A complete, valid Salesforce settings document.
pub fn salesforce_settings() -> serde_json::Value {
    serde_json::json!({
        "login_url": "https://login.salesforce.com",
        "consumer_key": "3MVG9-consumer-key",
        "credentials": {"source": "local", "consumer_secret": "s3cret", "refresh_token": "5Aep-token"},
        "proxy": {"server": "http://proxy.corp:3128",
                  "credentials": {"source": "local", "username": "u", "password": "proxy-pass"}}
    })
}

/// The fixture plugin's token in tests: it must never appear in output or answers.
pub const FIXTURE_TOKEN: &str = "t0ken-SECRET-4711";

/// Settings of a fixture connection with `accounts` accounts and the fixture's `import` knobs
/// (`batch`, `pause_ms`, `fail_after_batches`, ...).
pub fn fixture_settings(accounts: u32, import: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"accounts": accounts, "token": {"source": "local", "value": FIXTURE_TOKEN}, "import": import})
}

/// Writes a settings document to a file of its own; returns its path.
fn settings_file(env: &Env, name: &str, settings: &serde_json::Value) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let file = env.write(&format!("{name}-{n}.json"), &settings.to_string());
    file.to_str().expect("utf-8 path").to_owned()
}

/// `invhost connections add NAME --type fixture`, which must succeed.
pub fn add_fixture(env: &Env, name: &str, settings: &serde_json::Value) {
    let file = settings_file(env, name, settings);
    env.run(&[
        "connections",
        "add",
        name,
        "--type",
        "fixture",
        "--settings",
        &file,
    ])
    .success();
}

/// `invhost connections update NAME`, which must succeed.
pub fn update_connection(env: &Env, name: &str, settings: &serde_json::Value) {
    let file = settings_file(env, name, settings);
    env.run(&["connections", "update", name, "--settings", &file])
        .success();
}

/// The data directory's database, opened directly (no CLI command sweeps runs on the way).
pub fn db(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.data_dir().join("invhost.db")).expect("database opens")
}

/// The one integer `sql` answers.
pub fn count(env: &Env, sql: &str) -> i64 {
    db(env)
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Accounts in the connection's current snapshot.
pub fn current_accounts(env: &Env, name: &str) -> i64 {
    db(env)
        .query_row(
            "SELECT COUNT(*) FROM accounts a JOIN snapshots s ON s.id = a.snapshot_id
             JOIN connections c ON c.id = s.connection_id
             WHERE s.state = 'current' AND c.name = ?1",
            [name],
            |r| r.get(0),
        )
        .expect("count")
}
