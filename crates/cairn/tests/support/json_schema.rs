//! A validator for the subset of JSON Schema (2020-12) that cairn's OpenAPI document
//! uses: `type` (a name or a list), `properties`, `required`, `additionalProperties`
//! (true, false or a schema), `items` (a schema or false), `prefixItems`, `enum`,
//! `oneOf`, `$ref` (within the document), `minimum`, `maximum`, `format` (`date-time`,
//! `date`), and the annotations `description` and `example`. Any other keyword is an
//! error, so the document cannot lean on a rule this check would silently skip.

use serde_json::Value;

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "enum",
    "oneOf",
    "$ref",
    "minimum",
    "maximum",
    "format",
    "description",
    "example",
];

/// Every way `value` breaks `schema` (references resolved in `doc`), each with its JSON
/// pointer; empty when it conforms.
pub fn validate(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, schema, value, "", &mut errors);
    errors
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{at}: no value is allowed here, found {value}"));
            return;
        }
        Value::Object(s) => s,
        other => {
            errors.push(format!("{at}: the schema {other} is not an object"));
            return;
        }
    };
    for key in schema.keys() {
        if !KEYWORDS.contains(&key.as_str()) {
            errors.push(format!("{at}: the schema uses `{key}`, which this validator does not check"));
        }
    }
    if let Some(Value::String(r)) = schema.get("$ref") {
        match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(target) => check(doc, target, value, at, errors),
            None => errors.push(format!("{at}: unresolved reference {r}")),
        }
    }
    if let Some(t) = schema.get("type") {
        let names: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.iter().any(|n| type_matches(n, value)) {
            errors.push(format!("{at}: expected {}, found {value}", names.join(" or ")));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {}", Value::Array(allowed.clone())));
    }
    if let Some(Value::Array(branches)) = schema.get("oneOf") {
        let passing = branches.iter().filter(|b| validate_at(doc, b, value, at).is_empty()).count();
        if passing != 1 {
            let why: Vec<String> = branches.iter().map(|b| validate_at(doc, b, value, at).join("; ")).collect();
            errors.push(format!("{at}: {passing} of the oneOf branches match, not exactly one ({})", why.join(" | ")));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errors.push(format!("{at}: {n} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errors.push(format!("{at}: {n} is above the maximum {max}"));
        }
    }
    if let (Some(format), Some(text)) = (schema.get("format").and_then(Value::as_str), value.as_str()) {
        let ok = match format {
            "date-time" => text.parse::<jiff::Timestamp>().is_ok(),
            "date" => text.parse::<jiff::civil::Date>().is_ok() && text.len() == 10,
            other => {
                errors.push(format!("{at}: the format `{other}` is not checked by this validator"));
                true
            }
        };
        if !ok {
            errors.push(format!("{at}: `{text}` is not a {format}"));
        }
    }
    if let Value::Object(members) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !members.contains_key(name) {
                    errors.push(format!("{at}: the member `{name}` is missing"));
                }
            }
        }
        for (name, member) in members {
            let here = format!("{at}/{name}");
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(s), _) => check(doc, s, member, &here, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{at}: the member `{name}` is not in the schema"));
                }
                (None, Some(extra)) => check(doc, extra, member, &here, errors),
                (None, None) => {}
            }
        }
    }
    if let Value::Array(items) = value {
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        let fixed = prefix.map_or(0, Vec::len);
        if let Some(prefix) = prefix {
            if items.len() < fixed {
                errors.push(format!("{at}: {} items, expected {fixed}", items.len()));
            }
            for (i, (s, item)) in prefix.iter().zip(items).enumerate() {
                check(doc, s, item, &format!("{at}/{i}"), errors);
            }
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate().skip(fixed) {
                check(doc, s, item, &format!("{at}/{i}"), errors);
            }
        }
    }
}

fn validate_at(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, schema, value, at, &mut errors);
    errors
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate;

    fn doc() -> serde_json::Value {
        json!({ "components": { "schemas": {
            "Pair": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "integer" }], "items": false },
            "Item": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "minimum": 0 },
                    "band": { "type": "string", "enum": ["red", "green"] },
                    "at": { "type": ["string", "null"], "format": "date-time" },
                    "pair": { "$ref": "#/components/schemas/Pair" },
                    "either": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
                },
                "required": ["id", "band"],
                "additionalProperties": false,
            },
        }}})
    }

    #[test]
    fn a_conforming_value_passes_and_each_kind_of_breach_is_named() {
        let doc = doc();
        let item = json!({ "$ref": "#/components/schemas/Item" });
        let good = json!({ "id": 3, "band": "red", "at": "2026-03-01T12:00:00Z", "pair": ["a", 1], "either": 2 });
        assert_eq!(validate(&doc, &item, &good), Vec::<String>::new());
        assert_eq!(validate(&doc, &item, &json!({ "id": 3, "band": "red", "at": null })), Vec::<String>::new());
        let cases = [
            (json!({ "band": "red" }), "`id` is missing"),
            (json!({ "id": 3.5, "band": "red" }), "expected integer"),
            (json!({ "id": -1, "band": "red" }), "below the minimum"),
            (json!({ "id": 1, "band": "blue" }), "is not one of"),
            (json!({ "id": 1, "band": "red", "extra": true }), "`extra` is not in the schema"),
            (json!({ "id": 1, "band": "red", "at": "yesterday" }), "is not a date-time"),
            (json!({ "id": 1, "band": "red", "pair": ["a", 1, 2] }), "no value is allowed"),
            (json!({ "id": 1, "band": "red", "pair": [1, 1] }), "/pair/0: expected string"),
            (json!({ "id": 1, "band": "red", "either": true }), "0 of the oneOf branches"),
            (json!([1]), "expected object"),
        ];
        for (value, expected) in cases {
            let errors = validate(&doc, &item, &value);
            assert!(errors.iter().any(|e| e.contains(expected)), "{value}: {errors:?} should say `{expected}`");
        }
    }

    #[test]
    fn a_keyword_the_validator_does_not_know_is_an_error() {
        let errors = validate(&json!({}), &json!({ "type": "string", "pattern": "^a" }), &json!("b"));
        assert!(errors.iter().any(|e| e.contains("`pattern`")), "{errors:?}");
    }
}
