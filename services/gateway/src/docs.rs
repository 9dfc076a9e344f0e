//! `/docs`: one documentation page (Swagger UI, assets compiled into the binary — no CDN) for
//! every service's API, and `/docs/openapi.json`, the services' OpenAPI documents merged.
//!
//! The gateway fetches each service's `/openapi.json` (with an internal token naming itself),
//! keeps the paths it actually routes to that service (never `/internal`), merges the components,
//! and caches the result (`DOCS_CACHE_SECS`; a few seconds only when a service did not answer).
//! It adds what the gateway itself does on a route: the bearer `security` requirement (required on
//! `token` routes, optional elsewhere), the 401 a bad token gets on every route and the 429 of the
//! rate limit every route has. Two services defining one component name differently is an error:
//! keeping either definition would describe the other service's answers wrongly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_client::{INTERNAL_TOKEN_HEADER, InternalClaims, InternalKeys};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use service_kit::Problem;

use crate::AppState;
use crate::routes::{Route, RouteTable};

/// How long a merged document missing a service is kept before trying again.
const PARTIAL_CACHE: Duration = Duration::from_secs(5);
/// How long one service may take to hand over its document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The merged document and the page.
pub struct Docs {
    http: reqwest::Client,
    keys: InternalKeys,
    upstreams: Vec<(&'static str, String)>,
    ttl: Duration,
    cache: tokio::sync::Mutex<Option<(Instant, Duration, Bytes)>>,
    ui: Arc<utoipa_swagger_ui::Config<'static>>,
}

impl Docs {
    /// Docs over the services at `upstreams` (`(name, base URL)`).
    pub fn new(
        http: reqwest::Client,
        keys: InternalKeys,
        upstreams: Vec<(&'static str, String)>,
        ttl: Duration,
    ) -> Self {
        let ui = utoipa_swagger_ui::Config::new(["/docs/openapi.json"])
            .try_it_out_enabled(true)
            .display_request_duration(true);
        Self {
            http,
            keys,
            upstreams,
            ttl,
            cache: tokio::sync::Mutex::new(None),
            ui: Arc::new(ui),
        }
    }

    async fn fetch(&self, name: &str, base: &str) -> Result<Value, String> {
        let token = self
            .keys
            .mint(InternalClaims::service("gateway"))
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .get(format!("{base}/openapi.json"))
            .header(INTERNAL_TOKEN_HEADER, token)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{name}: answered {}", response.status()));
        }
        response.json().await.map_err(|e| format!("{name}: {e}"))
    }

    async fn merged(&self, routes: &RouteTable) -> Result<Bytes, MergeError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, ttl, doc)) = cache.as_ref()
            && at.elapsed() < *ttl
        {
            return Ok(doc.clone());
        }
        let fetched = futures::future::join_all(
            self.upstreams
                .iter()
                .map(|(name, base)| async move { (*name, self.fetch(name, base).await) }),
        )
        .await;
        let mut specs = Vec::new();
        let mut missing = Vec::new();
        for (name, result) in fetched {
            match result {
                Ok(spec) => specs.push((name, spec)),
                Err(error) => {
                    tracing::warn!(%error, "cannot fetch a service's OpenAPI document");
                    missing.push(name);
                }
            }
        }
        let doc = merge(routes, &specs, &missing).map_err(|error| {
            tracing::error!(%error, "cannot merge the services' OpenAPI documents");
            error
        })?;
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let ttl = if missing.is_empty() {
            self.ttl
        } else {
            PARTIAL_CACHE.min(self.ttl)
        };
        *cache = Some((Instant::now(), ttl, bytes.clone()));
        Ok(bytes)
    }
}

/// Two services define one component name differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The kind of component, e.g. `schemas`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The service whose definition came first.
    pub first: String,
    /// The service that defines it differently.
    pub second: String,
}

/// Why the services' documents cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("component names defined differently by two services: {}", describe(.0))]
pub struct MergeError(pub Vec<Collision>);

fn describe(collisions: &[Collision]) -> String {
    collisions
        .iter()
        .map(|c| format!("{}/{} ({} and {})", c.kind, c.name, c.first, c.second))
        .collect::<Vec<_>>()
        .join(", ")
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}

/// Adds what the gateway does on `route` to each operation of `item`.
fn add_gateway_behaviour(item: &mut Value, route: &Route, service: &str) {
    let Some(operations) = item.as_object_mut() else {
        return;
    };
    for (method, operation) in operations.iter_mut() {
        if !METHODS.contains(&method.as_str()) {
            continue;
        }
        let Some(op) = operation.as_object_mut() else {
            continue;
        };
        if !op.contains_key("tags") {
            op.insert("tags".to_owned(), json!([service]));
        }
        op.entry("security").or_insert_with(|| {
            if route.auth.requires_token() {
                json!([{ "bearer": [] }])
            } else {
                // `{}`: the operation may also be called without a token.
                json!([{}, { "bearer": [] }])
            }
        });
        let responses = op
            .entry("responses")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(responses) = responses.as_object_mut() {
            let unauthorized = if route.auth.requires_token() {
                "No valid access token, or the session has ended"
            } else {
                "The access token sent is not valid, or its session has ended"
            };
            responses
                .entry("401")
                .or_insert_with(|| problem(unauthorized));
            // Every route has a rate-limit rule (`default` when no stricter one applies).
            responses
                .entry("429")
                .or_insert_with(|| problem("Too many requests; retry after `Retry-After` seconds"));
        }
    }
}

/// Merges the services' documents: each one's paths that the gateway routes to it (operations
/// without tags are tagged with the service's name), with the gateway's own security and
/// responses added, their components, and their tags. A component name two services define
/// differently is a [`MergeError`].
pub fn merge(
    routes: &RouteTable,
    specs: &[(&str, Value)],
    missing: &[&str],
) -> Result<Value, MergeError> {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut owners: std::collections::HashMap<(String, String), String> = Default::default();
    let mut collisions = Vec::new();
    let mut tags: Vec<Value> = Vec::new();
    for (service, spec) in specs {
        if let Some(spec_paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, item) in spec_paths {
                let Some(route) = routes.find(path).filter(|route| route.service == *service)
                else {
                    continue;
                };
                let mut item = item.clone();
                add_gateway_behaviour(&mut item, route, service);
                paths.entry(path.clone()).or_insert(item);
            }
        }
        if let Some(spec_components) = spec.get("components").and_then(Value::as_object) {
            for (kind, entries) in spec_components {
                let Some(entries) = entries.as_object() else {
                    continue;
                };
                let slot = components
                    .entry(kind.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(slot) = slot.as_object_mut() {
                    for (name, definition) in entries {
                        match slot.get(name) {
                            None => {
                                slot.insert(name.clone(), definition.clone());
                                owners.insert((kind.clone(), name.clone()), (*service).to_owned());
                            }
                            Some(existing) if existing != definition => {
                                collisions.push(Collision {
                                    kind: kind.clone(),
                                    name: name.clone(),
                                    first: owners
                                        .get(&(kind.clone(), name.clone()))
                                        .cloned()
                                        .unwrap_or_default(),
                                    second: (*service).to_owned(),
                                });
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        if let Some(spec_tags) = spec.get("tags").and_then(Value::as_array) {
            for tag in spec_tags {
                let name = tag.get("name");
                if !tags.iter().any(|t| t.get("name") == name) {
                    tags.push(tag.clone());
                }
            }
        }
    }
    if !collisions.is_empty() {
        return Err(MergeError(collisions));
    }
    // The gateway's own responses refer to `Problem`, whichever services answered.
    let schemas = components
        .entry("schemas".to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(schemas) = schemas.as_object_mut() {
        for (name, schema) in service_kit::openapi::problem_schemas() {
            schemas
                .entry(name)
                .or_insert_with(|| serde_json::to_value(schema).unwrap_or_default());
        }
    }
    let schemes = components
        .entry("securitySchemes".to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(schemes) = schemes.as_object_mut() {
        schemes.entry("bearer").or_insert(json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /v1/auth/login"
        }));
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Lomash Wood API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every service's public API, as served through the gateway."
        },
        "paths": paths,
        "components": components,
        "tags": tags,
    });
    if !missing.is_empty() {
        doc["x-unavailable-services"] = json!(missing);
    }
    Ok(doc)
}

/// `GET /docs`: the page lives at `/docs/` so its relative asset links resolve.
pub async fn redirect() -> Redirect {
    Redirect::permanent("/docs/")
}

/// `GET /docs/`: the page.
pub async fn index(State(state): State<AppState>) -> Response {
    asset_response(&state, "index.html")
}

/// `GET /docs/{*file}`: the page's assets.
pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    asset_response(&state, &file)
}

fn asset_response(state: &AppState, file: &str) -> Response {
    match utoipa_swagger_ui::serve(file, state.inner.docs.ui.clone()) {
        Ok(Some(file)) => {
            let body = match file.bytes {
                std::borrow::Cow::Borrowed(bytes) => Body::from(Bytes::from_static(bytes)),
                std::borrow::Cow::Owned(bytes) => Body::from(bytes),
            };
            let mut response = body.into_response();
            let headers = response.headers_mut();
            if let Ok(content_type) = HeaderValue::try_from(file.content_type) {
                headers.insert(header::CONTENT_TYPE, content_type);
            }
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            response
        }
        Ok(None) => Problem::not_found("No such documentation file.").into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot serve the documentation page");
            Problem::internal_opaque().into_response()
        }
    }
}

/// `GET /docs/openapi.json`: the merged document.
pub async fn openapi(State(state): State<AppState>) -> Response {
    let Ok(doc) = state.inner.docs.merged(&state.inner.routes).await else {
        return Problem::internal_opaque().into_response();
    };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::routes::{RouteDefaults, default_table};

    fn table() -> RouteTable {
        RouteTable::compile(
            &default_table(),
            RouteDefaults {
                timeout: Duration::from_secs(1),
                body_limit: 1,
                upload_body_limit: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn merging_keeps_routed_paths_and_components() {
        let routes = table();
        let product = json!({
            "paths": {
                "/v1/products": { "get": { "responses": {} } },
                "/internal/products/lookup": { "post": { "responses": {} } },
                "/v1/products/{id}/reviews": { "get": { "responses": {} } }
            },
            "components": { "schemas": { "Problem": { "type": "object" }, "Product": {} } }
        });
        let customer = json!({
            "paths": { "/v1/products/{id}/reviews": { "get": { "tags": ["reviews"], "responses": {} } } },
            "components": { "schemas": { "Problem": { "type": "object" }, "Review": {} } },
            "tags": [{ "name": "reviews" }]
        });
        let doc = merge(
            &routes,
            &[("product", product), ("customer", customer)],
            &["auth"],
        )
        .unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 2, "{doc}");
        assert_eq!(paths["/v1/products"]["get"]["tags"], json!(["product"]));
        assert_eq!(
            paths["/v1/products/{id}/reviews"]["get"]["tags"],
            json!(["reviews"])
        );
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("Product") && schemas.contains_key("Review"));
        assert_eq!(doc["x-unavailable-services"], json!(["auth"]));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn a_component_two_services_define_differently_is_an_error() {
        let product = json!({
            "paths": { "/v1/products": { "get": { "responses": {} } } },
            "components": { "schemas": { "Money": { "type": "object" }, "Same": {} } }
        });
        let customer = json!({
            "paths": { "/v1/wishlist": { "get": { "responses": {} } } },
            "components": { "schemas": { "Money": { "type": "integer" }, "Same": {} } }
        });
        let error = merge(
            &table(),
            &[("product", product), ("customer", customer)],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            error.0,
            [Collision {
                kind: "schemas".into(),
                name: "Money".into(),
                first: "product".into(),
                second: "customer".into(),
            }],
            "an identical definition (Same) is not a collision"
        );
        assert!(
            error
                .to_string()
                .contains("schemas/Money (product and customer)")
        );
    }

    #[test]
    fn routed_operations_get_the_gateways_security_and_responses() {
        let routes = table();
        let token = routes
            .routes()
            .iter()
            .find(|r| r.auth.requires_token() && r.service == "customer")
            .unwrap()
            .pattern
            .clone();
        let open = routes
            .routes()
            .iter()
            .find(|r| !r.auth.requires_token() && r.service == "product")
            .unwrap()
            .pattern
            .clone();
        let documented_401 = json!({ "description": "own words" });
        let customer = json!({
            "paths": { token.clone(): { "get": { "responses": { "200": {}, "401": documented_401 } } } }
        });
        let product = json!({
            "paths": { open.clone(): { "get": { "responses": { "200": {} } } } }
        });
        let doc = merge(
            &routes,
            &[("customer", customer), ("product", product)],
            &[],
        )
        .unwrap();

        let signed_in = &doc["paths"][&token]["get"];
        assert_eq!(signed_in["security"], json!([{ "bearer": [] }]), "{doc}");
        assert_eq!(
            signed_in["responses"]["401"], documented_401,
            "kept as documented"
        );
        assert_eq!(
            signed_in["responses"]["429"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );

        let anyone = &doc["paths"][&open]["get"];
        assert_eq!(anyone["security"], json!([{}, { "bearer": [] }]));
        assert_eq!(
            anyone["responses"]["401"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "a bad token is refused on every route"
        );
        assert!(anyone["responses"]["429"].is_object());
        assert!(doc["components"]["schemas"]["Problem"].is_object());
        assert!(doc["components"]["schemas"]["FieldError"].is_object());
    }
}
