//! Completes the generated document from the tables the server enforces: security and
//! roles from the permission table, error responses from the error table, and the
//! read-your-writes headers.

use axum::http::StatusCode;
use dcp_aggregates::Role;
use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Components, Content, OpenApi, Ref, RefOr, Required, Schema};

use crate::http::error::ErrorCode;
use crate::http::permissions::{access_for, Access};

use super::{
    ACCESS_EXTENSION, BEARER_SCHEME, ERROR_CODES_EXTENSION, ERROR_SCHEMA, ROLES_EXTENSION,
};

const REQUEST_ID: &str = "X-Request-Id";
const POSITION: &str = "X-Dcp-Position";
const MIN_POSITION: &str = "X-Dcp-Min-Position";
const PREFER: &str = "Prefer";
const RETRY_AFTER: &str = "Retry-After";

/// Declared error responses whose body is the handler's own rather than the error format.
pub const OWN_ERROR_BODIES: &[(&str, &str, &str)] = &[("GET", "/health/ready", "503")];

/// Routes that answer without touching the database.
const DATABASE_FREE_ROUTES: &[&str] = &["/health", "/health/live"];

/// Routes guarded by the failed-login throttles.
const THROTTLED_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/password"),
];

/// Commands that look the target up in the read model first, so they honour
/// `X-Dcp-Min-Position` like reads do.
const MIN_POSITION_COMMANDS: &[(&str, &str)] = &[
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
];

/// Commands that honour `Prefer: return=minimal`.
const PREFER_MINIMAL_COMMANDS: &[(&str, &str)] = &[
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
];

/// The access of a route missing from the permission table: refused to everyone.
const NOBODY: Access = Access::Roles(&[]);

/// One operation of the document, with what the tables say about it.
struct Route<'a> {
    method: &'static str,
    path: &'a str,
    access: Access,
}

impl Route<'_> {
    fn is(&self, routes: &[(&str, &str)]) -> bool {
        routes.contains(&(self.method, self.path))
    }

    fn has_own_body(&self, status: &str) -> bool {
        OWN_ERROR_BODIES.contains(&(self.method, self.path, status))
    }

    fn accepts_min_position(&self) -> bool {
        let is_read = self.method == "GET"
            && self.path.starts_with("/api/v1/")
            && self.path != "/api/v1/openapi.json";
        is_read || self.is(MIN_POSITION_COMMANDS)
    }
}

/// Adds security, access, header parameters, error responses and response headers to
/// every operation, from the permission and error tables.
pub(super) fn complete(document: &mut OpenApi) {
    add_shared_components(document.components.get_or_insert_with(Default::default));
    for (path, item) in document.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            let access = access_for(method, path).unwrap_or(NOBODY);
            let route = Route {
                method,
                path,
                access,
            };
            document_access(operation, &route);
            add_header_parameters(operation, &route);
            add_error_responses(operation, &route);
            describe_other_responses(operation);
            add_response_headers(operation, &route);
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
}

fn add_shared_components(components: &mut Components) {
    components
        .schemas
        .insert(ERROR_SCHEMA.into(), error_schema().into());
    let integer = ObjectBuilder::new().schema_type(Type::Integer).into();
    let headers = [
        (
            REQUEST_ID,
            string(),
            "The request id, also in error bodies and the logs.",
        ),
        (
            POSITION,
            position(),
            "Global position of the command's last event.",
        ),
        (RETRY_AFTER, integer, "Seconds to wait before trying again."),
    ];
    for (name, schema, description) in headers {
        let header = HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(description));
        components
            .headers
            .insert(name.into(), header.build().into());
    }
    let parameters = [
        (
            MIN_POSITION,
            position(),
            None,
            "Wait until the read models have applied this position (an X-Dcp-Position).",
        ),
        (
            PREFER,
            string(),
            Some(json!("return=minimal")),
            "return=minimal: answer once committed, without waiting for the read model.",
        ),
    ];
    for (name, schema, example, description) in parameters {
        let parameter = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .schema(Some(schema))
            .example(example)
            .description(Some(description));
        components
            .parameters
            .insert(name.into(), parameter.build().into());
    }
}

fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn position() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .into()
}

/// `{"error":{"code","message","details","field"},"status":"error","request_id"}`.
fn error_schema() -> Schema {
    let codes = ErrorCode::http_rows()
        .map(|row| format!("{} ({})", row.name, row.status))
        .collect::<Vec<_>>()
        .join(", ");
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::http_rows().map(|row| row.name)))
        .description(Some(format!("Stable machine-readable code: {codes}.")));
    let field = ObjectBuilder::new()
        .schema_type(
            [Type::String, Type::Null]
                .into_iter()
                .collect::<SchemaType>(),
        )
        .description(Some("The input the error is about, if any."));
    let details = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Structured context, e.g. required_roles; may be empty.",
        ));
    let error = ObjectBuilder::new()
        .property("code", code)
        .property("message", string())
        .property("details", details)
        .property("field", field)
        .required("code")
        .required("message")
        .required("details")
        .required("field");
    ObjectBuilder::new()
        .property("error", error)
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["error"])),
        )
        .property("request_id", string())
        .required("error")
        .required("status")
        .required("request_id")
        .build()
        .into()
}

/// Bearer security for non-public routes, and who may call the route.
fn document_access(operation: &mut Operation, route: &Route) {
    let (kind, roles, sentence) = match route.access {
        Access::Public => (
            "public",
            Vec::new(),
            "Access: public, no token.".to_string(),
        ),
        Access::SignedIn => (
            "signed-in",
            Role::ALL.to_vec(),
            "Access: any signed-in user, even one who must still change their password."
                .to_string(),
        ),
        Access::Roles(roles) => (
            "roles",
            roles.to_vec(),
            format!("Access: roles {}.", role_list(roles)),
        ),
    };
    if route.access != Access::Public {
        operation.security = Some(vec![SecurityRequirement::new(
            BEARER_SCHEME,
            Vec::<String>::new(),
        )]);
    }
    operation.description = Some(match operation.description.take() {
        Some(description) if !description.is_empty() => format!("{description}\n\n{sentence}"),
        _ => sentence,
    });
    let extensions = operation.extensions.get_or_insert_with(Extensions::default);
    extensions.insert(ACCESS_EXTENSION.into(), json!(kind));
    if route.access != Access::Public {
        let names: Vec<_> = roles.iter().map(|role| role.as_str()).collect();
        extensions.insert(ROLES_EXTENSION.into(), json!(names));
    }
}

fn role_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "none (the route is missing from the permission table)".into();
    }
    roles
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn add_header_parameters(operation: &mut Operation, route: &Route) {
    if route.accepts_min_position() {
        add_header_parameter(operation, MIN_POSITION);
    }
    if route.is(PREFER_MINIMAL_COMMANDS) {
        add_header_parameter(operation, PREFER);
    }
}

/// References the shared parameter `name` unless the operation declares it already.
fn add_header_parameter(operation: &mut Operation, name: &str) {
    let reference = format!("#/components/parameters/{name}");
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    let declared = parameters.iter().any(|parameter| match parameter {
        RefOr::T(parameter) => parameter.name.eq_ignore_ascii_case(name),
        RefOr::Ref(declared) => declared.ref_location.eq_ignore_ascii_case(&reference),
    });
    if !declared {
        parameters.push(RefOr::Ref(Ref::new(reference)));
    }
}

/// The codes of the error table answered with `status`.
fn codes_with_status(status: u16) -> Vec<ErrorCode> {
    ErrorCode::http_rows()
        .filter(|row| row.status == status)
        .map(|row| row.code)
        .collect()
}

/// The error responses (status, codes) the middleware, the extractors and the handlers
/// can really answer `route` with.
fn possible_errors(operation: &Operation, route: &Route) -> Vec<(&'static str, Vec<ErrorCode>)> {
    use ErrorCode::*;
    let has_body = operation.request_body.is_some();
    let takes_input = has_body
        || operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
    let mut unavailable = vec![DatabaseUnavailable];
    if route.accepts_min_position() || route.is(PREFER_MINIMAL_COMMANDS) {
        unavailable.push(ReadModelLagging);
    }
    let candidates = [
        (takes_input, "400", vec![Validation]),
        (
            route.access != Access::Public,
            "401",
            codes_with_status(401),
        ),
        (
            matches!(route.access, Access::Roles(_)),
            "403",
            codes_with_status(403),
        ),
        (route.path.contains('{'), "404", vec![NotFound]),
        (has_body, "413", vec![PayloadTooLarge]),
        (has_body, "415", vec![UnsupportedMediaType]),
        (route.is(THROTTLED_ROUTES), "429", vec![RateLimited]),
        (
            !DATABASE_FREE_ROUTES.contains(&route.path),
            "503",
            unavailable,
        ),
        (true, "default", vec![Internal]),
    ];
    candidates
        .into_iter()
        .filter(|(applies, _, _)| *applies)
        .map(|(_, status, codes)| (status, codes))
        .collect()
}

/// Adds the possible error responses, then completes every error response, declared or
/// added, with a description, its codes and the error body, overwriting nothing.
fn add_error_responses(operation: &mut Operation, route: &Route) {
    let possible = possible_errors(operation, route);
    let responses = &mut operation.responses.responses;
    for (status, _) in &possible {
        responses
            .entry(status.to_string())
            .or_insert_with(|| Response::new("").into());
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let codes = match possible.iter().find(|(possible, _)| possible == status) {
            Some((_, codes)) => codes.clone(),
            None => match status.parse::<u16>() {
                Ok(code) if code >= 400 => codes_with_status(code),
                _ => continue,
            },
        };
        if route.has_own_body(status) {
            continue;
        }
        if response.description.is_empty() {
            response.description = describe(&codes);
        }
        let names: Vec<_> = codes.iter().map(|code| code.as_str()).collect();
        response
            .extensions
            .get_or_insert_with(Extensions::default)
            .insert(ERROR_CODES_EXTENSION.into(), json!(names));
        if response.content.is_empty() {
            let body = Content::new(Some(Ref::from_schema_name(ERROR_SCHEMA)));
            response
                .content
                .insert("application/json".into(), body.into());
        }
    }
}

fn describe(codes: &[ErrorCode]) -> String {
    codes
        .iter()
        .map(|code| format!("{}: {}.", code.as_str(), code.row().meaning))
        .collect::<Vec<_>>()
        .join(" ")
}

/// OpenAPI 3.1 requires a description on every response; annotations may leave it out.
fn describe_other_responses(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                let reason = status
                    .parse()
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .and_then(|code| code.canonical_reason());
                response.description = reason.unwrap_or("Response").into();
            }
        }
    }
}

/// `X-Request-Id` on every response, `X-Dcp-Position` on successful commands,
/// `Retry-After` on 429.
fn add_response_headers(operation: &mut Operation, route: &Route) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        add_response_header(response, REQUEST_ID);
        if route.method != "GET" && status.starts_with('2') {
            add_response_header(response, POSITION);
        }
        if status == "429" {
            add_response_header(response, RETRY_AFTER);
        }
    }
}

/// References the shared header `name` unless the response declares it already.
fn add_response_header(response: &mut Response, name: &str) {
    let declared = response
        .headers
        .keys()
        .any(|header| header.eq_ignore_ascii_case(name));
    if !declared {
        response.headers.insert(
            name.into(),
            RefOr::Ref(Ref::new(format!("#/components/headers/{name}"))),
        );
    }
}
