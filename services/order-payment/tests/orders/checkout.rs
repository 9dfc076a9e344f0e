//! The checkout summary over HTTP (catalogue prices, shipping, coupons, VAT), coupon
//! validation, and the admin CRUD of coupons, tax rules and shipping rates.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Shop, admin, code, customer, fields};

async fn coupon(shop: &Shop, body: Value) {
    let created = shop.post(Some(&admin()), "/v1/coupons", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

#[tokio::test]
async fn the_summary_adds_up_for_every_case() {
    let shop = Shop::spawn().await;
    let cheap = shop.product(10_000, None).await; // £100
    let dear = shop.product(60_000, None).await; // £600
    coupon(
        &shop,
        json!({"code": "TENOFF", "kind": "PERCENTAGE", "value": 1000}),
    )
    .await;
    coupon(
        &shop,
        json!({"code": "CAPPED", "kind": "PERCENTAGE", "value": 5000, "maxDiscount": 2500}),
    )
    .await;
    coupon(
        &shop,
        json!({"code": "BIGSPEND", "kind": "FIXED", "value": 5000, "minOrder": 50000}),
    )
    .await;

    // (case, items, method, coupon, expected subtotal, discount, shipping, tax, total)
    type Case<'a> = (&'a str, Value, &'a str, Option<&'a str>, [i64; 5]);
    let cases: Vec<Case> = vec![
        (
            "under £500 pays standard delivery; VAT is a sixth of the total",
            json!([{"productId": cheap, "quantity": 1}]),
            "STANDARD",
            None,
            [10_000, 0, 995, 1_833, 10_995],
        ),
        (
            "£500 or more ships free",
            json!([{"productId": cheap, "quantity": 5}]),
            "STANDARD",
            None,
            [50_000, 0, 0, 8_333, 50_000],
        ),
        (
            "express is charged whatever the total",
            json!([{"productId": dear, "quantity": 1}]),
            "EXPRESS",
            None,
            [60_000, 0, 2_495, 10_416, 62_495],
        ),
        (
            "a percentage coupon discounts the goods",
            json!([{"productId": cheap, "quantity": 2}]),
            "STANDARD",
            Some("tenoff"),
            [20_000, 2_000, 995, 3_166, 18_995],
        ),
        (
            "a percentage coupon stops at its cap",
            json!([{"productId": dear, "quantity": 1}]),
            "STANDARD",
            Some("CAPPED"),
            [60_000, 2_500, 0, 9_583, 57_500],
        ),
        (
            "a discount that drops the goods under £500 brings delivery back",
            json!([{"productId": cheap, "quantity": 5}]),
            "STANDARD",
            Some("BIGSPEND"),
            [50_000, 5_000, 995, 7_666, 45_995],
        ),
        (
            "repeated lines are added up",
            json!([{"productId": cheap, "quantity": 1}, {"productId": cheap, "quantity": 1}]),
            "EXPRESS",
            None,
            [20_000, 0, 2_495, 3_749, 22_495],
        ),
    ];
    for (case, items, method, code, [subtotal, discount, shipping, tax, total]) in cases {
        let mut body = json!({"items": items, "shippingMethod": method});
        if let Some(code) = code {
            body["couponCode"] = json!(code);
        }
        let summary = shop.post(None, "/v1/checkout/summary", &body).await;
        assert_eq!(summary.status, StatusCode::OK, "{case}: {}", summary.text);
        let got = ["subtotal", "discount", "shipping", "tax", "total"]
            .map(|k| summary.body[k].as_i64().unwrap_or(-1));
        assert_eq!(got, [subtotal, discount, shipping, tax, total], "{case}");
        assert_eq!(summary.body["vatRateBp"], 2000, "{case}");
        assert_eq!(summary.body["pricesIncludeVat"], true, "{case}");
    }
}

#[tokio::test]
async fn vat_is_added_on_top_when_prices_exclude_it() {
    let shop = Shop::spawn_with(&[("PRICES_INCLUDE_VAT", "false")]).await;
    let product = shop.product(10_000, None).await;

    let summary = shop
        .post(
            None,
            "/v1/checkout/summary",
            &json!({"items": [{"productId": product, "quantity": 1}], "shippingMethod": "EXPRESS"}),
        )
        .await;

    assert_eq!(summary.body["tax"], 2_499);
    assert_eq!(summary.body["total"], 14_994);
    assert_eq!(summary.body["pricesIncludeVat"], false);
}

#[tokio::test]
async fn the_summary_prices_the_guest_cart_and_sets_unavailable_lines_aside() {
    let shop = Shop::spawn().await;
    let kept = shop.product(10_000, None).await;
    let gone = shop.product(20_000, None).await;
    let added = shop
        .post(
            None,
            "/v1/cart/items",
            &json!({"productId": kept, "quantity": 1}),
        )
        .await;
    let token = added.body["cartToken"].as_str().unwrap().to_owned();
    crate::helpers::answer(
        shop.request(None, reqwest::Method::POST, "/v1/cart/items")
            .header("x-cart-token", &token)
            .json(&json!({"productId": gone, "quantity": 1})),
    )
    .await;
    sqlx::query("UPDATE products SET deleted_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&shop.catalogue)
        .await
        .unwrap();

    let summary = crate::helpers::answer(
        shop.request(None, reqwest::Method::POST, "/v1/checkout/summary")
            .header("x-cart-token", &token)
            .json(&json!({})),
    )
    .await;

    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert_eq!(summary.body["subtotal"], 10_000);
    assert_eq!(
        summary.body["unavailableItems"][0]["productId"],
        gone.to_string()
    );
    assert_eq!(summary.body["amountToFreeShipping"], 40_000);
}

#[tokio::test]
async fn a_coupon_that_does_not_apply_or_an_unknown_method_is_a_422() {
    let shop = Shop::spawn().await;
    let product = shop.product(10_000, None).await;
    coupon(
        &shop,
        json!({"code": "BIGSPEND", "kind": "FIXED", "value": 5000, "minOrder": 50000}),
    )
    .await;
    coupon(
        &shop,
        json!({"code": "OFF", "kind": "FIXED", "value": 500, "active": false}),
    )
    .await;
    coupon(
        &shop,
        json!({"code": "PAST", "kind": "FIXED", "value": 500,
        "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2021-01-01T00:00:00Z"}),
    )
    .await;
    let items = json!([{"productId": product, "quantity": 1}]);

    for (body, field) in [
        (
            json!({"items": items, "couponCode": "BIGSPEND"}),
            "couponCode",
        ),
        (json!({"items": items, "couponCode": "OFF"}), "couponCode"),
        (json!({"items": items, "couponCode": "PAST"}), "couponCode"),
        (json!({"items": items, "couponCode": "NOPE"}), "couponCode"),
        (
            json!({"items": items, "shippingMethod": "PIGEON"}),
            "shippingMethod",
        ),
        (json!({"items": items, "country": "FR"}), "shippingMethod"),
        (
            json!({"items": [{"productId": product, "quantity": 0}]}),
            "items[0].quantity",
        ),
    ] {
        let answer = shop.post(None, "/v1/checkout/summary", &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.text
        );
        assert_eq!(fields(&answer.body), [field], "{body}");
    }
}

#[tokio::test]
async fn validating_a_coupon_says_whether_and_why() {
    let shop = Shop::spawn().await;
    coupon(&shop, json!({"code": "TENOFF", "kind": "PERCENTAGE", "value": 1000, "minOrder": 10000, "maxDiscount": 1500})).await;

    let valid = shop
        .post(
            None,
            "/v1/coupons/validate",
            &json!({"code": "tenoff", "subtotal": 12000}),
        )
        .await;
    let capped = shop
        .post(
            None,
            "/v1/coupons/validate",
            &json!({"code": "TENOFF", "subtotal": 90000}),
        )
        .await;
    let small = shop
        .post(
            None,
            "/v1/coupons/validate",
            &json!({"code": "TENOFF", "subtotal": 9999}),
        )
        .await;
    let unknown = shop
        .post(None, "/v1/coupons/validate", &json!({"code": "NOPE"}))
        .await;

    assert_eq!(
        (valid.body["valid"].clone(), valid.body["discount"].clone()),
        (json!(true), json!(1200))
    );
    assert_eq!(capped.body["discount"], 1500);
    assert_eq!(
        (small.body["valid"].clone(), small.body["reason"].clone()),
        (json!(false), json!("BELOW_MINIMUM_ORDER"))
    );
    assert_eq!(unknown.body["reason"], "NOT_FOUND");
}

#[tokio::test]
async fn coupons_are_managed_by_admins_only() {
    let shop = Shop::spawn().await;
    let body = json!({"code": "spring-25", "kind": "PERCENTAGE", "value": 2500, "usageLimit": 100});

    let by_customer = shop.post(Some(&customer()), "/v1/coupons", &body).await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);
    let created = shop.post(Some(&admin()), "/v1/coupons", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["code"], "SPRING-25");
    let id = created.body["id"].as_str().unwrap().to_owned();

    let duplicate = shop.post(Some(&admin()), "/v1/coupons", &body).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(code(&duplicate.body), "coupon-exists");
    let too_much = shop
        .post(
            Some(&admin()),
            "/v1/coupons",
            &json!({"code": "HUGE", "kind": "PERCENTAGE", "value": 10001}),
        )
        .await;
    assert_eq!(fields(&too_much.body), ["value"]);

    let patched = shop
        .patch(
            Some(&admin()),
            &format!("/v1/coupons/{id}"),
            &json!({"usageLimit": null, "active": false}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert!(patched.body["usageLimit"].is_null());
    assert_eq!(patched.body["active"], false);
    let bad_window = shop
        .patch(
            Some(&admin()),
            &format!("/v1/coupons/{id}"),
            &json!({"startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(fields(&bad_window.body), ["endsAt"]);
    assert_eq!(
        shop.get(Some(&admin()), &format!("/v1/coupons/{id}"))
            .await
            .body["startsAt"],
        Value::Null
    );

    let list = shop.get(Some(&admin()), "/v1/coupons?active=false").await;
    assert_eq!(list.body["total"], 1);
    let deleted = crate::helpers::answer(shop.request(
        Some(&admin()),
        reqwest::Method::DELETE,
        &format!("/v1/coupons/{id}"),
    ))
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn tax_rules_and_shipping_rates_change_the_summary() {
    let shop = Shop::spawn().await;
    let product = shop.product(12_000, None).await;
    let boss = admin();

    let rules = shop.get(Some(&boss), "/v1/tax-rules").await;
    let gb = rules
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["country"] == "GB")
        .unwrap()
        .clone();
    assert_eq!(gb["rateBp"], 2000);
    let reduced = shop
        .patch(
            Some(&boss),
            &format!("/v1/tax-rules/{}", gb["id"].as_str().unwrap()),
            &json!({"rateBp": 500}),
        )
        .await;
    assert_eq!(reduced.status, StatusCode::OK, "{}", reduced.text);
    let rate = shop
        .post(
            Some(&boss),
            "/v1/shipping/rates",
            &json!({"code": "WHITE_GLOVE", "name": "Two-person delivery", "price": 4900, "freeOver": 100000, "countries": ["GB"]}),
        )
        .await;
    assert_eq!(rate.status, StatusCode::CREATED, "{}", rate.text);
    let methods = shop.get(None, "/v1/shipping/methods").await;
    assert_eq!(methods.body.as_array().map(Vec::len), Some(3));

    let summary = shop
        .post(
            None,
            "/v1/checkout/summary",
            &json!({"items": [{"productId": product, "quantity": 1}], "shippingMethod": "WHITE_GLOVE"}),
        )
        .await;

    assert_eq!(summary.body["shipping"], 4_900);
    assert_eq!(summary.body["vatRateBp"], 500);
    // (12000 + 4900) × 5 / 105 = 804.76 → 805
    assert_eq!(summary.body["tax"], 805);
    let duplicate = shop
        .post(
            Some(&boss),
            "/v1/tax-rules",
            &json!({"country": "GB", "name": "again", "rateBp": 2000}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let by_customer = shop.get(Some(&customer()), "/v1/shipping/rates").await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);

    // A rate's countries are upper-case alpha-2 codes, item by item, as the document says.
    for countries in [json!([""]), json!(["GB", "gb"]), json!(["GBR"])] {
        let refused = shop
            .post(
                Some(&boss),
                "/v1/shipping/rates",
                &json!({"code": "PIGEON", "name": "Pigeon", "price": 100, "countries": countries}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        let refused = shop
            .patch(
                Some(&boss),
                &format!("/v1/shipping/rates/{}", rate.body["id"].as_str().unwrap()),
                &json!({ "countries": countries }),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
    }
    // A patch keeps a rate within the bounds a new one has.
    for (patch, field) in [
        (json!({"freeOver": -1}), "freeOver"),
        (json!({"freeOver": 100_000_001}), "freeOver"),
        (json!({"description": "x".repeat(501)}), "description"),
    ] {
        let refused = shop
            .patch(
                Some(&boss),
                &format!("/v1/shipping/rates/{}", rate.body["id"].as_str().unwrap()),
                &patch,
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(
            refused.body["errors"][0]["field"], field,
            "{}",
            refused.text
        );
    }
    let doc = serde_json::to_value(service_kit::service::openapi::<
        order_payment_service::OrderPaymentService,
    >())
    .unwrap_or_default();
    let schemas = &doc["components"]["schemas"];
    for schema in ["NewShippingRate", "ShippingRatePatch"] {
        let items = &schemas[schema]["properties"]["countries"]["items"];
        assert_eq!(items["pattern"], "^[A-Z]{2}$", "{schema}: {items}");
    }
}
