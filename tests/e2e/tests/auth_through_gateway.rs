//! Identity end to end, through the real gateway in front of the real auth service (real
//! Postgres and Redis): sign-up, sessions, refresh rotation and reuse, logout and suspension take
//! effect at the gateway, and nothing a client sends can claim an identity.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use auth_service::AuthService;
use gateway_service::GatewayService;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use test_support::TestApp;

const PASSWORD: &str = "correct horse battery staple 42";

/// Auth behind a gateway that reads auth's live-session keys.
struct Platform {
    auth: TestApp,
    gateway: TestApp,
    client: Client,
}

impl Platform {
    async fn start() -> Self {
        let auth = TestApp::spawn::<AuthService>().await;
        let session_prefix = auth.env["REDIS_KEY_PREFIX"].clone();
        let mut env: Vec<(String, String)> = gateway_service::UPSTREAMS
            .iter()
            .map(|(name, _)| {
                (
                    gateway_service::upstream_var(name),
                    "http://127.0.0.1:1".into(),
                )
            })
            .filter(|(var, _)| var != "UPSTREAM_AUTH_URL")
            .collect();
        env.extend([
            ("UPSTREAM_AUTH_URL".into(), auth.base_url.clone()),
            ("SESSION_KEY_PREFIX".into(), session_prefix),
            ("RATE_LIMIT_REGISTER".into(), "1000/60s".into()),
            ("RATE_LIMIT_LOGIN".into(), "1000/60s".into()),
            ("RATE_LIMIT_OTP".into(), "1000/60s".into()),
        ]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let gateway = TestApp::spawn_with::<GatewayService>(&env).await;
        Self {
            auth,
            gateway,
            client: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.gateway.url(path)
    }

    async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn me(&self, token: &str) -> StatusCode {
        self.client
            .get(self.url("/v1/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/v1/auth/refresh"))
            .header("cookie", format!("refresh_token={refresh_token}"))
            .send()
            .await
            .unwrap()
    }

    /// The verification code auth handed to the notification service (its outbox).
    async fn otp(&self, email: &str) -> String {
        sqlx::query_scalar::<_, String>(
            "SELECT envelope->'payload'->>'code' FROM outbox
             WHERE topic = 'auth.otp_requested' AND envelope->'payload'->>'email' = $1
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(email)
        .fetch_one(&self.auth.pool().await)
        .await
        .unwrap()
    }

    async fn sign_up(&self, email: &str) {
        let registered = self
            .post(
                "/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "firstName": "Jane", "lastName": "Doe"}),
            )
            .await;
        assert_eq!(registered.status(), 201);
        assert!(registered.headers().contains_key("x-request-id"));
        let code = self.otp(email).await;
        let verified = self
            .post(
                "/v1/auth/verify-email",
                json!({"email": email, "code": code}),
            )
            .await;
        assert_eq!(verified.status(), 200);
    }

    /// Enrols the signed-in user (`token`) in two-factor sign-in, then signs in with the
    /// password and a code; returns the access token, which carries `amr: ["pwd","otp"]`.
    async fn enrol_and_sign_in(&self, email: &str, token: &str) -> String {
        use test_support::totp;
        let setup: Value = self
            .client
            .post(self.url("/v1/auth/2fa/setup"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = setup["secret"].as_str().unwrap().to_owned();
        let confirmed = self
            .client
            .post(self.url("/v1/auth/2fa/confirm"))
            .bearer_auth(token)
            .json(&json!({ "code": totp::code_now(&secret) }))
            .send()
            .await
            .unwrap();
        assert_eq!(confirmed.status(), 200);
        let login = self
            .post(
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(login.status(), 200);
        let challenge: Value = login.json().await.unwrap();
        assert_eq!(challenge["twoFactorRequired"], true);
        // The next step's code: the confirming one may not be used again.
        let code = totp::code_at(&secret, totp::now() + totp::STEP_SECS);
        let verified = self
            .post(
                "/v1/auth/2fa/verify",
                json!({ "challengeId": challenge["challengeId"], "code": code }),
            )
            .await;
        assert_eq!(verified.status(), 200);
        tokens(verified).await.0
    }

    /// Signs in; returns (access token, refresh token).
    async fn login(&self, email: &str) -> (String, String) {
        let login = self
            .post(
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(login.status(), 200);
        tokens(login).await
    }
}

async fn tokens(response: Response) -> (String, String) {
    let refresh = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("refresh_token="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    (body["accessToken"].as_str().unwrap().to_owned(), refresh)
}

/// Longer than the gateway's positive session cache (at most one second).
async fn past_the_session_cache() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn sign_up_refresh_reuse_and_logout_take_effect_at_the_gateway() {
    let platform = Platform::start().await;
    platform.sign_up("jane@example.com").await;
    let (access, refresh) = platform.login("jane@example.com").await;

    let me = platform
        .client
        .get(platform.url("/v1/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "jane@example.com");
    assert_eq!(me["role"], "CUSTOMER");

    // Refresh rotates; the old refresh token used again revokes the family, and the access
    // token of that session stops working at the gateway.
    let refreshed = platform.refresh(&refresh).await;
    assert_eq!(refreshed.status(), 200);
    let (access_2, _) = tokens(refreshed).await;
    assert_eq!(platform.me(&access_2).await, 200);
    assert_eq!(platform.refresh(&refresh).await.status(), 401);
    past_the_session_cache().await;
    assert_eq!(platform.me(&access_2).await, 401);
    assert_eq!(platform.me(&access).await, 401);

    // A new session, then logout: its access token is refused from then on.
    let (access_3, _) = platform.login("jane@example.com").await;
    assert_eq!(platform.me(&access_3).await, 200);
    let logout = platform
        .client
        .post(platform.url("/v1/auth/logout"))
        .bearer_auth(&access_3)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    past_the_session_cache().await;
    assert_eq!(platform.me(&access_3).await, 401);
}

#[tokio::test]
async fn a_suspended_user_is_refused_at_once_and_roles_are_enforced() {
    let platform = Platform::start().await;
    platform.sign_up("sam@example.com").await;
    let (customer, _) = platform.login("sam@example.com").await;
    let customer_id = platform
        .client
        .get(platform.url("/v1/auth/me"))
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A customer cannot reach the admin table.
    let listed = platform
        .client
        .get(platform.url("/v1/auth/users"))
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 403);

    // The first administrator comes from the operational command's library function.
    let pool = platform.auth.pool().await;
    auth_service::create_admin(&pool, "root@example.com", PASSWORD)
        .await
        .unwrap();
    let (password_only, _) = platform.login("root@example.com").await;
    // Until the administrator signs in with a second factor, the admin routes stay closed.
    let refused = platform
        .client
        .get(platform.url("/v1/auth/users"))
        .bearer_auth(&password_only)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let admin = platform
        .enrol_and_sign_in("root@example.com", &password_only)
        .await;
    let suspended = platform
        .client
        .patch(platform.url(&format!("/v1/auth/users/{customer_id}")))
        .bearer_auth(&admin)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"status":"SUSPENDED"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        suspended.status(),
        200,
        "{}",
        suspended.text().await.unwrap()
    );
    past_the_session_cache().await;
    assert_eq!(platform.me(&customer).await, 401);
    let login = platform
        .post(
            "/v1/auth/login",
            json!({"email": "sam@example.com", "password": PASSWORD}),
        )
        .await;
    assert_ne!(login.status(), 200);
}

#[tokio::test]
async fn spoofed_identity_headers_and_forged_tokens_are_refused() {
    let platform = Platform::start().await;
    // No token, but headers claiming to be an administrator.
    let spoofed = platform
        .client
        .get(platform.url("/v1/auth/users"))
        .header("x-user-id", "00000000-0000-0000-0000-000000000001")
        .header("x-user-role", "SUPER_ADMIN")
        .header("x-internal-token", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 401);
    // A made-up bearer token.
    assert_eq!(platform.me("eyJhbGciOiJub25lIn0.e30.").await, 401);
    // Straight to the service, around the gateway.
    let direct = platform
        .client
        .get(platform.auth.url("/v1/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    // /internal is never routed.
    let internal = platform
        .post("/internal/verify", json!({"accessToken": "x"}))
        .await;
    assert_eq!(internal.status(), 404);
}
