use serde_json::{Value, json};

use crate::helpers::{Api, PASSWORD, problem_code};

#[tokio::test]
async fn registering_stores_the_user_and_writes_both_events_to_the_outbox() {
    let api = Api::spawn().await;

    let response = api.register("Jane.Doe@Example.com").await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "jane.doe@example.com");
    assert!(body["message"].as_str().unwrap().contains("code"));
    let user = api
        .user_row("jane.doe@example.com")
        .await
        .expect("user stored");
    assert_eq!(user["id"], body["userId"]);
    assert_eq!(user["role"], "CUSTOMER");
    assert_eq!(user["status"], "ACTIVE");
    assert_eq!(user["phone"], "+447700900123");
    assert!(user["email_verified_at"].is_null());
    let hash = user["password_hash"].as_str().unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );

    let created = api.events("user.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["producer"], "auth");
    assert_eq!(created[0]["payload"]["userId"], body["userId"]);
    assert_eq!(created[0]["payload"]["firstName"], "Jane");
    let otps = api.events("auth.otp_requested").await;
    assert_eq!(otps.len(), 1);
    assert_eq!(otps[0]["payload"]["purpose"], "EMAIL_VERIFICATION");
    let code = otps[0]["payload"]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));

    // Redis holds the code's HMAC only, never the code itself.
    let dump = api.redis_dump().await;
    assert!(
        dump.iter().any(|(key, _)| key.contains(":otp:")),
        "{dump:?}"
    );
    assert!(
        dump.iter()
            .all(|(_, value)| value.as_deref() != Some(code.as_str())),
        "plaintext code in Redis: {dump:?}"
    );
}

#[tokio::test]
async fn a_duplicate_email_gets_the_same_answer_and_no_second_account() {
    let api = Api::spawn().await;
    let first = api.register("jane@example.com").await;
    let first_status = first.status();
    let first: Value = first.json().await.unwrap();

    let second = api.register("JANE@example.com").await;

    assert_eq!(second.status(), first_status);
    let second: Value = second.json().await.unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&second), keys(&first));
    assert_eq!(second["email"], first["email"]);
    assert_eq!(second["message"], first["message"]);
    assert_ne!(
        second["userId"], first["userId"],
        "the existing id must not leak"
    );
    assert_eq!(api.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(api.events("user.created").await.len(), 1);
}

#[tokio::test]
async fn bad_input_is_422_naming_each_field_and_stores_nothing() {
    let api = Api::spawn().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD, "firstName": "Jane", "lastName": "Doe"}),
            vec!["email"],
        ),
        (
            json!({"email": "jane@example.com", "password": "short", "firstName": "Jane", "lastName": "Doe"}),
            vec!["password"],
        ),
        (
            json!({"email": "jane@example.com", "password": "1qaz2wsx3edc", "firstName": "Jane", "lastName": "Doe"}),
            vec!["password"],
        ),
        (
            json!({"email": "jane@example.com", "password": "janes-lovely-kitchen", "firstName": "Jane", "lastName": "Doe"}),
            vec!["password"],
        ),
        (
            json!({"email": "bad", "password": "x", "firstName": "", "lastName": "Doe", "phone": "12"}),
            vec!["email", "firstName", "password", "phone"],
        ),
        (
            json!({"email": "jane@example.com", "firstName": "Jane", "lastName": "Doe"}),
            vec!["password"],
        ),
    ];
    for (body, fields) in cases {
        let response = api.post("/v1/auth/register", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        let mut got: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, fields, "{problem}");
        assert!(
            !problem.to_string().contains("1qaz2wsx3edc"),
            "password echoed"
        );
    }
    assert_eq!(api.count("SELECT count(*) FROM users").await, 0);
    assert_eq!(api.count("SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn verifying_the_email_marks_the_user_and_emits_user_email_verified() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;
    let code = api
        .latest_otp("jane@example.com", "EMAIL_VERIFICATION")
        .await;

    let response = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "jane@example.com", "code": code}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let user = api.user_row("jane@example.com").await.unwrap();
    assert!(!user["email_verified_at"].is_null());
    let events = api.events("user.email_verified").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["userId"], user["id"]);
    // Single use.
    let again = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "jane@example.com", "code": code}),
        )
        .await;
    assert_eq!(again.status(), 422);
}

#[tokio::test]
async fn otp_brute_force_is_refused_on_the_sixth_try_even_with_the_right_code() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;
    let code = api
        .latest_otp("jane@example.com", "EMAIL_VERIFICATION")
        .await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for attempt in 1..=5 {
        let response = api
            .post(
                "/v1/auth/verify-email",
                &json!({"email": "jane@example.com", "code": wrong}),
            )
            .await;
        assert_eq!(response.status(), 422, "attempt {attempt}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "code");
    }
    let sixth = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "jane@example.com", "code": code}),
        )
        .await;

    assert_eq!(sixth.status(), 422);
    let user = api.user_row("jane@example.com").await.unwrap();
    assert!(user["email_verified_at"].is_null());
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_as_a_wrong_code() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;

    let wrong_code = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "jane@example.com", "code": "12345x"}),
        )
        .await;
    let unknown = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "nobody@example.com", "code": "123456"}),
        )
        .await;

    assert_eq!(wrong_code.status(), 422);
    assert_eq!(unknown.status(), 422);
    let a: Value = wrong_code.json().await.unwrap();
    let b: Value = unknown.json().await.unwrap();
    assert_eq!(a["errors"], b["errors"]);
    assert_eq!(problem_code(&a), problem_code(&b));
}

#[tokio::test]
async fn resending_answers_alike_for_everyone_and_replaces_the_code() {
    let api = Api::spawn_with(&[("OTP_RESEND_COOLDOWN_SECS", "0")]).await;
    api.register("jane@example.com").await;
    let first = api
        .latest_otp("jane@example.com", "EMAIL_VERIFICATION")
        .await;

    let known = api
        .post(
            "/v1/auth/resend-otp",
            &json!({"email": "jane@example.com", "purpose": "EMAIL_VERIFICATION"}),
        )
        .await;
    let unknown = api
        .post(
            "/v1/auth/resend-otp",
            &json!({"email": "nobody@example.com", "purpose": "EMAIL_VERIFICATION"}),
        )
        .await;

    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
    let codes = api.otps("jane@example.com", "EMAIL_VERIFICATION").await;
    assert_eq!(codes.len(), 2);
    if codes[0] != first {
        let old = api
            .post(
                "/v1/auth/verify-email",
                &json!({"email": "jane@example.com", "code": first}),
            )
            .await;
        assert_eq!(old.status(), 422, "the replaced code still works");
    }
    let new = api
        .post(
            "/v1/auth/verify-email",
            &json!({"email": "jane@example.com", "code": codes[0]}),
        )
        .await;
    assert_eq!(new.status(), 200);
}

#[tokio::test]
async fn resending_is_silently_rate_limited() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;

    let again = api
        .post(
            "/v1/auth/resend-otp",
            &json!({"email": "jane@example.com", "purpose": "EMAIL_VERIFICATION"}),
        )
        .await;

    assert_eq!(again.status(), 202);
    assert_eq!(
        api.otps("jane@example.com", "EMAIL_VERIFICATION")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn the_relay_publishes_the_outbox_to_the_broker() {
    let api = Api::spawn().await;
    api.register("jane@example.com").await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let pending = api
            .count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await;
        if pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} events still unpublished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(api.count("SELECT count(*) FROM outbox").await, 2);
}
