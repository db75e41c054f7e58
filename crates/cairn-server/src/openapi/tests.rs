//! The document against the router's source: every `/api` and `/v1` route is documented
//! and every documented operation is a route; and the document is well formed (every
//! reference resolves, every path parameter is declared, ids are unique).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::{document, operations};

/// A route as the source declares it: method and axum path.
type Route = (String, String);

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "options", "head", "any"];

/// The method names called at the top level (paren depth 0) of a method-router
/// expression such as `get(a::b).post(c)` or `routing::get(x)`.
fn methods_of(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut found = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if in_string {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '(' {
            depth += 1;
        } else if c == ')' {
            depth -= 1;
        } else if depth == 0 && (c.is_ascii_alphabetic() || c == '_') {
            let start = i;
            while i < bytes.len() && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expr[start..i];
            if bytes.get(i) == Some(&b'(') && METHODS.contains(&word) {
                found.push(word.to_string());
            }
            continue;
        }
        i += 1;
    }
    found
}

/// The text from `start` up to the `)` (or, with `stop_at_comma`, the `,` or `}`) that
/// closes the expression starting there.
fn expression(text: &str, start: usize, stop_at_comma: bool) -> &str {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut i) = (0i32, false, start);
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => break,
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 && stop_at_comma => break,
                _ => {}
            }
        }
        i += 1;
    }
    &text[start..i]
}

/// The string literal starting at `at` (which is a `"`), and the index after it.
fn literal(text: &str, at: usize) -> Option<(&str, usize)> {
    let rest = text.get(at + 1..)?;
    let end = rest.find('"')?;
    Some((&rest[..end], at + 1 + end + 1))
}

/// Every `/api` and `/v1` route declared in `text`: `.route("/…", handlers)` and the UI
/// list's `path: "/…", … handler: …`.
fn routes_in(file: &str, text: &str, routes: &mut BTreeSet<Route>) {
    let public = |p: &str| p.starts_with("/api/") || p.starts_with("/v1/");
    for (at, _) in text.match_indices(".nest(\"") {
        let (path, _) = literal(text, at + ".nest(".len()).expect("a literal");
        assert!(
            !public(path),
            "{file}: `.nest(\"{path}\", …)` hides its routes from this check: declare them with `.route`"
        );
    }
    for (at, _) in text.match_indices(".route(\"") {
        let (path, after) = literal(text, at + ".route(".len()).expect("a literal");
        if !public(path) {
            continue;
        }
        let expr = expression(text, after, false);
        let methods = methods_of(expr);
        assert!(!methods.is_empty(), "{file}: no method found for route {path} in `{expr}`");
        for m in methods {
            routes.insert((m, path.to_string()));
        }
    }
    for (at, _) in text.match_indices("path: \"") {
        let (path, after) = literal(text, at + "path: ".len()).expect("a literal");
        if !public(path) {
            continue;
        }
        let handler = text[after..].find("handler:").map(|h| after + h + "handler:".len());
        let handler = handler.unwrap_or_else(|| panic!("{file}: UI route {path} without `handler:`"));
        for m in methods_of(expression(text, handler, true)) {
            routes.insert((m, path.to_string()));
        }
    }
}

fn source_routes() -> BTreeSet<Route> {
    fn walk(dir: &Path, routes: &mut BTreeSet<Route>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                // The document's own builders name paths too; they are what is checked.
                if !path.ends_with("openapi") {
                    walk(&path, routes);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                routes_in(&path.display().to_string(), &text, routes);
            }
        }
    }
    let mut routes = BTreeSet::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut routes);
    routes
}

/// Whether the documented `path` is the router's `template` or one value of it.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || t.starts_with('{'))
}

#[test]
fn the_source_reader_finds_methods_and_paths() {
    assert_eq!(methods_of("get(links::unsubscribe_page).post(links::unsubscribe))"), ["get", "post"]);
    assert_eq!(methods_of("routing::get(f(\")\")).options(p)"), ["get", "options"]);
    assert_eq!(methods_of("post(api::x.get_thing())"), ["post"]);
    let mut routes = BTreeSet::new();
    routes_in(
        "example",
        r#"Router::new().route("/healthz", get(h)).route("/api/x/{id}", get(a).post(b))
           vec![UiRoute { path: "/api/views/home", needs: Permission::Read, handler: get(v) },
                UiRoute { path: "/accounts", needs: Permission::Read, handler: post(w) }]"#,
        &mut routes,
    );
    let expected: BTreeSet<Route> = [("get", "/api/x/{id}"), ("post", "/api/x/{id}"), ("get", "/api/views/home")]
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(routes, expected);
}

#[test]
fn every_api_route_is_documented_and_every_documented_route_exists() {
    let routes = source_routes();
    assert!(routes.len() >= 20, "the source reader found too few routes: {routes:?}");
    let documented: BTreeSet<Route> = operations().iter().map(|o| (o.method.to_string(), o.path.to_string())).collect();
    let undocumented: Vec<String> = routes
        .iter()
        .filter(|(m, t)| !documented.iter().any(|(dm, dp)| dm == m && matches(t, dp)))
        .map(|(m, t)| format!("{} {t}", m.to_uppercase()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document (add an Operation in crates/cairn-server/src/openapi/): {undocumented:?}"
    );
    let unrouted: Vec<String> = documented
        .iter()
        .filter(|(m, p)| !routes.iter().any(|(rm, t)| rm == m && matches(t, p)))
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(unrouted.is_empty(), "documented operations that no route serves: {unrouted:?}");
}

#[test]
fn every_report_the_handler_serves_is_documented_and_no_other() {
    let source = include_str!("../reports.rs");
    let handler = &source[source.find("match name.as_str()").expect("the report match")..];
    let mut served = BTreeSet::new();
    for line in handler.lines().map(str::trim) {
        if line.starts_with("other =>") {
            break;
        }
        if line.starts_with('"') && line.contains("=>") {
            let arms = line.split("=>").next().unwrap_or("");
            let arms = arms.split(" if ").next().unwrap_or("");
            for arm in arms.split('|') {
                served.insert(arm.trim().trim_matches('"').to_string());
            }
        }
    }
    let documented: BTreeSet<String> = operations()
        .iter()
        .filter_map(|o| o.path.strip_prefix("/api/reports/"))
        .filter(|name| !name.starts_with('{'))
        .map(str::to_string)
        .collect();
    assert!(served.len() >= 12, "{served:?}");
    assert_eq!(served, documented, "the reports served and the reports documented differ");
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external reference {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    let mut ids = BTreeMap::new();
    for op in operations() {
        let id = op.doc["operationId"].as_str().expect("an operationId").to_string();
        assert!(ids.insert(id.clone(), op.path).is_none(), "operationId {id} is used twice");
        let declared: BTreeSet<&str> = op.doc["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        let in_path: BTreeSet<&str> =
            op.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        assert_eq!(declared, in_path, "{} {}: path parameters", op.method, op.path);
        let responses = op.doc["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{} {} documents no success response",
            op.method,
            op.path
        );
        assert!(op.doc["security"].is_array(), "{} {} says nothing of keys", op.method, op.path);
    }
}
