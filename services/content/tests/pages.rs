//! CMS pages: typed blocks, versions, publishing, landing windows, SEO, validation and roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{Api, customer, fields, problem_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn about() -> Value {
    json!({
        "pageType": "ABOUT",
        "title": "About Lomash Wood",
        "blocks": [
            {"type": "RICH_TEXT", "markdown": "We build **kitchens**."},
            {"type": "IMAGE", "url": "https://cdn.example.com/team.webp", "alt": "Our team"},
            {"type": "GALLERY", "images": [{"mediaId": "0190d7a0-0000-7000-8000-000000000001", "alt": "Oak"}]},
            {"type": "CTA", "text": "Book a visit", "link": "/book-appointment"},
            {"type": "FAQ_LIST", "items": [{"question": "Do you fit?", "answer": "Yes."}]},
            {"type": "VIDEO", "url": "https://cdn.example.com/tour.mp4"}
        ],
        "seo": {"title": "About us", "description": "Who we are", "canonicalUrl": "https://www.lomashwood.co.uk/about-lomash-wood", "ogImageUrl": "https://cdn.example.com/og.webp"}
    })
}

async fn create(api: &Api, body: Value) -> Value {
    let (status, page) = api.admin_post("/v1/pages", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    page
}

#[tokio::test]
async fn a_page_is_public_only_once_published_and_shows_its_live_version() {
    let api = Api::spawn().await;
    let page = create(&api, about()).await;
    assert_eq!(page["slug"], "about-lomash-wood");
    assert_eq!(page["draftVersion"], 1);
    assert!(page["publishedVersion"].is_null());
    let id = page["id"].as_str().unwrap();
    assert_eq!(
        api.get("/v1/pages/about-lomash-wood").await.0,
        StatusCode::NOT_FOUND
    );

    let (status, published) = api
        .admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(published["publishedVersion"], 1);

    let (status, public) = api.get("/v1/pages/about-lomash-wood").await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public["version"], 1);
    assert_eq!(public["pageType"], "ABOUT");
    assert_eq!(public["blocks"].as_array().unwrap().len(), 6);
    assert_eq!(
        public["blocks"][0]["html"].as_str().unwrap().trim(),
        "<p>We build <strong>kitchens</strong>.</p>"
    );
    assert_eq!(public["blocks"][3]["style"], "PRIMARY");
    assert_eq!(
        public["seo"]["canonicalUrl"],
        "https://www.lomashwood.co.uk/about-lomash-wood"
    );

    // An edit is a new draft version, invisible until published.
    let (status, edited) = api
        .admin_patch(&format!("/v1/pages/{id}"), &json!({"title": "About Us", "blocks": [{"type": "RICH_TEXT", "markdown": "New text"}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["draftVersion"], 2);
    assert_eq!(edited["publishedVersion"], 1);
    assert_eq!(
        edited["slug"], "about-lomash-wood",
        "the slug stays unless asked"
    );
    let (_, public) = api.get("/v1/pages/about-lomash-wood").await;
    assert_eq!(public["title"], "About Lomash Wood");
    assert_eq!(public["blocks"].as_array().unwrap().len(), 6);

    api.admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
        .await;
    let (_, public) = api.get("/v1/pages/about-lomash-wood").await;
    assert_eq!(public["title"], "About Us");
    assert_eq!(public["version"], 2);
    assert_eq!(public["blocks"].as_array().unwrap().len(), 1);

    let (status, _) = api
        .admin_post(&format!("/v1/pages/{id}/unpublish"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api.get("/v1/pages/about-lomash-wood").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn versions_are_listed_newest_first_with_the_live_one_marked() {
    let api = Api::spawn().await;
    let page = create(&api, about()).await;
    let id = page["id"].as_str().unwrap();
    api.admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
        .await;
    api.admin_patch(&format!("/v1/pages/{id}"), &json!({"title": "Second"}))
        .await;
    api.admin_patch(&format!("/v1/pages/{id}"), &json!({"title": "Third"}))
        .await;

    let (status, versions) = api.admin_get(&format!("/v1/pages/{id}/versions")).await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    let list = versions["data"].as_array().unwrap();
    let numbers: Vec<i64> = list
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    let titles: Vec<&str> = list.iter().map(|v| v["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Third", "Second", "About Lomash Wood"]);
    let live: Vec<bool> = list.iter().map(|v| v["live"].as_bool().unwrap()).collect();
    assert_eq!(live, [false, false, true]);
    assert!(list[2]["publishedAt"].is_string());
    assert!(list[0]["publishedAt"].is_null());
    assert_eq!(list[0]["createdBy"], api.admin.id.to_string());
}

#[tokio::test]
async fn page_published_is_emitted_once_per_published_version() {
    let api = Api::spawn().await;
    let page = create(&api, about()).await;
    let id = page["id"].as_str().unwrap();
    api.admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
        .await;
    api.admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
        .await;
    assert_eq!(
        api.events("page.published").await.len(),
        1,
        "republishing the live version is a no-op"
    );
    api.admin_patch(&format!("/v1/pages/{id}"), &json!({"title": "Changed"}))
        .await;
    api.admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
        .await;
    let events = api.events("page.published").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["payload"]["pageId"], page["id"]);
    assert_eq!(events[1]["payload"]["title"], "Changed");
    assert_eq!(events[1]["payload"]["slug"], "about-lomash-wood");
}

#[tokio::test]
async fn a_landing_page_is_live_only_inside_its_window() {
    let api = Api::spawn().await;
    let now = Utc::now();
    let live = create(&api, json!({"pageType": "LANDING", "title": "Summer Sale", "validFrom": now - Duration::days(1), "validUntil": now + Duration::days(1)})).await;
    let future = create(&api, json!({"pageType": "LANDING", "title": "Winter Sale", "validFrom": now + Duration::days(30)})).await;
    let past = create(&api, json!({"pageType": "LANDING", "title": "Spring Sale", "validUntil": now - Duration::hours(1)})).await;
    for page in [&live, &future, &past] {
        let id = page["id"].as_str().unwrap();
        api.admin_post(&format!("/v1/pages/{id}/publish"), &json!({}))
            .await;
    }
    assert_eq!(api.get("/v1/pages/summer-sale").await.0, StatusCode::OK);
    assert_eq!(
        api.get("/v1/pages/winter-sale").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/pages/spring-sale").await.0,
        StatusCode::NOT_FOUND
    );

    // Only landing pages have a window, and it must run forwards.
    let (status, problem) = api
        .admin_post(
            "/v1/pages",
            &json!({"pageType": "TERMS", "title": "Terms", "validFrom": now}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["validFrom"]);
    let (status, problem) = api
        .admin_post("/v1/pages", &json!({"pageType": "LANDING", "title": "Bad", "validFrom": now, "validUntil": now - Duration::days(1)}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["validUntil"]);
}

#[tokio::test]
async fn a_patch_whose_window_conflicts_with_the_stored_page_type_is_409() {
    let api = Api::spawn().await;
    let now = Utc::now();
    let page = create(&api, json!({"pageType": "CONTACT", "title": "Contact us"})).await;
    let path = format!("/v1/pages/{}", page["id"].as_str().unwrap());

    // A window on a stored CONTACT page: the page's state is in the way, not the patch's form.
    let (status, problem) = api.admin_patch(&path, &json!({"validFrom": now})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "window-needs-landing");
    assert!(
        problem["detail"].as_str().unwrap().contains("LANDING"),
        "{problem}"
    );

    // Named together with LANDING it is fine.
    let (status, landing) = api
        .admin_patch(&path, &json!({"pageType": "LANDING", "validFrom": now}))
        .await;
    assert_eq!(status, StatusCode::OK, "{landing}");

    // Leaving LANDING while the stored window stays: 409 again; clearing it in the same patch
    // works.
    let (status, problem) = api
        .admin_patch(&path, &json!({"pageType": "CONTACT"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "window-needs-landing");
    let (status, contact) = api
        .admin_patch(&path, &json!({"pageType": "CONTACT", "validFrom": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert!(contact["validFrom"].is_null(), "{contact}");

    // A patch naming another type and a window is invalid as it stands: 422.
    let (status, problem) = api
        .admin_patch(&path, &json!({"pageType": "TERMS", "validUntil": now}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["validFrom"]);
}

#[tokio::test]
async fn every_block_is_validated_by_its_type_and_nothing_is_stored_on_bad_input() {
    let api = Api::spawn().await;
    let (status, problem) = api
        .admin_post(
            "/v1/pages",
            &json!({"pageType": "ABOUT", "title": "Bad Blocks", "blocks": [
                {"type": "RICH_TEXT", "markdown": ""},
                {"type": "IMAGE", "url": "ftp://x", "alt": "x"},
                {"type": "CTA", "text": "Go", "link": "javascript:alert(1)"},
                {"type": "VIDEO", "url": "http://insecure.example/v.mp4"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        [
            "blocks[0].markdown",
            "blocks[1].url",
            "blocks[2].link",
            "blocks[3].url"
        ]
    );

    let (status, _) = api
        .admin_post(
            "/v1/pages",
            &json!({"pageType": "ABOUT", "title": "x", "blocks": [{"type": "MARQUEE"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api
        .admin_post("/v1/pages", &json!({"pageType": "BLOG", "title": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.count("SELECT count(*) FROM pages").await, 0);
    assert_eq!(api.count("SELECT count(*) FROM page_versions").await, 0);
}

#[tokio::test]
async fn slugs_clash_with_a_suffix_or_a_409_when_explicit() {
    let api = Api::spawn().await;
    let first = create(&api, json!({"pageType": "FAQS", "title": "Questions"})).await;
    let second = create(&api, json!({"pageType": "FAQS", "title": "Questions"})).await;
    assert_eq!(first["slug"], "questions");
    assert_eq!(second["slug"], "questions-2");
    let (status, problem) = api
        .admin_post(
            "/v1/pages",
            &json!({"pageType": "FAQS", "title": "Other", "slug": "questions"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "slug-taken");
    let (status, _) = api
        .admin_patch(
            &format!("/v1/pages/{}", second["id"].as_str().unwrap()),
            &json!({"slug": "questions"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn only_administrators_manage_pages() {
    let api = Api::spawn().await;
    let (status, _) = api
        .send(Some(&customer()), Method::POST, "/v1/pages", Some(&about()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let page = create(&api, about()).await;
    let id = page["id"].as_str().unwrap();
    let (status, _) = api
        .send(
            Some(&customer()),
            Method::GET,
            &format!("/v1/pages/{id}/versions"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .send(None, Method::POST, &format!("/v1/pages/{id}/publish"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .send(
            Some(&customer()),
            Method::DELETE,
            &format!("/v1/pages/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_eq!(
        api.admin_delete(&format!("/v1/pages/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let (_, table) = api.admin_get("/v1/admin/pages").await;
    assert_eq!(table["total"], 0);
}
