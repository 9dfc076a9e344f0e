//! Addresses: normalised postcodes, one default per kind (also under concurrency), a limit of 20
//! and ownership.

use serde_json::{Value, json};

use crate::helpers::{Api, customer, fields, problem_code};

fn address(kind: &str, postcode: &str) -> Value {
    json!({"kind": kind, "recipientName": "Jane Doe", "line1": "1 High St", "city": "London",
           "postcode": postcode})
}

async fn defaults(api: &Api, user: uuid::Uuid, kind: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM addresses WHERE user_id = $1 AND kind = $2 AND is_default",
    )
    .bind(user)
    .bind(kind)
    .fetch_one(&api.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn addresses_are_normalised_owned_limited_and_keep_one_default_per_kind() {
    let api = Api::spawn().await;
    let jane = customer();
    let (status, first) = api
        .post(
            &jane,
            "/v1/profile/addresses",
            &address("SHIPPING", "sw40ab"),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["postcode"], "SW4 0AB");
    assert_eq!(
        first["isDefault"], true,
        "the first of a kind is the default"
    );
    let (_, second) = api
        .post(
            &jane,
            "/v1/profile/addresses",
            &address("SHIPPING", "EC1A 1BB"),
        )
        .await;
    assert_eq!(second["isDefault"], false);
    let (_, billing) = api
        .post(
            &jane,
            "/v1/profile/addresses",
            &address("BILLING", "M1 1AE"),
        )
        .await;
    assert_eq!(billing["isDefault"], true, "kinds have their own default");

    let (status, problem) = api
        .post(&jane, "/v1/profile/addresses", &address("SHIPPING", "NOPE"))
        .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&problem), ["postcode"]);

    let second_id = second["id"].as_str().unwrap();
    let (status, now_default) = api
        .post(
            &jane,
            &format!("/v1/profile/addresses/{second_id}/default"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{now_default}");
    assert_eq!(now_default["isDefault"], true);
    assert_eq!(defaults(&api, jane.id, "SHIPPING").await, 1);

    let (status, patched) = api
        .patch(
            &jane,
            &format!("/v1/profile/addresses/{second_id}"),
            &json!({"postcode": "ec1a1bb", "line2": "Flat 2"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["postcode"], "EC1A 1BB");
    assert_eq!(patched["line2"], "Flat 2");

    // Someone else's address does not exist for you.
    let mallory = customer();
    let path = format!("/v1/profile/addresses/{second_id}");
    assert_eq!(
        api.patch(&mallory, &path, &json!({"city": "X"})).await.0,
        404
    );
    assert_eq!(api.delete(&mallory, &path).await, 404);
    assert_eq!(
        api.post(&mallory, &format!("{path}/default"), &json!({}))
            .await
            .0,
        404
    );

    // Deleting the default promotes another of its kind.
    assert_eq!(api.delete(&jane, &path).await, 204);
    let (_, list) = api.get(&jane, "/v1/profile/addresses").await;
    let shipping: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "SHIPPING")
        .collect();
    assert_eq!(shipping.len(), 1);
    assert_eq!(shipping[0]["isDefault"], true);

    // At most 20.
    for _ in 0..18 {
        let (status, _) = api
            .post(
                &jane,
                "/v1/profile/addresses",
                &address("BILLING", "M1 1AE"),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, problem) = api
        .post(
            &jane,
            "/v1/profile/addresses",
            &address("BILLING", "M1 1AE"),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(problem_code(&problem), "address-limit");
}

#[tokio::test]
async fn concurrent_default_changes_leave_exactly_one_default() {
    let api = Api::spawn().await;
    let jane = customer();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let (_, a) = api
            .post(
                &jane,
                "/v1/profile/addresses",
                &address("SHIPPING", "SW1A 1AA"),
            )
            .await;
        ids.push(a["id"].as_str().unwrap().to_owned());
    }
    for round in 0..3 {
        let attempts = ids.iter().map(|id| {
            let request = api
                .app
                .request_as(
                    reqwest::Method::POST,
                    &format!("/v1/profile/addresses/{id}/default"),
                    &jane,
                )
                .send();
            async move { request.await.unwrap().status() }
        });
        let creates = (0..4).map(|_| {
            let mut body = address("SHIPPING", "SW1A 1AA");
            body["isDefault"] = json!(true);
            let request = api
                .app
                .request_as(reqwest::Method::POST, "/v1/profile/addresses", &jane)
                .json(&body)
                .send();
            async move { request.await.unwrap().status() }
        });
        let (set, created) = futures::future::join(
            futures::future::join_all(attempts),
            futures::future::join_all(creates),
        )
        .await;
        assert!(set.iter().all(|s| *s == 200), "round {round}: {set:?}");
        assert!(
            created.iter().all(|s| *s == 201),
            "round {round}: {created:?}"
        );
        assert_eq!(
            defaults(&api, jane.id, "SHIPPING").await,
            1,
            "round {round}"
        );
    }
}
