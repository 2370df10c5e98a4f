//! `invhost plugins`: what loads, what is refused and why, and where the host looks.

use serde_json::Value;

use crate::support::*;

fn refused_by_file(listing: &Value) -> Vec<(String, String, String)> {
    let mut refused: Vec<(String, String, String)> = listing["refused"]
        .as_array()
        .expect("refused list")
        .iter()
        .map(|r| {
            let file = std::path::Path::new(r["path"].as_str().expect("path"))
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let kind = r["kind"].as_str().expect("kind").to_owned();
            let reason = r["reason"].as_str().expect("reason").to_owned();
            (file, kind, reason)
        })
        .collect();
    refused.sort();
    refused
}

fn loaded_ids(listing: &Value) -> Vec<String> {
    let mut ids: Vec<String> = listing["plugins"]
        .as_array()
        .expect("plugins list")
        .iter()
        .map(|p| p["plugin_id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn lists_salesforce_with_its_versions_and_action() {
    let env = Env::with_plugins(&[SALESFORCE]);
    let listing = env.run(&["plugins", "--json"]);
    listing.success();
    let listing = listing.json();
    let plugin = &listing["plugins"][0];
    assert_eq!(plugin["plugin_id"], "salesforce");
    assert_eq!(plugin["api_version"], listing["api_version"]);
    let version = plugin["plugin_version"].as_str().expect("version");
    assert_eq!(version.split('.').count(), 3, "semver: {version}");
    let source_type = &plugin["source_types"][0];
    assert_eq!(source_type["id"], "salesforce");
    assert_eq!(source_type["actions"][0]["id"], "generate_refresh_token");
    assert_eq!(
        source_type["actions"][0]["fills"][0],
        "credentials.refresh_token"
    );
    assert_eq!(listing["refused"], serde_json::json!([]));
}

#[test]
fn every_bad_library_is_refused_with_a_one_line_reason_and_the_rest_load() {
    let env = Env::with_plugins(&[
        SALESFORCE,
        GOOD,
        PANICS,
        BAD_API,
        INIT_FAILS,
        NOT_A_PLUGIN,
        OTHER_LAYOUT,
    ]);
    env.add_plugin(GOOD, Some("fixture_good_copy"));
    let run = env.run(&["plugins", "--json"]);
    run.success();
    let listing = run.json();
    assert_eq!(loaded_ids(&listing), ["fixture", "panicky", "salesforce"]);
    let refused = refused_by_file(&listing);
    let expected = [
        (
            "libfixture_bad_api.so",
            "incompatible_api",
            "rebuild it against plugin-api 1.",
        ),
        (
            "libfixture_good_copy.so",
            "duplicate_source_type",
            "already offers",
        ),
        (
            "libfixture_init_fails.so",
            "init_failed",
            "init failed: the fixture refuses to start",
        ),
        (
            "libfixture_not_a_plugin.so",
            "not_a_plugin",
            "not an invhost plugin",
        ),
        (
            "libfixture_other_layout.so",
            "incompatible_api",
            "incompatible plugin API layout",
        ),
    ];
    assert_eq!(refused.len(), expected.len(), "{refused:#?}");
    for ((file, kind, reason), (want_file, want_kind, want_reason)) in refused.iter().zip(expected)
    {
        let want_file = want_file.replace(".so", std::env::consts::DLL_SUFFIX);
        assert_eq!(
            (file.as_str(), kind.as_str()),
            (want_file.as_str(), want_kind)
        );
        assert!(reason.contains(want_reason), "{file}: {reason}");
        assert!(
            !reason.contains('\n'),
            "{file}: reason is not one line: {reason}"
        );
    }
}

#[test]
fn a_plugin_that_panics_while_initialising_is_refused_and_the_host_goes_on() {
    let env = Env::with_plugins(&[GOOD, PANICS]);
    let mut command = env.invhost(&["plugins", "--json"]);
    command.env("INVHOST_FIXTURE_PANIC_IN_INIT", "1");
    let run = Run::of(command, None);
    run.success();
    let listing = run.json();
    assert_eq!(loaded_ids(&listing), ["fixture"]);
    let refused = refused_by_file(&listing);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].1, "panicked");
    assert!(
        refused[0].2.contains("fixture panic in init"),
        "{}",
        refused[0].2
    );
}

#[test]
fn text_listing_names_plugins_and_refusals() {
    let env = Env::with_plugins(&[GOOD, NOT_A_PLUGIN]);
    let run = env.run(&["plugins"]);
    let out = run.success();
    assert!(out.contains("fixture 1.2.3 (plugin-api 1."), "{out}");
    assert!(out.contains("Refused:"), "{out}");
    assert!(out.contains("not an invhost plugin"), "{out}");
}

#[test]
fn no_plugins_is_not_an_error() {
    let env = Env::with_plugins(&[]);
    let out = env.run(&["plugins"]);
    assert!(out.success().contains("No plugins loaded"), "{out:?}");
}

#[test]
fn default_directories_are_the_data_dir_and_beside_the_binary_plus_the_environment() {
    let env = Env::with_own_binary();
    env.add_plugin_to(&env.data_dir().join("plugins"), GOOD, None);
    env.add_plugin_to(&env.binary_dir(), SALESFORCE, None);
    let extra = env.root().join("extra");
    env.add_plugin_to(&extra, PANICS, None);
    let mut command = env.invhost_bare(&["plugins", "--json"]);
    command.env("INVHOST_PLUGINS_DIR", &extra);
    let run = Run::of(command, None);
    run.success();
    assert_eq!(
        loaded_ids(&run.json()),
        ["fixture", "panicky", "salesforce"]
    );
}

#[test]
fn an_explicit_directory_wins_over_the_defaults_for_the_same_source_type() {
    let env = Env::with_own_binary();
    env.add_plugin_to(&env.binary_dir(), GOOD, Some("fixture_beside_binary"));
    env.add_plugin(GOOD, None);
    let run = env.run(&["plugins", "--json"]);
    run.success();
    let listing = run.json();
    let loaded = listing["plugins"][0]["path"].as_str().expect("path");
    assert!(
        loaded.starts_with(env.plugins_dir().to_str().expect("utf-8")),
        "{loaded}"
    );
    assert_eq!(refused_by_file(&listing)[0].1, "duplicate_source_type");
}

#[test]
fn an_explicit_directory_that_cannot_be_searched_is_reported() {
    let env = Env::with_own_binary();
    env.add_plugin(GOOD, None);
    let missing = env.root().join("no-such-dir");
    let file = env.write("not-a-dir", "");
    let mut command = env.invhost_bare(&["plugins", "--json"]);
    command
        .arg("--plugins-dir")
        .arg(&missing)
        .arg("--plugins-dir")
        .arg(env.plugins_dir())
        .env("INVHOST_PLUGINS_DIR", &file);
    let run = Run::of(command, None);
    run.success();
    let listing = run.json();
    assert_eq!(loaded_ids(&listing), ["fixture"]);
    let unreadable = listing["unreadable_dirs"].as_array().expect("a list");
    let entries: Vec<(&str, &str)> = unreadable
        .iter()
        .map(|d| {
            (
                d["path"].as_str().expect("path"),
                d["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].0, missing.to_str().expect("utf-8"));
    assert!(
        entries[0]
            .1
            .starts_with("does not exist; fix the path given with --plugins-dir"),
        "{entries:?}"
    );
    assert_eq!(entries[1].0, file.to_str().expect("utf-8"));
    assert!(
        entries[1].1.starts_with("is not a directory"),
        "{entries:?}"
    );
    // A warning at the default log level, on stderr.
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("no-such-dir"),
        "{}",
        run.stderr
    );

    let mut command = env.invhost_bare(&["plugins"]);
    command.arg("--plugins-dir").arg(&missing);
    let run = Run::of(command, None);
    let out = run.success();
    assert!(out.contains("Plugin directories not searched:"), "{out}");
    assert!(
        out.contains(&format!("  {}: does not exist", missing.display())),
        "{out}"
    );
}

#[test]
fn missing_default_directories_are_normal() {
    let env = Env::with_own_binary();
    // Neither <data-dir>/plugins nor anything beside the binary: no warning, nothing listed.
    let run = Run::of(env.invhost_bare(&["plugins", "--json"]), None);
    run.success();
    assert_eq!(run.stderr, "");
    assert_eq!(run.json()["unreadable_dirs"], serde_json::json!([]));
}

#[cfg(unix)]
#[test]
fn a_dangling_library_link_is_refused_not_passed_over() {
    let env = Env::with_plugins(&[GOOD]);
    let link = env.plugins_dir().join(format!(
        "{}gone{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    std::os::unix::fs::symlink(env.root().join("moved-away.so"), &link).expect("symlink");
    let run = env.run(&["plugins", "--json"]);
    run.success();
    let listing = run.json();
    assert_eq!(loaded_ids(&listing), ["fixture"]);
    let refused = refused_by_file(&listing);
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (file, kind, reason) = &refused[0];
    assert_eq!(
        file.as_str(),
        link.file_name().expect("name").to_str().expect("utf-8")
    );
    assert_eq!(kind, "unreadable");
    assert!(
        reason.contains("moved-away.so`, which does not exist; fix or remove the link"),
        "{reason}"
    );
}
