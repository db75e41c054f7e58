//! Builders for the JSON Schema (2020-12, as OpenAPI 3.1 uses it) of the document: the
//! few shapes the API's bodies take, so that each schema reads like the struct it
//! describes.
//!
//! Only the keywords the live check in `crates/cairn/tests/openapi.rs` validates are
//! produced: `type` (one or with `"null"`), `properties`, `required`,
//! `additionalProperties`, `items`, `prefixItems`, `enum`, `oneOf`, `$ref`, `minimum`,
//! `maximum`, `format` (date-time, date), and the annotations `description` and
//! `example`.

use serde_json::{Map, Value, json};

/// A string.
pub(crate) fn string() -> Value {
    json!({ "type": "string" })
}

/// A string described.
pub(crate) fn text(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// An RFC 3339 instant.
pub(crate) fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

/// A calendar day, `YYYY-MM-DD`.
pub(crate) fn date() -> Value {
    json!({ "type": "string", "format": "date" })
}

/// An integer.
pub(crate) fn integer() -> Value {
    json!({ "type": "integer" })
}

/// An integer from 0 up.
pub(crate) fn count() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

/// A number.
pub(crate) fn number() -> Value {
    json!({ "type": "number" })
}

/// true or false.
pub(crate) fn boolean() -> Value {
    json!({ "type": "boolean" })
}

/// Exactly one of `values` (strings).
pub(crate) fn one_of_strings(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// Any JSON object (its members are not described here).
pub(crate) fn any_object(description: &str) -> Value {
    json!({ "type": "object", "description": description })
}

/// Any JSON value.
pub(crate) fn any(description: &str) -> Value {
    json!({ "description": description })
}

/// An array of `items`.
pub(crate) fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// A fixed-length array whose positions have the given schemas (a Rust tuple).
pub(crate) fn tuple(items: &[Value]) -> Value {
    json!({ "type": "array", "prefixItems": items, "items": false })
}

/// An object whose keys are free and whose values are `values` (a map).
pub(crate) fn map(values: Value) -> Value {
    json!({ "type": "object", "additionalProperties": values })
}

/// A reference to a schema of `components.schemas`.
pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema`, or null (a Rust `Option` serialised without skipping).
pub(crate) fn nullable(schema: Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some(t) if schema.get("enum").is_none() => {
            let mut s = schema.clone();
            s["type"] = json!([t, "null"]);
            s
        }
        _ => json!({ "oneOf": [schema, { "type": "null" }] }),
    }
}

/// A closed object: every member in `required` is always there, the others of
/// `properties` may be, and no other member appears.
pub(crate) fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let props: Map<String, Value> = properties.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect();
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

/// A closed object whose every member is always there (a Rust struct serialised as is).
pub(crate) fn record(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(k, _)| *k).collect();
    object(properties, &required)
}

/// An object with these members always there and possibly more (`#[serde(flatten)]`ed
/// maps, open-ended details).
pub(crate) fn open_record(properties: &[(&str, Value)]) -> Value {
    let mut s = record(properties);
    s["additionalProperties"] = json!(true);
    s
}

/// `schema` with a description.
pub(crate) fn described(mut schema: Value, description: &str) -> Value {
    if schema.get("$ref").is_some() {
        // A `$ref` beside other keywords is allowed in 3.1, but keep references bare.
        return schema;
    }
    schema["description"] = json!(description);
    schema
}
