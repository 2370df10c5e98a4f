//! `invhost schema SOURCE_TYPE`: the Salesforce schema follows the conventions and agrees with
//! the plugin's own validation.

use serde_json::{Value, json};

use crate::support::*;

fn salesforce_schema() -> Value {
    let env = Env::with_plugins(&[SALESFORCE]);
    let run = env.run(&["schema", "salesforce"]);
    run.success();
    run.json()
}

fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    let node = node.get("allOf").and_then(|a| a.get(0)).unwrap_or(node);
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => schema
            .pointer(reference.trim_start_matches('#'))
            .expect("reference resolves"),
        None => node,
    }
}

fn variant<'a>(schema: &'a Value, union: &'a Value, tag: &str) -> &'a Value {
    resolve(schema, union)["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .find(|v| v["properties"]["source"]["const"] == tag)
        .unwrap_or_else(|| panic!("variant {tag}"))
}

#[test]
fn the_salesforce_schema_compiles_and_has_the_documented_shape() {
    let schema = salesforce_schema();
    jsonschema::validator_for(&schema).expect("the schema compiles");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let properties = schema["properties"].as_object().expect("properties");
    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "login_url",
            "consumer_key",
            "credentials",
            "proxy",
            "import"
        ]
    );
    assert_eq!(
        schema["required"],
        json!(["login_url", "consumer_key", "credentials"])
    );
    assert_eq!(schema["additionalProperties"], false);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(properties[*name]["x-order"], i, "{name}");
        assert!(properties[*name]["title"].is_string(), "{name} has a title");
    }
    assert_eq!(
        properties["login_url"]["default"],
        "https://login.salesforce.com"
    );
    let credentials = resolve(&schema, &properties["credentials"]);
    assert_eq!(
        credentials["discriminator"],
        json!({"propertyName": "source"})
    );
    let description = properties["login_url"]["description"]
        .as_str()
        .expect("description");
    assert!(
        !description.contains('\n'),
        "wrapped doc comments are unwrapped: {description}"
    );
}

#[test]
fn secrets_are_write_only_and_marked() {
    let schema = salesforce_schema();
    let local = variant(&schema, &schema["properties"]["credentials"], "local");
    let proxy = resolve(&schema, &schema["properties"]["proxy"]["anyOf"][0]);
    let proxy_local = variant(&schema, &proxy["properties"]["credentials"], "local");
    for (name, property) in [
        ("consumer_secret", &local["properties"]["consumer_secret"]),
        ("refresh_token", &local["properties"]["refresh_token"]),
        ("proxy password", &proxy_local["properties"]["password"]),
    ] {
        assert_eq!(property["writeOnly"], true, "{name}");
        assert_eq!(property["x-secret"], true, "{name}");
    }
    assert_eq!(
        local["properties"]["consumer_key"],
        Value::Null,
        "the key is not in credentials"
    );
    assert_ne!(
        proxy_local["properties"]["username"]["writeOnly"], true,
        "a user name is no secret"
    );
    let cyberark = variant(&schema, &schema["properties"]["credentials"], "cyberark");
    assert!(cyberark["properties"]["query"].is_object());
    assert!(cyberark["properties"]["refresh_token_field"].is_object());
}

#[test]
fn the_schema_and_the_plugin_agree_on_valid_and_invalid_documents() {
    let schema = salesforce_schema();
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let env = Env::with_plugins(&[SALESFORCE]);
    let mut unknown = salesforce_settings();
    unknown["colour"] = json!("blue");
    let mut wrong_type = salesforce_settings();
    wrong_type["consumer_key"] = json!(42);
    let mut vault = salesforce_settings();
    vault["credentials"] = json!({"source": "cyberark", "query": "Safe=S;Object=o",
                                  "refresh_token_field": "RefreshToken"});
    for (name, document, valid) in [
        ("complete", salesforce_settings(), true),
        ("empty", json!({}), false),
        ("unknown key", unknown, false),
        ("wrong type", wrong_type, false),
        ("vault credentials", vault, true),
    ] {
        assert_eq!(validator.is_valid(&document), valid, "schema on {name}");
        let plugin = env.run_with_input(
            &["settings", "validate", "salesforce", "-"],
            &document.to_string(),
        );
        assert_eq!(
            plugin.code == Some(0),
            valid,
            "plugin on {name}: {plugin:?}"
        );
    }
}

#[test]
fn an_unknown_source_type_lists_what_is_available() {
    let env = Env::with_plugins(&[SALESFORCE, GOOD]);
    let run = env.run(&["schema", "zendesk"]);
    let stderr = run.failure();
    assert!(
        stderr.contains("no loaded plugin offers source type `zendesk`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("available: fixture, salesforce"),
        "{stderr}"
    );
}

#[test]
fn a_plugin_that_panics_in_an_operation_gives_an_error_not_a_crash() {
    let env = Env::with_plugins(&[PANICS]);
    let run = env.run(&["schema", "panicky"]);
    let stderr = run.failure();
    assert_eq!(
        run.code,
        Some(1),
        "a clean exit, not abi_stable's exit or a signal"
    );
    let last = stderr.lines().last().expect("a message");
    assert!(
        last.starts_with("invhost: the plugin panicked: fixture panic in settings_schema"),
        "{stderr}"
    );
}

/// The places in `node` where a form would show no title: properties (other than a union's
/// `const` discriminator) and branches of `anyOf`/`oneOf` without a title of their own or on
/// the definition they refer to.
fn untitled(schema: &Value, node: &Value, path: &str, out: &mut Vec<String>) {
    let has_title =
        |node: &Value| node.get("title").is_some() || resolve(schema, node).get("title").is_some();
    if let Some(Value::Object(properties)) = node.get("properties") {
        for (name, property) in properties {
            if property.get("const").is_none() && !has_title(property) {
                out.push(format!("{path}.{name}"));
            }
            untitled(schema, property, &format!("{path}.{name}"), out);
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = node.get(keyword) {
            for (i, branch) in branches.iter().enumerate() {
                if !has_title(branch) {
                    out.push(format!("{path}/{keyword}/{i}"));
                }
                untitled(schema, branch, &format!("{path}/{keyword}/{i}"), out);
            }
        }
    }
}

#[test]
fn every_property_and_choice_has_a_title() {
    let schema = salesforce_schema();
    let mut missing = Vec::new();
    untitled(&schema, &schema, "", &mut missing);
    for (name, definition) in schema["definitions"].as_object().expect("definitions") {
        untitled(&schema, definition, &format!("#{name}"), &mut missing);
    }
    assert_eq!(missing, Vec::<String>::new());
    assert_eq!(
        schema["properties"]["proxy"]["anyOf"][1]["title"],
        "No proxy"
    );
}

#[test]
fn required_strings_the_plugin_refuses_empty_have_a_min_length() {
    let schema = salesforce_schema();
    let local = variant(&schema, &schema["properties"]["credentials"], "local");
    let proxy = resolve(&schema, &schema["properties"]["proxy"]["anyOf"][0]);
    let proxy_local = variant(&schema, &proxy["properties"]["credentials"], "local");
    for (name, property) in [
        ("login_url", &schema["properties"]["login_url"]),
        ("consumer_key", &schema["properties"]["consumer_key"]),
        ("consumer_secret", &local["properties"]["consumer_secret"]),
        ("proxy.server", &proxy["properties"]["server"]),
        ("proxy username", &proxy_local["properties"]["username"]),
        ("proxy password", &proxy_local["properties"]["password"]),
    ] {
        assert_eq!(property["minLength"], 1, "{name}: {property}");
    }
    assert_eq!(
        local["properties"]["refresh_token"].get("minLength"),
        None,
        "the refresh token may be empty until generated"
    );
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let mut empty_key = salesforce_settings();
    empty_key["consumer_key"] = json!("");
    assert!(!validator.is_valid(&empty_key), "a form refuses \"\"");
    let mut no_token = salesforce_settings();
    no_token["credentials"]["refresh_token"] = json!("");
    assert!(validator.is_valid(&no_token));
    // The plugin still answers `{}` with one message naming every missing field.
    let env = Env::with_plugins(&[SALESFORCE]);
    let run = env.run_with_input(&["settings", "validate", "salesforce", "-"], "{}");
    assert_eq!(
        run.failure().trim_end(),
        "invhost: Mandatory parameter(s) missing: login_url, consumer_key, credentials"
    );
    let check = env.run(&[
        "plugins",
        "check",
        library(SALESFORCE).to_str().expect("utf-8"),
    ]);
    check.success();
}
