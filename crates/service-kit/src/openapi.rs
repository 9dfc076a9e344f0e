//! Completes a service's OpenAPI document with what the shared extractors and the shared shell
//! really answer, so the handlers' annotations need not repeat it (and cannot forget it):
//!
//! - an operation with a path parameter can answer **400** (an id that does not parse);
//! - an operation with query parameters can answer **422** ([`ValidatedQuery`] names the bad one);
//! - an operation with a JSON request body can answer **400** (malformed JSON), **413** (over the
//!   body limit), **415** (not `application/json`) and **422** (validation) — [`ValidatedJson`];
//! - the `Idempotency-Key` header carries the pattern [`IdempotencyKey`] checks, and a
//!   `Stripe-Signature` header the `t=…,v1=…` shape the webhook parses;
//! - an `application/merge-patch+json` body documented with the resource's schema `X` is
//!   documented as what [`patched`] accepts, a `XMergePatch` schema: every member optional
//!   (left out, it keeps its value) and `null` allowed where removing the member leaves a
//!   valid `X` (an optional member, back to its default) — RFC 7396.
//!
//! Responses an operation already documents are left as they are. Every added response is an
//! `application/problem+json` [`Problem`], and the `Problem` schema is added to the components.
//!
//! [`ValidatedQuery`]: crate::extract::ValidatedQuery
//! [`ValidatedJson`]: crate::extract::ValidatedJson
//! [`IdempotencyKey`]: crate::extract::IdempotencyKey
//! [`patched`]: crate::merge_patch::patched

use utoipa::ToSchema;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AllOf, AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, Schema, SchemaType, Type,
};
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
    document_merge_patches(doc);
}

/// Makes component `component` of `doc` require at least one of `alternatives`, each a set of
/// members that must all be present and not `null` (a `null` optional member reads as left
/// out): what a handler's "give an `a` or a `b`" rule is, stated in the schema.
/// `require_any_of(doc, "MediaRef", &[&["mediaId"], &["url"]])` turns `MediaRef` into
/// `allOf: [<its object schema>, {anyOf: [{type: object, required: [mediaId], properties:
/// {mediaId: <not null>}}, {… url …}]}]`, `<not null>` being `{type: [every type but null]}`.
///
/// The rule goes into an `allOf` because utoipa's typed object schema has no place for an
/// `anyOf` beside its `properties` (it would be dropped when the document is read back), and
/// each alternative names its `type` because utoipa cannot read a schema without one back. In a
/// merge patch of such a component the rule is left out (see [`complete`]): a patch names only
/// what changes, and the patched whole is what the handler checks. A component `doc` does not
/// have is left alone.
pub fn require_any_of(doc: &mut OpenApi, component: &str, alternatives: &[&[&str]]) {
    let any_of = alternatives.iter().map(|members| {
        members
            .iter()
            .fold(ObjectBuilder::new().schema_type(Type::Object), |o, m| {
                o.required(*m).property(*m, not_null())
            })
            .build()
    });
    constrain(doc, component, any_of, false);
}

/// A schema every value but `null` matches.
pub fn not_null() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Array,
            Type::Boolean,
            Type::Integer,
            Type::Number,
            Type::Object,
            Type::String,
        ]))
        .build()
}

/// Makes component `component` of `doc` require at least one of the boolean `members` to be
/// present and `true` (a member left out reads as `false`): "choose a kitchen, a bedroom or
/// both". Stated like [`require_any_of`], each alternative
/// `{type: object, required: [m], properties: {m: {type: boolean, enum: [true]}}}` (`enum`
/// rather than `const`, which utoipa's typed schema does not keep).
pub fn require_any_true(doc: &mut OpenApi, component: &str, members: &[&str]) {
    let any_of = members.iter().map(|member| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .required(*member)
            .property(
                *member,
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .build()
    });
    constrain(doc, component, any_of, false);
}

/// Makes component `component` of `doc` match at least one of `alternatives` (object schemas
/// with a `type`), in the form [`require_any_of`] describes: for rules between members' values
/// that the derived schema cannot state ("only a LANDING page has a validity window").
///
/// `also_in_merge_patches`: whether the rule is kept in the component's merge patch too. Say so
/// only for a rule that holds for every patch whose patched whole is valid: alternatives that
/// require no member and accept `null` wherever a patch may send it (a member a patch leaves out
/// is unconstrained, so the patch stays valid whatever it leaves to the stored value). The kept
/// rule is marked `x-merge-patch: true`.
pub fn require_any(
    doc: &mut OpenApi,
    component: &str,
    alternatives: impl IntoIterator<Item = Object>,
    also_in_merge_patches: bool,
) {
    constrain(
        doc,
        component,
        alternatives.into_iter(),
        also_in_merge_patches,
    );
}

/// The mark of a rule a merge patch keeps (see [`require_any`]).
const IN_MERGE_PATCH: &str = "x-merge-patch";

/// Wraps component `component` as `allOf: [<it>, {anyOf: any_of}]`.
fn constrain(
    doc: &mut OpenApi,
    component: &str,
    any_of: impl Iterator<Item = Object>,
    in_merge_patches: bool,
) {
    let Some(schema) = doc
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut(component))
    else {
        return;
    };
    let mut rule = any_of
        .fold(AnyOfBuilder::new(), |rule, alternative| {
            rule.item(alternative)
        })
        .build();
    if in_merge_patches {
        rule.extensions = Some(
            utoipa::openapi::extensions::ExtensionsBuilder::new()
                .add(IN_MERGE_PATCH, true)
                .build(),
        );
    }
    let current = std::mem::replace(schema, RefOr::T(Schema::AllOf(AllOf::new())));
    let mut all_of = match current {
        RefOr::T(Schema::AllOf(all_of)) => all_of,
        other => AllOfBuilder::new().item(other).build(),
    };
    all_of.items.push(RefOr::T(Schema::AnyOf(rule)));
    *schema = RefOr::T(Schema::AllOf(all_of));
}

const MERGE_PATCH_JSON: &str = "application/merge-patch+json";
const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// Points every merge-patch request body that refers to a component `X` at `XMergePatch` (see
/// the module documentation), adding that component. Done on the JSON form: the document is
/// small, this runs once per process, and the rewrite is about JSON Schema keywords.
fn document_merge_patches(doc: &mut OpenApi) {
    let Ok(mut value) = serde_json::to_value(&*doc) else {
        return;
    };
    let mut patched: Vec<String> = Vec::new();
    if let Some(paths) = value
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for operation in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for operation in operation.values_mut() {
                let Some(schema) = operation.pointer_mut(&format!(
                    "/requestBody/content/{}/schema",
                    MERGE_PATCH_JSON.replace('/', "~1")
                )) else {
                    continue;
                };
                let Some(name) = schema
                    .get("$ref")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX))
                    // `…Patch` types are read directly (their own rules for `null`); only a
                    // resource's schema read back through `patched` is rewritten.
                    .filter(|name| !name.ends_with("Patch"))
                    .map(str::to_owned)
                else {
                    continue;
                };
                *schema =
                    serde_json::json!({"$ref": format!("{SCHEMA_REF_PREFIX}{name}MergePatch")});
                patched.push(name);
            }
        }
    }
    if patched.is_empty() {
        return;
    }
    let Some(schemas) = value
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    // A member that is itself an object is merged member by member too (RFC 7396 section 2),
    // so its schema is that object's merge patch in turn.
    let resources = schemas.clone();
    while let Some(name) = patched.pop() {
        let patch_name = format!("{name}MergePatch");
        if schemas.contains_key(&patch_name) {
            continue;
        }
        if let Some(resource) = resources.get(&name) {
            let patch = merge_patch_schema(&name, resource, &resources, &mut patched);
            schemas.insert(patch_name, patch);
        }
    }
    if let Ok(completed) = serde_json::from_value(value) {
        *doc = completed;
    }
}

/// The merge patch of an object schema: no member required; an optional member may be `null`;
/// a member that is an object component refers to that component's merge patch (added to
/// `pending`).
fn merge_patch_schema(
    name: &str,
    resource: &serde_json::Value,
    resources: &serde_json::Map<String, serde_json::Value>,
    pending: &mut Vec<String>,
) -> serde_json::Value {
    // A presence rule (`require_any_of`) does not bind a patch: it names only what changes.
    // A rule marked for merge patches (`require_any`) does, beside the patch's object.
    let kept_rules: Vec<serde_json::Value> = rules(resource)
        .filter(|rule| rule.get(IN_MERGE_PATCH) == Some(&serde_json::Value::Bool(true)))
        .cloned()
        .collect();
    let mut patch = object_part(resource).unwrap_or(resource).clone();
    let required: Vec<serde_json::Value> = patch
        .as_object_mut()
        .and_then(|o| o.remove("required"))
        .and_then(|r| r.as_array().cloned())
        .unwrap_or_default();
    if let Some(properties) = patch
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (member, schema) in properties.iter_mut() {
            patch_nested_objects(schema, resources, pending);
            if !required.iter().any(|r| r == member.as_str()) {
                let description = schema.get("description").cloned();
                let mut nullable = serde_json::json!({"anyOf": [schema.clone(), {"type": "null"}]});
                if let Some(description) = description {
                    nullable["description"] = description;
                }
                *schema = nullable;
            }
        }
    }
    let description = serde_json::Value::String(format!(
        "A JSON merge patch (RFC 7396) of `{name}`: members left out keep their value; `null` \
         removes an optional member (back to its default)."
    ));
    if kept_rules.is_empty() {
        patch["description"] = description;
        return patch;
    }
    let mut all_of = vec![patch];
    all_of.extend(kept_rules);
    serde_json::json!({"allOf": all_of, "description": description})
}

/// The object schema of a component: the component itself, or the object a presence rule wraps
/// (`allOf: [<object>, {anyOf: …}, …]`, see [`require_any_of`]). `None` for anything else.
fn object_part(schema: &serde_json::Value) -> Option<&serde_json::Value> {
    if schema.get("properties").is_some() {
        return Some(schema);
    }
    let (object, rules) = schema.get("allOf")?.as_array()?.split_first()?;
    let only_rules = rules.iter().all(|rule| {
        rule.as_object().is_some_and(|rule| {
            rule.contains_key("anyOf")
                && rule
                    .keys()
                    .all(|key| key == "anyOf" || key.starts_with("x-"))
        })
    });
    (only_rules && !rules.is_empty() && object.get("properties").is_some()).then_some(object)
}

/// The rules [`constrain`] added to a component (none unless [`object_part`] finds its object).
fn rules(schema: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    object_part(schema)
        .filter(|object| !std::ptr::eq(*object, schema))
        .and_then(|_| schema.get("allOf"))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flat_map(|all_of| all_of.iter().skip(1))
}

/// Points references to object components (directly or among `oneOf`/`anyOf`/`allOf`
/// alternatives) at their merge patches.
fn patch_nested_objects(
    schema: &mut serde_json::Value,
    resources: &serde_json::Map<String, serde_json::Value>,
    pending: &mut Vec<String>,
) {
    if let Some(target) = schema
        .get("$ref")
        .and_then(serde_json::Value::as_str)
        .and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX))
        .filter(|name| !name.ends_with("Patch"))
        .filter(|name| {
            resources
                .get(*name)
                .is_some_and(|r| object_part(r).is_some())
        })
        .map(str::to_owned)
    {
        schema["$ref"] =
            serde_json::Value::String(format!("{SCHEMA_REF_PREFIX}{target}MergePatch"));
        pending.push(target);
        return;
    }
    for keyword in ["oneOf", "anyOf", "allOf"] {
        if let Some(alternatives) = schema
            .get_mut(keyword)
            .and_then(serde_json::Value::as_array_mut)
        {
            for alternative in alternatives {
                patch_nested_objects(alternative, resources, pending);
            }
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

    /// A document whose `PATCH /things/{id}` takes a merge patch of the component `Thing`,
    /// with `components`.
    fn thing_patched_at_things_id(
        components: Vec<(&str, utoipa::openapi::schema::Object)>,
    ) -> OpenApi {
        let body = RequestBodyBuilder::new()
            .content(
                MERGE_PATCH_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Thing")))
                    .build(),
            )
            .build();
        let operation = OperationBuilder::new()
            .request_body(Some(body))
            .response("200", ok())
            .build();
        let schemas = components
            .into_iter()
            .fold(ComponentsBuilder::new(), |c, (name, schema)| {
                c.schema(name, schema)
            });
        OpenApiBuilder::new()
            .paths(
                PathsBuilder::new().path(
                    "/things/{id}",
                    PathItemBuilder::new()
                        .operation(HttpMethod::Patch, operation)
                        .build(),
                ),
            )
            .components(Some(schemas.build()))
            .build()
    }

    #[test]
    fn merge_patch_bodies_get_a_schema_of_optional_members() {
        let resource = ObjectBuilder::new()
            .property("title", ObjectBuilder::new().schema_type(Type::String))
            .required("title")
            .property("note", ObjectBuilder::new().schema_type(Type::String))
            .property("owner", Ref::from_schema_name("Owner"))
            .required("owner")
            .build();
        let owner = ObjectBuilder::new()
            .property("name", ObjectBuilder::new().schema_type(Type::String))
            .required("name")
            .build();
        let mut doc = thing_patched_at_things_id(vec![("Thing", resource), ("Owner", owner)]);
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            doc.pointer("/paths/~1things~1{id}/patch/requestBody/content/application~1merge-patch+json/schema/$ref"),
            Some(&json!("#/components/schemas/ThingMergePatch"))
        );
        let patch = &doc["components"]["schemas"]["ThingMergePatch"];
        assert!(patch.get("required").is_none(), "{patch}");
        assert_eq!(patch["properties"]["title"], json!({"type": "string"}));
        assert_eq!(
            patch["properties"]["note"]["anyOf"],
            json!([{"type": "string"}, {"type": "null"}])
        );
        // An object member is merged member by member: its own merge patch.
        assert_eq!(
            patch["properties"]["owner"],
            json!({"$ref": "#/components/schemas/OwnerMergePatch"})
        );
        let owner = &doc["components"]["schemas"]["OwnerMergePatch"];
        assert!(owner.get("required").is_none(), "{owner}");
        assert_eq!(owner["properties"]["name"], json!({"type": "string"}));
        // The resource keeps its own schema (responses still use it).
        assert_eq!(
            doc["components"]["schemas"]["Thing"]["required"],
            json!(["title", "owner"])
        );
    }

    /// A `Thing` with a `media` member referring to a `Media` object that needs a `mediaId` or
    /// a `url`, patched at `PATCH /things/{id}`.
    fn document_with_a_presence_rule() -> OpenApi {
        let thing = ObjectBuilder::new()
            .property("media", Ref::from_schema_name("Media"))
            .required("media")
            .build();
        let media = ObjectBuilder::new()
            .property("mediaId", ObjectBuilder::new().schema_type(Type::String))
            .property("url", ObjectBuilder::new().schema_type(Type::String))
            .build();
        let mut doc = thing_patched_at_things_id(vec![("Thing", thing), ("Media", media)]);
        require_any_of(&mut doc, "Media", &[&["mediaId"], &["url"]]);
        doc
    }

    #[test]
    fn a_presence_rule_wraps_the_component_and_survives_completion() {
        let mut doc = document_with_a_presence_rule();
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let media = &doc["components"]["schemas"]["Media"];
        assert_eq!(
            media["allOf"][1],
            json!({"anyOf": [
                {"type": "object", "required": ["mediaId"], "properties": {"mediaId": {"type": ["array", "boolean", "integer", "number", "object", "string"]}}},
                {"type": "object", "required": ["url"], "properties": {"url": {"type": ["array", "boolean", "integer", "number", "object", "string"]}}},
            ]}),
            "{media}"
        );
        assert_eq!(
            media["allOf"][0]["properties"]["url"],
            json!({"type": "string"})
        );
    }

    #[test]
    fn a_merge_patch_of_a_member_under_a_presence_rule_is_free_of_it() {
        let mut doc = document_with_a_presence_rule();
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        // `media: {}` merges nothing into the stored media: a valid patch.
        assert_eq!(
            schemas["ThingMergePatch"]["properties"]["media"],
            json!({"$ref": "#/components/schemas/MediaMergePatch"})
        );
        let media = &schemas["MediaMergePatch"];
        assert!(media.get("allOf").is_none(), "{media}");
        assert!(media.get("anyOf").is_none(), "{media}");
        assert_eq!(
            media["properties"]["url"]["anyOf"],
            json!([{"type": "string"}, {"type": "null"}])
        );
    }

    #[test]
    fn a_flag_rule_requires_one_member_present_and_true() {
        let request = ObjectBuilder::new()
            .property("a", ObjectBuilder::new().schema_type(Type::Boolean))
            .property("b", ObjectBuilder::new().schema_type(Type::Boolean))
            .build();
        let mut doc = OpenApiBuilder::new()
            .components(Some(
                ComponentsBuilder::new().schema("Request", request).build(),
            ))
            .build();
        require_any_true(&mut doc, "Request", &["a", "b"]);
        require_any_true(&mut doc, "Missing", &["a"]);
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Request"]["allOf"][1],
            json!({"anyOf": [
                {"type": "object", "required": ["a"],
                 "properties": {"a": {"type": "boolean", "enum": [true]}}},
                {"type": "object", "required": ["b"],
                 "properties": {"b": {"type": "boolean", "enum": [true]}}},
            ]})
        );
        assert!(schemas.get("Missing").is_none());
    }

    #[test]
    fn a_rule_marked_for_merge_patches_is_kept_in_them() {
        let mut doc = document_with_a_presence_rule();
        let only_images = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "kind",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["IMAGE"])),
            )
            .build();
        let no_url = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("url", ObjectBuilder::new().schema_type(Type::Null))
            .build();
        require_any(&mut doc, "Media", [only_images, no_url], true);
        complete(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        let rule = &schemas["Media"]["allOf"][2];
        assert_eq!(rule[IN_MERGE_PATCH], true, "{rule}");
        let patch = &schemas["MediaMergePatch"];
        // The presence rule is left out, the marked one kept.
        assert_eq!(patch["allOf"].as_array().unwrap().len(), 2, "{patch}");
        assert_eq!(&patch["allOf"][1], rule);
        assert!(patch["allOf"][0].get("required").is_none(), "{patch}");
        assert_eq!(
            patch["allOf"][0]["properties"]["url"]["anyOf"],
            json!([{"type": "string"}, {"type": "null"}])
        );
        assert!(
            patch["description"]
                .as_str()
                .unwrap()
                .contains("merge patch")
        );
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
