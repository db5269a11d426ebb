//! The OpenAPI document describes security, headers and errors of every operation.
//!
//! The checks iterate over `PERMISSIONS` and `ErrorCode::TABLE`, so a route or an error
//! code added to a table is covered at once.

use std::collections::BTreeSet;

use dcp::http::error::ErrorCode;
use dcp::http::openapi::OWN_ERROR_BODIES;
use dcp::http::permissions::{Access, PERMISSIONS};
use dcp_aggregates::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

const ERROR_REF: &str = "#/components/schemas/Error";

/// Fetches `/api/v1/openapi.json` anonymously, as clients and code generators do.
async fn fetch_document(app: &TestApp) -> Value {
    let response = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).expect("the document is JSON")
}

async fn document() -> Value {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    app.stop().await;
    document
}

/// Follows a `$ref` (to a local component) until the referenced object.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("not a local reference: {reference}"));
            let target = document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference: {reference}"));
            resolve(document, target)
        }
        None => value,
    }
}

fn operation<'a>(document: &'a Value, method: &str, route: &str) -> &'a Value {
    document["paths"][route]
        .get(method.to_lowercase())
        .unwrap_or_else(|| panic!("{method} {route} is not in the document"))
}

fn codes_with_status(status: u16) -> BTreeSet<&'static str> {
    ErrorCode::http_rows()
        .filter(|row| row.status == status)
        .map(|row| row.name)
        .collect()
}

fn status_of(code: &str) -> u16 {
    ErrorCode::http_rows()
        .find(|row| row.name == code)
        .map(|row| row.status)
        .unwrap_or_else(|| panic!("{code} is not among the HTTP codes of ErrorCode::TABLE"))
}

/// The header parameters an operation declares, resolved, by lowercase name.
fn header_parameters<'a>(document: &'a Value, operation: &'a Value) -> Vec<(String, &'a Value)> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|parameter| resolve(document, parameter))
        .filter(|parameter| parameter["in"] == "header")
        .map(|parameter| {
            let name = parameter["name"].as_str().expect("a named parameter");
            (name.to_lowercase(), parameter)
        })
        .collect()
}

/// Reads (and the user commands that look the user up first) wait for a position.
fn accepts_min_position(method: &str, route: &str) -> bool {
    let is_read =
        method == "GET" && route.starts_with("/api/v1/") && route != "/api/v1/openapi.json";
    is_read || (route == "/api/v1/users/{id}" && matches!(method, "PATCH" | "DELETE"))
}

fn accepts_prefer_minimal(method: &str, route: &str) -> bool {
    (method, route) == ("POST", "/api/v1/users")
        || (route == "/api/v1/users/{id}" && matches!(method, "PATCH" | "DELETE"))
}

fn is_throttled(method: &str, route: &str) -> bool {
    method == "POST" && matches!(route, "/api/v1/auth/login" | "/api/v1/auth/password")
}

fn touches_database(route: &str) -> bool {
    !matches!(route, "/health" | "/health/live")
}

/// Asserts the operation documents `status` as an error response in the error format
/// carrying at least `codes`.
fn assert_error_response(
    document: &Value,
    (method, route): (&str, &str),
    status: &str,
    codes: &BTreeSet<&str>,
) {
    let response = &operation(document, method, route)["responses"][status];
    assert!(
        response.is_object(),
        "{method} {route}: no {status} response"
    );
    if OWN_ERROR_BODIES.contains(&(method, route, status)) {
        return;
    }
    let response = resolve(document, response);
    let listed: BTreeSet<&str> = response["x-dcp-error-codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {route} {status}: no x-dcp-error-codes"))
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    assert!(
        listed.is_superset(codes),
        "{method} {route} {status}: codes {listed:?}, expected {codes:?}"
    );
}

#[tokio::test]
async fn the_document_round_trips_and_every_reference_resolves() {
    let document = document().await;
    assert_eq!(document["openapi"], "3.1.0");
    let text = serde_json::to_string(&document).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), document);
    // utoipa cannot read back the `{}` (any value) schemas of JSON fields, so the parts
    // this project writes itself go through the OpenAPI model: paths and the Error schema.
    let paths: utoipa::openapi::path::Paths =
        serde_json::from_value(document["paths"].clone()).expect("the paths parse as OpenAPI");
    assert_eq!(serde_json::to_value(&paths).unwrap(), document["paths"]);
    let error = &document["components"]["schemas"]["Error"];
    let schema: utoipa::openapi::Schema =
        serde_json::from_value(error.clone()).expect("the Error schema parses");
    assert_eq!(&serde_json::to_value(&schema).unwrap(), error);

    for (method, route, _) in PERMISSIONS {
        for (status, response) in operation(&document, method, route)["responses"]
            .as_object()
            .expect("responses")
        {
            let description = resolve(&document, response)["description"].as_str();
            assert!(
                description.is_some_and(|d| !d.is_empty()),
                "{method} {route} {status}: a response needs a description"
            );
        }
    }

    let mut references = Vec::new();
    let mut pending = vec![&document];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    references.push(reference.clone());
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    assert!(references.iter().any(|r| r == ERROR_REF), "{references:?}");
    let dangling: BTreeSet<&String> = references
        .iter()
        .filter(|reference| {
            let pointer = reference
                .strip_prefix("#/components/")
                .unwrap_or_else(|| panic!("{reference} does not point into the components"));
            document["components"]
                .pointer(&format!("/{pointer}"))
                .is_none()
        })
        .collect();
    assert!(
        dangling.is_empty(),
        "references to missing components: {dangling:?}"
    );
}

#[tokio::test]
async fn the_error_schema_lists_every_code_and_matches_a_real_error() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    let schema = &document["components"]["schemas"]["Error"];
    let codes: Vec<&str> = schema["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the code is an enum")
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let table: Vec<&str> = ErrorCode::http_rows().map(|row| row.name).collect();
    assert_eq!(codes, table);
    assert_eq!(schema["properties"]["status"]["enum"], json!(["error"]));

    let response = app.request(Method::GET, "/api/v1/users", None, None).await;
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILED").await;
    for (schema, body) in [
        (schema, &body),
        (&schema["properties"]["error"], &body["error"]),
    ] {
        let required = schema["required"].as_array().expect("required fields");
        let properties = schema["properties"].as_object().unwrap();
        let keys = body.as_object().unwrap();
        assert_eq!(
            keys.keys().collect::<BTreeSet<_>>(),
            properties.keys().collect::<BTreeSet<_>>(),
            "the schema and a real error name the same fields"
        );
        for field in required {
            assert!(
                keys.contains_key(field.as_str().unwrap()),
                "{field} missing"
            );
        }
    }
    assert!(codes.contains(&body["error"]["code"].as_str().unwrap()));
    app.stop().await;
}

#[tokio::test]
async fn security_and_roles_follow_the_permission_table() {
    let document = document().await;
    for (method, route, access) in PERMISSIONS {
        let operation = operation(&document, method, route);
        let description = operation["description"].as_str().unwrap_or_default();
        let roles: Option<BTreeSet<&str>> = operation["x-dcp-roles"]
            .as_array()
            .map(|roles| roles.iter().map(|role| role.as_str().unwrap()).collect());
        match access {
            Access::Public => {
                assert!(
                    operation
                        .get("security")
                        .is_none_or(|security| security == &json!([])),
                    "{method} {route} is public but asks for {}",
                    operation["security"]
                );
                assert_eq!(operation["x-dcp-access"], "public", "{method} {route}");
                assert_eq!(roles, None, "{method} {route}");
                assert!(description.contains("public"), "{method} {route}");
            }
            Access::SignedIn | Access::Roles(_) => {
                assert_eq!(
                    operation["security"],
                    json!([{"bearer": []}]),
                    "{method} {route}"
                );
                let allowed = match access {
                    Access::Roles(allowed) => allowed,
                    _ => &Role::ALL[..],
                };
                let expected: BTreeSet<&str> = allowed.iter().map(|role| role.as_str()).collect();
                assert_eq!(roles, Some(expected.clone()), "{method} {route}");
                if matches!(access, Access::SignedIn) {
                    assert_eq!(operation["x-dcp-access"], "signed-in", "{method} {route}");
                    assert!(description.contains("any signed-in user"), "{description}");
                } else {
                    assert_eq!(operation["x-dcp-access"], "roles", "{method} {route}");
                    for role in expected {
                        assert!(
                            description.contains(role),
                            "{method} {route}: {description}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn every_operation_documents_the_errors_it_can_answer() {
    let document = document().await;
    for (method, route, access) in PERMISSIONS {
        let operation = operation(&document, method, route);
        let has_body = operation.get("requestBody").is_some();
        let has_path_or_query = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| resolve(&document, parameter))
            .any(|parameter| matches!(parameter["in"].as_str(), Some("path" | "query")));
        let takes_input = has_body || has_path_or_query || accepts_min_position(method, route);
        let public = matches!(access, Access::Public);
        let role_restricted = matches!(access, Access::Roles(_));
        let expected: [(bool, &str, BTreeSet<&str>); 9] = [
            (takes_input, "400", [ErrorCode::Validation.as_str()].into()),
            (!public, "401", codes_with_status(401)),
            (role_restricted, "403", codes_with_status(403)),
            (
                route.contains("{id}"),
                "404",
                [ErrorCode::NotFound.as_str()].into(),
            ),
            (
                has_body,
                "413",
                [ErrorCode::PayloadTooLarge.as_str()].into(),
            ),
            (
                has_body,
                "415",
                [ErrorCode::UnsupportedMediaType.as_str()].into(),
            ),
            (
                is_throttled(method, route),
                "429",
                [ErrorCode::RateLimited.as_str()].into(),
            ),
            (
                touches_database(route),
                "503",
                [ErrorCode::DatabaseUnavailable.as_str()].into(),
            ),
            (true, "default", [ErrorCode::Internal.as_str()].into()),
        ];
        for (applies, status, codes) in &expected {
            for code in codes {
                if let Ok(status) = status.parse::<u16>() {
                    assert_eq!(status_of(code), status, "{code} in ErrorCode::TABLE");
                }
            }
            if *applies {
                assert_error_response(&document, (method, route), status, codes);
            }
        }
        let responses = &operation["responses"];
        for absent in [
            (!role_restricted).then_some("403"),
            (!has_body).then_some("413"),
            (!has_body).then_some("415"),
            (!touches_database(route)).then_some("503"),
        ]
        .into_iter()
        .flatten()
        {
            assert!(
                responses.get(absent).is_none(),
                "{method} {route} cannot answer {absent}"
            );
        }
        for (status, response) in responses.as_object().unwrap() {
            let is_error = status == "default" || !status.starts_with(['1', '2', '3']);
            if !is_error || OWN_ERROR_BODIES.contains(&(method, route, status.as_str())) {
                continue;
            }
            let response = resolve(&document, response);
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {route} {status}: no description"
            );
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"], ERROR_REF,
                "{method} {route} {status}: not the error body"
            );
            for code in response["x-dcp-error-codes"].as_array().unwrap() {
                let code = code.as_str().unwrap();
                let code_status = status_of(code);
                assert!(
                    status == "default" || status == &code_status.to_string(),
                    "{method} {route} {status}: {code} is a {code_status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn read_your_writes_headers_are_documented() {
    let document = document().await;
    for (method, route, _) in PERMISSIONS {
        let operation = operation(&document, method, route);
        let parameters = header_parameters(&document, operation);
        for (name, expected) in [
            ("x-dcp-min-position", accepts_min_position(method, route)),
            ("prefer", accepts_prefer_minimal(method, route)),
        ] {
            let found: Vec<_> = parameters.iter().filter(|(n, _)| n == name).collect();
            if !expected {
                assert!(found.is_empty(), "{method} {route} does not take {name}");
                continue;
            }
            assert_eq!(found.len(), 1, "{method} {route}: {name} once");
            let parameter = found[0].1;
            assert!(
                parameter["required"] != json!(true),
                "{method} {route}: {name} is optional"
            );
            let schema_type = if name == "prefer" {
                "string"
            } else {
                "integer"
            };
            let declared = &parameter["schema"]["type"];
            let types = declared
                .as_array()
                .cloned()
                .unwrap_or(vec![declared.clone()]);
            assert!(
                types.contains(&json!(schema_type)),
                "{method} {route}: {name} is {declared}, not {schema_type}"
            );
        }
        for (status, response) in operation["responses"].as_object().unwrap() {
            let headers: BTreeSet<String> = resolve(&document, response)["headers"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, header)| {
                    assert!(resolve(&document, header)["schema"].is_object());
                    name.to_lowercase()
                })
                .collect();
            assert!(
                headers.contains("x-request-id"),
                "{method} {route} {status}: no X-Request-Id"
            );
            if *method != "GET" && status.starts_with('2') {
                assert!(
                    headers.contains("x-dcp-position"),
                    "{method} {route} {status}: no X-Dcp-Position"
                );
            }
        }
    }
}

/// The web UI's API types are generated from `web/openapi.json`: it must be this build's
/// document, or the UI compiles against an API that is not there.
#[test]
fn the_web_uis_copy_of_the_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/openapi.json");
    let copy: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read web/openapi.json"))
            .expect("web/openapi.json is JSON");
    let current: Value = serde_json::from_str(&dcp::http::openapi::document_json()).unwrap();
    assert!(
        copy == current,
        "web/openapi.json is out of date: run `npm run api-types` in web/ and commit both files"
    );
}
