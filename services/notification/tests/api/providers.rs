//! The real providers against stand-ins: Twilio and FCM as wiremock servers, SES and S3 on
//! moto. Transient failures are retried until they succeed; permanent ones fail at once.

use aws_sdk_s3::primitives::ByteStream;
use chrono::Utc;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::appointment::{AppointmentType, BookingConfirmed};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::events::{at, booking_created, brochure_requested};
use crate::helpers::Api;

fn moto() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

fn confirmed(
    created: &DomainEvent<service_kit::shared_types::appointment::BookingCreated>,
    user: Option<Uuid>,
) -> DomainEvent<BookingConfirmed> {
    DomainEvent::new(
        "appointment",
        BookingConfirmed {
            booking_id: created.payload.booking_id,
            reference_code: created.payload.reference_code.clone(),
            appointment_type: AppointmentType::HomeMeasurement,
            slot_starts_at: at("2026-12-01T10:00:00Z"),
            slot_ends_at: at("2026-12-01T11:00:00Z"),
            showroom_id: None,
            consultant_id: None,
            user_id: user,
            customer_name: "Jane Doe".into(),
            customer_email: "jane@example.com".into(),
            confirmed_at: Utc::now(),
        },
    )
}

async fn twilio_api(twilio: &MockServer) -> Api {
    let url = twilio.uri();
    Api::spawn_with(&[
        ("SMS_PROVIDER", "twilio"),
        ("TWILIO_API_URL", url.as_str()),
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_AUTH_TOKEN", "secret-token"),
        ("TWILIO_FROM", "+447700900000"),
    ])
    .await
}

#[tokio::test]
async fn an_sms_refused_with_503_is_retried_with_backoff_and_then_sent() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .and(header_exists("authorization"))
        .and(body_string_contains("To=%2B447700900123"))
        .and(body_string_contains("From=%2B447700900000"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM42"})))
        .expect(1)
        .mount(&twilio)
        .await;
    let api = twilio_api(&twilio).await;
    let created = booking_created(true, false);
    api.deliver(&created).await;
    let event = confirmed(&created, None);
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    let sms = rows.iter().find(|r| r.channel == "SMS").unwrap();
    assert_eq!(sms.status, "SENT");
    assert_eq!(sms.attempts, 2);
    assert_eq!(sms.provider.as_deref(), Some("twilio"));
    assert_eq!(sms.provider_message_id.as_deref(), Some("SM42"));
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE topic = 'notification.failed'
           AND envelope->'payload'->>'willRetry' = 'true'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(failed, 1);
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE topic = 'notification.sent'
           AND envelope->'payload'->>'notificationId' = $1",
    )
    .bind(sms.id.to_string())
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(sent, 1);
}

#[tokio::test]
async fn an_sms_refused_as_invalid_fails_at_once_without_retries() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code": 21211,
            "message": "The 'To' number +447700900123 is not a valid phone number."
        })))
        .expect(1)
        .mount(&twilio)
        .await;
    let api = twilio_api(&twilio).await;
    let created = booking_created(true, false);
    api.deliver(&created).await;
    let event = confirmed(&created, None);
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    let sms = rows.iter().find(|r| r.channel == "SMS").unwrap();
    assert_eq!(sms.status, "FAILED");
    assert_eq!(sms.attempts, 1);
    let error = sms.last_error.as_deref().unwrap();
    assert!(error.contains("21211"));
    assert!(
        !error.contains("+447700900123"),
        "the number is masked: {error}"
    );
    assert!(error.contains("+44*******123"));
    // Several sender rounds later, still one request (wiremock verifies `expect(1)` on drop).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        api.rows_of(event.id)
            .await
            .iter()
            .find(|r| r.channel == "SMS")
            .unwrap()
            .attempts,
        1
    );
}

#[tokio::test]
async fn a_push_refused_with_503_is_retried_and_sent_with_an_oauth_token_from_the_service_account()
{
    let google = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}),
        ))
        .mount(&google)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/projects/lomash-test/messages:send"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&google)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/projects/lomash-test/messages:send"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer ya29.test",
        ))
        .and(body_string_contains("fcm-device-token-0002"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "projects/lomash-test/messages/0:42"})),
        )
        .expect(1)
        .mount(&google)
        .await;
    let key = include_str!("../fixtures/fcm-test-key.pem");
    let token_url = format!("{}/token", google.uri());
    let base = google.uri();
    let api = Api::spawn_with(&[
        ("PUSH_PROVIDER", "fcm"),
        ("FCM_PROJECT_ID", "lomash-test"),
        (
            "FCM_CLIENT_EMAIL",
            "push@lomash-test.iam.gserviceaccount.com",
        ),
        ("FCM_PRIVATE_KEY", key),
        ("FCM_TOKEN_URL", token_url.as_str()),
        ("FCM_API_URL", base.as_str()),
    ])
    .await;
    let jane = Api::customer();
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/v1/notifications/devices",
            Some(&jane),
            Some(&serde_json::json!({"token": "fcm-device-token-0002", "platform": "IOS"})),
        )
        .await;
    assert_eq!(status, 201);
    let created = booking_created(true, false);
    api.deliver(&created).await;
    let event = confirmed(&created, Some(jane.id));
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    let push = rows.iter().find(|r| r.channel == "PUSH").unwrap();
    assert_eq!(push.status, "SENT");
    assert_eq!(push.attempts, 2);
    assert_eq!(
        push.provider_message_id.as_deref(),
        Some("projects/lomash-test/messages/0:42")
    );
}

async fn ses_api(extra: &[(&str, &str)]) -> Api {
    let endpoint = moto();
    let mut env = vec![
        ("EMAIL_PROVIDER", "ses"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "eu-west-2"),
    ];
    env.extend_from_slice(extra);
    Api::spawn_with(&env).await
}

async fn aws() -> aws_config::SdkConfig {
    event_bus_aws(moto()).await
}

async fn event_bus_aws(endpoint: String) -> aws_config::SdkConfig {
    service_kit::event_bus::aws::sdk_config(&service_kit::event_bus::aws::AwsSettings {
        region: "eu-west-2".into(),
        endpoint_url: Some(endpoint),
        credentials: Some(service_kit::event_bus::SqsCredentials {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        }),
    })
    .await
}

#[tokio::test]
async fn ses_sends_the_brochure_from_s3_as_a_raw_mime_attachment() {
    let config = aws().await;
    let from = format!("brochures-{}@lomash.test", Uuid::now_v7().simple());
    aws_sdk_sesv2::Client::new(&config)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("moto verifies the sender");
    let bucket = format!(
        "lomash-assets-{}",
        &Uuid::now_v7().simple().to_string()[20..]
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let pdf = b"%PDF-1.4\n% the S3 kitchen brochure\n%%EOF\n".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key("brochures/kitchens-2026.pdf")
        .body(ByteStream::from(pdf.clone()))
        .send()
        .await
        .unwrap();
    let from_header = format!("Lomash Wood <{from}>");
    let api = ses_api(&[
        ("EMAIL_FROM", from_header.as_str()),
        ("BROCHURE_STORAGE", "s3"),
        ("BROCHURE_BUCKET", bucket.as_str()),
        ("BROCHURE_KITCHEN_KEY", "brochures/kitchens-2026.pdf"),
    ])
    .await;
    let event = brochure_requested(true, false);
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    assert_eq!(rows[0].status, "SENT", "{rows:#?}");
    assert_eq!(rows[0].provider.as_deref(), Some("ses"));
    let message_id = rows[0].provider_message_id.clone().unwrap();
    assert!(!message_id.is_empty());
    let data = reqwest::get(format!("{}/moto-api/data.json", moto()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        data.contains(&message_id),
        "moto did not record {message_id}"
    );
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    let raw = find_raw(&data, &message_id).expect("the raw message is recorded");
    assert!(raw.contains("Subject: Your Lomash Wood kitchen brochure"));
    assert!(raw.contains("application/pdf"));
    assert!(raw.contains("Lomash-Wood-Kitchens.pdf"));
    use base64::Engine;
    assert!(raw.contains(&base64::engine::general_purpose::STANDARD.encode(&pdf)));
}

/// The raw MIME text moto recorded for `message_id`, wherever in its dump it sits.
fn find_raw(value: &serde_json::Value, message_id: &str) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => {
            if map.values().any(|v| v.as_str() == Some(message_id))
                || map.get("id").and_then(|v| v.as_str()) == Some(message_id)
            {
                return map
                    .values()
                    .filter_map(|v| v.as_str())
                    .find(|s| s.contains("Subject:"))
                    .map(str::to_owned);
            }
            map.values().find_map(|v| find_raw(v, message_id))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_raw(v, message_id)),
        _ => None,
    }
}

#[tokio::test]
async fn ses_refusing_an_unverified_sender_is_a_permanent_failure() {
    let unverified = format!(
        "Lomash Wood <nobody-{}@unverified.test>",
        Uuid::now_v7().simple()
    );
    let api = ses_api(&[("EMAIL_FROM", unverified.as_str())]).await;
    let event = booking_created(true, false);
    api.deliver(&event).await;

    let rows = api.settled(event.id).await;
    assert_eq!(rows[0].status, "FAILED", "{rows:#?}");
    assert_eq!(rows[0].attempts, 1);
}
