//! Completes a service's OpenAPI document with what the shared extractors and the shared shell
//! really answer, so the handlers' annotations need not repeat it (and cannot forget it):
//!
//! - an operation with a path parameter can answer **400** (an id that does not parse);
//! - an operation with query parameters can answer **422** ([`ValidatedQuery`] names the bad one);
//! - an operation with a JSON request body can answer **400** (malformed JSON), **413** (over the
//!   body limit), **415** (not `application/json`) and **422** (validation) — [`ValidatedJson`];
//! - the `Idempotency-Key` header carries the pattern [`IdempotencyKey`] checks, and a
//!   `Stripe-Signature` header the `t=…,v1=…` shape the webhook parses.
//!
//! Responses an operation already documents are left as they are. Every added response is an
//! `application/problem+json` [`Problem`], and the `Problem` schema is added to the components.
//!
//! [`ValidatedQuery`]: crate::extract::ValidatedQuery
//! [`ValidatedJson`]: crate::extract::ValidatedJson
//! [`IdempotencyKey`]: crate::extract::IdempotencyKey

use utoipa::ToSchema;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::{ComponentsBuilder, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::problem::{PROBLEM_JSON, Problem};

/// The `Idempotency-Key` rule of [`crate::extract::IdempotencyKey`]: 1–255 visible ASCII.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\x21-\\x7E]{1,255}$";

/// The `Stripe-Signature` shape the webhook parses: a timestamp and at least one `v1` signature.
/// (Stripe may add other schemes, such as `v0`, around it.)
pub const STRIPE_SIGNATURE_PATTERN: &str =
    "^t=[0-9]{1,18}(,v[0-9]+=[0-9a-f]+)*,v1=[0-9a-f]{64}(,v[0-9]+=[0-9a-f]+)*$";

/// Adds the shared responses and header constraints to every operation of `doc` (see the module
/// documentation). Idempotent.
pub fn complete(doc: &mut OpenApi) {
    let mut uses_problem = false;
    for item in doc.paths.paths.values_mut() {
        let shared: Vec<Parameter> = item
            .parameters
            .iter()
            .flatten()
            .filter_map(|p| match p {
                RefOr::T(p) => Some(p.clone()),
                RefOr::Ref(_) => None,
            })
            .collect();
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
            &mut item.query,
        ]
        .into_iter()
        .flatten()
        {
            uses_problem |= complete_operation(operation, &shared);
        }
    }
    if uses_problem {
        let components = doc
            .components
            .get_or_insert_with(|| ComponentsBuilder::new().build());
        for (name, schema) in problem_schemas() {
            components.schemas.entry(name).or_insert(schema);
        }
    }
}

/// The `Problem` schema and the schemas it refers to, as `(name, schema)` component entries.
pub fn problem_schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut schemas = vec![(
        <Problem as ToSchema>::name().into_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    )];
    <Problem as ToSchema>::schemas(&mut schemas);
    schemas
}

/// Completes one operation; `true` when it references the `Problem` schema afterwards.
fn complete_operation(operation: &mut Operation, shared: &[Parameter]) -> bool {
    let own: Vec<&mut Parameter> = operation
        .parameters
        .iter_mut()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(p),
            RefOr::Ref(_) => None,
        })
        .collect();
    let mut has_path = shared.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let mut has_query = shared.iter().any(|p| p.parameter_in == ParameterIn::Query);
    for parameter in own {
        has_path |= parameter.parameter_in == ParameterIn::Path;
        has_query |= parameter.parameter_in == ParameterIn::Query;
        if parameter.parameter_in == ParameterIn::Header {
            constrain_header(parameter);
        }
    }
    let has_json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| match body {
            RefOr::T(body) => body.content.keys().any(|media| media.contains("json")),
            RefOr::Ref(_) => false,
        });

    let mut added = Vec::new();
    if has_path || has_json_body {
        added.push((
            "400",
            if has_json_body {
                "The request could not be read: a malformed path parameter or JSON body"
            } else {
                "The request could not be read: a malformed path parameter"
            },
        ));
    }
    if has_json_body {
        added.push(("413", "The request body is over the size limit"));
        added.push(("415", "The request body is not application/json"));
    }
    if has_json_body || has_query {
        added.push(("422", "A field or query parameter is invalid"));
    }
    for (status, description) in added {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    }
    operation
        .responses
        .responses
        .values()
        .any(references_problem)
}

/// A response with a problem document body.
pub fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn references_problem(response: &RefOr<utoipa::openapi::Response>) -> bool {
    let RefOr::T(response) = response else {
        return false;
    };
    response.content.values().any(|content| {
        matches!(content, RefOr::T(content)
            if matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")))
    })
}

/// Gives the headers the shared extractors check the constraints they enforce.
fn constrain_header(parameter: &mut Parameter) {
    let (pattern, bounds) = match parameter.name.to_ascii_lowercase().as_str() {
        "idempotency-key" => (IDEMPOTENCY_KEY_PATTERN, Some((1, 255))),
        "stripe-signature" => (STRIPE_SIGNATURE_PATTERN, None),
        _ => return,
    };
    if let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema
        && object.schema_type == SchemaType::Type(Type::String)
    {
        object.pattern.get_or_insert_with(|| pattern.to_owned());
        if let Some((min, max)) = bounds {
            object.min_length.get_or_insert(min);
            object.max_length.get_or_insert(max);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{Value, json};
    use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, PathItemBuilder};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::schema::ObjectBuilder;
    use utoipa::openapi::{HttpMethod, OpenApiBuilder, PathsBuilder, ResponsesBuilder};

    use super::*;

    fn ok() -> utoipa::openapi::Response {
        ResponseBuilder::new().description("ok").build()
    }

    fn string_param(name: &str, at: ParameterIn) -> Parameter {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(at)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    }

    fn sample() -> OpenApi {
        let get_one = OperationBuilder::new()
            .parameter(string_param("id", ParameterIn::Path))
            .responses(ResponsesBuilder::new().response("200", ok()))
            .build();
        let create = OperationBuilder::new()
            .parameter(string_param("Idempotency-Key", ParameterIn::Header))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", ContentBuilder::new().build())
                    .build(),
            ))
            .responses(ResponsesBuilder::new().response("201", ok()).response(
                "400",
                ResponseBuilder::new().description("own words").build(),
            ))
            .build();
        let list = OperationBuilder::new()
            .parameter(string_param("limit", ParameterIn::Query))
            .responses(ResponsesBuilder::new().response("200", ok()))
            .build();
        let health = OperationBuilder::new()
            .responses(ResponsesBuilder::new().response("200", ok()))
            .build();
        OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path(
                        "/things/{id}",
                        PathItemBuilder::new()
                            .operation(HttpMethod::Get, get_one)
                            .build(),
                    )
                    .path(
                        "/things",
                        PathItemBuilder::new()
                            .operation(HttpMethod::Post, create)
                            .operation(HttpMethod::Get, list)
                            .build(),
                    )
                    .path(
                        "/health",
                        PathItemBuilder::new()
                            .operation(HttpMethod::Get, health)
                            .build(),
                    ),
            )
            .build()
    }

    fn statuses(doc: &Value, path: &str, method: &str) -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn the_shared_extractors_responses_are_added_where_they_apply() {
        let mut doc = sample();
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();

        assert_eq!(statuses(&doc, "/things/{id}", "get"), ["200", "400"]);
        assert_eq!(
            statuses(&doc, "/things", "post"),
            ["201", "400", "413", "415", "422"]
        );
        assert_eq!(statuses(&doc, "/things", "get"), ["200", "422"]);
        assert_eq!(statuses(&doc, "/health", "get"), ["200"]);

        let added = &doc["paths"]["/things/{id}"]["get"]["responses"]["400"];
        assert_eq!(
            added["content"]["application/problem+json"]["schema"],
            json!({"$ref": "#/components/schemas/Problem"})
        );
        // What a handler documented itself is kept.
        assert_eq!(
            doc["paths"]["/things"]["post"]["responses"]["400"]["description"],
            "own words"
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Problem"],
            serde_json::to_value(<Problem as utoipa::PartialSchema>::schema()).unwrap()
        );
        assert!(
            schemas["FieldError"].is_object(),
            "Problem's own reference resolves"
        );
    }

    #[test]
    fn the_idempotency_key_header_gets_the_rule_its_extractor_checks() {
        let mut doc = sample();
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let schema = &doc["paths"]["/things"]["post"]["parameters"][0]["schema"];
        assert_eq!(schema["pattern"], IDEMPOTENCY_KEY_PATTERN);
        assert_eq!(schema["minLength"], 1);
        assert_eq!(schema["maxLength"], 255);
    }

    #[test]
    fn completing_twice_changes_nothing_more() {
        let mut once = sample();
        complete(&mut once);
        let mut twice = once.clone();
        complete(&mut twice);
        assert_eq!(
            serde_json::to_value(&once).unwrap(),
            serde_json::to_value(&twice).unwrap()
        );
    }

    #[test]
    fn a_document_without_inputs_gains_no_problem_schema() {
        let mut doc = OpenApiBuilder::new()
            .paths(
                PathsBuilder::new().path(
                    "/health",
                    PathItemBuilder::new()
                        .operation(
                            HttpMethod::Get,
                            OperationBuilder::new()
                                .responses(ResponsesBuilder::new().response("200", ok()))
                                .build(),
                        )
                        .build(),
                ),
            )
            .build();
        complete(&mut doc);
        assert!(doc.components.is_none());
    }
}
