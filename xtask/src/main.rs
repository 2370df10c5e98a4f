//! Project automation, run as `cargo xtask <task>`:
//!
//! * `test [ARGS...]`: builds every workspace library (the Salesforce plugin and the fixture
//!   plugins are `cdylib`s, which `cargo test` alone does not build), then runs
//!   `cargo test --workspace ARGS...`.
//! * `ci`: what CI checks: `cargo fmt --check`, clippy with `-D warnings`, the docs with
//!   `-D warnings`, and the tests.
//! * `bench [--users N,N] [--latency-ms MS,MS] [--runs N] [--baseline]`: imports synthetic orgs from the
//!   Salesforce simulator with the release build (see `bench.rs` and docs/PERFORMANCE.md).

mod bench;

use std::{
    env,
    io::{BufRead as _, BufReader},
    process::{Command, ExitCode, Stdio},
};

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "test" => test(&rest),
        "ci" => ci(),
        "bench" => bench::bench(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask test [CARGO TEST ARGS...] | cargo xtask ci | cargo xtask bench [--users N,N] [--latency-ms MS,MS] [--runs N] [--baseline]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str]) -> Result<(), String> {
    cargo_env(args, &[])
}

fn cargo_env(args: &[&str], vars: &[(&str, &str)]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(vars.iter().copied())
        .status()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    ensure_tinyproxy()?;
    cargo(&["build", "--workspace"])?;
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    cargo_test(&args)
}

/// The proxy tests run a real tinyproxy. Installs it with apt-get when it is missing and this
/// runs as root on a Debian-family machine; otherwise says how to install it.
fn ensure_tinyproxy() -> Result<(), String> {
    let found = |name: &str| {
        Command::new("sh")
            .args([
                "-c",
                &format!(
                    "command -v {name} || test -x /usr/sbin/{name} || test -x /usr/bin/{name}"
                ),
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("tinyproxy") {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !(root && found("apt-get")) {
        return Err("the proxy tests need tinyproxy: install it (for example `sudo apt-get install tinyproxy`) and run again".to_owned());
    }
    eprintln!("xtask: installing tinyproxy for the proxy tests");
    let quiet = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(&["update", "-qq"])
        || !quiet(&[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "tinyproxy",
        ])
    {
        return Err(
            "could not install tinyproxy with apt-get; install it by hand and run again".to_owned(),
        );
    }
    Ok(())
}

/// Runs `cargo test`, passing its output through, and closes with one line that adds up every
/// test binary's `test result:` line (cargo's own last line is often a crate with no doctests).
fn cargo_test(args: &[&str]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some((p, f)) = parse_result(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cargo test did not finish: {e}"))?;
    println!("tests: {passed} passed, {failed} failed");
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// Reads `test result: ok. 17 passed; 0 failed; ...`.
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(word)
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Some((count(" passed")?, count(" failed")?))
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    test(&[])?;
    cargo_env(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

#[cfg(test)]
mod tests {
    use super::parse_result;

    #[test]
    fn reads_cargo_test_result_lines() {
        let ok = "test result: ok. 17 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(parse_result(ok), Some((17, 0)));
        let failed =
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_result(failed), Some((3, 2)));
        assert_eq!(parse_result("running 3 tests"), None);
    }
}
