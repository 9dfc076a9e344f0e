//! SEO: the metadata posts and pages carry, `GET /v1/sitemap.xml` and `GET /robots.txt`.
//!
//! The sitemap lists, as absolute URLs on `PUBLIC_SITE_URL`: the home page, the blog index, every
//! published post (`/blog/{slug}`), every published page that is live now (`/{slug}`; landing
//! pages only inside their window), and the catalogue from product-service's
//! `GET /internal/sitemap` (`/products/{slug}`, categories under `/kitchens/{slug}` or
//! `/bedrooms/{slug}`). Anything marked `noIndex` is left out. The document is cached with the
//! other public content (so a publish shows at once; catalogue changes within the list TTL).
//! If product-service cannot answer, the sitemap is a 503/504 rather than a partial list: a
//! crawler retries an error, but would take a list without products as the truth.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::cache::Ttl;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::Validate;

use crate::AppState;
use crate::error::{ContentError, ContentResult};

/// Search and sharing metadata of a post or page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeoMeta {
    /// `<title>`, 1–120 characters (the page title when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub title: Option<String>,
    /// Meta description, at most 320 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 320, message = "must be at most 320 characters"))]
    #[schema(max_length = 320)]
    pub description: Option<String>,
    /// Canonical URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(url(message = "must be an absolute URL"))]
    #[schema(format = "uri")]
    pub canonical_url: Option<String>,
    /// Open Graph title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub og_title: Option<String>,
    /// Open Graph description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 320, message = "must be at most 320 characters"))]
    #[schema(max_length = 320)]
    pub og_description: Option<String>,
    /// Open Graph image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(url(message = "must be an absolute URL"))]
    #[schema(format = "uri")]
    pub og_image_url: Option<String>,
    /// Ask search engines not to index it (and leave it out of the sitemap).
    #[serde(default)]
    pub no_index: bool,
}

/// A catalogue entry as product-service's `/internal/sitemap` returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueEntry {
    /// URL slug.
    pub slug: String,
    /// `KITCHEN` or `BEDROOM`.
    pub family: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Product-service's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Catalogue {
    /// Published products.
    pub products: Vec<CatalogueEntry>,
    /// Categories.
    pub categories: Vec<CatalogueEntry>,
}

/// One `<url>` of the sitemap.
#[derive(Debug, Clone, PartialEq)]
struct UrlEntry {
    path: String,
    lastmod: Option<DateTime<Utc>>,
}

/// Escapes the five XML special characters.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn render_sitemap(site: &str, entries: &[UrlEntry]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for entry in entries {
        xml.push_str("  <url><loc>");
        xml.push_str(&xml_escape(&format!("{site}{}", entry.path)));
        xml.push_str("</loc>");
        if let Some(at) = entry.lastmod {
            xml.push_str("<lastmod>");
            xml.push_str(&at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            xml.push_str("</lastmod>");
        }
        xml.push_str("</url>\n");
    }
    xml.push_str("</urlset>\n");
    xml
}

/// The storefront path of a category of `family`.
fn category_path(family: &str, slug: &str) -> String {
    let section = if family == "BEDROOM" {
        "bedrooms"
    } else {
        "kitchens"
    };
    format!("/{section}/{slug}")
}

async fn sitemap_entries(state: &AppState) -> ContentResult<Vec<UrlEntry>> {
    let mut entries = vec![
        UrlEntry {
            path: "/".to_owned(),
            lastmod: None,
        },
        UrlEntry {
            path: "/blog".to_owned(),
            lastmod: None,
        },
    ];
    let pages: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT p.slug, coalesce(p.published_at, p.updated_at) FROM pages p
         JOIN page_versions v ON v.page_id = p.id AND v.version = p.published_version
         WHERE p.deleted_at IS NULL
           AND (p.valid_from IS NULL OR p.valid_from <= now())
           AND (p.valid_until IS NULL OR p.valid_until > now())
           AND NOT coalesce((v.seo ->> 'noIndex')::boolean, false)
         ORDER BY p.slug",
    )
    .fetch_all(&state.db)
    .await?;
    entries.extend(pages.into_iter().map(|(slug, at)| UrlEntry {
        path: format!("/{slug}"),
        lastmod: Some(at),
    }));
    let posts: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT slug, updated_at FROM blog_posts
         WHERE status = 'PUBLISHED' AND deleted_at IS NULL
           AND NOT coalesce((seo ->> 'noIndex')::boolean, false)
         ORDER BY published_at DESC, id DESC",
    )
    .fetch_all(&state.db)
    .await?;
    entries.extend(posts.into_iter().map(|(slug, at)| UrlEntry {
        path: format!("/blog/{slug}"),
        lastmod: Some(at),
    }));
    let catalogue: Catalogue = state
        .products
        .get("/internal/sitemap")
        .await
        .map_err(service_kit::Problem::from)?;
    entries.extend(catalogue.categories.into_iter().map(|c| UrlEntry {
        path: category_path(&c.family, &c.slug),
        lastmod: Some(c.updated_at),
    }));
    entries.extend(catalogue.products.into_iter().map(|p| UrlEntry {
        path: format!("/products/{}", p.slug),
        lastmod: Some(p.updated_at),
    }));
    Ok(entries)
}

/// The sitemap (sitemaps.org 0.9) of the storefront: pages, posts, categories and products.
#[utoipa::path(
    get,
    path = "/v1/sitemap.xml",
    tag = "seo",
    responses(
        (status = 200, description = "The sitemap", body = String, content_type = "application/xml"),
        (status = 503, description = "The catalogue is unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 504, description = "The catalogue timed out", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn sitemap(State(state): State<AppState>, headers: HeaderMap) -> ContentResult<Response> {
    let (entry, hit) = state
        .blog_cache
        .fetch("sitemap", "sitemap.xml", Ttl::List, || async {
            let entries = sitemap_entries(&state).await?;
            Ok::<_, ContentError>(
                render_sitemap(&state.settings.public_site_url, &entries).into_bytes(),
            )
        })
        .await?;
    let mut response = entry.respond(&headers, hit);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(response)
}

/// `robots.txt`: everything public may be crawled except the account, checkout and admin areas;
/// names the sitemap.
#[utoipa::path(
    get,
    path = "/robots.txt",
    tag = "seo",
    responses((status = 200, description = "robots.txt", body = String, content_type = "text/plain"))
)]
async fn robots(State(state): State<AppState>) -> Response {
    let body = format!(
        "User-agent: *\n\
         Disallow: /account\n\
         Disallow: /checkout\n\
         Disallow: /cart\n\
         Disallow: /v1/admin/\n\
         Allow: /\n\
         \n\
         Sitemap: {}/v1/sitemap.xml\n",
        state.settings.public_site_url
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The SEO routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sitemap))
        .routes(routes!(robots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sitemap_escapes_and_dates_its_urls() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        let xml = render_sitemap(
            "https://example.com",
            &[UrlEntry {
                path: "/a&b".to_owned(),
                lastmod: at,
            }],
        );
        assert!(
            xml.contains("<loc>https://example.com/a&amp;b</loc>"),
            "{xml}"
        );
        assert!(
            xml.contains("<lastmod>2026-01-02T03:04:05Z</lastmod>"),
            "{xml}"
        );
        assert_eq!(category_path("BEDROOM", "sliding"), "/bedrooms/sliding");
    }
}
