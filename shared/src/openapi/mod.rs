//! The API as an OpenAPI 3.1 document, generated from the code: every
//! handler carries a `#[utoipa::path]` description next to it, and every
//! request and reply body is a named type deriving `ToSchema`. The
//! conventions every operation shares are applied here once
//! ([`Conventions`]): the success envelope around each JSON reply, the
//! error envelope as the default answer, the security schemes, an
//! `operationId` and a tag from the route table.
//!
//! Only native builds compile this (feature `openapi`): `cargo xtask
//! routes` writes `docs/openapi.json`, which the `openapi` function
//! serves as it is, and the tests fail when the file, this document or the
//! route table disagree.

use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use crate::envelope::{ErrorBody, Metadata};
use crate::error::{ErrorCode, FieldError};
use crate::routes::{self, ROUTES};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Antevus API",
        description = "A lab's instruments, runs, run data, QC and audit trail. Every answer is an envelope: `{success, data, metadata}` or `{success: false, error: {code, message, details}, metadata}`.",
    ),
    paths(
        routes::health::health,
        routes::openapi::document,
        routes::auth_jwks::jwks
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorCode, FieldError, Metadata))
)]
struct Document;

/// The failure envelope, the answer of every refusal.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorEnvelope {
    /// Always `false`.
    success: bool,
    error: ErrorBody,
    metadata: Metadata,
}

mod access;
mod audit;
mod events;
mod instruments;

/// The whole document: the system routes here, the rest by group.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Document::openapi();
    doc.merge(access::Paths::openapi());
    doc.merge(instruments::Paths::openapi());
    doc.merge(audit::Paths::openapi());
    doc.merge(events::Paths::openapi());
    doc.info.version = crate::envelope::API_VERSION.to_owned();
    doc.info.license = None;
    Conventions.modify(&mut doc);
    doc
}

/// Operations whose JSON answer is not in the envelope (a document of its
/// own format).
const RAW: &[(&str, &str)] = &[("openapi", "get")];

/// The document as `docs/openapi.json` holds it (pretty, with a final
/// newline).
pub fn json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The route table's path in OpenAPI's spelling (`:id` -> `{id}`).
pub fn openapi_path(route_path: &str) -> String {
    route_path
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

const METHODS: [(HttpMethod, &str); 5] = [
    (HttpMethod::Get, "get"),
    (HttpMethod::Post, "post"),
    (HttpMethod::Put, "put"),
    (HttpMethod::Delete, "delete"),
    (HttpMethod::Patch, "patch"),
];

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access token of a login (`POST /api/auth/login`), or an API key (`ak_...`)."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`ak_...`), shown once when created.",
            ))),
        );
        components.add_security_scheme(
            "bridgeToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An edge bridge's credential, issued when it enrolls."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "schedulerKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The scheduler's key (`SCHEDULER_KEY`), for a scheduled job's tick.",
                    ))
                    .build(),
            ),
        );
        doc.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("bearerAuth", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("apiKey", Vec::<String>::new()),
        ]);

        for route in ROUTES {
            let Some(item) = doc.paths.paths.get_mut(&openapi_path(route.path)) else {
                continue;
            };
            for (method, name) in METHODS {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Put => item.put.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    HttpMethod::Patch => item.patch.as_mut(),
                    _ => None,
                };
                if let Some(operation) = operation {
                    conventions(operation, route, name);
                }
            }
        }
    }
}

/// One operation's share of the conventions.
fn conventions(operation: &mut Operation, route: &routes::Route, method: &str) {
    operation.operation_id = Some(operation_id(method, route.function));
    operation.tags = Some(vec![tag(route.path).to_owned()]);
    let raw = RAW.contains(&(route.function, method));
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if raw || !status.starts_with('2') {
            continue;
        }
        if let Some(RefOr::T(content)) = response.content.get_mut("application/json") {
            content.schema = Some(enveloped(content.schema.take()));
        }
    }
    if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
        for (media, content) in body.content.iter_mut() {
            if let RefOr::T(content) = content {
                binary(media, content);
            }
        }
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            for (media, content) in response.content.iter_mut() {
                if let RefOr::T(content) = content {
                    binary(media, content);
                }
            }
        }
    }
    operation
        .responses
        .responses
        .entry("default".to_owned())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "A refusal or a failure, in the error envelope; `error.code` says which.",
                    )
                    .content(
                        "application/json",
                        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorEnvelope",
                        )))),
                    )
                    .build(),
            )
        });
}

/// A body of bytes (`Vec<u8>` in the code) of a media type other than JSON
/// is a string of that type, not an array of numbers (OpenAPI 3.1:
/// `contentMediaType`).
fn binary(media: &str, content: &mut Content) {
    if media.contains("json") {
        return;
    }
    if let Some(RefOr::T(Schema::Array(_))) = &content.schema {
        content.schema = Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type(media)
                .into(),
        );
    }
}

/// The success envelope around `data`.
fn enveloped(data: Option<RefOr<Schema>>) -> RefOr<Schema> {
    let mut envelope = ObjectBuilder::new()
        .property(
            "success",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .required("success")
        .property(
            "metadata",
            RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Metadata")),
        )
        .required("metadata");
    if let Some(data) = data {
        envelope = envelope.property("data", data).required("data");
    }
    envelope.into()
}

/// `getInstrumentsItem` for `GET` on `instruments-item`.
fn operation_id(method: &str, route: &str) -> String {
    let mut id = method.to_owned();
    for word in route.split('-') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.extend(first.to_uppercase());
            id.push_str(chars.as_str());
        }
    }
    id
}

/// The group an operation is listed under, from its path.
fn tag(path: &str) -> &'static str {
    let rest = path.trim_start_matches("/api/").trim_start_matches("v1/");
    match rest.split('/').next().unwrap_or_default() {
        "auth" => "Sign-in",
        "instruments" | "maintenance" => "Instruments",
        "runs" => "Runs",
        "audit" | "retention" => "Audit",
        "bridges" | "live" => "Bridges and live data",
        "jobs" => "Scheduled jobs",
        "users" | "organization" | "api-keys" => "Administration",
        _ => "System",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method of every route is described, and nothing else.
    #[test]
    fn the_document_covers_the_route_table() {
        let doc = document();
        let mut described: Vec<String> = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (method, name) in METHODS {
                let has = match method {
                    HttpMethod::Get => item.get.is_some(),
                    HttpMethod::Post => item.post.is_some(),
                    HttpMethod::Put => item.put.is_some(),
                    HttpMethod::Delete => item.delete.is_some(),
                    HttpMethod::Patch => item.patch.is_some(),
                    _ => false,
                };
                if has {
                    described.push(format!("{} {path}", name.to_uppercase()));
                }
            }
        }
        let mut table: Vec<String> = ROUTES
            .iter()
            .flat_map(|r| {
                r.methods
                    .iter()
                    .map(move |m| format!("{m} {}", openapi_path(r.path)))
            })
            .collect();
        described.sort();
        table.sort();
        assert_eq!(described, table);
    }

    #[test]
    fn operation_ids_are_camel_case_and_unique() {
        assert_eq!(
            operation_id("get", "instruments-item"),
            "getInstrumentsItem"
        );
        let doc = document();
        let mut ids: Vec<String> = doc
            .paths
            .paths
            .values()
            .flat_map(|item| [&item.get, &item.post, &item.put, &item.delete, &item.patch])
            .flatten()
            .filter_map(|op| op.operation_id.clone())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }

    /// What the `openapi` function serves is this document
    /// (`cargo xtask routes` writes it).
    #[test]
    fn the_served_document_is_current() {
        assert!(
            crate::routes::openapi::DOCUMENT == json(),
            "docs/openapi.json is stale: run `cargo xtask routes`"
        );
    }

    #[test]
    fn paths_use_braces() {
        assert_eq!(
            openapi_path("/api/v1/runs/:id/data"),
            "/api/v1/runs/{id}/data"
        );
    }
}
