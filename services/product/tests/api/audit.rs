//! The audit trail of admin writes (issue 14): one row per committed write with the actor and
//! request id, a redacted diff, none for reads or refused writes; SUPER_ADMIN reads it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::TestUser;
use test_support::audit::{self, AuditRow};

use crate::helpers::{Api, body};

async fn rows(api: &Api) -> Vec<AuditRow> {
    audit::rows(&api.pool).await
}

/// An admin request carrying `request_id` as the gateway forwards it.
async fn send(
    api: &Api,
    method: Method,
    path: &str,
    json: Option<&Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut request = api
        .as_admin(method.clone(), path)
        .header("x-request-id", request_id);
    if let Some(json) = json {
        request = if method == Method::PATCH {
            request
                .header("content-type", "application/merge-patch+json")
                .body(json.to_string())
        } else {
            request.json(json)
        };
    }
    body(request.send().await.unwrap()).await
}

#[tokio::test]
async fn each_admin_write_records_one_row_with_its_actor_and_request_id() {
    let api = Api::spawn().await;

    let (status, colour) = send(
        &api,
        Method::POST,
        "/v1/colours",
        Some(&json!({"name": "Sage", "hexCode": "#9CAF88"})),
        "audit-colour-1",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{colour}");
    let colour_id = colour["id"].as_str().unwrap();

    let (status, product) = send(
        &api,
        Method::POST,
        "/v1/products",
        Some(
            &json!({"title": "Oak Shaker", "category": "KITCHEN", "status": "PUBLISHED",
                     "price": {"amount": 129900, "currency": "GBP"}}),
        ),
        "audit-product-1",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let product_id = product["id"].as_str().unwrap();

    let (status, _) = send(
        &api,
        Method::PATCH,
        &format!("/v1/products/{product_id}"),
        Some(&json!({"price": {"amount": 119900, "currency": "GBP"}})),
        "audit-product-2",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, item) = send(
        &api,
        Method::POST,
        &format!("/v1/products/{product_id}/inventory/adjustments"),
        Some(&json!({"delta": 5, "reason": "RESTOCK",
                     "note": "delivery for Mrs Jones, 07700 900123"})),
        "audit-stock-1",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{item}");

    let rows = rows(&api).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.actor_id, api.admin.id);
        assert_eq!(row.actor_role, "ADMIN");
    }
    let summary: Vec<(&str, &str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.entity.as_str(),
                r.entity_id.as_str(),
                r.action.as_str(),
                r.request_id.as_deref(),
            )
        })
        .collect();
    let item_id = item["id"].as_str().unwrap();
    assert_eq!(
        summary,
        [
            ("colour", colour_id, "create", Some("audit-colour-1")),
            ("product", product_id, "create", Some("audit-product-1")),
            ("product", product_id, "update", Some("audit-product-2")),
            (
                "stock_item",
                item_id,
                "stock.restock",
                Some("audit-stock-1")
            ),
        ]
    );
    // The colour's name is a catalogue label, revealed on purpose.
    assert_eq!(rows[0].changes["name"], json!({"after": "Sage"}));
    // An update keeps only what changed.
    assert_eq!(
        rows[2].changes,
        json!({"price": {"before": {"amount": 129900, "currency": "GBP"},
                         "after": {"amount": 119900, "currency": "GBP"}}})
    );
    assert_eq!(rows[3].changes["onHand"], json!({"after": 5}));
    let stock = rows[3].changes.to_string();
    assert!(
        !stock.contains("Jones") && !stock.contains("07700"),
        "{stock}"
    );
}

#[tokio::test]
async fn refused_writes_and_reads_record_nothing() {
    let api = Api::spawn().await;
    let range = api.range("Heritage").await;
    let product = api
        .product(json!({"title": "Walnut", "rangeId": range}))
        .await;
    let id = product["id"].as_str().unwrap();
    let before = rows(&api).await.len();
    assert_eq!(before, 2);

    // Invalid patch (422), still-used range (409), customer (403), unknown product (404).
    let (status, _) = api
        .admin_patch(&format!("/v1/products/{id}"), &json!({"title": ""}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let status = api.admin_delete(&format!("/v1/ranges/{range}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let status = api
        .app
        .request_as(Method::DELETE, &format!("/v1/products/{id}"), &api.customer)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let status = api
        .admin_delete(&format!("/v1/products/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .admin_post(
            &format!("/v1/products/{id}/inventory/adjustments"),
            &json!({"delta": -3, "reason": "ADJUSTMENT"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Reads, public and admin.
    assert_eq!(api.get("/v1/products").await.0, StatusCode::OK);
    assert_eq!(
        api.get(&format!("/v1/products/{id}")).await.0,
        StatusCode::OK
    );
    assert_eq!(api.get("/v1/ranges").await.0, StatusCode::OK);
    let (status, _) = body(
        api.as_admin(Method::GET, &format!("/v1/products/{id}/inventory"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(rows(&api).await.len(), before);

    // A real delete is recorded, with the state it removed.
    assert_eq!(
        api.admin_delete(&format!("/v1/products/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let rows = rows(&api).await;
    assert_eq!(rows.len(), before + 1);
    assert_eq!(rows[before].action, "delete");
    assert_eq!(
        rows[before].changes["status"],
        json!({"before": "PUBLISHED"})
    );
}

#[tokio::test]
async fn only_a_super_admin_reads_the_trail_and_it_cannot_be_rewritten() {
    let api = Api::spawn().await;
    api.colour("Ivory", "#FFFFF0").await;
    let product = api.product(json!({"title": "Ash"})).await;
    let id = product["id"].as_str().unwrap();

    let (status, _) = body(
        api.as_admin(Method::GET, "/v1/products/audit")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.get("/v1/products/audit").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let boss = TestUser::new(Role::SuperAdmin);
    let (status, page) = body(
        api.app
            .request_as(
                Method::GET,
                &format!("/v1/products/audit?entity=product&entityId={id}"),
                &boss,
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["action"], "create");
    assert_eq!(data[0]["service"], "product");
    assert_eq!(data[0]["actorId"], api.admin.id.to_string());

    let (status, _) = body(
        api.app
            .request_as(Method::GET, "/v1/products/audit?actor=nobody", &boss)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    audit::assert_append_only(&api.pool).await;
    assert_eq!(rows(&api).await.len(), 2);
}
