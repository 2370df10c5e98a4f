//! Settings JSON Schemas: generation with the conventions every UI relies on, and a document
//! check that names every problem in words an operator understands.
//!
//! The conventions (documented for plugin authors in `docs/schema-conventions.md`):
//! * JSON Schema draft-07, the default of react-jsonschema-form and JSON Forms;
//! * `title` and `description` from `#[schemars(title = ..)]` and doc comments;
//! * secrets ([`crate::Secret`]) carry `writeOnly: true` and `x-secret: true`;
//! * every property carries `x-order`, its position in the struct (declaration order);
//! * tagged unions are `oneOf` of objects whose discriminator property has a `const`, and the
//!   union carries `discriminator: {propertyName}`; no `if/then/else`;
//! * unknown keys are refused (`additionalProperties: false`).

use schemars::{JsonSchema, Schema, generate::SchemaSettings, transform::RecursiveTransform};
use serde_json::{Map, Value};

use crate::settings::Validator;

/// The settings schema of `T`, generated with the conventions above.
pub fn settings_schema<T: JsonSchema>() -> Schema {
    SchemaSettings::draft07()
        .with_transform(RecursiveTransform(add_order))
        .with_transform(RecursiveTransform(add_discriminator))
        .with_transform(RecursiveTransform(unwrap_description))
        .with_transform(RecursiveTransform(title_null_branches))
        .into_generator()
        .into_root_schema_for::<T>()
}

fn add_order(schema: &mut Schema) {
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for (position, property) in properties.values_mut().enumerate() {
        if let Value::Object(object) = property {
            if object.len() == 1 && object.contains_key("$ref") {
                // Draft-07 ignores keywords beside `$ref`: wrap it as schemars does for titles.
                let reference = std::mem::take(object);
                object.insert(
                    "allOf".to_owned(),
                    Value::Array(vec![Value::Object(reference)]),
                );
            }
            object.entry("x-order").or_insert(Value::from(position));
        }
    }
}

/// An optional block (`anyOf [block, null]`) is drawn by some form libraries as a choice between
/// its branches; without titles they read "Option 1" and "Option 2". The null branch gets the
/// title "No " and the property's title ("No proxy"), or "None" when the property has none.
fn title_null_branches(schema: &mut Schema) {
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for property in properties.values_mut() {
        let title = match property.get("title").and_then(Value::as_str) {
            Some(title) => format!("No {}", lowercase_first_word(title)),
            None => "None".to_owned(),
        };
        let Some(Value::Array(branches)) = property.get_mut("anyOf") else {
            continue;
        };
        for branch in branches.iter_mut() {
            if let Value::Object(object) = branch
                && object.get("type") == Some(&Value::from("null"))
            {
                object.entry("title").or_insert(Value::from(title.clone()));
            }
        }
    }
}

/// `Proxy` becomes `proxy`; a word in capitals (`HTTP proxy`) stays as it is.
fn lowercase_first_word(title: &str) -> String {
    let mut chars = title.chars();
    match (chars.next(), chars.next()) {
        (Some(first), second) if !second.is_some_and(char::is_uppercase) => {
            first.to_lowercase().chain(title.chars().skip(1)).collect()
        }
        _ => title.to_owned(),
    }
}

/// Doc comments wrap at the source's line width; forms should wrap at theirs. Single line
/// breaks become spaces, paragraph breaks stay.
fn unwrap_description(schema: &mut Schema) {
    if let Some(Value::String(text)) = schema.get_mut("description") {
        *text = text
            .split("\n\n")
            .map(|paragraph| {
                paragraph
                    .split('\n')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n");
    }
}

fn add_discriminator(schema: &mut Schema) {
    let Some(Value::Array(variants)) = schema.get("oneOf") else {
        return;
    };
    if let Some(name) = discriminator_of(variants)
        && let Some(object) = schema.as_object_mut()
    {
        object.insert(
            "discriminator".to_owned(),
            serde_json::json!({ "propertyName": name }),
        );
    }
}

/// The property that has a `const` in every variant of a `oneOf`, if there is one.
fn discriminator_of(variants: &[Value]) -> Option<String> {
    let first = variants.first()?.get("properties")?.as_object()?;
    first
        .iter()
        .filter(|(_, p)| p.get("const").is_some())
        .map(|(name, _)| name)
        .find(|name| {
            variants.iter().all(|v| {
                v.get("properties")
                    .and_then(|p| p.get(name.as_str()))
                    .and_then(|p| p.get("const"))
                    .is_some()
            })
        })
        .cloned()
}

/// The schema keyword that marks a [`crate::settings::VaultQuery`]: [`check_document`] applies
/// the vault query rules ([`crate::settings::VaultQuery::check`]) to every value under it.
/// Since plugin-api 1.2.
pub const VAULT_QUERY_KEYWORD: &str = "x-vault-query";

/// Checks `document` against a settings schema made by [`settings_schema`], recording every
/// absent or empty required field, unknown key, wrong type and unknown discriminator value in
/// `validator`, and every malformed vault query (a value whose schema carries
/// [`VAULT_QUERY_KEYWORD`]: the building blocks' `query` fields).
///
/// This covers what operators get wrong; the plugin's deserialisation and
/// [`crate::settings::Settings::check`] cover the rest.
pub fn check_document(schema: &Schema, document: &Value, validator: &mut Validator) {
    let root = schema.as_value();
    Walker { root, validator }.walk(root, document, "");
}

struct Walker<'a> {
    root: &'a Value,
    validator: &'a mut Validator,
}

impl<'a> Walker<'a> {
    fn walk(&mut self, schema: &Value, value: &Value, path: &str) {
        let schema = self.resolve(schema);
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for part in all {
                self.walk(part, value, path);
            }
        }
        if let Some(Value::Array(any)) = schema.get("anyOf") {
            // `Option<T>`: null, or the one non-null branch.
            if value.is_null() {
                return;
            }
            if let Some(branch) = any.iter().find(|b| !self.is_null_type(b)) {
                self.walk(branch, value, path);
            }
            return;
        }
        if let Some(Value::Array(variants)) = schema.get("oneOf") {
            self.walk_one_of(variants, value, path);
            return;
        }
        if let Some(expected) = schema.get("type")
            && !type_matches(expected, value)
        {
            let field = display_path(path);
            self.validator
                .problem(field, format!("must be {}", describe_type(expected)));
            return;
        }
        if schema.get(VAULT_QUERY_KEYWORD) == Some(&Value::Bool(true))
            && let Value::String(query) = value
        {
            crate::settings::VaultQuery(query.clone()).check(&display_path(path), self.validator);
        }
        if let Some(Value::Array(allowed)) = schema.get("enum")
            && !allowed.contains(value)
        {
            self.validator.problem(
                display_path(path),
                format!("must be one of {}", list(allowed)),
            );
            return;
        }
        if let (Some(Value::Object(properties)), Value::Object(object)) =
            (schema.get("properties"), value)
        {
            self.walk_object(schema, properties, object, path);
        }
    }

    fn walk_object(
        &mut self,
        schema: &Value,
        properties: &Map<String, Value>,
        object: &Map<String, Value>,
        path: &str,
    ) {
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                let absent = match object.get(name) {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.trim().is_empty(),
                    Some(_) => false,
                };
                if absent {
                    self.validator.missing(join(path, name));
                }
            }
        }
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            for key in object.keys().filter(|k| !properties.contains_key(*k)) {
                let expected: Vec<&str> = properties.keys().map(String::as_str).collect();
                self.validator.problem(
                    join(path, key),
                    format!("unknown field (expected one of {})", expected.join(", ")),
                );
            }
        }
        for (name, property) in properties {
            // Absent, null-where-not-allowed and empty values were reported as missing above
            // (when required) or are left to deserialisation.
            if let Some(child) = object.get(name)
                && (!child.is_null() || self.allows_null(property))
                && !matches!(child, Value::String(s) if s.trim().is_empty())
            {
                self.walk(property, child, &join(path, name));
            }
        }
    }

    fn walk_one_of(&mut self, variants: &[Value], value: &Value, path: &str) {
        let resolved: Vec<&Value> = variants.iter().map(|v| self.resolve(v)).collect();
        let owned: Vec<Value> = resolved.iter().map(|v| (*v).clone()).collect();
        if let Some(tag) = discriminator_of(&owned) {
            let Value::Object(object) = value else {
                self.validator
                    .problem(display_path(path), "must be an object");
                return;
            };
            let chosen = match object.get(&tag) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(given) => Some(given),
            };
            let Some(given) = chosen else {
                self.validator.missing(join(path, &tag));
                return;
            };
            let consts: Vec<Value> = resolved
                .iter()
                .filter_map(|v| v.pointer(&format!("/properties/{tag}/const")).cloned())
                .collect();
            match resolved
                .iter()
                .find(|v| v.pointer(&format!("/properties/{tag}/const")) == Some(given))
            {
                Some(variant) => self.walk(variant, value, path),
                None => self.validator.problem(
                    join(path, &tag),
                    format!("must be one of {}", list(&consts)),
                ),
            }
            return;
        }
        // A choice among constants (a plain enum with titles).
        let consts: Vec<Value> = resolved
            .iter()
            .filter_map(|v| v.get("const").cloned())
            .collect();
        if consts.len() == resolved.len() && !consts.contains(value) {
            self.validator.problem(
                display_path(path),
                format!("must be one of {}", list(&consts)),
            );
        }
    }

    fn resolve<'s>(&self, schema: &'s Value) -> &'s Value
    where
        'a: 's,
    {
        resolve(self.root, schema)
    }

    fn is_null_type(&self, schema: &Value) -> bool {
        self.resolve(schema).get("type") == Some(&Value::String("null".to_owned()))
    }

    fn allows_null(&self, schema: &Value) -> bool {
        let schema = self.resolve(schema);
        match schema.get("type") {
            Some(Value::String(t)) => t == "null",
            Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
            _ => schema
                .get("anyOf")
                .and_then(Value::as_array)
                .is_some_and(|any| any.iter().any(|b| self.is_null_type(b))),
        }
    }
}

/// Follows `$ref`s (local ones, `#/...`) to the schema they name.
fn resolve<'s>(root: &'s Value, schema: &'s Value) -> &'s Value {
    let mut current = schema;
    for _ in 0..16 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
        {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

/// The JSON pointers (`/credentials/consumer_secret`) of every string in `document` that the
/// schema marks `x-secret`, following `$ref`, `allOf`, optional blocks and tagged unions the
/// way [`check_document`] does. Hosts use it to encrypt, redact and merge secrets without
/// knowing the plugin.
pub fn secret_pointers(schema: &Value, document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_secrets(schema, schema, document, "", &mut found);
    found
}

fn is_secret(root: &Value, schema: &Value) -> bool {
    let schema = resolve(root, schema);
    schema.get("x-secret") == Some(&Value::Bool(true))
        || schema
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|all| all.iter().any(|part| is_secret(root, part)))
}

fn collect_secrets(
    root: &Value,
    schema: &Value,
    value: &Value,
    pointer: &str,
    found: &mut Vec<String>,
) {
    let schema = resolve(root, schema);
    if value.is_string() {
        if is_secret(root, schema) {
            found.push(pointer.to_owned());
        }
        return;
    }
    if let Value::Array(items) = value {
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                collect_secrets(root, item_schema, item, &format!("{pointer}/{i}"), found);
            }
        }
        return;
    }
    let Value::Object(object) = value else {
        return;
    };
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for part in all {
            collect_secrets(root, part, value, pointer, found);
        }
    }
    if let Some(extra @ Value::Object(_)) = schema.get("additionalProperties") {
        let named = schema.get("properties").and_then(Value::as_object);
        for (name, child) in object
            .iter()
            .filter(|(k, _)| named.is_none_or(|p| !p.contains_key(*k)))
        {
            let child_pointer = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
            collect_secrets(root, extra, child, &child_pointer, found);
        }
    }
    if let Some(Value::Array(any)) = schema.get("anyOf") {
        for branch in any
            .iter()
            .filter(|b| resolve(root, b).get("type") != Some(&Value::String("null".into())))
        {
            collect_secrets(root, branch, value, pointer, found);
        }
    }
    if let Some(Value::Array(variants)) = schema.get("oneOf") {
        let resolved: Vec<Value> = variants.iter().map(|v| resolve(root, v).clone()).collect();
        if let Some(tag) = discriminator_of(&resolved)
            && let Some(given) = object.get(&tag)
            && let Some(variant) = resolved
                .iter()
                .find(|v| v.pointer(&format!("/properties/{tag}/const")) == Some(given))
        {
            collect_secrets(root, variant, value, pointer, found);
        }
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, property) in properties {
            if let Some(child) = object.get(name) {
                let child_pointer =
                    format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                collect_secrets(root, property, child, &child_pointer, found);
            }
        }
    }
}

fn type_matches(expected: &Value, value: &Value) -> bool {
    match expected {
        Value::String(t) => single_type_matches(t, value),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .any(|t| single_type_matches(t, value)),
        _ => true,
    }
}

fn single_type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "string" => value.is_string(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

fn describe_type(expected: &Value) -> String {
    let one = |t: &str| match t {
        "string" => "a string",
        "object" => "an object",
        "array" => "a list",
        "boolean" => "true or false",
        "null" => "null",
        "number" => "a number",
        "integer" => "a whole number",
        _ => "of another type",
    };
    match expected {
        Value::String(t) => one(t).to_owned(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "of another type".to_owned(),
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "settings".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        Secret,
        settings::{ProxySettings, SecretSource},
    };

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        token: Secret,
        key: SecretSource,
        proxy: Option<ProxySettings>,
    }

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        x: u32,
    }

    /// A settings struct of the building blocks, every field titled as the conventions ask.
    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Titled {
        #[schemars(title = "Key")]
        key: SecretSource,
        #[schemars(title = "Proxy")]
        proxy: Option<ProxySettings>,
    }

    /// The places in `schema` where a form would show no title: properties (other than a
    /// union's `const` discriminator) and branches of `anyOf`, with neither a title of their
    /// own nor one on the definition they refer to.
    fn untitled(root: &Value, node: &Value, path: &str, out: &mut Vec<String>) {
        let has_title = |node: &Value| {
            node.get("title").is_some()
                || node
                    .get("allOf")
                    .and_then(|all| all.get(0))
                    .or(Some(node))
                    .map(|inner| resolve(root, inner))
                    .is_some_and(|target| target.get("title").is_some())
        };
        if let Some(Value::Object(properties)) = node.get("properties") {
            for (name, property) in properties {
                if property.get("const").is_none() && !has_title(property) {
                    out.push(format!("{path}.{name}"));
                }
                untitled(root, property, &format!("{path}.{name}"), out);
            }
        }
        for keyword in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(branches)) = node.get(keyword) {
                for (i, branch) in branches.iter().enumerate() {
                    if keyword != "allOf" && !has_title(branch) {
                        out.push(format!("{path}/{keyword}/{i}"));
                    }
                    untitled(root, branch, &format!("{path}/{keyword}/{i}"), out);
                }
            }
        }
        if let Some(Value::Object(definitions)) = node.get("definitions") {
            for (name, definition) in definitions {
                untitled(root, definition, &format!("#{name}"), out);
            }
        }
    }

    #[test]
    fn every_property_and_branch_of_the_building_blocks_has_a_title() {
        let schema = settings_schema::<Titled>();
        let root = schema.as_value();
        let mut missing = Vec::new();
        untitled(root, root, "", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
        assert_eq!(
            root.pointer("/properties/proxy/anyOf/1"),
            Some(&json!({"type": "null", "title": "No proxy"}))
        );
        assert_eq!(lowercase_first_word("HTTP proxy"), "HTTP proxy");
    }

    #[test]
    fn order_hints_beside_a_reference_are_kept_where_draft_07_reads_them() {
        let schema = settings_schema::<Outer>();
        let inner = &schema.as_value()["properties"]["inner"];
        assert_eq!(inner["x-order"], 0);
        assert_eq!(inner.get("$ref"), None, "{inner}");
        assert_eq!(inner["allOf"][0]["$ref"], "#/definitions/Inner");
    }

    #[test]
    fn secret_pointers_follow_refs_unions_and_optional_blocks() {
        let schema = settings_schema::<Doc>();
        let document = json!({
            "name": "n", "token": "t",
            "key": {"source": "local", "value": "v"},
            "proxy": {"server": "http://p:1", "credentials": {"source": "local", "username": "u", "password": "p"}}
        });
        assert_eq!(
            secret_pointers(schema.as_value(), &document),
            ["/token", "/key/value", "/proxy/credentials/password"]
        );
        let vault = json!({"name": "n", "token": "t", "key": {"source": "cyberark", "query": "Safe=S"}, "proxy": null});
        assert_eq!(secret_pointers(schema.as_value(), &vault), ["/token"]);
    }

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Lists {
        tokens: Vec<Secret>,
        keys: std::collections::BTreeMap<String, SecretSource>,
    }

    #[test]
    fn secret_pointers_look_inside_lists_and_maps() {
        let schema = settings_schema::<Lists>();
        let document = json!({
            "tokens": ["a", "b"],
            "keys": {"eu": {"source": "local", "value": "v"}, "us/east": {"source": "cyberark", "query": "Safe=S"}}
        });
        assert_eq!(
            secret_pointers(schema.as_value(), &document),
            ["/tokens/0", "/tokens/1", "/keys/eu/value"]
        );
    }
}
