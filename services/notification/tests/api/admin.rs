//! The admin side: the delivery log, resending, template previews, the dev outbox switch.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::auth::{OtpCode, OtpPurpose, OtpRequested};

use crate::events::booking_created;
use crate::helpers::Api;

#[tokio::test]
async fn admins_filter_the_delivery_log_and_resend_a_message() {
    let api = Api::spawn().await;
    let event = booking_created(true, true);
    api.deliver(&event).await;
    api.settled(event.id).await;
    let admin = Api::admin();

    let (status, page) = api
        .send(
            Method::GET,
            "/v1/notifications?template=booking_team_alert&status=SENT&pageSize=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let (_, by_recipient) = api
        .send(
            Method::GET,
            "/v1/notifications?recipient=JANE@example.com",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(by_recipient["total"], 1);
    let id = by_recipient["data"][0]["id"].as_str().unwrap().to_owned();

    let (status, copy) = api
        .send(
            Method::POST,
            &format!("/v1/notifications/{id}/resend"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 202, "{copy}");
    assert_eq!(copy["resentFrom"], id.as_str());
    assert_eq!(copy["status"], "QUEUED");
    for _ in 0..200 {
        if api.outbox("jane@example.com").await.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        api.outbox("jane@example.com").await.len(),
        2,
        "the copy is sent"
    );

    let (status, _) = api
        .send(
            Method::GET,
            "/v1/notifications?status=LOST",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = api
        .send(
            Method::GET,
            "/v1/notifications",
            Some(&Api::customer()),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .send(
            Method::POST,
            &format!("/v1/notifications/{}/resend", uuid::Uuid::now_v7()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_one_time_code_cannot_be_resent() {
    let api = Api::spawn().await;
    let event = DomainEvent::new(
        "auth",
        OtpRequested {
            user_id: None,
            email: "jane@example.com".into(),
            purpose: OtpPurpose::EmailVerification,
            code: OtpCode::new("111222"),
            expires_at: Utc::now() + Duration::minutes(10),
        },
    );
    api.deliver(&event).await;
    let id = api.settled(event.id).await[0].id;
    let (status, body) = api
        .send(
            Method::POST,
            &format!("/v1/notifications/{id}/resend"),
            Some(&Api::admin()),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["type"].as_str().unwrap().rsplit('/').next(),
        Some("not-resendable")
    );
}

#[tokio::test]
async fn admins_preview_a_template_with_its_sample_or_their_own_context() {
    let api = Api::spawn().await;
    let admin = Api::admin();
    let path = "/v1/notifications/templates/booking_confirmed/preview";
    let (status, sample) = api
        .send(Method::POST, path, Some(&admin), Some(&json!({})))
        .await;
    assert_eq!(status, 200, "{sample}");
    assert_eq!(
        sample["subject"],
        "Your appointment BK-20261201-7K3Q is confirmed"
    );
    assert!(sample["html"].as_str().unwrap().contains("#1F3A2E"));

    let (status, problem) = api
        .send(
            Method::POST,
            path,
            Some(&admin),
            Some(&json!({"context": {"reference": "BK-1"}})),
        )
        .await;
    assert_eq!(status, 422, "a missing variable is an error: {problem}");
    assert_eq!(problem["errors"][0]["field"], "context");

    // No body at all is the sample; a body of the wrong shape is refused, never read as none.
    let (status, none) = api.send(Method::POST, path, Some(&admin), None).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["subject"], sample["subject"]);
    for wrong in [json!({"contxt": {}}), json!([{"context": {}}])] {
        let (status, problem) = api
            .send(Method::POST, path, Some(&admin), Some(&wrong))
            .await;
        assert_eq!(status, 422, "{wrong} → {problem}");
        assert_eq!(
            problem["type"],
            "https://api.lomashwood.co.uk/problems/validation-failed"
        );
    }

    let (status, _) = api
        .send(
            Method::POST,
            "/v1/notifications/templates/nope/preview",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send(Method::POST, path, Some(&Api::customer()), Some(&json!({})))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_dev_outbox_is_not_served_unless_enabled() {
    let api = Api::spawn_with(&[("NOTIFICATION_DEV_OUTBOX", "false")]).await;
    let (status, _) = api
        .send(
            Method::GET,
            "/v1/notifications/dev/outbox",
            Some(&Api::admin()),
            None,
        )
        .await;
    assert_eq!(status, 404);
}
