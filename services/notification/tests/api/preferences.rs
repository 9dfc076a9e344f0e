//! Preferences, opt-outs and one-click unsubscribe: marketing respects them, transactional mail
//! always goes.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::events::{booking_created, user_created};
use crate::helpers::Api;

#[tokio::test]
async fn the_welcome_email_needs_marketing_consent_and_carries_a_one_click_unsubscribe_link() {
    let api = Api::spawn().await;
    let consenting = user_created(Uuid::now_v7(), "yes@example.com", true);
    let declining = user_created(Uuid::now_v7(), "no@example.com", false);
    api.deliver(&consenting).await;
    api.deliver(&declining).await;

    let sent = &api.settled(consenting.id).await[0];
    assert_eq!(sent.status, "SENT");
    assert_eq!(
        sent.subject.as_deref(),
        Some("Welcome to Lomash Wood, Jane")
    );
    assert!(
        sent.body_text
            .as_deref()
            .unwrap()
            .contains("Unsubscribe: https://api.lomash.test/v1/notifications/unsubscribe/")
    );
    let suppressed = &api.settled(declining.id).await[0];
    assert_eq!(suppressed.status, "SUPPRESSED");
    assert!(api.outbox("no@example.com").await.is_empty());
}

#[tokio::test]
async fn after_one_click_unsubscribe_marketing_is_suppressed_but_booking_mail_still_goes() {
    let api = Api::spawn().await;
    let user = Uuid::now_v7();
    let first = user_created(user, "jane@example.com", true);
    api.deliver(&first).await;
    let welcome = api.settled(first.id).await[0].body_text.clone().unwrap();
    let link = welcome
        .lines()
        .find_map(|l| l.strip_prefix("Unsubscribe: "))
        .unwrap()
        .to_owned();
    let path = link.strip_prefix("https://api.lomash.test").unwrap();

    // The page changes nothing (link scanners fetch it); the button's POST unsubscribes.
    let (status, page) = api.send(Method::GET, path, None, None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("<form method=\"post\">"));
    let (status, _) = api.send(Method::POST, path, None, None).await;
    assert_eq!(status, 200);
    let (status, _) = api.send(Method::POST, path, None, None).await;
    assert_eq!(status, 200, "unsubscribing twice is fine");

    let again = user_created(user, "jane@example.com", true);
    api.deliver(&again).await;
    assert_eq!(api.settled(again.id).await[0].status, "SUPPRESSED");
    let booking = booking_created(true, false);
    api.deliver(&booking).await;
    assert_eq!(api.settled(booking.id).await[0].status, "SENT");
}

#[tokio::test]
async fn a_forged_unsubscribe_token_is_not_found() {
    let api = Api::spawn().await;
    let (status, body) = api
        .send(
            Method::POST,
            "/v1/notifications/unsubscribe/ZW1haWw.AAAA",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn preferences_show_transactional_always_on_and_refuse_turning_it_off() {
    let api = Api::spawn().await;
    let jane = Api::customer();
    let (status, body) = api
        .send(
            Method::GET,
            "/v1/notifications/preferences",
            Some(&jane),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let prefs = body["preferences"].as_array().unwrap();
    assert_eq!(prefs.len(), 6);
    assert!(
        prefs
            .iter()
            .all(|p| p["enabled"] == (p["topic"] == "TRANSACTIONAL"))
    );

    let (status, body) = api
        .send(
            Method::PUT,
            "/v1/notifications/preferences",
            Some(&jane),
            Some(&json!({"preferences": [
                {"channel": "EMAIL", "topic": "MARKETING", "enabled": true},
                {"channel": "SMS", "topic": "TRANSACTIONAL", "enabled": false}
            ]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "preferences[1].enabled");
    let (_, unchanged) = api
        .send(
            Method::GET,
            "/v1/notifications/preferences",
            Some(&jane),
            None,
        )
        .await;
    assert_eq!(
        unchanged,
        json!({"preferences": prefs}),
        "nothing changed on bad input"
    );

    let (status, body) = api
        .send(
            Method::PUT,
            "/v1/notifications/preferences",
            Some(&jane),
            Some(&json!({"preferences": [{"channel": "EMAIL", "topic": "MARKETING", "enabled": true}]})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        body["preferences"]
            .as_array()
            .unwrap()
            .contains(&json!({"channel": "EMAIL", "topic": "MARKETING", "enabled": true}))
    );
    let (status, _) = api
        .send(Method::GET, "/v1/notifications/preferences", None, None)
        .await;
    assert_eq!(status, 401);
}

/// A channel and topic given twice is not an error: entries apply in order, the later one wins
/// (as settings applied one after another would).
#[tokio::test]
async fn a_later_entry_for_the_same_channel_and_topic_wins() {
    let api = Api::spawn().await;
    let jane = Api::customer();
    let marketing = |body: &serde_json::Value, channel: &str| {
        body["preferences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["channel"] == channel && p["topic"] == "MARKETING")
            .map(|p| p["enabled"].clone())
    };
    let (status, body) = api
        .send(
            Method::PUT,
            "/v1/notifications/preferences",
            Some(&jane),
            Some(&json!({"preferences": [
                {"channel": "EMAIL", "topic": "MARKETING", "enabled": false},
                {"channel": "SMS", "topic": "MARKETING", "enabled": true},
                {"channel": "EMAIL", "topic": "MARKETING", "enabled": true}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(marketing(&body, "EMAIL"), Some(json!(true)), "{body}");
    assert_eq!(marketing(&body, "SMS"), Some(json!(true)), "{body}");
    assert_eq!(body["preferences"].as_array().unwrap().len(), 6);

    let (status, body) = api
        .send(
            Method::PUT,
            "/v1/notifications/preferences",
            Some(&jane),
            Some(&json!({"preferences": [
                {"channel": "EMAIL", "topic": "MARKETING", "enabled": true},
                {"channel": "EMAIL", "topic": "MARKETING", "enabled": false},
                {"channel": "EMAIL", "topic": "TRANSACTIONAL", "enabled": true},
                {"channel": "EMAIL", "topic": "TRANSACTIONAL", "enabled": true}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(marketing(&body, "EMAIL"), Some(json!(false)), "{body}");
    assert_eq!(
        marketing(&body, "SMS"),
        Some(json!(true)),
        "untouched: {body}"
    );
    let (_, stored) = api
        .send(
            Method::GET,
            "/v1/notifications/preferences",
            Some(&jane),
            None,
        )
        .await;
    assert_eq!(stored, body, "what was answered is what is stored");
}

#[tokio::test]
async fn devices_are_registered_and_removed_only_by_their_owner() {
    let api = Api::spawn().await;
    let jane = Api::customer();
    let john = Api::customer();
    let body = json!({"token": "fcm-device-token-9999", "platform": "WEB"});
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/notifications/devices",
            Some(&jane),
            Some(&body),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body_err) = api
        .send(
            Method::POST,
            "/v1/notifications/devices",
            Some(&jane),
            Some(&json!({"token": "short", "platform": "WEB"})),
        )
        .await;
    assert_eq!(status, 422, "{body_err}");
    let token = json!({"token": "fcm-device-token-9999"});
    let (status, _) = api
        .send(
            Method::DELETE,
            "/v1/notifications/devices",
            Some(&john),
            Some(&token),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send(
            Method::DELETE,
            "/v1/notifications/devices",
            Some(&jane),
            Some(&token),
        )
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn erasure_forgets_the_user_s_addresses_devices_preferences_and_message_contents() {
    use chrono::Utc;
    use service_kit::shared_types::DomainEvent;
    use service_kit::shared_types::auth::UserErasureRequested;

    let api = Api::spawn().await;
    let jane = Api::customer();
    let created = user_created(jane.id, "jane@example.com", true);
    api.deliver(&created).await;
    api.settled(created.id).await;
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/notifications/devices",
            Some(&jane),
            Some(&json!({"token": "fcm-device-token-erase", "platform": "IOS"})),
        )
        .await;
    assert_eq!(status, 201);

    let erasure = DomainEvent::new(
        "auth",
        UserErasureRequested {
            user_id: jane.id,
            requested_by: None,
            requested_at: Utc::now(),
        },
    );
    api.deliver(&erasure).await;

    let left: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM recipients WHERE user_id = $1),
                (SELECT count(*) FROM device_tokens WHERE user_id = $1),
                (SELECT count(*) FROM preferences WHERE user_id = $1)",
    )
    .bind(jane.id)
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0));
    let welcome = &api.rows_of(created.id).await[0];
    assert_eq!(welcome.recipient, "erased");
    assert_eq!(
        (welcome.subject.as_deref(), welcome.body_text.as_deref()),
        (None, None)
    );
    assert_eq!(welcome.status, "SENT", "the statistics stay");
    assert!(api.outbox("jane@example.com").await.is_empty());
}
