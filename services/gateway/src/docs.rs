//! `/docs`: one documentation page (Swagger UI, assets compiled into the binary — no CDN) for
//! every service's API, and `/docs/openapi.json`, the services' OpenAPI documents merged.
//!
//! The gateway fetches each service's `/openapi.json` (with an internal token naming itself),
//! keeps the paths it actually routes to that service (never `/internal`), merges the components,
//! and caches the result (`DOCS_CACHE_SECS`; a few seconds only when a service did not answer).

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
use crate::routes::RouteTable;

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

    async fn merged(&self, routes: &RouteTable) -> Bytes {
        let mut cache = self.cache.lock().await;
        if let Some((at, ttl, doc)) = cache.as_ref()
            && at.elapsed() < *ttl
        {
            return doc.clone();
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
        let doc = merge(routes, &specs, &missing);
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let ttl = if missing.is_empty() {
            self.ttl
        } else {
            PARTIAL_CACHE.min(self.ttl)
        };
        *cache = Some((Instant::now(), ttl, bytes.clone()));
        bytes
    }
}

/// Merges the services' documents: each one's paths that the gateway routes to it (operations
/// without tags are tagged with the service's name), their components (first definition wins
/// when two services use one name), and their tags.
pub fn merge(routes: &RouteTable, specs: &[(&str, Value)], missing: &[&str]) -> Value {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    for (service, spec) in specs {
        if let Some(spec_paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, item) in spec_paths {
                if routes
                    .find(path)
                    .is_none_or(|route| route.service != *service)
                {
                    continue;
                }
                let mut item = item.clone();
                if let Some(operations) = item.as_object_mut() {
                    for operation in operations.values_mut() {
                        if let Some(op) = operation.as_object_mut()
                            && op.contains_key("responses")
                            && !op.contains_key("tags")
                        {
                            op.insert("tags".to_owned(), json!([service]));
                        }
                    }
                }
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
                            }
                            Some(existing) if existing != definition => {
                                tracing::debug!(%kind, %name, %service, "component defined twice; keeping the first");
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
    doc
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
    let doc = state.inner.docs.merged(&state.inner.routes).await;
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

    #[test]
    fn merging_keeps_routed_paths_and_components() {
        let routes = RouteTable::compile(
            &default_table(),
            RouteDefaults {
                timeout: Duration::from_secs(1),
                body_limit: 1,
                upload_body_limit: 1,
            },
        )
        .unwrap();
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
        );
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
}
