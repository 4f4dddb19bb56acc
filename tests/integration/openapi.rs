//! The OpenAPI document and the router describe the same API: the routes the handlers' doc
//! lines name are the routes the document lists, and each documented route answers.

use std::collections::BTreeSet;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::spawn_app;

/// The methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `/healthz` answers a degraded state with its report, not with an error.
const HEALTH_REPORT_WHEN_DEGRADED: (&str, &str) = ("GET /healthz", "503");

/// A route: upper-case method and a path whose parameters are all written `{}`.
type Route = (String, String);

fn api_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/api")
}

fn document_text() -> String {
    std::fs::read_to_string(api_dir().join("openapi.json")).expect("src/api/openapi.json")
}

fn document() -> Value {
    serde_json::from_str(&document_text()).expect("the OpenAPI document is JSON")
}

/// `/transits/{id}/actions` and `/transits/{transit_id}/actions` are the same route.
fn normalise(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The route a handler's doc line names, e.g. `/// GET /api/v1/devices?after=ID (...)`.
fn route_of_doc_line(line: &str) -> Option<Route> {
    let (method, rest) = line.trim().strip_prefix("/// ")?.split_once(' ')?;
    if !METHODS.contains(&method.to_lowercase().as_str()) || method != method.to_uppercase() {
        return None;
    }
    let target = rest.split_whitespace().next()?;
    let path = target.split('?').next()?;
    path.starts_with('/')
        .then(|| (method.to_owned(), normalise(path)))
}

/// Every route headed by a `/// METHOD /path` line in src/api/*.rs.
fn router_routes() -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(api_dir()).expect("src/api") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            routes.extend(text.lines().filter_map(route_of_doc_line));
        }
    }
    routes
}

/// Every operation of the document: (route, path as written, operation).
fn operations(doc: &Value) -> Vec<(Route, String, Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                let route = (method.to_uppercase(), normalise(path));
                out.push((route, path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// The value a `$ref` like `#/components/responses/NotFound` points at.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} points at nothing"))
        }
        None => value,
    }
}

fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_lists_exactly_the_routes_of_the_router() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "openapi: {}",
        doc["openapi"]
    );
    let router = router_routes();
    assert!(
        router.contains(&("GET".into(), "/healthz".into()))
            && router.contains(&("GET".into(), "/api/v1/openapi.json".into())),
        "the doc lines were not found: {router:?}"
    );
    let documented: BTreeSet<Route> = operations(&doc).into_iter().map(|(r, _, _)| r).collect();
    let undocumented: Vec<_> = router.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&router).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from the document: {undocumented:?}; \
         documented routes no handler is headed by: {unrouted:?}"
    );
}

#[test]
fn every_documented_route_declares_its_parameters_and_its_errors() {
    let doc = document();
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    for reference in &refs {
        resolve(&doc, &json!({ "$ref": reference }));
    }
    let secured_by_default = doc["security"].as_array().is_some_and(|s| !s.is_empty());
    for ((method, _), path, operation) in operations(&doc) {
        let what = format!("{method} {path}");
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().expect("a parameter name").to_owned())
            .collect();
        let in_path: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}'))
            .map(|(name, _)| name.to_owned())
            .collect();
        assert_eq!(declared, in_path, "{what}: path parameters");

        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no success response"
        );
        let secured = match operation.get("security") {
            Some(s) => s.as_array().is_some_and(|s| !s.is_empty()),
            None => secured_by_default,
        };
        if secured {
            assert!(responses.contains_key("401"), "{what}: no 401");
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(responses.contains_key(status), "{what}: no {status}");
            }
        }
        for (status, response) in responses {
            let failure = status.starts_with('4') || status.starts_with('5');
            if !failure || (what.as_str(), status.as_str()) == HEALTH_REPORT_WHEN_DEGRADED {
                continue;
            }
            let schema = &resolve(&doc, response)["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/Error",
                "{what}: {status} is not the Error shape"
            );
        }
    }
}

/// A value for a path parameter: the routes need the right type to match at all.
fn placeholder(doc: &Value, operation: &Value, name: &str) -> String {
    let parameter = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(doc, p))
        .find(|p| p["in"] == "path" && p["name"] == name)
        .unwrap_or_else(|| panic!("no path parameter {name}"));
    match resolve(doc, &parameter["schema"])["type"].as_str() {
        Some("integer") => "999999".into(),
        _ => "nothing-here".into(),
    }
}

fn fill(doc: &Value, path: &str, operation: &Value) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some((before, after)) = rest.split_once('{') {
        let (name, tail) = after.split_once('}').expect("a closed parameter");
        out.push_str(before);
        out.push_str(&placeholder(doc, operation, name));
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn is_no_such_route(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::NOT_FOUND
        && *body == json!({ "error": { "code": "not_found", "message": "no such route" } })
}

/// Status and JSON body; an event stream is left unread, as it never ends.
async fn call(
    app: &crate::helpers::TestApp,
    method: Method,
    url: &str,
    body: bool,
) -> (StatusCode, Value) {
    let mut request = app
        .http
        .request(method, format!("{}{url}", app.base))
        .bearer_auth(&app.token);
    if body {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        return (status, Value::Null);
    }
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn every_documented_route_is_served_by_the_router() {
    let app = spawn_app().await;
    let (status, body) = call(&app, Method::GET, "/api/v1/not-a-resource", false).await;
    assert!(is_no_such_route(status, &body), "{status} {body}");

    let doc = document();
    let mut unrouted = Vec::new();
    for ((method, _), path, operation) in operations(&doc) {
        let url = fill(&doc, &path, &operation);
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let sends_body = operation.get("requestBody").is_some();
        let (status, body) = call(&app, method.clone(), &url, sends_body).await;
        if is_no_such_route(status, &body) || status == StatusCode::METHOD_NOT_ALLOWED {
            unrouted.push(format!("{method} {url}: {status} {body}"));
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:#?}"
    );
}

#[tokio::test]
async fn the_served_document_is_the_file_and_needs_no_token() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/json");
    assert_eq!(response.text().await.unwrap(), document_text());
}

#[test]
fn the_declaration_example_is_the_one_in_examples() {
    let doc = document();
    let example = &doc["components"]["schemas"]["Declaration"]["examples"][0];
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/declaration.json");
    let mut shipped: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("examples/declaration.json"))
            .expect("JSON");
    assert_eq!(shipped["deadline"], "DEADLINE", "the README fills it in");
    shipped["deadline"] = example["deadline"].clone();
    assert!(example["deadline"]
        .as_str()
        .is_some_and(|d| d.ends_with('Z')));
    assert_eq!(example, &shipped);
}
