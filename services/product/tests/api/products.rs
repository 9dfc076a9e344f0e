//! Product CRUD, its events, price history, detail by id and slug, related products and the
//! internal lookups.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Api, body, fields, problem_code};

#[tokio::test]
async fn an_admin_creates_patches_and_deletes_a_product_and_every_change_is_an_event() {
    let api = Api::spawn().await;
    let white = api.colour("White", "#FFFFFF").await;
    let grey = api.colour("Grey", "#808080").await;
    let shaker = api.style("SHAKER", "Shaker").await;
    let size = api
        .term("sizes", json!({"title": "600mm Base", "widthMm": 600}))
        .await;

    let created = api
        .product(json!({
            "title": "Oak Shaker Kitchen",
            "description": "Solid oak doors.",
            "styleId": shaker,
            "colourIds": [white, grey],
            "sizeIds": [size],
            "images": [{"url": "/media/demo/oak-1.jpg", "alt": "Front", "variants": {"thumb": "/media/demo/oak-1-thumb.webp"}}],
            "price": {"amount": 129900, "currency": "GBP"},
            "featured": true
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["slug"], "oak-shaker-kitchen");
    assert!(created["sku"].as_str().unwrap().starts_with("LW-"));
    assert_eq!(created["colours"].as_array().unwrap().len(), 2);
    assert_eq!(created["sizes"][0]["widthMm"], 600);
    assert_eq!(created["style"]["slug"], "shaker");
    assert_eq!(
        created["images"][0]["variants"]["thumb"],
        "/media/demo/oak-1-thumb.webp"
    );

    let (status, by_slug) = api.get("/v1/products/slug/oak-shaker-kitchen").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_slug["id"], id);

    // Merge patch: the price changes twice (to "on consultation" and back), the title once.
    let path = format!("/v1/products/{id}");
    let (status, patched) = api.admin_patch(&path, &json!({"price": null})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(patched["price"].is_null());
    assert_eq!(
        patched["colours"].as_array().unwrap().len(),
        2,
        "untouched members stay"
    );
    let (_, patched) = api
        .admin_patch(
            &path,
            &json!({"price": {"amount": 99900, "currency": "GBP"}, "title": "Oak Shaker"}),
        )
        .await;
    assert_eq!(patched["price"]["amount"], 99900);
    assert_eq!(patched["slug"], "oak-shaker-kitchen", "the slug is kept");

    let (status, history) = body(
        api.as_admin(Method::GET, &format!("/v1/products/{id}/price-history"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["total"], 3);
    assert_eq!(history["data"][0]["newPrice"]["amount"], 99900);
    assert!(history["data"][0]["oldPrice"].is_null());
    assert_eq!(history["data"][1]["oldPrice"]["amount"], 129900);
    assert_eq!(history["data"][0]["changedBy"], api.admin.id.to_string());
    let customer_history = api
        .app
        .request_as(
            Method::GET,
            &format!("/v1/products/{id}/price-history"),
            &api.customer,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(customer_history.status(), StatusCode::FORBIDDEN);

    assert_eq!(api.admin_delete(&path).await, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&path).await.0, StatusCode::NOT_FOUND);

    let created_events = api.events("product.created").await;
    assert_eq!(created_events.len(), 1);
    assert_eq!(created_events[0]["payload"]["productId"], id);
    assert_eq!(created_events[0]["payload"]["price"], 129900);
    assert_eq!(created_events[0]["payload"]["isPublished"], true);
    let updated = api.events("product.updated").await;
    assert_eq!(updated.len(), 2);
    assert_eq!(updated[0]["payload"]["changedFields"], json!(["price"]));
    let prices = api.events("price.changed").await;
    assert_eq!(prices.len(), 2);
    assert_eq!(prices[0]["payload"]["oldPrice"], 129900);
    assert_eq!(prices[0]["payload"]["newPriceOnConsultation"], true);
    assert_eq!(prices[1]["payload"]["newPrice"], 99900);
    assert_eq!(api.events("product.deleted").await.len(), 1);
}

#[tokio::test]
async fn product_writes_check_roles_slugs_and_input() {
    let api = Api::spawn().await;
    let product = json!({"title": "Walnut Wardrobe", "category": "BEDROOM"});

    assert_eq!(
        api.app.post_json("/v1/products", &product).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let customer = api
        .app
        .request_as(Method::POST, "/v1/products", &api.customer)
        .json(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), StatusCode::FORBIDDEN);

    api.product(product.clone()).await;
    let (status, problem) = api.admin_post("/v1/products", &product).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem_code(&problem), "slug-taken");

    for (input, field) in [
        (json!({"title": "A", "category": "GARDEN"}), "category"),
        (json!({"title": "", "category": "KITCHEN"}), "title"),
        (
            json!({"title": "B", "category": "KITCHEN", "colour": "red"}),
            "colour",
        ),
        (
            json!({"title": "C", "category": "KITCHEN", "price": {"amount": -5, "currency": "GBP"}}),
            "price.amount",
        ),
        (
            json!({"title": "D", "category": "KITCHEN", "colourIds": [uuid::Uuid::now_v7()]}),
            "colourIds",
        ),
        (
            json!({"title": "E", "category": "KITCHEN", "images": [{"url": "javascript:alert(1)"}]}),
            "images[0].url",
        ),
        (
            json!({"title": "F", "category": "KITCHEN", "slug": "Not A Slug"}),
            "slug",
        ),
    ] {
        let (status, problem) = api.admin_post("/v1/products", &input).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{input}: {problem}"
        );
        assert_eq!(fields(&problem), [field], "{input}");
    }
    assert_eq!(api.scalar("SELECT count(*) FROM products").await, 1);
    assert_eq!(
        api.scalar("SELECT count(*) FROM outbox WHERE topic = 'product.created'")
            .await,
        1
    );
}

#[tokio::test]
async fn drafts_are_for_admins_only_and_related_products_share_range_and_style() {
    let api = Api::spawn().await;
    let range = api.range("Heritage").await;
    let shaker = api.style("SHAKER", "Shaker").await;
    let me = api
        .product(json!({"title": "Heritage Sage", "rangeId": range, "styleId": shaker}))
        .await;
    let sibling = api
        .product(json!({"title": "Heritage Navy", "rangeId": range, "styleId": shaker}))
        .await;
    let cousin = api
        .product(json!({"title": "Modern Grey", "styleId": shaker}))
        .await;
    api.product(json!({"title": "Wardrobe", "category": "BEDROOM"}))
        .await;
    let draft = api
        .product(json!({"title": "Secret Draft", "status": "DRAFT", "rangeId": range}))
        .await;

    let draft_path = format!("/v1/products/{}", draft["id"].as_str().unwrap());
    assert_eq!(api.get(&draft_path).await.0, StatusCode::NOT_FOUND);
    let (status, seen) = body(api.as_admin(Method::GET, &draft_path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["status"], "DRAFT");
    let (status, table) = body(
        api.as_admin(Method::GET, "/v1/products/admin?filter[status]=DRAFT")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{table}");
    assert_eq!(table["total"], 1);

    let (status, related) = api
        .get(&format!(
            "/v1/products/{}/related",
            me["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let related: Vec<&str> = related
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        related,
        [
            sibling["id"].as_str().unwrap(),
            cousin["id"].as_str().unwrap()
        ]
    );
}

#[tokio::test]
async fn internal_lookups_serve_services_only() {
    let api = Api::spawn().await;
    let a = api
        .product(json!({"title": "Priced", "price": {"amount": 5000, "currency": "GBP"}}))
        .await;
    let b = api.product(json!({"title": "On consultation"})).await;
    let unknown = uuid::Uuid::now_v7();

    let (status, found) = api
        .service_post(
            "/internal/products/lookup",
            &json!({"ids": [b["id"], unknown, a["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["data"][0]["id"], b["id"]);
    assert!(found["data"][0]["price"].is_null());
    assert_eq!(found["data"][1]["price"]["amount"], 5000);
    assert_eq!(found["missing"], json!([unknown]));

    let (status, one) = body(
        api.as_service(
            Method::GET,
            &format!("/internal/products/{}", a["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["status"], "PUBLISHED");
    assert_eq!(one["deleted"], false);

    let as_user = api
        .app
        .request_as(Method::POST, "/internal/products/lookup", &api.admin)
        .json(&json!({"ids": [a["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn views_raise_popularity_off_the_request_path_without_touching_updated_at() {
    let api = Api::spawn_with(&[("POPULARITY_FLUSH_MS", "50")]).await;
    let product = api.product(json!({"title": "Viewed Kitchen"})).await;
    let id = product["id"].as_str().unwrap();
    for path in [
        format!("/v1/products/{id}"),
        format!("/v1/products/{id}"),
        "/v1/products/slug/viewed-kitchen".to_owned(),
    ] {
        assert_eq!(api.get(&path).await.0, StatusCode::OK);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (popularity, updated_at): (i64, chrono::DateTime<chrono::Utc>) =
            sqlx::query_as("SELECT popularity, updated_at FROM products WHERE id = $1::uuid")
                .bind(id)
                .fetch_one(&api.pool)
                .await
                .unwrap();
        if popularity == 3 {
            let before: chrono::DateTime<chrono::Utc> =
                product["updatedAt"].as_str().unwrap().parse().unwrap();
            assert_eq!(updated_at, before, "a view is not an edit");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "popularity is {popularity}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
