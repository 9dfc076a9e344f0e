//! SMS through Twilio's REST API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, a form
//! with `To`, `From` and `Body`, HTTP basic auth with the account SID and auth token. The answer's
//! `sid` is the provider message id.

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{ProviderError, Sms, SmsProvider, form};
use crate::config::TwilioSettings;

/// Sends SMS with Twilio.
pub struct TwilioProvider {
    http: reqwest::Client,
    settings: TwilioSettings,
}

impl TwilioProvider {
    /// A provider for the account in `settings`.
    pub fn new(http: reqwest::Client, settings: TwilioSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.account_sid.is_empty() && !settings.auth_token.expose().is_empty(),
            "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        );
        Ok(Self { http, settings })
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

impl SmsProvider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.settings.base_url, self.settings.account_sid
            );
            let response = self
                .http
                .post(url)
                .basic_auth(
                    &self.settings.account_sid,
                    Some(self.settings.auth_token.expose()),
                )
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form(&[
                    ("To", sms.to.as_str()),
                    ("From", self.settings.from.as_str()),
                    ("Body", sms.body.as_str()),
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
            let created: Created = serde_json::from_str(&body)
                .map_err(|e| ProviderError::Permanent(format!("unreadable answer: {e}")))?;
            Ok(created.sid)
        })
    }
}
