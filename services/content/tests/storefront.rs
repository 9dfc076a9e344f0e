//! Storefront content: ordered public reads, admin CRUD, reordering, the media wall, roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, customer, fields, problem_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn titles(body: &Value, field: &str) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

async fn slide(api: &Api, title: &str, active: bool) -> Value {
    let (status, slide) = api
        .admin_post(
            "/v1/hero-slides",
            &json!({"title": title, "media": {"url": format!("https://cdn.example.com/{title}.webp"), "alt": title},
                    "buttonText": "Explore", "buttonLink": "/kitchens", "active": active}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{slide}");
    slide
}

#[tokio::test]
async fn hero_slides_are_read_in_order_and_can_be_reordered() {
    let api = Api::spawn().await;
    let a = slide(&api, "First", true).await;
    let b = slide(&api, "Second", true).await;
    let c = slide(&api, "Third", true).await;
    slide(&api, "Hidden", false).await;
    assert_eq!(a["position"], 0);
    assert_eq!(c["position"], 2);
    assert_eq!(a["buttonLink"], "/kitchens");
    assert_eq!(a["media"]["kind"], "IMAGE");

    let (status, list) = api.get("/v1/hero-slides").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        titles(&list, "title"),
        ["First", "Second", "Third"],
        "inactive slides are not shown"
    );

    // Reordering must name every item (the hidden one too) once: other items than the list's
    // mean it changed since the client read it (409, reload), a repeated id is malformed (422).
    let (_, table) = api.admin_get("/v1/admin/hero-slides").await;
    assert_eq!(table["total"], 4);
    let hidden = table["data"][3]["id"].clone();
    let (status, problem) = api
        .admin_put("/v1/hero-slides/order", &json!({"ids": [c["id"], a["id"]]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "order-stale");
    assert!(
        problem["detail"].as_str().unwrap().contains("reload"),
        "{problem}"
    );
    let unknown = uuid::Uuid::now_v7();
    let (status, problem) = api
        .admin_put(
            "/v1/hero-slides/order",
            &json!({"ids": [c["id"], hidden, a["id"], unknown]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, problem) = api
        .admin_put(
            "/v1/hero-slides/order",
            &json!({"ids": [c["id"], hidden, a["id"], b["id"], a["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["ids"]);
    let (status, order) = api
        .admin_put(
            "/v1/hero-slides/order",
            &json!({"ids": [c["id"], hidden, a["id"], b["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let (_, list) = api.get("/v1/hero-slides").await;
    assert_eq!(titles(&list, "title"), ["Third", "First", "Second"]);
}

#[tokio::test]
async fn storefront_lists_page_with_a_cursor_in_position_order() {
    let api = Api::spawn().await;
    for i in 0..5 {
        let (status, _) = api
            .admin_post(
                "/v1/faqs",
                &json!({"question": format!("Q{i}?"), "answer": "A."}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, page1) = api.get("/v1/faqs?limit=2").await;
    assert_eq!(titles(&page1, "question"), ["Q0?", "Q1?"]);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = api.get(&format!("/v1/faqs?limit=2&cursor={cursor}")).await;
    assert_eq!(titles(&page2, "question"), ["Q2?", "Q3?"]);
    let (status, _) = api.get("/v1/faqs?sort=question").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn projects_are_created_patched_read_by_id_and_soft_deleted() {
    let api = Api::spawn().await;
    let (status, project) = api
        .admin_post(
            "/v1/projects",
            &json!({"title": "Harrow Shaker", "description": "A family kitchen.", "category": "KITCHEN",
                    "location": "Harrow, London", "completedAt": "2026-05-01",
                    "images": [{"url": "https://cdn.example.com/h1.webp", "alt": "Island"}, {"mediaId": "0190d7a0-0000-7000-8000-000000000002"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let id = project["id"].as_str().unwrap();
    assert_eq!(project["completedAt"], "2026-05-01");
    assert_eq!(project["images"].as_array().unwrap().len(), 2);

    let (status, patched) = api
        .admin_patch(
            &format!("/v1/projects/{id}"),
            &json!({"location": null, "title": "Harrow Shaker Kitchen"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["title"], "Harrow Shaker Kitchen");
    assert!(patched["location"].is_null());
    assert_eq!(patched["description"], "A family kitchen.");
    assert_eq!(patched["category"], "KITCHEN");

    let (status, public) = api.get(&format!("/v1/projects/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public["title"], "Harrow Shaker Kitchen");

    assert_eq!(
        api.admin_delete(&format!("/v1/projects/{id}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/v1/projects/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.admin_delete(&format!("/v1/projects/{id}")).await,
        StatusCode::NOT_FOUND
    );
    let (_, list) = api.get("/v1/projects").await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn every_kind_validates_its_fields_and_stores_nothing_on_bad_input() {
    let api = Api::spawn().await;
    let cases = [
        (
            "/v1/hero-slides",
            json!({"title": "", "media": {"alt": "no source"}, "buttonLink": "javascript:x"}),
            vec!["buttonLink", "media.url", "title"],
        ),
        (
            "/v1/projects",
            json!({"title": "P", "category": "KITCHEN", "images": [{"url": "not-a-url"}]}),
            vec!["images[0].url"],
        ),
        (
            "/v1/finance",
            json!({"title": "Finance", "aprBps": 20000, "termMonths": 0}),
            vec!["aprBps", "termMonths"],
        ),
        (
            "/v1/faqs",
            json!({"question": "Q?", "answer": ""}),
            vec!["answer"],
        ),
        (
            "/v1/accreditations",
            json!({"name": "Which?", "kind": "PARTNER", "logoUrl": "ftp://x"}),
            vec!["logoUrl"],
        ),
        (
            "/v1/testimonials",
            json!({"name": "Jo", "text": "Great", "rating": 6}),
            vec!["rating"],
        ),
    ];
    for (path, body, expected) in cases {
        let (status, problem) = api.admin_post(path, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {problem}"
        );
        assert_eq!(fields(&problem), expected, "{path}");
    }
    let (status, _) = api
        .admin_post("/v1/projects", &json!({"title": "P", "category": "GARAGE"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for table in [
        "hero_slides",
        "projects",
        "finance_options",
        "faqs",
        "accreditations",
        "testimonials",
    ] {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&api.pool)
                .await
                .unwrap();
        assert_eq!(count, 0, "{table}");
    }
}

#[tokio::test]
async fn finance_testimonials_and_accreditations_are_served_in_order() {
    let api = Api::spawn().await;
    for body in [
        json!({"title": "Interest free", "aprBps": 0, "termMonths": 12, "minSpendPence": 300000}),
        json!({"title": "Buy now pay later", "aprBps": 1990, "termMonths": 48}),
    ] {
        assert_eq!(
            api.admin_post("/v1/finance", &body).await.0,
            StatusCode::CREATED
        );
    }
    for body in [
        json!({"name": "Amy", "text": "Lovely", "rating": 5, "location": "Leeds"}),
        json!({"name": "Ben", "text": "Quick fit"}),
    ] {
        assert_eq!(
            api.admin_post("/v1/testimonials", &body).await.0,
            StatusCode::CREATED
        );
    }
    for body in [
        json!({"name": "FIRA", "kind": "ACCREDITATION", "logoUrl": "https://cdn.example.com/fira.png"}),
        json!({"name": "Blum", "kind": "PARTNER"}),
    ] {
        assert_eq!(
            api.admin_post("/v1/accreditations", &body).await.0,
            StatusCode::CREATED
        );
    }
    let (_, finance) = api.get("/v1/finance").await;
    assert_eq!(
        titles(&finance, "title"),
        ["Interest free", "Buy now pay later"]
    );
    assert_eq!(finance["data"][1]["aprBps"], 1990);
    let (_, testimonials) = api.get("/v1/testimonials").await;
    assert_eq!(titles(&testimonials, "name"), ["Amy", "Ben"]);
    assert_eq!(testimonials["data"][0]["rating"], 5);
    let (_, logos) = api.get("/v1/accreditations").await;
    assert_eq!(titles(&logos, "name"), ["FIRA", "Blum"]);
    assert_eq!(logos["data"][1]["kind"], "PARTNER");
}

#[tokio::test]
async fn the_media_wall_is_one_object_replaced_whole() {
    let api = Api::spawn().await;
    assert_eq!(api.get("/v1/media-wall").await.0, StatusCode::NOT_FOUND);
    let wall = json!({"title": "Our work", "description": "Recent installs",
                      "backgroundImageUrl": "https://cdn.example.com/bg.webp",
                      "images": [{"url": "https://cdn.example.com/1.webp", "alt": "One"}, {"url": "https://cdn.example.com/2.mp4", "kind": "VIDEO"}]});
    let (status, saved) = api.admin_put("/v1/media-wall", &wall).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (status, public) = api.get("/v1/media-wall").await;
    assert_eq!(status, StatusCode::OK, "{public}");
    assert_eq!(public["title"], "Our work");
    assert_eq!(public["images"][1]["kind"], "VIDEO");

    let (status, _) = api
        .admin_put("/v1/media-wall", &json!({"title": "Replaced"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, public) = api.get("/v1/media-wall").await;
    assert_eq!(public["title"], "Replaced");
    assert_eq!(public["images"], json!([]));
    assert_eq!(api.count("SELECT count(*) FROM media_wall").await, 1);

    let (status, _) = api.admin_put("/v1/media-wall", &json!({"title": ""})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.get("/v1/media-wall").await.1["title"], "Replaced");
}

#[tokio::test]
async fn customers_cannot_change_storefront_content() {
    let api = Api::spawn().await;
    let body = json!({"question": "Q?", "answer": "A."});
    let (status, _) = api
        .send(Some(&customer()), Method::POST, "/v1/faqs", Some(&body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .send(
            Some(&customer()),
            Method::PUT,
            "/v1/media-wall",
            Some(&json!({"title": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .send(
            None,
            Method::PUT,
            "/v1/faqs/order",
            Some(&json!({"ids": []})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.count("SELECT count(*) FROM faqs").await, 0);
}

#[tokio::test]
async fn a_media_patch_that_leaves_the_stored_media_without_a_source_is_409() {
    let api = Api::spawn().await;
    let a = slide(&api, "First", true).await;
    let path = format!("/v1/hero-slides/{}", a["id"].as_str().unwrap());

    // `{}` merges nothing into the media: a valid no-op patch.
    let (status, same) = api.admin_patch(&path, &json!({"media": {}})).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["media"], a["media"]);

    // The stored media has only a url: removing it is a conflict with that state.
    let (status, problem) = api
        .admin_patch(&path, &json!({"media": {"url": null}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "media-source-missing");

    // Clearing both sources is invalid whatever is stored.
    let (status, problem) = api
        .admin_patch(&path, &json!({"media": {"url": null, "mediaId": null}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    // Swapping the url for a media id in one patch is fine.
    let media_id = uuid::Uuid::now_v7();
    let (status, swapped) = api
        .admin_patch(&path, &json!({"media": {"url": null, "mediaId": media_id}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{swapped}");
    assert_eq!(swapped["media"]["mediaId"], media_id.to_string());
    assert!(swapped["media"].get("url").is_none_or(Value::is_null));
}
