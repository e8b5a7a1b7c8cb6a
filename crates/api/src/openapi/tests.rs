//! The document is something clients generate code from: every operation named once,
//! every success typed, every problem declared, every route present, every limit stated.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::Document;

fn document() -> Document {
    Document::of(&trellis_contexts::modules())
}

fn doc() -> Value {
    serde_json::to_value(document().openapi()).unwrap()
}

/// `(method, path, operation)` of every operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                all.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    all
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            let resolved = &doc["components"]["schemas"][name];
            assert!(resolved.is_object(), "{reference} is not a component");
            resolved
        }
        None => schema,
    }
}

/// Whether a success body's schema says what it holds: not `{}`, not an object without
/// properties, not an array of such.
fn is_typed(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    let Some(object) = schema.as_object() else {
        return false;
    };
    if object.is_empty() {
        return false;
    }
    let types: Vec<&str> = match object.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some(parts) = ["allOf", "oneOf", "anyOf"]
        .iter()
        .find_map(|k| object.get(*k).and_then(Value::as_array))
    {
        return parts.iter().all(|p| is_typed(doc, p));
    }
    if types.contains(&"array") {
        return object
            .get("items")
            .is_some_and(|items| is_typed(doc, items));
    }
    if types.contains(&"object") || types.is_empty() {
        return object
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
    }
    true
}

#[test]
fn every_operation_has_a_unique_descriptive_operation_id() {
    let doc = doc();
    // What utoipa falls back to (the handler's name) when an annotation names none.
    let generic = [
        "create",
        "list",
        "search",
        "events",
        "read",
        "stream",
        "define",
        "import",
        "publish",
        "rate",
        "submit",
        "approve",
        "retry",
        "declare",
        "me",
        "ready",
        "healthz",
        "metrics",
        "projections",
        "parked",
        "retry_parked",
        "sign_up",
        "refresh",
        "deactivate",
        "assign_roles",
        "assign_manager",
        "change_password",
        "add_item",
        "complete_item",
        "openapi_document",
    ];
    let mut seen = BTreeMap::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            !generic.contains(&id),
            "{method} {path}: operationId `{id}` is the handler's name, not a description"
        );
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId `{id}` is not lowerCamelCase"
        );
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId `{id}` is used by {other} and {method} {path}");
        }
    }
}

#[test]
fn every_success_response_has_a_typed_schema() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        // A WebSocket's success is its upgrade (101).
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s == "101"),
            "{method} {path} declares no success"
        );
        for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
            let content = response["content"].as_object();
            if status == "204" {
                assert!(content.is_none(), "{method} {path} 204 has a body");
                continue;
            }
            let content =
                content.unwrap_or_else(|| panic!("{method} {path} {status} has no content"));
            assert!(
                !content.is_empty(),
                "{method} {path} {status} has no content"
            );
            for (media, body) in content {
                assert!(
                    is_typed(&doc, &body["schema"]),
                    "{method} {path} {status} {media}: the schema {} says nothing typed",
                    body["schema"]
                );
            }
        }
    }
}

#[test]
fn every_operation_declares_the_problems_it_can_answer() {
    let doc = doc();
    let has = |op: &Value, status: &str| op["responses"].get(status).is_some();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let schemes: BTreeSet<String> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|r| r.keys().cloned())
            .collect();
        let parameters: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
        let located = |place: &str| parameters.iter().any(|p| p["in"] == place);
        let json_body = op["requestBody"]["content"]
            .get("application/json")
            .is_some();
        // The operator's routes ignore the header; token answers are never stored; uploads
        // are streamed, never buffered to be fingerprinted.
        let upload = op["requestBody"]["content"]
            .as_object()
            .is_some_and(|c| c.keys().any(|media| media.starts_with("multipart/")));
        let command = method == "post"
            && !upload
            && !path.starts_with("/v1/auth/")
            && !schemes.contains("operator");
        if upload {
            for status in ["400", "413", "415", "422"] {
                assert!(
                    has(&op, status),
                    "{name} takes a file but declares no {status}"
                );
            }
            assert!(
                !parameters.iter().any(|p| p["name"] == "Idempotency-Key"),
                "{name}: uploads take no Idempotency-Key"
            );
        }

        assert!(
            has(&op, "503"),
            "{name}: every request can meet the deadline (503)"
        );
        if !schemes.is_empty() {
            assert!(has(&op, "401"), "{name} is secured but declares no 401");
        }
        if schemes.contains("operator") {
            assert!(
                has(&op, "404"),
                "{name}: operator routes are 404 without a token"
            );
        }
        if located("path") {
            assert!(
                has(&op, "404"),
                "{name} has path parameters but declares no 404"
            );
        }
        if located("query") {
            assert!(
                has(&op, "422"),
                "{name} has query parameters but declares no 422"
            );
        }
        if json_body {
            for status in ["400", "413", "422"] {
                assert!(
                    has(&op, status),
                    "{name} takes JSON but declares no {status}"
                );
            }
        }
        if command {
            for status in ["409", "413", "422"] {
                assert!(
                    has(&op, status),
                    "{name} is a command but declares no {status}"
                );
            }
            assert!(
                parameters
                    .iter()
                    .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key"),
                "{name} is a command but does not document Idempotency-Key"
            );
            if schemes.contains("bearer") {
                assert!(has(&op, "429"), "{name} spends the write budget: 429");
            }
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{name} {status} has no body"));
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{name} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{name} {status}"
                );
            }
            if status == "429" {
                assert!(
                    response["headers"].get("Retry-After").is_some(),
                    "{name} 429 without Retry-After"
                );
            }
        }
    }
}

/// Sources of every router: the platform's (`crates/api/src/routes/`) and every context's
/// HTTP slice (`crates/*/src/http.rs`, `crates/*/src/http/`), read from the workspace so a
/// new context's routes are checked without listing them here.
fn route_sources() -> Vec<(std::path::PathBuf, String)> {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    let rust_files = |dir: std::path::PathBuf| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                    .collect()
            })
            .unwrap_or_default()
    };
    files.extend(rust_files(crates.join("api/src/routes")));
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        files.extend(rust_files(src.join("http")));
        if src.join("http.rs").exists() {
            files.push(src.join("http.rs"));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path).unwrap();
            (path, source)
        })
        .collect()
}

/// `(method, path)` of every `.route(path, method(…).method(…))` in the sources.
fn served_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (_, source) in route_sources() {
        let mut rest = source.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("a closed .route(");
            let call = &rest[..end];
            let path = call.split('"').nth(1).expect("a literal path").to_owned();
            let mut methods = 0;
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0 || !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    routes.insert((method.to_owned(), path.clone()));
                    methods += 1;
                }
            }
            assert!(methods > 0, "no method found in .route({call})");
            rest = &rest[end..];
        }
    }
    routes
}

#[test]
fn every_served_route_is_documented() {
    let served = served_routes();
    assert!(served.len() >= 30, "the parser found only {served:?}");
    let doc = doc();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    let phantom: Vec<_> = documented.difference(&served).collect();
    assert!(phantom.is_empty(), "documented but not served: {phantom:?}");
}

#[test]
fn request_limits_are_the_domain_limits() {
    use trellis_development::limits as dev;
    use trellis_identity::{DisplayName, Email, OrganizationName};
    let doc = doc();
    let property = |schema: &str, path: &[&str]| -> Value {
        let mut value = doc["components"]["schemas"][schema].clone();
        for step in path {
            value = resolve(&doc, &value).clone();
            value = if *step == "[]" {
                value["items"].clone()
            } else {
                value["properties"][*step].clone()
            };
        }
        resolve(&doc, &value).clone()
    };
    let max_length = |schema: &str, path: &[&str]| property(schema, path)["maxLength"].clone();
    // The identity values keep their constants private: the documented limit is the longest
    // value they take.
    let longest = |fits: &dyn Fn(usize) -> bool| (1..1000).take_while(|n| fits(*n)).last();
    let organization_name = longest(&|n| OrganizationName::parse(&"x".repeat(n)).is_ok()).unwrap();
    let display_name = longest(&|n| DisplayName::parse(&"x".repeat(n)).is_ok()).unwrap();
    let email = longest(&|n| Email::parse(&format!("{}@example.com", "x".repeat(n))).is_ok())
        .unwrap()
        + "@example.com".len();
    let too_long = |n: usize| {
        let text = "correct horse battery staple!".repeat(5);
        crate::auth::check_password_policy(&text[..n], &[])
            .is_err_and(|why| why.contains("at most"))
    };
    let password = 128;
    assert!(!too_long(password) && too_long(password + 1));
    for (schema, path, max) in [
        ("SignUp", &["name"][..], organization_name),
        ("SignUp", &["admin", "display_name"], display_name),
        ("SignUp", &["admin", "email"], email),
        ("SignUp", &["admin", "password"], password),
        ("CreateUser", &["display_name"], display_name),
        ("CreateUser", &["email"], email),
        ("CreateUser", &["password"], password),
        ("ChangePassword", &["new_password"], password),
        ("DefineSkill", &["name"], dev::SKILL_NAME_MAX),
        ("DefineSkill", &["description"], dev::SKILL_DESCRIPTION_MAX),
        ("DefineSkill", &["aliases", "[]"], dev::SKILL_ALIAS_MAX),
        ("DefineSkill", &["esco_uri"], dev::ESCO_URI_MAX),
        ("PublishResource", &["title"], dev::RESOURCE_TITLE_MAX),
        (
            "PublishResource",
            &["description"],
            dev::RESOURCE_DESCRIPTION_MAX,
        ),
        ("PublishResource", &["url"], dev::RESOURCE_URL_MAX),
        ("SubmitReview", &["period"], dev::REVIEW_PERIOD_MAX),
        ("SubmitReview", &["feedback"], dev::REVIEW_FEEDBACK_MAX),
        ("CreateIdp", &["title"], dev::IDP_TITLE_MAX),
        ("CreateIdp", &["target_role"], dev::IDP_TARGET_ROLE_MAX),
        ("AddItem", &["title"], dev::IDP_TITLE_MAX),
    ] {
        assert_eq!(max_length(schema, path), json!(max), "{schema}.{path:?}");
    }
    let refs = trellis_development_app::idps::MAX_SKILLS;
    for (schema, list, max) in [
        ("DefineSkill", "aliases", dev::SKILL_ALIASES_MAX),
        ("PublishResource", "skills", refs),
        ("SubmitReview", "ratings", refs),
        ("CreateIdp", "target_skills", refs),
        ("AddItem", "skill_ids", refs),
    ] {
        assert_eq!(
            property(schema, &[list])["maxItems"],
            json!(max),
            "{schema}.{list}"
        );
    }
    // Text kinds became patterns, and nothing is left of the markers.
    let text = doc.to_string();
    assert!(
        !text.contains("trellis:"),
        "an unknown text kind is left in the document"
    );
    assert!(property("DefineSkill", &["name"])["pattern"].is_string());
    assert!(
        property("DefineSkill", &["esco_uri"])["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^[Hh][Tt][Tt][Pp][Ss]?://")
    );
    // Query ranges.
    let parameter = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    for (path, name, min, max) in [
        ("/v1/skills", "limit", 1, 100),
        ("/v1/occupations", "limit", 1, 100),
        ("/v1/audit/events", "limit", 1, 1000),
        ("/v1/ops/parked", "limit", 1, 1000),
    ] {
        let schema = parameter(path, name);
        assert_eq!(
            (schema["minimum"].clone(), schema["maximum"].clone()),
            (json!(min), json!(max)),
            "{path} {name}"
        );
    }
}

#[test]
fn typed_responses_serialize_as_the_json_they_replaced() {
    // `json!` objects are sorted maps: the typed responses list their fields in that order,
    // so the bytes on the wire did not change.
    let id = uuid::Uuid::now_v7();
    let same = |typed: String, old: Value| assert_eq!(typed, old.to_string());
    same(
        serde_json::to_string(&super::Accepted { id, version: 3 }).unwrap(),
        json!({"id": id, "version": 3}),
    );
    same(
        serde_json::to_string(&super::Processing {
            id,
            status: "processing",
            version: 1,
        })
        .unwrap(),
        json!({"id": id, "status": "processing", "version": 1}),
    );
    same(
        serde_json::to_string(&super::Readiness {
            kafka: "single-node",
            postgres: "ok",
            status: "ready",
        })
        .unwrap(),
        json!({"status": "ready", "postgres": "ok", "kafka": "single-node"}),
    );
    // A problem without field errors has no `errors` key.
    let problem = serde_json::to_value(super::Problem {
        kind: "https://trellis.dev/problems/not-found".into(),
        title: "Not Found".into(),
        status: 404,
        detail: "not found".into(),
        errors: None,
    })
    .unwrap();
    assert!(problem.get("errors").is_none());
}

#[test]
fn the_idempotency_layer_knows_the_commands_from_the_document() {
    use super::Command;
    use axum::http::Method;
    let document = document();
    let command = |method: &Method, path: &str| document.command(method, path);
    assert_eq!(command(&Method::POST, "/v1/users"), Some(Command::User));
    assert_eq!(
        command(&Method::POST, "/v1/users/{id}/roles"),
        Some(Command::User)
    );
    assert_eq!(
        command(&Method::POST, "/v1/organizations"),
        Some(Command::Anonymous)
    );
    for (method, path) in [
        (Method::PUT, "/v1/organizations"),
        (Method::POST, "/v1/users/me"),
        (Method::GET, "/v1/users"),
        (Method::POST, "/v1/auth/login"),
        (Method::POST, "/v1/ops/parked/{event_id}/retry"),
        (Method::POST, "/v1/nothing"),
    ] {
        assert_eq!(command(&method, path), None, "{method} {path}");
    }
}
