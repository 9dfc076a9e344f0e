//! The notification service's settings, read once at start through `service_kit::Env`.
//!
//! Providers are chosen per channel (`EMAIL_PROVIDER`, `SMS_PROVIDER`, `PUSH_PROVIDER`); the
//! `log` provider (the default everywhere) stores the rendered message in the database so that
//! `cargo xtask up` needs no external account. Production sets the real providers and their
//! secrets.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, Secret, ServiceSpec};

/// The notification service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// What is specific to notifications.
    pub notification: NotificationSettings,
    /// Live notifications over WebSocket.
    pub live: crate::live::LiveSettings,
}

/// Which implementation delivers one channel's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Store the rendered message in the database (local runs); see `GET /v1/notifications/dev/outbox`.
    Log,
    /// Email through Amazon SES v2.
    Ses,
    /// SMS through Twilio's REST API.
    Twilio,
    /// Push through Firebase Cloud Messaging HTTP v1.
    Fcm,
}

impl FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "log" => Ok(Self::Log),
            "ses" => Ok(Self::Ses),
            "twilio" => Ok(Self::Twilio),
            "fcm" => Ok(Self::Fcm),
            other => Err(format!("unknown provider {other:?}")),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Log => "log",
            Self::Ses => "ses",
            Self::Twilio => "twilio",
            Self::Fcm => "fcm",
        })
    }
}

/// Where brochure PDFs are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// A directory on the local disk (`cargo xtask up`).
    File,
    /// An S3 bucket.
    S3,
}

impl FromStr for StorageKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "file" | "local" => Ok(Self::File),
            "s3" => Ok(Self::S3),
            other => Err(format!("unknown storage {other:?} (file or s3)")),
        }
    }
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "file",
            Self::S3 => "s3",
        })
    }
}

/// Twilio account settings.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// API base URL (tests point it at a fake server).
    pub base_url: String,
    /// Account SID.
    pub account_sid: String,
    /// Auth token.
    pub auth_token: Secret<String>,
    /// The sending number (E.164) or alphanumeric sender id.
    pub from: String,
}

/// Firebase Cloud Messaging settings.
#[derive(Debug, Clone)]
pub struct FcmSettings {
    /// The Firebase project id.
    pub project_id: String,
    /// The service account's email (the JWT issuer).
    pub client_email: String,
    /// The service account's RSA private key (PEM).
    pub private_key: Secret<String>,
    /// OAuth2 token endpoint (tests point it at a fake server).
    pub token_url: String,
    /// FCM API base URL (tests point it at a fake server).
    pub base_url: String,
}

/// Where brochures come from.
#[derive(Debug, Clone)]
pub struct BrochureSettings {
    /// File or S3.
    pub storage: StorageKind,
    /// The S3 bucket (S3 storage).
    pub bucket: String,
    /// The directory (file storage).
    pub dir: String,
    /// Object key of the kitchen brochure PDF.
    pub kitchen_key: String,
    /// Object key of the bedroom brochure PDF.
    pub bedroom_key: String,
}

/// How the sender works through the delivery log.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Whether this process runs a sender (replicas that only serve the API can turn it off).
    pub enabled: bool,
    /// How often the sender looks for due messages when it was not woken.
    pub poll_interval: Duration,
    /// Messages claimed per round.
    pub batch_size: i64,
    /// Attempts before a transiently failing message is given up (FAILED).
    pub max_attempts: i32,
    /// Delay before the first retry; doubles per attempt.
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    pub retry_max: Duration,
    /// Longest wait for a provider's answer.
    pub provider_timeout: Duration,
}

/// Settings specific to the notification service.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// Email provider.
    pub email_provider: ProviderKind,
    /// SMS provider.
    pub sms_provider: ProviderKind,
    /// Push provider.
    pub push_provider: ProviderKind,
    /// The `From` of every email, e.g. `Lomash Wood <hello@lomashwood.co.uk>`.
    pub email_from: String,
    /// The kitchen design team's address (internal booking alerts).
    pub kitchen_team_email: String,
    /// The bedroom design team's address (internal booking alerts).
    pub bedroom_team_email: String,
    /// The public website, for links in messages.
    pub web_base_url: String,
    /// The public API (the gateway), for one-click unsubscribe links.
    pub public_api_url: String,
    /// The invoice link of a receipt; `{orderId}` and `{invoiceNumber}` are replaced.
    pub invoice_url_template: String,
    /// Key of the HMAC that signs unsubscribe links.
    pub unsubscribe_secret: Secret<String>,
    /// Whether `GET /v1/notifications/dev/outbox` answers (never in production).
    pub dev_outbox_enabled: bool,
    /// Twilio, when `SMS_PROVIDER=twilio`.
    pub twilio: TwilioSettings,
    /// FCM, when `PUSH_PROVIDER=fcm`.
    pub fcm: FcmSettings,
    /// Brochure PDFs.
    pub brochures: BrochureSettings,
    /// The delivery worker.
    pub sender: SenderSettings,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
        let email_provider = provider(env, "EMAIL_PROVIDER", &[ProviderKind::Ses])?;
        let sms_provider = provider(env, "SMS_PROVIDER", &[ProviderKind::Twilio])?;
        let push_provider = provider(env, "PUSH_PROVIDER", &[ProviderKind::Fcm])?;
        let dev_outbox_enabled: bool = env.get(
            "NOTIFICATION_DEV_OUTBOX",
            false,
            "Serve the log provider's messages at GET /v1/notifications/dev/outbox (never in production)",
        )?;
        if dev_outbox_enabled && env.is_production() {
            return Err(ConfigError {
                variable: "NOTIFICATION_DEV_OUTBOX".to_owned(),
                reason: "must not be on when ENVIRONMENT=production".to_owned(),
            });
        }
        let notification = NotificationSettings {
            email_provider,
            sms_provider,
            push_provider,
            email_from: env.get(
                "EMAIL_FROM",
                "Lomash Wood <hello@lomashwood.co.uk>".to_owned(),
                "The From of every email",
            )?,
            kitchen_team_email: env.get(
                "KITCHEN_TEAM_EMAIL",
                "kitchens@lomashwood.co.uk".to_owned(),
                "The kitchen design team's address, alerted of kitchen-and-bedroom bookings",
            )?,
            bedroom_team_email: env.get(
                "BEDROOM_TEAM_EMAIL",
                "bedrooms@lomashwood.co.uk".to_owned(),
                "The bedroom design team's address, alerted of kitchen-and-bedroom bookings",
            )?,
            web_base_url: trimmed(env.get(
                "WEB_BASE_URL",
                "http://127.0.0.1:3000".to_owned(),
                "The public website, for links in messages",
            )?),
            public_api_url: trimmed(env.get(
                "PUBLIC_API_URL",
                "http://127.0.0.1:3000".to_owned(),
                "The public API (gateway) base URL, for one-click unsubscribe links",
            )?),
            invoice_url_template: env.get(
                "INVOICE_URL_TEMPLATE",
                "http://127.0.0.1:3000/v1/invoices/{invoiceNumber}".to_owned(),
                "Invoice link in receipts; {orderId} and {invoiceNumber} are replaced",
            )?,
            unsubscribe_secret: env.secret_or(
                "UNSUBSCRIBE_SECRET",
                "dev-unsubscribe-secret-change-me",
                "HMAC key signing one-click unsubscribe links",
            )?,
            dev_outbox_enabled,
            twilio: TwilioSettings {
                base_url: trimmed(env.get(
                    "TWILIO_API_URL",
                    "https://api.twilio.com".to_owned(),
                    "Twilio REST API base URL",
                )?),
                account_sid: env.get(
                    "TWILIO_ACCOUNT_SID",
                    String::new(),
                    "Twilio account SID (SMS_PROVIDER=twilio)",
                )?,
                auth_token: required_for(
                    sms_provider == ProviderKind::Twilio,
                    "TWILIO_AUTH_TOKEN",
                    env.optional_secret(
                        "TWILIO_AUTH_TOKEN",
                        "Twilio auth token (SMS_PROVIDER=twilio)",
                    )?,
                )?,
                from: env.get(
                    "TWILIO_FROM",
                    "LomashWood".to_owned(),
                    "Sender number (E.164) or alphanumeric sender id of SMS",
                )?,
            },
            fcm: FcmSettings {
                project_id: env.get(
                    "FCM_PROJECT_ID",
                    String::new(),
                    "Firebase project id (PUSH_PROVIDER=fcm)",
                )?,
                client_email: env.get(
                    "FCM_CLIENT_EMAIL",
                    String::new(),
                    "Firebase service account email (PUSH_PROVIDER=fcm)",
                )?,
                private_key: required_for(
                    push_provider == ProviderKind::Fcm,
                    "FCM_PRIVATE_KEY",
                    env.optional_secret(
                        "FCM_PRIVATE_KEY",
                        "Firebase service account RSA private key, PEM (\\n escapes allowed)",
                    )?,
                )?,
                token_url: env.get(
                    "FCM_TOKEN_URL",
                    "https://oauth2.googleapis.com/token".to_owned(),
                    "OAuth2 token endpoint for the FCM service account",
                )?,
                base_url: trimmed(env.get(
                    "FCM_API_URL",
                    "https://fcm.googleapis.com".to_owned(),
                    "FCM HTTP v1 API base URL",
                )?),
            },
            brochures: BrochureSettings {
                storage: env.get(
                    "BROCHURE_STORAGE",
                    StorageKind::File,
                    "Where brochure PDFs are read from: file or s3",
                )?,
                bucket: env.get(
                    "BROCHURE_BUCKET",
                    "lomash-assets".to_owned(),
                    "S3 bucket holding the brochure PDFs (BROCHURE_STORAGE=s3)",
                )?,
                dir: env.get(
                    "BROCHURE_DIR",
                    "services/notification/assets".to_owned(),
                    "Directory holding the brochure PDFs (BROCHURE_STORAGE=file)",
                )?,
                kitchen_key: env.get(
                    "BROCHURE_KITCHEN_KEY",
                    "brochures/lomash-wood-kitchens.pdf".to_owned(),
                    "Object key of the kitchen brochure PDF",
                )?,
                bedroom_key: env.get(
                    "BROCHURE_BEDROOM_KEY",
                    "brochures/lomash-wood-bedrooms.pdf".to_owned(),
                    "Object key of the bedroom brochure PDF",
                )?,
            },
            sender: SenderSettings {
                enabled: env.get(
                    "NOTIFICATION_SENDER",
                    true,
                    "Run the delivery worker in this process (false: API and event consumer only)",
                )?,
                poll_interval: env.millis(
                    "NOTIFICATION_POLL_MS",
                    Duration::from_secs(2),
                    "How often the sender looks for due messages, in milliseconds",
                )?,
                batch_size: env
                    .get(
                        "NOTIFICATION_BATCH_SIZE",
                        20i64,
                        "Messages the sender claims per round",
                    )?
                    .clamp(1, 500),
                max_attempts: env
                    .get(
                        "NOTIFICATION_MAX_ATTEMPTS",
                        6i32,
                        "Attempts before a transiently failing message is marked FAILED",
                    )?
                    .max(1),
                retry_base: env.millis(
                    "NOTIFICATION_RETRY_BASE_MS",
                    Duration::from_secs(5),
                    "Delay before the first retry, doubled per attempt, in milliseconds",
                )?,
                retry_max: env.millis(
                    "NOTIFICATION_RETRY_MAX_MS",
                    Duration::from_secs(3600),
                    "Longest delay between two delivery attempts, in milliseconds",
                )?,
                provider_timeout: env.millis(
                    "NOTIFICATION_PROVIDER_TIMEOUT_MS",
                    Duration::from_secs(10),
                    "Longest wait for a provider's answer, in milliseconds",
                )?,
            },
        };
        let live = crate::live::LiveSettings::from_env(env)?;
        Ok(Self {
            common,
            notification,
            live,
        })
    }
}

/// A channel's provider: `log` or the channel's real one.
fn provider(
    env: &Env,
    name: &'static str,
    allowed: &[ProviderKind],
) -> Result<ProviderKind, ConfigError> {
    let help = match name {
        "EMAIL_PROVIDER" => "Email provider: log (stored, readable in dev) or ses",
        "SMS_PROVIDER" => "SMS provider: log (stored, readable in dev) or twilio",
        _ => "Push provider: log (stored, readable in dev) or fcm",
    };
    let kind: ProviderKind = env.get(name, ProviderKind::Log, help)?;
    if kind == ProviderKind::Log || allowed.contains(&kind) {
        Ok(kind)
    } else {
        Err(ConfigError {
            variable: name.to_owned(),
            reason: format!("{kind} cannot deliver this channel"),
        })
    }
}

/// A secret that only the chosen provider needs: an error naming it when that provider is on and
/// it is missing, an empty secret otherwise.
fn required_for(
    needed: bool,
    name: &str,
    value: Option<Secret<String>>,
) -> Result<Secret<String>, ConfigError> {
    match value {
        Some(value) => Ok(value),
        None if needed => Err(ConfigError {
            variable: name.to_owned(),
            reason: "required by the chosen provider".to_owned(),
        }),
        None => Ok(Secret::new(String::new())),
    }
}

fn trimmed(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::NotificationService;
    use service_kit::Service;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(NotificationService::SPEC, &Env::from_pairs(pairs.to_vec()))
    }

    #[test]
    fn every_channel_defaults_to_the_log_provider() {
        let config = config(&[]).unwrap().notification;
        assert_eq!(config.email_provider, ProviderKind::Log);
        assert_eq!(config.sms_provider, ProviderKind::Log);
        assert_eq!(config.push_provider, ProviderKind::Log);
        assert!(!config.dev_outbox_enabled);
    }

    #[test]
    fn a_provider_of_another_channel_is_refused_naming_the_variable() {
        let error = config(&[("SMS_PROVIDER", "ses")]).unwrap_err();
        assert_eq!(error.variable, "SMS_PROVIDER");
    }

    #[test]
    fn a_real_provider_needs_its_secret_the_log_provider_does_not() {
        let error = config(&[("SMS_PROVIDER", "twilio")]).unwrap_err();
        assert_eq!(error.variable, "TWILIO_AUTH_TOKEN");
        let error = config(&[("PUSH_PROVIDER", "fcm")]).unwrap_err();
        assert_eq!(error.variable, "FCM_PRIVATE_KEY");
        assert!(config(&[("SMS_PROVIDER", "twilio"), ("TWILIO_AUTH_TOKEN", "t")]).is_ok());
    }
}
