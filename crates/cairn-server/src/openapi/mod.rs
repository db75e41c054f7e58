//! The OpenAPI 3.1 document of the REST API (`/api/*`) and the tracking and in-app API
//! (`/v1/*`), served at `GET /api/openapi.json`.
//!
//! The document is written here as data, one [`Operation`] per route and method, built
//! with the small schema builders of [`schema`]. Why not derive it (utoipa): most bodies
//! are shaped in the handlers with `json!` around types of five other crates (the store's
//! rows, the runtime's views, the reports, the program preview), so deriving would put an
//! OpenAPI dependency and a derive on every one of those types — in crates whose
//! invariant is to know nothing of HTTP — and still miss the `json!` envelopes. Written
//! as data, the document is checked where it matters instead:
//!
//! - `tests::every_api_route_is_documented_and_every_documented_route_exists` reads the
//!   routes out of this crate's source (`.route("/api/…"`, `.route("/v1/…"`, and UI
//!   routes at such paths) and compares them with [`operations`] both ways, so a new route
//!   cannot be forgotten;
//! - `crates/cairn/tests/openapi.rs` starts the real server over a simulated demo, calls
//!   every documented operation from the document itself and validates each response
//!   against its schema.
//!
//! A new route is documented by adding its [`Operation`] to the list of its area (a
//! module here per area: [`tracking`], [`engine`], [`reports`]), or a new area's list to
//! [`operations`].

mod engine;
mod reports;
mod schema;
mod tracking;
mod views;

use axum::Json;
use serde_json::{Map, Value, json};

use schema::*;

/// One documented operation: a method on a path (axum's syntax, `/api/accounts/{id}`).
pub(crate) struct Operation {
    /// `get`, `post` or `options`.
    pub method: &'static str,
    /// The path; a literal path may document one value of a router's parameter (each
    /// report is its own path under `/api/reports/{name}`).
    pub path: &'static str,
    /// The OpenAPI Operation Object.
    pub doc: Value,
}

/// Every documented operation, area by area.
pub(crate) fn operations() -> Vec<Operation> {
    let mut all = vec![
        Op::get("/api/openapi.json", "openapi", "This document (OpenAPI 3.1).")
            .tag("meta")
            .public()
            .ok(open_record(&[("openapi", string()), ("info", any_object("")), ("paths", any_object(""))]))
            .done(),
    ];
    all.extend(tracking::operations());
    all.extend(engine::operations());
    all.extend(reports::operations());
    all.extend(views::operations());
    all
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        entry[op.method] = op.doc;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cairn",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of cairn (secret keys) and its Segment-compatible tracking API \
    (write keys) and in-app inbox (publishable keys). Every error is `{\"success\": false, \"error\": \"…\"}` \
    with a message that says what to do.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{ "url": "/" }],
        "tags": [
            { "name": "tracking", "description": "The Segment tracking spec: write keys." },
            { "name": "in-app", "description": "The in-app inbox, from a product's front end: publishable keys." },
            { "name": "accounts", "description": "The engine's state: accounts, health, segments." },
            { "name": "programs", "description": "Programs, their tasks and what became of their sends." },
            { "name": "reports", "description": "The figures of `cairn report NAME --json`." },
            { "name": "meta", "description": "This document." },
        ],
        "paths": paths,
        "components": components(),
    })
}

/// `GET /api/openapi.json` (no key needed: it describes, it reveals no data).
pub async fn serve() -> Json<Value> {
    Json(document())
}

fn components() -> Value {
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        described(
            object(
                &[
                    ("success", json!({ "type": "boolean", "enum": [false] })),
                    ("error", text("What is wrong, where, and what to do.")),
                    ("field", text("The field of the message at fault (tracking API).")),
                    ("error_id", text("Names a bug in the server's log (500s): report it.")),
                ],
                &["success", "error"],
            ),
            "Every error.",
        ),
    );
    for (name, schema) in tracking::schemas().into_iter().chain(engine::schemas()).chain(reports::schemas()) {
        schemas.insert(name.into(), schema);
    }
    let error = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": reference("Error") } } });
    json!({
        "schemas": schemas,
        "responses": {
            "BadRequest": error("The request is not valid: the message says what to fix."),
            "Unauthorized": error("No key, or an unknown, revoked or wrong kind of key."),
            "NotFound": error("No such thing (account, segment, task, program, …), or no workspace loaded."),
            "Conflict": error("The request conflicts with what is stored."),
            "TooLarge": error("The body is over the endpoint's limit."),
            "UnsupportedEncoding": error("A Content-Encoding other than gzip or deflate."),
            "Internal": error("A bug: the body names it by `error_id`."),
            "Unavailable": error("The store is unavailable: nothing was done, retry later."),
        },
        "securitySchemes": {
            "secretKey": {
                "type": "http", "scheme": "bearer",
                "description": "A secret key (`cairn keys create --kind secret`): `Authorization: Bearer cairn_sk_…`.",
            },
            "writeKey": {
                "type": "http", "scheme": "basic",
                "description": "A write key (`cairn keys create --kind write`) as the Basic user name with an \
    empty password, as Segment's libraries send it; or `writeKey` in the JSON body.",
            },
            "publishableKey": {
                "type": "http", "scheme": "bearer",
                "description": "A publishable key (`cairn_pk_…`, public by design: it ships in the product's front end).",
            },
            "publishableKeyQuery": {
                "type": "apiKey", "in": "query", "name": "key",
                "description": "The publishable key as `?key=cairn_pk_…`, for simple embeds.",
            },
        },
    })
}

/// An operation being written.
pub(crate) struct Op {
    method: &'static str,
    path: &'static str,
    doc: Map<String, Value>,
}

impl Op {
    fn new(method: &'static str, path: &'static str, id: &str, summary: &str) -> Op {
        let mut doc = Map::new();
        doc.insert("operationId".into(), json!(id));
        doc.insert("summary".into(), json!(summary));
        doc.insert("responses".into(), json!({}));
        Op { method, path, doc }
    }

    pub(crate) fn get(path: &'static str, id: &str, summary: &str) -> Op {
        Op::new("get", path, id, summary)
    }

    pub(crate) fn post(path: &'static str, id: &str, summary: &str) -> Op {
        Op::new("post", path, id, summary)
    }

    pub(crate) fn options(path: &'static str, id: &str, summary: &str) -> Op {
        Op::new("options", path, id, summary)
    }

    /// A longer description.
    pub(crate) fn describe(mut self, text: &str) -> Op {
        self.doc.insert("description".into(), json!(text));
        self
    }

    pub(crate) fn tag(mut self, tag: &str) -> Op {
        self.doc.insert("tags".into(), json!([tag]));
        self
    }

    fn security(mut self, schemes: Value, unauthorized: bool) -> Op {
        self.doc.insert("security".into(), schemes);
        if unauthorized {
            self = self.error(401, "Unauthorized");
        }
        self
    }

    /// Needs no key.
    pub(crate) fn public(self) -> Op {
        self.security(json!([]), false)
    }

    /// Needs a secret key (401 otherwise); reads the store (503 when it fails, 500 on a bug).
    pub(crate) fn secret(self) -> Op {
        self.security(json!([{ "secretKey": [] }]), true).error(500, "Internal").error(503, "Unavailable")
    }

    /// Needs a write key; reads a body that may be compressed.
    pub(crate) fn write_key(self) -> Op {
        self.security(json!([{ "writeKey": [] }]), true)
            .error(413, "TooLarge")
            .error(415, "UnsupportedEncoding")
            .error(500, "Internal")
            .error(503, "Unavailable")
    }

    /// Needs a publishable key, in the header or the query.
    pub(crate) fn publishable(self) -> Op {
        self.security(json!([{ "publishableKey": [] }, { "publishableKeyQuery": [] }]), true)
            .error(500, "Internal")
            .error(503, "Unavailable")
    }

    fn parameter(mut self, p: Value) -> Op {
        let list = self.doc.entry("parameters").or_insert_with(|| json!([]));
        if let Value::Array(items) = list {
            items.push(p);
        }
        self
    }

    /// A path parameter; `example` is a value that exists in `cairn serve --demo`.
    pub(crate) fn path_param(self, name: &str, description: &str, example: &str) -> Op {
        self.parameter(json!({
            "name": name, "in": "path", "required": true, "description": description,
            "schema": string(), "example": example,
        }))
    }

    /// A path parameter taking one of `values`.
    pub(crate) fn path_enum(self, name: &str, description: &str, values: &[&str]) -> Op {
        self.parameter(json!({
            "name": name, "in": "path", "required": true, "description": description,
            "schema": one_of_strings(values),
        }))
    }

    /// An optional query parameter.
    pub(crate) fn query(self, name: &str, schema: Value, description: &str) -> Op {
        self.parameter(
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema }),
        )
    }

    /// An optional query parameter with an example (which the live check sends too).
    pub(crate) fn query_example(self, name: &str, schema: Value, description: &str, example: &str) -> Op {
        self.parameter(json!({
            "name": name, "in": "query", "required": false, "description": description,
            "schema": schema, "example": example,
        }))
    }

    /// A required query parameter.
    pub(crate) fn query_required(self, name: &str, schema: Value, description: &str, example: &str) -> Op {
        self.parameter(json!({
            "name": name, "in": "query", "required": true, "description": description,
            "schema": schema, "example": example,
        }))
    }

    /// An optional header.
    pub(crate) fn header(self, name: &str, description: &str) -> Op {
        self.parameter(
            json!({ "name": name, "in": "header", "required": false, "description": description, "schema": string() }),
        )
    }

    /// A JSON body, required or not, with an example that works on the demo.
    pub(crate) fn body(mut self, schema: Value, required: bool, example: Value) -> Op {
        self.doc.insert(
            "requestBody".into(),
            json!({
                "required": required,
                "content": { "application/json": { "schema": schema, "example": example } },
            }),
        );
        self.error(400, "BadRequest")
    }

    /// The response of `status` with a JSON body.
    pub(crate) fn status(mut self, status: u16, description: &str, schema: Value) -> Op {
        if let Some(responses) = self.doc.get_mut("responses") {
            responses[status.to_string()] =
                json!({ "description": description, "content": { "application/json": { "schema": schema } } });
        }
        self
    }

    /// The response of `status` without a body.
    pub(crate) fn empty(mut self, status: u16, description: &str) -> Op {
        if let Some(responses) = self.doc.get_mut("responses") {
            responses[status.to_string()] = json!({ "description": description });
        }
        self
    }

    /// 200 with `schema`.
    pub(crate) fn ok(self, schema: Value) -> Op {
        self.status(200, "OK", schema)
    }

    /// An error response of `components.responses`.
    pub(crate) fn error(mut self, status: u16, name: &str) -> Op {
        if let Some(responses) = self.doc.get_mut("responses") {
            responses[status.to_string()] = json!({ "$ref": format!("#/components/responses/{name}") });
        }
        self
    }

    pub(crate) fn done(self) -> Operation {
        Operation { method: self.method, path: self.path, doc: Value::Object(self.doc) }
    }
}

#[cfg(test)]
mod tests;
