//! The blog: lifecycle, slugs, scheduling, cache invalidation, events, validation and roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{Api, customer, fields, problem_code, slugs};
use content_service::blog::schedule::publish_due;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn draft(api: &Api, body: Value) -> Value {
    let (status, post) = api.admin_post("/v1/blog", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    post
}

async fn published(api: &Api, body: Value) -> Value {
    let post = draft(api, body).await;
    let (status, post) = api
        .admin_post(
            &format!("/v1/blog/{}/publish", post["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    post
}

#[tokio::test]
async fn a_draft_is_invisible_until_published_and_unpublishing_makes_it_404_again() {
    let api = Api::spawn().await;
    let post = draft(
        &api,
        json!({"title": "Choosing a Worktop", "excerpt": "Stone or wood?",
               "content": "# Worktops\n\nQuartz *lasts*.", "tags": ["Worktops"]}),
    )
    .await;
    assert_eq!(post["status"], "DRAFT");
    assert_eq!(post["slug"], "choosing-a-worktop");
    let id = post["id"].as_str().unwrap();

    assert_eq!(
        api.get("/v1/blog/choosing-a-worktop").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/v1/blog/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(slugs(&api.get("/v1/blog").await.1).is_empty());

    let (status, live) = api
        .admin_post(&format!("/v1/blog/{id}/publish"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{live}");
    assert_eq!(live["status"], "PUBLISHED");
    assert!(live["publishedAt"].is_string());

    let (status, public) = api.get("/v1/blog/choosing-a-worktop").await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(
        public["contentHtml"].as_str().unwrap().trim(),
        "<h1>Worktops</h1>\n<p>Quartz <em>lasts</em>.</p>"
    );
    assert_eq!(public["tags"], json!(["worktops"]));
    assert_eq!(slugs(&api.get("/v1/blog").await.1), ["choosing-a-worktop"]);

    let (status, back) = api
        .admin_post(&format!("/v1/blog/{id}/unpublish"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["status"], "DRAFT");
    assert_eq!(
        api.get("/v1/blog/choosing-a-worktop").await.0,
        StatusCode::NOT_FOUND
    );
    assert!(slugs(&api.get("/v1/blog").await.1).is_empty());
}

#[tokio::test]
async fn slugs_are_transliterated_and_a_clash_gets_a_numeric_suffix() {
    let api = Api::spawn().await;
    let first = draft(&api, json!({"title": "Crème Brûlée Kitchens"})).await;
    let second = draft(&api, json!({"title": "Crème Brûlée Kitchens"})).await;
    let third = draft(&api, json!({"title": "crème brûlée   kitchens!"})).await;
    assert_eq!(first["slug"], "creme-brulee-kitchens");
    assert_eq!(second["slug"], "creme-brulee-kitchens-2");
    assert_eq!(third["slug"], "creme-brulee-kitchens-3");

    // An explicit slug is never silently changed: taken → 409.
    let (status, problem) = api
        .admin_post(
            "/v1/blog",
            &json!({"title": "Other", "slug": "creme-brulee-kitchens"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "slug-taken");

    // Deleting frees the slug for the next post.
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        api.admin_delete(&format!("/v1/blog/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let fourth = draft(&api, json!({"title": "Crème Brûlée Kitchens"})).await;
    assert_eq!(fourth["slug"], "creme-brulee-kitchens");
}

#[tokio::test]
async fn a_merge_patch_changes_only_what_it_names_and_a_null_slug_is_derived_again() {
    let api = Api::spawn().await;
    let post = draft(
        &api,
        json!({"title": "Old Title", "excerpt": "Keep me", "tags": ["a"]}),
    )
    .await;
    let path = format!("/v1/blog/{}", post["id"].as_str().unwrap());

    let (status, patched) = api
        .admin_patch(
            &path,
            &json!({"title": "New Title", "content": "word ".repeat(450)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["title"], "New Title");
    assert_eq!(
        patched["slug"], "old-title",
        "the slug is kept unless asked"
    );
    assert_eq!(patched["excerpt"], "Keep me");
    assert_eq!(patched["tags"], json!(["a"]));
    assert_eq!(patched["readingMinutes"], 3);

    let (_, patched) = api
        .admin_patch(&path, &json!({"slug": null, "tags": null}))
        .await;
    assert_eq!(patched["slug"], "new-title");
    assert_eq!(patched["tags"], json!([]));

    // A bad patch changes nothing.
    let (status, problem) = api
        .admin_patch(&path, &json!({"title": "", "slug": "Bad Slug"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["title"]);
    assert_eq!(
        api.admin_get(&path.replace("/v1/blog", "/v1/admin/blog"))
            .await
            .1["title"],
        "New Title"
    );
}

#[tokio::test]
async fn markdown_is_rendered_to_sanitised_html() {
    let api = Api::spawn().await;
    let post = published(
        &api,
        json!({"title": "Safe", "content": "Hi <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>"}),
    )
    .await;
    let html = post["contentHtml"].as_str().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
    assert!(
        post["content"].as_str().unwrap().contains("<script>"),
        "the source is kept"
    );
}

#[tokio::test]
async fn a_scheduled_post_goes_live_at_its_time_exactly_once() {
    let api = Api::spawn().await;
    let post = draft(&api, json!({"title": "Spring Collection"})).await;
    let id = post["id"].as_str().unwrap();
    let at = Utc::now() + Duration::hours(1);

    let (status, scheduled) = api
        .admin_post(
            &format!("/v1/blog/{id}/schedule"),
            &json!({"publishAt": at}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{scheduled}");
    assert_eq!(scheduled["status"], "SCHEDULED");
    assert_eq!(
        api.get("/v1/blog/spring-collection").await.0,
        StatusCode::NOT_FOUND
    );

    // Before its time the job publishes nothing.
    assert!(publish_due(&api.pool, Utc::now()).await.unwrap().is_empty());

    // Two replicas running the job at once after its time: one publishes it, once.
    let later = at + Duration::seconds(1);
    let (a, b) = tokio::join!(publish_due(&api.pool, later), publish_due(&api.pool, later));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1);
    assert!(publish_due(&api.pool, later).await.unwrap().is_empty());

    let (status, live) = api.get("/v1/blog/spring-collection").await;
    assert_eq!(status, StatusCode::OK, "{live}");
    assert_eq!(live["status"], "PUBLISHED");
    let published_at: chrono::DateTime<Utc> =
        live["publishedAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        published_at.timestamp_millis() / 1000,
        at.timestamp_millis() / 1000,
        "live at its scheduled time"
    );
    assert_eq!(api.events("blog.published").await.len(), 1);
}

#[tokio::test]
async fn deleting_a_scheduled_post_cancels_its_schedule() {
    let api = Api::spawn().await;
    let post = draft(&api, json!({"title": "Withdrawn"})).await;
    let id = post["id"].as_str().unwrap();
    let at = Utc::now() + Duration::hours(1);
    let (status, scheduled) = api
        .admin_post(
            &format!("/v1/blog/{id}/schedule"),
            &json!({"publishAt": at}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{scheduled}");

    assert_eq!(
        api.admin_delete(&format!("/v1/blog/{id}")).await,
        StatusCode::NO_CONTENT
    );
    // The job finds nothing to publish once its time has come.
    assert!(
        publish_due(&api.pool, at + Duration::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(api.get("/v1/blog/withdrawn").await.0, StatusCode::NOT_FOUND);
    assert!(api.events("blog.published").await.is_empty());
}

#[tokio::test]
async fn scheduling_needs_a_future_time_and_an_unpublished_post() {
    let api = Api::spawn().await;
    let post = published(&api, json!({"title": "Live"})).await;
    let id = post["id"].as_str().unwrap();
    let (status, problem) = api
        .admin_post(
            &format!("/v1/blog/{id}/schedule"),
            &json!({"publishAt": Utc::now() - Duration::hours(1)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["publishAt"]);
    let (status, problem) = api
        .admin_post(
            &format!("/v1/blog/{id}/schedule"),
            &json!({"publishAt": Utc::now() + Duration::hours(1)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "already-published");
}

#[tokio::test]
async fn blog_published_is_emitted_once_per_post_however_often_it_is_published() {
    let api = Api::spawn().await;
    let post = published(&api, json!({"title": "Once", "tags": ["news"]})).await;
    let id = post["id"].as_str().unwrap();
    // Publishing again is a no-op; unpublishing and publishing again does not re-announce.
    api.admin_post(&format!("/v1/blog/{id}/publish"), &json!({}))
        .await;
    api.admin_post(&format!("/v1/blog/{id}/unpublish"), &json!({}))
        .await;
    let (status, _) = api
        .admin_post(&format!("/v1/blog/{id}/publish"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let events = api.events("blog.published").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let payload = &events[0]["payload"];
    assert_eq!(payload["postId"], post["id"]);
    assert_eq!(payload["slug"], "once");
    assert_eq!(payload["tags"], json!(["news"]));
    assert_eq!(payload["authorId"], api.admin.id.to_string());
    assert_eq!(events[0]["producer"], "content");
}

#[tokio::test]
async fn the_cached_public_list_is_invalidated_when_a_post_is_published() {
    let api = Api::spawn().await;
    published(&api, json!({"title": "First"})).await;
    let first = api.app.get("/v1/blog").await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let again = api.app.get("/v1/blog").await;
    assert_eq!(again.headers()["x-cache"], "HIT");

    published(&api, json!({"title": "Second"})).await;
    let after = api.app.get("/v1/blog").await;
    assert_eq!(after.headers()["x-cache"], "MISS");
    let (_, list) = common::body(after).await;
    assert_eq!(slugs(&list), ["second", "first"], "newest first");
}

#[tokio::test]
async fn the_public_list_filters_by_tag_and_category_and_pages_with_a_cursor() {
    let api = Api::spawn().await;
    for (title, tags, category) in [
        ("One", json!(["oak"]), "Kitchens"),
        ("Two", json!(["oak", "paint"]), "Bedrooms"),
        ("Three", json!(["paint"]), "Kitchens"),
        ("Four", json!([]), "Kitchens"),
    ] {
        published(
            &api,
            json!({"title": title, "tags": tags, "category": category}),
        )
        .await;
    }
    assert_eq!(slugs(&api.get("/v1/blog?tag=oak").await.1), ["two", "one"]);
    assert_eq!(
        slugs(&api.get("/v1/blog?category=kitchens").await.1),
        ["four", "three", "one"]
    );
    assert_eq!(
        slugs(&api.get("/v1/blog?tag=paint&category=kitchens").await.1),
        ["three"]
    );

    let (_, page1) = api.get("/v1/blog?limit=3").await;
    assert_eq!(slugs(&page1), ["four", "three", "two"]);
    assert_eq!(page1["hasNextPage"], true);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = api.get(&format!("/v1/blog?limit=3&cursor={cursor}")).await;
    assert_eq!(slugs(&page2), ["one"]);
    assert_eq!(page2["hasNextPage"], false);

    let (status, problem) = api.get("/v1/blog?colour=red").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, _) = api.get("/v1/blog?cursor=garbage").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api.get("/v1/blog?limit=101").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn related_posts_share_tags_first_and_never_include_drafts() {
    let api = Api::spawn().await;
    published(
        &api,
        json!({"title": "Base", "tags": ["oak", "shaker"], "category": "kitchens"}),
    )
    .await;
    published(
        &api,
        json!({"title": "Both Tags", "tags": ["oak", "shaker"]}),
    )
    .await;
    published(&api, json!({"title": "One Tag", "tags": ["oak"]})).await;
    published(
        &api,
        json!({"title": "Same Category", "category": "kitchens"}),
    )
    .await;
    published(&api, json!({"title": "Unrelated", "tags": ["garden"]})).await;
    draft(
        &api,
        json!({"title": "Draft Twin", "tags": ["oak", "shaker"]}),
    )
    .await;

    let (status, related) = api.get("/v1/blog/base/related?limit=5").await;
    assert_eq!(status, StatusCode::OK, "{related}");
    assert_eq!(slugs(&related), ["both-tags", "one-tag", "same-category"]);
    assert_eq!(
        api.get("/v1/blog/draft-twin/related").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invalid_posts_are_refused_with_every_field_named_and_nothing_stored() {
    let api = Api::spawn().await;
    let (status, problem) = api
        .admin_post(
            "/v1/blog",
            &json!({"title": "", "slug": "Not A Slug", "tags": ["ok", "!!!"],
                    "coverImageUrl": "not a url", "seo": {"canonicalUrl": "nope"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let named = fields(&problem);
    for field in ["title", "coverImageUrl", "seo.canonicalUrl"] {
        assert!(named.contains(&field.to_owned()), "{named:?}");
    }
    let (status, problem) = api
        .admin_post(
            "/v1/blog",
            &json!({"title": "Fine", "slug": "Not A Slug", "tags": ["ok", "!!!"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["slug", "tags[1]"]);
    let (status, _) = api
        .admin_post("/v1/blog", &json!({"title": "x", "surprise": 1}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.count("SELECT count(*) FROM blog_posts").await, 0);
}

#[tokio::test]
async fn only_administrators_write_the_blog() {
    let api = Api::spawn().await;
    let body = json!({"title": "Sneaky"});
    let (status, _) = api
        .send(Some(&customer()), Method::POST, "/v1/blog", Some(&body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.send(None, Method::POST, "/v1/blog", Some(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .send(Some(&customer()), Method::GET, "/v1/admin/blog", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.count("SELECT count(*) FROM blog_posts").await, 0);

    let post = draft(&api, body).await;
    let (status, _) = api
        .send(
            Some(&customer()),
            Method::POST,
            &format!("/v1/blog/{}/publish", post["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_see_every_status_in_their_table_and_deleted_posts_nowhere() {
    let api = Api::spawn().await;
    draft(&api, json!({"title": "Draft"})).await;
    let live = published(&api, json!({"title": "Live"})).await;
    let gone = published(&api, json!({"title": "Gone"})).await;
    assert_eq!(
        api.admin_delete(&format!("/v1/blog/{}", gone["id"].as_str().unwrap()))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.admin_delete(&format!("/v1/blog/{}", gone["id"].as_str().unwrap()))
            .await,
        StatusCode::NOT_FOUND
    );

    let (status, table) = api.admin_get("/v1/admin/blog?pageSize=10").await;
    assert_eq!(status, StatusCode::OK, "{table}");
    assert_eq!(table["total"], 2);
    assert_eq!(slugs(&table), ["live", "draft"]);
    let (_, only_live) = api.admin_get("/v1/admin/blog?status=PUBLISHED").await;
    assert_eq!(slugs(&only_live), ["live"]);
    assert_eq!(api.get("/v1/blog/gone").await.0, StatusCode::NOT_FOUND);
    assert_eq!(slugs(&api.get("/v1/blog").await.1), ["live"]);
    let _ = live;
}
