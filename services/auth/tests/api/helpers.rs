//! Drives the auth service as the gateway would: anonymous calls carry an anonymous internal
//! token; signed-in calls carry a user token minted from the real session after login.

use auth_service::AuthService;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use service_kit::Role;
use sqlx::PgPool;
pub use test_support::problem::code as problem_code;
use test_support::{TestApp, TestUser};
use uuid::Uuid;

/// A password that passes the policy for the test users' names and emails.
pub const PASSWORD: &str = "oak-worktop-with-brass-42";

/// The service under test, its database and its Redis.
pub struct Api {
    pub app: TestApp,
    pub pool: PgPool,
    redis: redis::aio::MultiplexedConnection,
    prefix: String,
}

/// A signed-in user, as login answered.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    pub access_token: String,
    pub refresh_token: String,
    /// The access token's `amr`.
    pub amr: Vec<String>,
}

impl Session {
    /// The identity the gateway would vouch for with this session, signed in as the role
    /// normally must be (with the second factor for administrators, as [`TestUser::new`]).
    pub fn user(&self) -> TestUser {
        TestUser::signed_in(self.user_id, self.role, self.session_id)
    }

    /// The identity exactly as the access token says (its real `amr`).
    pub fn as_issued(&self) -> TestUser {
        TestUser {
            amr: self.amr.clone(),
            ..self.user()
        }
    }
}

/// The refresh token set by a response's `Set-Cookie`, with the whole header.
pub fn refresh_cookie(response: &Response) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("refresh_token="))
        .map(|header| {
            let value = header["refresh_token=".len()..]
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            (value, header.to_owned())
        })
}

/// The claims of a JWT, read without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url header"))
        .expect("JSON header")
}

impl Api {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with::<AuthService>(overrides).await;
        let pool = app.pool().await;
        let redis = redis::Client::open("redis://127.0.0.1:6379")
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis reachable");
        let prefix = app.env["REDIS_KEY_PREFIX"].clone();
        Self {
            app,
            pool,
            redis,
            prefix,
        }
    }

    /// An anonymous JSON `POST` through the gateway.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.app.post_json(path, body).await
    }

    /// A request carrying `session`'s identity.
    pub fn as_user(&self, session: &Session, method: Method, path: &str) -> RequestBuilder {
        self.app.request_as(method, path, &session.user())
    }

    pub async fn register(&self, email: &str) -> Response {
        self.post(
            "/v1/auth/register",
            &json!({
                "email": email,
                "password": PASSWORD,
                "firstName": "Jane",
                "lastName": "Doe",
                "phone": "07700 900123",
            }),
        )
        .await
    }

    /// The plaintext codes sent to `email` for `purpose`, newest first (read from the outbox,
    /// where the notification service would get them).
    pub async fn otps(&self, email: &str, purpose: &str) -> Vec<String> {
        sqlx::query_scalar::<_, String>(
            "SELECT envelope->'payload'->>'code' FROM outbox
             WHERE topic = 'auth.otp_requested'
               AND envelope->'payload'->>'email' = $1
               AND envelope->'payload'->>'purpose' = $2
             ORDER BY seq DESC",
        )
        .bind(email)
        .bind(purpose)
        .fetch_all(&self.pool)
        .await
        .expect("query the outbox")
    }

    pub async fn latest_otp(&self, email: &str, purpose: &str) -> String {
        self.otps(email, purpose)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {purpose} code sent to {email}"))
    }

    /// Envelopes in the outbox with `topic`, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar::<_, Value>("SELECT envelope FROM outbox WHERE topic = $1 ORDER BY seq")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .expect("query the outbox")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Reads the session out of a 200 login or refresh answer.
    pub async fn session_from(&self, response: Response) -> Session {
        assert_eq!(response.status(), 200, "expected tokens");
        let (refresh_token, _) = refresh_cookie(&response).expect("refresh cookie set");
        let body: Value = response.json().await.expect("json");
        let access_token = body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned();
        let claims = jwt_claims(&access_token);
        Session {
            user_id: claims["sub"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("sub"),
            session_id: claims["sid"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("sid"),
            role: serde_json::from_value(claims["role"].clone()).expect("role"),
            amr: serde_json::from_value(claims["amr"].clone()).expect("amr"),
            access_token,
            refresh_token,
        }
    }

    /// Registers, verifies and signs in `email`.
    pub async fn signed_up(&self, email: &str) -> Session {
        assert_eq!(self.register(email).await.status(), 201);
        let code = self.latest_otp(email, "EMAIL_VERIFICATION").await;
        let verified = self
            .post(
                "/v1/auth/verify-email",
                &json!({ "email": email, "code": code }),
            )
            .await;
        assert_eq!(verified.status(), 200);
        self.signed_in(email, PASSWORD).await
    }

    pub async fn signed_in(&self, email: &str, password: &str) -> Session {
        let response = self.login(email, password).await;
        self.session_from(response).await
    }

    /// A signed-in user of `role` (created as a customer, then given the role in the database).
    pub async fn signed_up_as(&self, email: &str, role: Role) -> Session {
        assert_eq!(self.register(email).await.status(), 201);
        sqlx::query("UPDATE users SET role = $2 WHERE email = $1")
            .bind(email)
            .bind(role.as_str())
            .execute(&self.pool)
            .await
            .expect("set role");
        self.signed_in(email, PASSWORD).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.app
            .request(Method::POST, "/v1/auth/refresh")
            .header("cookie", format!("refresh_token={refresh_token}"))
            .send()
            .await
            .expect("request reaches the service")
    }

    /// Whether the gateway's allow-list holds `session_id`.
    pub async fn session_allowed(&self, session_id: Uuid) -> bool {
        let mut redis = self.redis.clone();
        redis::cmd("EXISTS")
            .arg(auth_client::session_key(&self.prefix, session_id))
            .query_async::<bool>(&mut redis)
            .await
            .expect("redis answers")
    }

    /// Every Redis key of this service instance, with its value when it is a string.
    pub async fn redis_dump(&self) -> Vec<(String, Option<String>)> {
        let mut redis = self.redis.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut redis)
            .await
            .expect("redis answers");
        let mut out = Vec::new();
        for key in keys {
            let value: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg(&key).query_async(&mut redis).await;
            let mut fields: Vec<String> = redis::cmd("HVALS")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap_or_default();
            let value = value.ok().flatten().or_else(|| fields.pop());
            out.push((key, value));
        }
        out
    }

    pub async fn user_row(&self, email: &str) -> Option<Value> {
        sqlx::query_scalar::<_, Value>("SELECT to_jsonb(users) FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .expect("query users")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}
