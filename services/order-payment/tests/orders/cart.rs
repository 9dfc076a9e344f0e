//! Carts: guest tokens, merging on login, current prices and their change flags, bad input.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Shop, answer, code, customer, fields};

#[tokio::test]
async fn a_guest_gets_a_cart_token_and_sees_the_catalogue_price() {
    let shop = Shop::spawn().await;
    let product = shop.product(12_500, Some(10)).await;

    let added = shop
        .post(
            None,
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 2}),
        )
        .await;

    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let token = added.body["cartToken"]
        .as_str()
        .expect("a new guest cart has a token");
    assert_eq!(added.headers["x-cart-token"], token);
    assert_eq!(added.body["items"][0]["unitPrice"], 12_500);
    assert_eq!(added.body["items"][0]["lineTotal"], 25_000);
    assert_eq!(added.body["subtotal"], 25_000);
    let seen = answer(
        shop.request(None, Method::GET, "/v1/cart")
            .header("x-cart-token", token),
    )
    .await;
    assert_eq!(seen.body["itemCount"], 2);
    assert!(
        seen.body.get("cartToken").is_none(),
        "the token is only sent once"
    );
    // Without the token, a guest has no cart.
    let anonymous = shop.get(None, "/v1/cart").await;
    assert_eq!(anonymous.body["items"], json!([]));
}

#[tokio::test]
async fn adding_the_same_product_again_raises_the_quantity_up_to_the_limit() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, None).await;
    shop.post(
        Some(&user),
        "/v1/cart/items",
        &json!({"productId": product, "quantity": 60}),
    )
    .await;

    let again = shop
        .post(
            Some(&user),
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 30}),
        )
        .await;
    assert_eq!(again.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(again.body["items"][0]["quantity"], 90);

    let too_many = shop
        .post(
            Some(&user),
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 11}),
        )
        .await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&too_many.body), ["quantity"]);
    assert_eq!(
        shop.get(Some(&user), "/v1/cart").await.body["items"][0]["quantity"],
        90
    );
}

#[tokio::test]
async fn a_guest_cart_merges_into_the_users_cart_on_login() {
    let shop = Shop::spawn().await;
    let user = customer();
    let shared = shop.product(2_000, None).await;
    let guest_only = shop.product(3_000, None).await;
    shop.post(
        Some(&user),
        "/v1/cart/items",
        &json!({"productId": shared, "quantity": 1}),
    )
    .await;
    let guest = shop
        .post(
            None,
            "/v1/cart/items",
            &json!({"productId": shared, "quantity": 2}),
        )
        .await;
    let token = guest.body["cartToken"].as_str().unwrap().to_owned();
    answer(
        shop.request(None, Method::POST, "/v1/cart/items")
            .header("x-cart-token", &token)
            .json(&json!({"productId": guest_only, "quantity": 1})),
    )
    .await;

    // Signed in, the shopper's app still sends the guest token: the carts merge.
    let merged = answer(
        shop.request(Some(&user), Method::GET, "/v1/cart")
            .header("x-cart-token", &token),
    )
    .await;

    assert_eq!(merged.status, StatusCode::OK);
    let items = merged.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let quantity_of = |id: uuid::Uuid| {
        items
            .iter()
            .find(|i| i["productId"] == id.to_string())
            .map(|i| i["quantity"].clone())
    };
    assert_eq!(quantity_of(shared), Some(json!(3)));
    assert_eq!(quantity_of(guest_only), Some(json!(1)));
    // The guest cart is gone: its token finds nothing any more.
    let stale = answer(
        shop.request(None, Method::GET, "/v1/cart")
            .header("x-cart-token", &token),
    )
    .await;
    assert_eq!(stale.body["items"], json!([]));
    assert_eq!(shop.count("carts").await, 1);
}

#[tokio::test]
async fn the_explicit_merge_endpoint_merges_too() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(2_000, None).await;
    let guest = shop
        .post(
            None,
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 2}),
        )
        .await;

    let merged = shop
        .post(
            Some(&user),
            "/v1/cart/merge",
            &json!({"cartToken": guest.body["cartToken"]}),
        )
        .await;

    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(merged.body["items"][0]["quantity"], 2);
    let anonymous = shop
        .post(None, "/v1/cart/merge", &json!({"cartToken": "whatever"}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_changed_price_is_flagged_until_the_line_is_changed() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(10_000, None).await;
    let added = shop
        .post(
            Some(&user),
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 1}),
        )
        .await;
    let line = added.body["items"][0]["id"].as_str().unwrap().to_owned();

    shop.reprice(product, 11_500).await;
    let cart = shop.get(Some(&user), "/v1/cart").await;

    let item = &cart.body["items"][0];
    assert_eq!(
        item["unitPrice"], 11_500,
        "the cart shows the current price"
    );
    assert_eq!(item["priceChanged"], true);
    assert_eq!(item["previousUnitPrice"], 10_000);
    assert_eq!(cart.body["hasChanges"], true);

    let changed = shop
        .patch(
            Some(&user),
            &format!("/v1/cart/items/{line}"),
            &json!({"quantity": 2}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["items"][0]["priceChanged"], false);
    assert_eq!(changed.body["subtotal"], 23_000);
}

#[tokio::test]
async fn a_product_withdrawn_from_sale_is_flagged_and_left_out_of_the_subtotal() {
    let shop = Shop::spawn().await;
    let user = customer();
    let kept = shop.product(1_000, None).await;
    let withdrawn = shop.product(5_000, None).await;
    for product in [kept, withdrawn] {
        shop.post(
            Some(&user),
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 1}),
        )
        .await;
    }
    sqlx::query("UPDATE products SET status = 'ARCHIVED' WHERE id = $1")
        .bind(withdrawn)
        .execute(&shop.catalogue)
        .await
        .unwrap();

    let cart = shop.get(Some(&user), "/v1/cart").await;

    let items = cart.body["items"].as_array().unwrap();
    let gone = items
        .iter()
        .find(|i| i["productId"] == withdrawn.to_string())
        .unwrap();
    assert_eq!(gone["available"], false);
    assert!(gone["unitPrice"].is_null());
    assert_eq!(cart.body["subtotal"], 1_000);
    assert_eq!(cart.body["hasChanges"], true);
}

#[tokio::test]
async fn bad_input_is_a_422_and_changes_nothing() {
    let shop = Shop::spawn().await;
    let user = customer();
    let product = shop.product(1_000, Some(5)).await;
    let priced_on_consultation = shop.product(1_000, None).await;
    sqlx::query("UPDATE products SET price_pence = NULL WHERE id = $1")
        .bind(priced_on_consultation)
        .execute(&shop.catalogue)
        .await
        .unwrap();

    for (body, field) in [
        (json!({"productId": product, "quantity": 0}), "quantity"),
        (json!({"productId": product, "quantity": 101}), "quantity"),
        (
            json!({"productId": uuid::Uuid::now_v7(), "quantity": 1}),
            "productId",
        ),
        (
            json!({"productId": priced_on_consultation, "quantity": 1}),
            "productId",
        ),
        (
            json!({"productId": "not-a-uuid", "quantity": 1}),
            "productId",
        ),
    ] {
        let answer = shop.post(Some(&user), "/v1/cart/items", &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.text
        );
        assert_eq!(fields(&answer.body), [field], "{body}");
    }
    let short = shop
        .post(
            Some(&user),
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 6}),
        )
        .await;
    assert_eq!(short.status, StatusCode::CONFLICT);
    assert_eq!(code(&short.body), "insufficient-stock");
    assert_eq!(shop.count("cart_items").await, 0);
}

#[tokio::test]
async fn another_shoppers_line_is_not_found() {
    let shop = Shop::spawn().await;
    let (owner, other) = (customer(), customer());
    let product = shop.product(1_000, None).await;
    let added = shop
        .post(
            Some(&owner),
            "/v1/cart/items",
            &json!({"productId": product, "quantity": 1}),
        )
        .await;
    let line = added.body["items"][0]["id"].as_str().unwrap().to_owned();
    shop.post(
        Some(&other),
        "/v1/cart/items",
        &json!({"productId": product, "quantity": 1}),
    )
    .await;

    let patched = shop
        .patch(
            Some(&other),
            &format!("/v1/cart/items/{line}"),
            &json!({"quantity": 5}),
        )
        .await;
    let deleted = answer(shop.request(
        Some(&other),
        Method::DELETE,
        &format!("/v1/cart/items/{line}"),
    ))
    .await;

    assert_eq!(patched.status, StatusCode::NOT_FOUND);
    assert_eq!(deleted.status, StatusCode::NOT_FOUND);
    assert_eq!(
        shop.get(Some(&owner), "/v1/cart").await.body["items"][0]["quantity"],
        1
    );
    let removed = answer(shop.request(
        Some(&owner),
        Method::DELETE,
        &format!("/v1/cart/items/{line}"),
    ))
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let cleared = answer(shop.request(Some(&other), Method::DELETE, "/v1/cart")).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    assert_eq!(shop.count("cart_items").await, 0);
}
