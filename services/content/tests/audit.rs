//! The audit trail of admin changes (issue 14): blog, pages, storefront, media wall and media
//! write one redacted row each in their transaction; rejected writes and reads write none;
//! SUPER_ADMIN alone reads it; nobody rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod media_support;

use common::{Api, body, customer};
use media_support::{Part, TempDir, multipart, png};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;
use test_support::audit;
use uuid::Uuid;

/// Sends `json` as `user` with a fresh `X-Request-Id`; returns status, body and that id.
async fn send(
    api: &Api,
    user: &TestUser,
    method: Method,
    path: &str,
    json: Option<&Value>,
) -> (StatusCode, Value, String) {
    let (request, request_id) = audit::request(&api.app, user, method, path, json);
    let (status, value) = body(request.send().await.unwrap()).await;
    (status, value, request_id)
}

/// As the admin, expecting `expected`; returns the body and the single row's `changes`, checked
/// against the actor, entity and action.
async fn audited(
    api: &Api,
    method: Method,
    path: &str,
    json: Option<&Value>,
    expected: StatusCode,
    entity: &str,
    action: &str,
) -> (Value, Value) {
    let (status, value, request_id) = send(api, &api.admin, method, path, json).await;
    assert_eq!(status, expected, "{path}: {value}");
    let mut row = audit::expect(api.admin.id, "ADMIN", entity, action);
    if let Some(created) = value["id"].as_str() {
        row = row.entity_id(created);
    }
    let row = audit::one_row(&api.pool, &request_id, row).await;
    (value, row.changes)
}

async fn count(api: &Api) -> i64 {
    audit::count(&api.pool).await
}

#[tokio::test]
async fn blog_changes_are_audited_with_their_text_redacted() {
    let api = Api::spawn().await;
    let (post, changes) = audited(
        &api,
        Method::POST,
        "/v1/blog",
        Some(
            &json!({"title": "Choosing a Worktop", "excerpt": "Stone or wood?",
                     "content": "# Worktops\n\nQuartz *lasts*.", "authorName": "Priya Shah"}),
        ),
        StatusCode::CREATED,
        "blog_post",
        "create",
    )
    .await;
    assert_eq!(changes["title"], json!({"after": "Choosing a Worktop"}));
    assert_eq!(changes["status"], json!({"after": "DRAFT"}));
    for field in ["content", "contentHtml", "excerpt", "authorName"] {
        assert_eq!(changes[field], json!({"after": "[redacted]"}), "{field}");
    }
    audit::assert_no_leak(&changes, &["Quartz", "Stone or wood", "Priya"]);
    let id = post["id"].as_str().unwrap();

    let (_, changes) = audited(
        &api,
        Method::PATCH,
        &format!("/v1/blog/{id}"),
        Some(&json!({"content": "Granite too.", "tags": ["Worktops"]})),
        StatusCode::OK,
        "blog_post",
        "update",
    )
    .await;
    assert_eq!(
        changes["content"],
        json!({"before": "[redacted]", "after": "[redacted]"})
    );
    assert_eq!(
        changes["tags"],
        json!({"before": [], "after": ["worktops"]})
    );
    assert!(changes.get("title").is_none(), "{changes}");

    let publish_at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (_, changes) = audited(
        &api,
        Method::POST,
        &format!("/v1/blog/{id}/schedule"),
        Some(&json!({ "publishAt": publish_at })),
        StatusCode::OK,
        "blog_post",
        "schedule",
    )
    .await;
    assert_eq!(
        changes["status"],
        json!({"before": "DRAFT", "after": "SCHEDULED"})
    );
    let (_, changes) = audited(
        &api,
        Method::POST,
        &format!("/v1/blog/{id}/publish"),
        None,
        StatusCode::OK,
        "blog_post",
        "publish",
    )
    .await;
    assert_eq!(
        changes["status"],
        json!({"before": "SCHEDULED", "after": "PUBLISHED"})
    );
    // Publishing a live post changes nothing, so records nothing.
    let before = count(&api).await;
    let (status, _, _) = send(
        &api,
        &api.admin,
        Method::POST,
        &format!("/v1/blog/{id}/publish"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count(&api).await, before);

    for (path, action, status) in [
        (format!("/v1/blog/{id}/unpublish"), "unpublish", "DRAFT"),
        (format!("/v1/blog/{id}/archive"), "archive", "ARCHIVED"),
    ] {
        let (_, changes) = audited(
            &api,
            Method::POST,
            &path,
            None,
            StatusCode::OK,
            "blog_post",
            action,
        )
        .await;
        assert_eq!(changes["status"]["after"], status);
    }
    let (_, changes) = audited(
        &api,
        Method::DELETE,
        &format!("/v1/blog/{id}"),
        None,
        StatusCode::NO_CONTENT,
        "blog_post",
        "delete",
    )
    .await;
    assert_eq!(changes["status"], json!({"before": "ARCHIVED"}));
    assert_eq!(count(&api).await, 7);
}

#[tokio::test]
async fn pages_storefront_media_wall_and_media_changes_are_audited() {
    let api = Api::spawn().await;
    let (page, changes) = audited(
        &api,
        Method::POST,
        "/v1/pages",
        Some(&json!({"pageType": "ABOUT", "title": "About us",
                     "blocks": [{"type": "RICH_TEXT", "markdown": "Family firm since 1990."}]})),
        StatusCode::CREATED,
        "page",
        "create",
    )
    .await;
    assert_eq!(changes["blocks"], json!({"after": "[redacted]"}));
    audit::assert_no_leak(&changes, &["Family firm"]);
    let id = page["id"].as_str().unwrap();
    let (_, changes) = audited(
        &api,
        Method::PATCH,
        &format!("/v1/pages/{id}"),
        Some(&json!({"title": "About Lomash Wood"})),
        StatusCode::OK,
        "page",
        "update",
    )
    .await;
    assert_eq!(
        changes["title"],
        json!({"before": "About us", "after": "About Lomash Wood"})
    );
    assert_eq!(changes["draftVersion"], json!({"before": 1, "after": 2}));
    let (_, changes) = audited(
        &api,
        Method::POST,
        &format!("/v1/pages/{id}/publish"),
        None,
        StatusCode::OK,
        "page",
        "publish",
    )
    .await;
    assert_eq!(
        changes["publishedVersion"],
        json!({"before": null, "after": 2})
    );
    audited(
        &api,
        Method::POST,
        &format!("/v1/pages/{id}/unpublish"),
        None,
        StatusCode::OK,
        "page",
        "unpublish",
    )
    .await;
    audited(
        &api,
        Method::DELETE,
        &format!("/v1/pages/{id}"),
        None,
        StatusCode::NO_CONTENT,
        "page",
        "delete",
    )
    .await;

    let (first, changes) = audited(
        &api,
        Method::POST,
        "/v1/testimonials",
        Some(
            &json!({"name": "Jo Bloggs", "text": "Lovely kitchen", "rating": 5,
                     "location": "Harrow"}),
        ),
        StatusCode::CREATED,
        "testimonial",
        "create",
    )
    .await;
    assert_eq!(changes["rating"], json!({"after": 5}));
    audit::assert_no_leak(&changes, &["Jo Bloggs", "Lovely", "Harrow"]);
    let (second, _) = audited(
        &api,
        Method::POST,
        "/v1/testimonials",
        Some(&json!({"name": "Sam", "text": "Quick fit", "rating": 4})),
        StatusCode::CREATED,
        "testimonial",
        "create",
    )
    .await;
    let (_, changes) = audited(
        &api,
        Method::PATCH,
        &format!("/v1/testimonials/{}", first["id"].as_str().unwrap()),
        Some(&json!({"active": false})),
        StatusCode::OK,
        "testimonial",
        "update",
    )
    .await;
    assert_eq!(changes["active"], json!({"before": true, "after": false}));
    let order = json!({"ids": [second["id"], first["id"]]});
    let (_, changes) = audited(
        &api,
        Method::PUT,
        "/v1/testimonials/order",
        Some(&order),
        StatusCode::OK,
        "testimonial",
        "reorder",
    )
    .await;
    assert_eq!(changes["ids"]["after"], order["ids"]);
    audited(
        &api,
        Method::DELETE,
        &format!("/v1/testimonials/{}", first["id"].as_str().unwrap()),
        None,
        StatusCode::NO_CONTENT,
        "testimonial",
        "delete",
    )
    .await;

    let (_, changes) = audited(
        &api,
        Method::PUT,
        "/v1/media-wall",
        Some(&json!({"title": "Our work", "description": "Recent installs in Harrow"})),
        StatusCode::OK,
        "media_wall",
        "update",
    )
    .await;
    assert_eq!(changes["title"], json!({"after": "Our work"}));
    assert_eq!(changes["description"], json!({"after": "[redacted]"}));

    let media = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO media_assets (id, storage_key, kind, mime_type, size_bytes)
         VALUES ($1, $2, 'VIDEO', 'video/mp4', 1000)",
    )
    .bind(media)
    .bind(format!("media/2026/01/{media}.mp4"))
    .execute(&api.pool)
    .await
    .unwrap();
    let (_, changes) = audited(
        &api,
        Method::PATCH,
        &format!("/v1/media/{media}"),
        Some(&json!({"altText": "Showroom tour"})),
        StatusCode::OK,
        "media",
        "update",
    )
    .await;
    assert_eq!(
        changes,
        json!({"altText": {"before": "[redacted]", "after": "[redacted]"}})
    );
    let (_, changes) = audited(
        &api,
        Method::DELETE,
        &format!("/v1/media/{media}"),
        None,
        StatusCode::NO_CONTENT,
        "media",
        "delete",
    )
    .await;
    assert_eq!(changes["mimeType"], json!({"before": "video/mp4"}));
    assert_eq!(count(&api).await, 13);
}

#[tokio::test]
async fn rejected_writes_and_reads_leave_no_row() {
    let api = Api::spawn().await;
    let (status, post) = api
        .admin_post("/v1/blog", &json!({"title": "Kept", "content": "Body"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = post["id"].as_str().unwrap();
    let before = count(&api).await;
    assert_eq!(before, 1);

    let repeated = Uuid::now_v7();
    let rejected = [
        (
            &api.admin,
            Method::POST,
            "/v1/blog".to_owned(),
            Some(json!({"title": ""})),
            422,
        ),
        (
            &customer(),
            Method::POST,
            "/v1/blog".to_owned(),
            Some(json!({"title": "x", "content": "y"})),
            403,
        ),
        (
            &api.admin,
            Method::PATCH,
            format!("/v1/blog/{}", Uuid::now_v7()),
            Some(json!({"title": "x"})),
            404,
        ),
        (
            &api.admin,
            Method::POST,
            format!("/v1/blog/{id}/schedule"),
            Some(json!({"publishAt": "2001-01-01T00:00:00Z"})),
            422,
        ),
        (
            &api.admin,
            Method::PUT,
            "/v1/faqs/order".to_owned(),
            Some(json!({"ids": [Uuid::now_v7()]})),
            409,
        ),
        (
            &api.admin,
            Method::PUT,
            "/v1/faqs/order".to_owned(),
            Some(json!({"ids": [repeated, repeated]})),
            422,
        ),
        (
            &api.admin,
            Method::DELETE,
            format!("/v1/testimonials/{}", Uuid::now_v7()),
            None,
            404,
        ),
        (
            &api.admin,
            Method::POST,
            "/v1/pages".to_owned(),
            Some(json!({"pageType": "NOPE"})),
            422,
        ),
    ];
    for (user, method, path, json, expected) in rejected {
        let (status, problem, _) = send(&api, user, method, &path, json.as_ref()).await;
        assert_eq!(status.as_u16(), expected, "{path}: {problem}");
    }
    for path in [
        "/v1/admin/blog",
        "/v1/admin/pages",
        "/v1/admin/faqs",
        "/v1/media",
    ] {
        let (status, _, _) = send(&api, &api.admin, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    assert_eq!(count(&api).await, before);
}

#[tokio::test]
async fn only_a_super_admin_reads_the_trail_and_it_cannot_be_rewritten() {
    let api = Api::spawn().await;
    let (status, post) = api
        .admin_post("/v1/blog", &json!({"title": "One", "content": "Body"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .admin_post(
            "/v1/faqs",
            &json!({"question": "Do you fit?", "answer": "Yes."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let root = TestUser::new(Role::SuperAdmin);
    let (status, page, _) = send(
        &api,
        &root,
        Method::GET,
        "/v1/pages/audit?entity=blog_post",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["entityId"], post["id"]);
    assert_eq!(data[0]["service"], "content");
    assert_eq!(data[0]["action"], "create");
    let (_, all, _) = send(&api, &root, Method::GET, "/v1/pages/audit", None).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let (status, _, _) = send(&api, &api.admin, Method::GET, "/v1/pages/audit", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.get("/v1/pages/audit").await.0, StatusCode::UNAUTHORIZED);

    audit::assert_append_only(&api.pool).await;
    assert_eq!(count(&api).await, 2);
}

#[tokio::test]
async fn an_upload_is_audited_and_a_refused_one_is_not() {
    let dir = TempDir::new();
    let api = Api::spawn_with(&[("MEDIA_LOCAL_DIR", dir.as_str())]).await;
    let upload = |parts: &[Part<'_>]| {
        let (content_type, body) = multipart(parts);
        let request_id = format!("audit-{}", Uuid::now_v7());
        let request = api
            .app
            .request_as(Method::POST, "/v1/uploads", &api.admin)
            .header("X-Request-Id", &request_id)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        async move { (request.send().await.unwrap(), request_id) }
    };
    let (refused, _) = upload(&[Part::text("altText", "no file")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&api).await, 0);

    let (response, request_id) = upload(&[
        Part::file(png(64, 48), "kitchen.png", "image/png"),
        Part::text("altText", "The Bloggs family kitchen"),
    ])
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let asset: Value = response.json().await.unwrap();
    let row = audit::one_row(
        &api.pool,
        &request_id,
        audit::expect(api.admin.id, "ADMIN", "media", "create")
            .entity_id(asset["mediaId"].as_str().unwrap()),
    )
    .await;
    let changes = &row.changes;
    assert_eq!(changes["mimeType"], json!({"after": "image/png"}));
    assert_eq!(changes["altText"], json!({"after": "[redacted]"}));
    audit::assert_no_leak(changes, &["Bloggs"]);
    assert_eq!(count(&api).await, 1);
}
