//! The admin-managed taxonomy: public reads, admin writes, merge patches, constraints.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Api, body, fields, problem_code};

#[tokio::test]
async fn writes_need_an_admin_and_reads_are_public() {
    let api = Api::spawn().await;
    let colour = json!({"name": "Sage Green", "hexCode": "#8a9a5b"});

    let anonymous = api.app.post_json("/v1/colours", &colour).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let customer = api
        .app
        .request_as(Method::POST, "/v1/colours", &api.customer)
        .json(&colour)
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), StatusCode::FORBIDDEN);

    let (status, created) = api.admin_post("/v1/colours", &colour).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["slug"], "sage-green");
    assert_eq!(created["hexCode"], "#8A9A5B");
    assert_eq!(created["appliesTo"], "BOTH");
    let id = created["id"].as_str().unwrap();

    let (status, listed) = api.get("/v1/colours").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["id"], id);
    assert_eq!(listed["hasNextPage"], false);
    let (status, one) = api.get(&format!("/v1/colours/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "Sage Green");

    let delete = api
        .app
        .request_as(Method::DELETE, &format!("/v1/colours/{id}"), &api.customer)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        api.admin_delete(&format!("/v1/colours/{id}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/v1/colours/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    // The slug is free again once the colour is deleted.
    assert_eq!(
        api.admin_post("/v1/colours", &colour).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn merge_patches_change_only_what_they_name_and_null_clears() {
    let api = Api::spawn().await;
    let (_, size) = api
        .admin_post(
            "/v1/sizes",
            &json!({"title": "600mm Base Unit", "widthMm": 600, "heightMm": 720, "depthMm": 560,
                    "description": "Standard base"}),
        )
        .await;
    let path = format!("/v1/sizes/{}", size["id"].as_str().unwrap());

    let (status, patched) = api
        .admin_patch(&path, &json!({"widthMm": 500, "description": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["widthMm"], 500);
    assert_eq!(patched["heightMm"], 720);
    assert!(patched["description"].is_null());
    assert_eq!(patched["slug"], "600mm-base-unit");

    let (status, problem) = api.admin_patch(&path, &json!({"title": null})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["title"]);
    let (status, problem) = api.admin_patch(&path, &json!({"colour": "red"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["colour"]);
    let (status, problem) = api.admin_patch(&path, &json!({"widthMm": 0})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["widthMm"]);
    let wrong_type = api
        .as_admin(Method::PATCH, &path)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn schema_rules_become_409_and_422() {
    let api = Api::spawn().await;
    api.style("SHAKER", "Shaker").await;

    let (status, problem) = api
        .admin_post(
            "/v1/styles",
            &json!({"code": "SHAKER_TWO", "name": "Shaker"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "slug-taken");
    let (status, problem) = api
        .admin_post(
            "/v1/styles",
            &json!({"code": "SHAKER", "name": "Shaker Classic"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem_code(&problem), "code-taken");
    let (status, problem) = api
        .admin_post("/v1/styles", &json!({"code": "shaker", "name": "Lower"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["code"]);
    let (status, problem) = api
        .admin_post(
            "/v1/colours",
            &json!({"name": "Nope", "hexCode": "#12345G"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["hexCode"]);
}

#[tokio::test]
async fn taxonomy_in_use_cannot_be_deleted_and_lists_page_by_cursor() {
    let api = Api::spawn().await;
    let shaker = api.style("SHAKER", "Shaker").await;
    for (i, code) in ["MODERN", "HANDLELESS", "CONTEMPORARY"].iter().enumerate() {
        api.term(
            "styles",
            json!({"code": code, "name": code.to_lowercase(), "sortOrder": i + 1}),
        )
        .await;
    }
    api.product(json!({"title": "Oak Shaker", "styleId": shaker}))
        .await;

    let status = api.admin_delete(&format!("/v1/styles/{shaker}")).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let mut codes = Vec::new();
    let mut path = "/v1/styles?limit=3".to_owned();
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        codes.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["code"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/styles?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(codes, ["SHAKER", "MODERN", "HANDLELESS", "CONTEMPORARY"]);
    let (status, problem) = body(api.app.get("/v1/styles?limit=500").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["limit"]);
}
