//! Reviews: one per customer and product, moderation, the public list and the aggregate.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Api, customer, problem_code};

async fn rating(api: &Api, product: Uuid) -> Value {
    let (status, body) = api
        .public_get(&format!("/v1/products/{product}/rating"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn reviews_are_unique_moderated_and_aggregated_correctly() {
    let api = Api::spawn().await;
    let product = Uuid::now_v7();
    let reviews = format!("/v1/products/{product}/reviews");
    let (a, b, c) = (customer(), customer(), customer());
    let mut ids = Vec::new();
    for (user, stars) in [(&a, 5), (&b, 4), (&c, 1)] {
        let (status, review) = api
            .post(
                user,
                &reviews,
                &json!({"rating": stars, "title": "Lovely", "body": "Solid oak."}),
            )
            .await;
        assert_eq!(status, 201, "{review}");
        assert_eq!(review["status"], "PENDING");
        ids.push(review["id"].as_str().unwrap().to_owned());
    }
    let (status, problem) = api
        .post(
            &a,
            &reviews,
            &json!({"rating": 3, "title": "Again", "body": "Twice"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(problem_code(&problem), "review-exists");
    assert_eq!(api.events("review.created").await.len(), 3);

    // Pending reviews are invisible.
    let (_, list) = api.public_get(&reviews).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert_eq!(rating(&api, product).await["count"], 0);

    let moderate = |id: &str| format!("/v1/admin/reviews/{id}/moderation");
    assert_eq!(
        api.post(&a, &moderate(&ids[0]), &json!({"status": "APPROVED"}))
            .await
            .0,
        403
    );
    for id in &ids {
        let (status, body) = api
            .post(&api.admin, &moderate(id), &json!({"status": "APPROVED"}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let aggregate = rating(&api, product).await;
    assert_eq!(aggregate["count"], 3);
    assert_eq!(aggregate["average"], 3.33);
    assert_eq!(aggregate["histogram"], json!([1, 0, 0, 1, 1]));
    let (_, by_rating) = api
        .public_get(&format!("{reviews}?sort=-rating&limit=2"))
        .await;
    let stars: Vec<i64> = by_rating["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rating"].as_i64().unwrap())
        .collect();
    assert_eq!(stars, [5, 4]);
    let cursor = by_rating["nextCursor"].as_str().unwrap();
    let (_, rest) = api
        .public_get(&format!("{reviews}?sort=-rating&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest["data"][0]["rating"], 1);
    assert_eq!(
        api.public_get(&format!("{reviews}?sort=rating")).await.0,
        422
    );

    // Helpful votes: one per user, not on your own review.
    let helpful = format!("/v1/reviews/{}/helpful", ids[0]);
    for _ in 0..2 {
        let (status, votes) = api.post(&b, &helpful, &json!({})).await;
        assert_eq!(status, 200, "{votes}");
        assert_eq!(votes["helpfulCount"], 1);
    }
    assert_eq!(api.post(&a, &helpful, &json!({})).await.0, 422);
    let (_, list) = api.public_get(&reviews).await;
    let first = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(first["helpfulCount"], 1);

    // Reject one: it leaves the aggregate; a rejection needs a reason.
    assert_eq!(
        api.post(
            &api.admin,
            &moderate(&ids[2]),
            &json!({"status": "REJECTED"})
        )
        .await
        .0,
        422
    );
    api.post(
        &api.admin,
        &moderate(&ids[2]),
        &json!({"status": "REJECTED", "reason": "Off topic"}),
    )
    .await;
    let aggregate = rating(&api, product).await;
    assert_eq!(
        (aggregate["count"].clone(), aggregate["average"].clone()),
        (json!(2), json!(4.5))
    );

    // An edit goes back to moderation; only the author may edit.
    let edit = format!("/v1/reviews/{}", ids[1]);
    assert_eq!(api.patch(&a, &edit, &json!({"rating": 2})).await.0, 404);
    let (status, edited) = api.patch(&b, &edit, &json!({"rating": 2})).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["status"], "PENDING");
    assert_eq!(edited["title"], "Lovely");
    let aggregate = rating(&api, product).await;
    assert_eq!(aggregate["histogram"], json!([0, 0, 0, 0, 1]));
    api.post(
        &api.admin,
        &moderate(&ids[1]),
        &json!({"status": "APPROVED"}),
    )
    .await;
    assert_eq!(
        rating(&api, product).await["histogram"],
        json!([0, 1, 0, 0, 1])
    );

    // Deleting: not someone else's; the author's goes.
    let first = format!("/v1/reviews/{}", ids[0]);
    assert_eq!(api.delete(&b, &first).await, 404);
    assert_eq!(api.delete(&a, &first).await, 204);
    let aggregate = rating(&api, product).await;
    assert_eq!(
        (aggregate["count"].clone(), aggregate["average"].clone()),
        (json!(1), json!(2.0))
    );
}
