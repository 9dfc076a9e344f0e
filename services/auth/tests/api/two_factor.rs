//! Two-factor sign-in: enrolment, the two-step login, replay and recovery codes, disable, the
//! SUPER_ADMIN reset, throttling, and administrators refused until they use the second factor.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::{audit, totp};

use crate::helpers::{Api, PASSWORD, Session, jwt_claims, problem_code};

/// A code for the step after the current one: accepted (one step of skew) and newer than a code
/// just used, so a test can sign in right after enrolling without waiting 30 s.
fn next_code(secret: &str) -> String {
    totp::code_at(secret, totp::now() + totp::STEP_SECS)
}

async fn json_of(response: Response) -> Value {
    response.json().await.unwrap()
}

async fn post_as(api: &Api, session: &Session, path: &str, body: Value) -> Response {
    api.app
        .request_as(Method::POST, path, &session.as_issued())
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Enrols `session`'s user: setup, then confirm with the current code. Returns the secret and
/// the recovery codes.
async fn enrol(api: &Api, session: &Session) -> (String, Vec<String>) {
    let setup = post_as(api, session, "/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(setup.status(), 200);
    assert_eq!(setup.headers()["cache-control"], "no-store");
    let setup = json_of(setup).await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let confirmed = post_as(
        api,
        session,
        "/v1/auth/2fa/confirm",
        json!({ "code": totp::code_now(&secret) }),
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    let codes: Vec<String> =
        serde_json::from_value(json_of(confirmed).await["recoveryCodes"].clone()).unwrap();
    (secret, codes)
}

/// Logs in with the password and expects a challenge; returns its id.
async fn challenge(api: &Api, email: &str) -> String {
    let response = api.login(email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no session before the second factor"
    );
    let body = json_of(response).await;
    assert_eq!(body["twoFactorRequired"], true, "{body}");
    assert!(body.get("accessToken").is_none());
    assert!(body["expiresAt"].is_string());
    body["challengeId"].as_str().unwrap().to_owned()
}

async fn verify(api: &Api, challenge_id: &str, code: &str) -> Response {
    api.post(
        "/v1/auth/2fa/verify",
        &json!({ "challengeId": challenge_id, "code": code }),
    )
    .await
}

async fn sessions_of(api: &Api, email: &str) -> i64 {
    api.count(&format!(
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE u.email = '{email}' AND s.revoked_at IS NULL"
    ))
    .await
}

#[tokio::test]
async fn an_admin_without_the_second_factor_is_refused_until_enrolled_and_signed_in_with_it() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    assert_eq!(admin.amr, ["pwd"]);

    // Password only: the admin table is closed, with a problem naming the missing step.
    let listed = api
        .app
        .request_as(Method::GET, "/v1/auth/users", &admin.as_issued())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 403);
    assert_eq!(
        problem_code(&json_of(listed).await),
        "second-factor-required"
    );
    // ... but the caller's own account and enrolment are open.
    let me = api
        .app
        .request_as(Method::GET, "/v1/auth/me", &admin.as_issued())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me = json_of(me).await;
    assert_eq!(me["email"], "admin@example.com");
    assert_eq!(
        (
            &me["twoFactorEnabled"],
            &me["secondFactorUsed"],
            &me["secondFactorRequired"]
        ),
        (&json!(false), &json!(false), &json!(true))
    );

    let setup = post_as(&api, &admin, "/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(setup.status(), 200);
    let setup = json_of(setup).await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let uri = setup["otpauthUri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=Lomash%20Wood"), "{uri}");
    assert!(setup["qrSvg"].as_str().unwrap().contains("<svg"));
    // Pending: login still answers tokens until a code confirms the secret.
    assert_eq!(api.login("admin@example.com", PASSWORD).await.status(), 200);
    let pending = api.login("admin@example.com", PASSWORD).await;
    assert!(json_of(pending).await.get("accessToken").is_some());

    // The secret is sealed at rest.
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM two_factor")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));

    let wrong = post_as(
        &api,
        &admin,
        "/v1/auth/2fa/confirm",
        json!({"code": "000000"}),
    )
    .await;
    assert_eq!(wrong.status(), 422);
    let confirmed = post_as(
        &api,
        &admin,
        "/v1/auth/2fa/confirm",
        json!({ "code": totp::code_now(&secret) }),
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    let codes = json_of(confirmed).await["recoveryCodes"].clone();
    assert_eq!(codes.as_array().unwrap().len(), 10);
    let stored: i64 = api
        .count("SELECT count(*) FROM recovery_codes WHERE used_at IS NULL")
        .await;
    assert_eq!(stored, 10);
    let first = codes[0].as_str().unwrap();
    assert_eq!(
        api.count(&format!(
            "SELECT count(*) FROM recovery_codes WHERE code_hash::text LIKE '%{}%'",
            first.replace('-', "")
        ))
        .await,
        0,
        "recovery codes are stored hashed"
    );

    // Now the password alone opens no session.
    let before = sessions_of(&api, "admin@example.com").await;
    let challenge_id = challenge(&api, "admin@example.com").await;
    assert_eq!(sessions_of(&api, "admin@example.com").await, before);

    // The code used to confirm cannot be replayed; a fresh one signs in.
    let replayed = verify(&api, &challenge_id, &totp::code_now(&secret)).await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(
        problem_code(&json_of(replayed).await),
        "invalid-second-factor"
    );
    let signed_in = verify(&api, &challenge_id, &next_code(&secret)).await;
    let session = api.session_from(signed_in).await;
    assert_eq!(session.amr, ["pwd", "otp"]);
    assert_eq!(
        jwt_claims(&session.access_token)["amr"],
        json!(["pwd", "otp"])
    );
    assert!(api.session_allowed(session.session_id).await);

    // With the second factor the admin table opens.
    let listed = api
        .app
        .request_as(Method::GET, "/v1/auth/users", &session.as_issued())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let me: Value = api
        .app
        .request_as(Method::GET, "/v1/auth/me", &session.as_issued())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&me["twoFactorEnabled"], &me["secondFactorUsed"]),
        (&json!(true), &json!(true))
    );

    // The challenge was single use.
    let again = verify(&api, &challenge_id, &next_code(&secret)).await;
    assert_eq!(again.status(), 401);
    assert_eq!(problem_code(&json_of(again).await), "invalid-challenge");

    // A refreshed token keeps the second factor.
    let refreshed = api.refresh(&session.refresh_token).await;
    let refreshed = api.session_from(refreshed).await;
    assert_eq!(refreshed.amr, ["pwd", "otp"]);
}

#[tokio::test]
async fn recovery_codes_sign_in_once_each() {
    let api = Api::spawn().await;
    let admin = api
        .signed_up_as("admin@example.com", Role::SuperAdmin)
        .await;
    let (_, codes) = enrol(&api, &admin).await;

    let challenge_id = challenge(&api, "admin@example.com").await;
    let with_recovery = verify(&api, &challenge_id, &codes[3].to_uppercase()).await;
    let session = api.session_from(with_recovery).await;
    assert_eq!(session.amr, ["pwd", "otp"]);

    let challenge_id = challenge(&api, "admin@example.com").await;
    let spent = verify(&api, &challenge_id, &codes[3]).await;
    assert_eq!(spent.status(), 401);
    let other = verify(&api, &challenge_id, &codes[4]).await;
    assert_eq!(other.status(), 200);
    assert_eq!(
        api.count("SELECT count(*) FROM recovery_codes WHERE used_at IS NOT NULL")
            .await,
        2
    );
}

#[tokio::test]
async fn wrong_codes_burn_the_challenge_and_issue_nothing() {
    let api = Api::spawn_with(&[("LOGIN_MAX_FAILURES", "50")]).await;
    let customer = api.signed_up("jane@example.com").await;
    let (secret, _) = enrol(&api, &customer).await;
    let sessions_before = sessions_of(&api, "jane@example.com").await;

    let challenge_id = challenge(&api, "jane@example.com").await;
    for left in (0..5).rev() {
        let wrong = verify(&api, &challenge_id, "123456").await;
        assert_eq!(wrong.status(), 401);
        assert!(wrong.headers().get("set-cookie").is_none());
        let body = json_of(wrong).await;
        assert_eq!(problem_code(&body), "invalid-second-factor");
        assert_eq!(body["attemptsLeft"], left);
    }
    // Dead: even the right code is refused now.
    let dead = verify(&api, &challenge_id, &next_code(&secret)).await;
    assert_eq!(dead.status(), 401);
    assert_eq!(problem_code(&json_of(dead).await), "invalid-challenge");
    assert_eq!(sessions_of(&api, "jane@example.com").await, sessions_before);
    // A made-up challenge is no better.
    let made_up = verify(&api, "not-a-challenge", &next_code(&secret)).await;
    assert_eq!(made_up.status(), 401);
    let missing = api
        .post("/v1/auth/2fa/verify", &json!({ "challengeId": "x" }))
        .await;
    assert_eq!(missing.status(), 422);
}

#[tokio::test]
async fn wrong_codes_count_against_the_account_like_wrong_passwords() {
    // The default limit: five failures lock the account.
    let api = Api::spawn().await;
    let customer = api.signed_up("jane@example.com").await;
    let (secret, _) = enrol(&api, &customer).await;

    let first = challenge(&api, "jane@example.com").await;
    for _ in 0..3 {
        assert_eq!(verify(&api, &first, "123456").await.status(), 401);
    }
    let second = challenge(&api, "jane@example.com").await;
    for _ in 0..2 {
        assert_eq!(verify(&api, &second, "123456").await.status(), 401);
    }
    // Five wrong codes over two challenges: locked, the right code included.
    let locked = verify(&api, &second, &next_code(&secret)).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn customers_may_turn_it_on_and_off_with_a_code() {
    let api = Api::spawn().await;
    let customer = api.signed_up("jane@example.com").await;
    assert_eq!(customer.amr, ["pwd"]);
    // Off by default, and a customer without it reaches their own routes.
    let me = api
        .app
        .request_as(Method::GET, "/v1/auth/sessions", &customer.as_issued())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let not_on = post_as(
        &api,
        &customer,
        "/v1/auth/2fa/disable",
        json!({"code": "123456"}),
    )
    .await;
    assert_eq!(not_on.status(), 409);

    let (secret, codes) = enrol(&api, &customer).await;
    let again = post_as(&api, &customer, "/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(again.status(), 409);

    // Disable needs a code: none, a wrong one, a replayed one are refused and change nothing.
    let none = post_as(&api, &customer, "/v1/auth/2fa/disable", json!({})).await;
    assert_eq!(none.status(), 422);
    let wrong = post_as(
        &api,
        &customer,
        "/v1/auth/2fa/disable",
        json!({"code": "000000"}),
    )
    .await;
    assert_eq!(wrong.status(), 422);
    let replayed = post_as(
        &api,
        &customer,
        "/v1/auth/2fa/disable",
        json!({ "code": totp::code_now(&secret) }),
    )
    .await;
    assert_eq!(replayed.status(), 422);
    assert_eq!(
        api.count("SELECT count(*) FROM two_factor WHERE enabled_at IS NOT NULL")
            .await,
        1
    );
    challenge(&api, "jane@example.com").await;

    let disabled = post_as(
        &api,
        &customer,
        "/v1/auth/2fa/disable",
        json!({ "code": codes[0] }),
    )
    .await;
    assert_eq!(disabled.status(), 204);
    assert_eq!(api.count("SELECT count(*) FROM two_factor").await, 0);
    assert_eq!(api.count("SELECT count(*) FROM recovery_codes").await, 0);
    let plain = api.signed_in("jane@example.com", PASSWORD).await;
    assert_eq!(plain.amr, ["pwd"]);
}

#[tokio::test]
async fn administrators_cannot_turn_it_off() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let (_, codes) = enrol(&api, &admin).await;
    let refused = post_as(
        &api,
        &admin,
        "/v1/auth/2fa/disable",
        json!({ "code": codes[0] }),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        api.count("SELECT count(*) FROM recovery_codes WHERE used_at IS NULL")
            .await,
        10
    );
}

#[tokio::test]
async fn only_a_super_admin_with_the_second_factor_resets_another_users_two_factor() {
    let api = Api::spawn().await;
    let admin = api.signed_up_as("admin@example.com", Role::Admin).await;
    let (admin_secret, _) = enrol(&api, &admin).await;
    let boss = api.signed_up_as("boss@example.com", Role::SuperAdmin).await;
    let (boss_secret, _) = enrol(&api, &boss).await;
    let bystander = api.signed_up_as("other@example.com", Role::Admin).await;
    enrol(&api, &bystander).await;

    let admin_id = admin.user_id;
    let reset_path = format!("/v1/auth/users/{admin_id}/2fa/reset");

    // The boss signs in with the second factor.
    let challenge_id = challenge(&api, "boss@example.com").await;
    let boss = api
        .session_from(verify(&api, &challenge_id, &next_code(&boss_secret)).await)
        .await;

    // An ADMIN (with the second factor) may not reset it.
    let admin_challenge = challenge(&api, "admin@example.com").await;
    let admin_full = api
        .session_from(verify(&api, &admin_challenge, &next_code(&admin_secret)).await)
        .await;
    let boss_id = boss.user_id;
    let by_admin = post_as(
        &api,
        &admin_full,
        &format!("/v1/auth/users/{boss_id}/2fa/reset"),
        json!({}),
    )
    .await;
    assert_eq!(by_admin.status(), 403);
    // A SUPER_ADMIN holding a password-only token may not either.
    let boss_password_only = test_support::TestUser {
        amr: vec!["pwd".to_owned()],
        ..boss.as_issued()
    };
    let half = api
        .app
        .request_as(Method::POST, &reset_path, &boss_password_only)
        .send()
        .await
        .unwrap();
    assert_eq!(half.status(), 403);
    assert_eq!(problem_code(&json_of(half).await), "second-factor-required");
    // Nor their own.
    let own = post_as(
        &api,
        &boss,
        &format!("/v1/auth/users/{boss_id}/2fa/reset"),
        json!({}),
    )
    .await;
    assert_eq!(own.status(), 403);
    assert_eq!(api.count("SELECT count(*) FROM two_factor").await, 3);

    assert_eq!(audit::count(&api.pool).await, 0);

    let reset = api
        .app
        .request_as(Method::POST, &reset_path, &boss.as_issued())
        .header("x-request-id", "reset-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    let row = audit::expect(boss.user_id, "SUPER_ADMIN", "user", "two_factor.reset")
        .entity_id(admin_id)
        .request_id("reset-1")
        .only(&audit::rows(&api.pool).await);
    assert_eq!(
        row.changes,
        json!({"twoFactor": {"before": "ENABLED", "after": "OFF"}})
    );
    // The admin's enrolment and sessions are gone; they sign in with the password alone and
    // must enrol again before using admin routes.
    assert!(!api.session_allowed(admin_full.session_id).await);
    assert_eq!(sessions_of(&api, "admin@example.com").await, 0);
    let plain = api.signed_in("admin@example.com", PASSWORD).await;
    assert_eq!(plain.amr, ["pwd"]);
    let unknown = post_as(
        &api,
        &boss,
        &format!("/v1/auth/users/{}/2fa/reset", uuid::Uuid::now_v7()),
        json!({}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let again = post_as(&api, &boss, &reset_path, json!({})).await;
    assert_eq!(again.status(), 404);
}
