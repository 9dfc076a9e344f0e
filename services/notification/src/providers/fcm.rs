//! Push through Firebase Cloud Messaging HTTP v1.
//!
//! The service account signs a JWT (RS256, `scope` = firebase.messaging, audience = the token
//! URL), trades it at the OAuth2 token endpoint for an access token (cached until a minute before
//! it expires), then `POST {base}/v1/projects/{project}/messages:send` with
//! `{"message": {"token", "notification": {"title", "body"}}}`. The answer's `name` is the
//! provider message id. A 401 drops the cached token so the next attempt fetches a fresh one.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{ProviderError, Push, PushProvider, form};
use crate::config::FcmSettings;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// Sends push notifications with FCM.
pub struct FcmProvider {
    http: reqwest::Client,
    settings: FcmSettings,
    key: EncodingKey,
    token: Mutex<Option<(String, Instant)>>,
}

impl FcmProvider {
    /// A provider for the service account in `settings`.
    pub fn new(http: reqwest::Client, settings: FcmSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.project_id.is_empty() && !settings.client_email.is_empty(),
            "PUSH_PROVIDER=fcm needs FCM_PROJECT_ID, FCM_CLIENT_EMAIL and FCM_PRIVATE_KEY"
        );
        let pem = settings.private_key.expose().replace("\\n", "\n");
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("FCM_PRIVATE_KEY is not an RSA private key: {e}"))?;
        Ok(Self {
            http,
            settings,
            key,
            token: Mutex::new(None),
        })
    }

    async fn access_token(&self) -> Result<String, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.settings.client_email,
            scope: SCOPE,
            aud: &self.settings.token_url,
            iat: now,
            exp: now + 3600,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| ProviderError::Permanent(format!("signing the FCM assertion: {e}")))?;
        let response = self
            .http
            .post(&self.settings.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ]))
            .send()
            .await
            .map_err(|e| ProviderError::from_transport(&e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| ProviderError::from_transport(&e))?;
        if !status.is_success() {
            return Err(ProviderError::from_status(status, &body));
        }
        let token: TokenAnswer = serde_json::from_str(&body)
            .map_err(|e| ProviderError::Transient(format!("unreadable token answer: {e}")))?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600).saturating_sub(60));
        *cached = Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Sent {
    name: String,
}

impl PushProvider for FcmProvider {
    fn name(&self) -> &'static str {
        "fcm"
    }

    fn send<'a>(&'a self, push: &'a Push) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let token = self.access_token().await?;
            let url = format!(
                "{}/v1/projects/{}/messages:send",
                self.settings.base_url, self.settings.project_id
            );
            let response = self
                .http
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({
                    "message": {
                        "token": push.token,
                        "notification": { "title": push.title, "body": push.body },
                    }
                }))
                .send()
                .await
                .map_err(|e| ProviderError::from_transport(&e))?;
            let status = response.status();
            let body = response
                .text()
                .await
                .map_err(|e| ProviderError::from_transport(&e))?;
            if status == reqwest::StatusCode::UNAUTHORIZED {
                // The token was revoked or expired early: fetch a new one next time.
                *self.token.lock().await = None;
                return Err(ProviderError::Transient(format!("HTTP {status}")));
            }
            if !status.is_success() {
                return Err(ProviderError::from_status(status, &body));
            }
            let sent: Sent = serde_json::from_str(&body)
                .map_err(|e| ProviderError::Permanent(format!("unreadable answer: {e}")))?;
            Ok(sent.name)
        })
    }
}
