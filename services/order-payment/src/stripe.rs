//! Stripe: settings, and a small client over async-stripe for the four calls we make
//! (create/retrieve PaymentIntent, create Refund; cancel for completeness of reconciliation).
//!
//! The client is a concrete type, not a trait object: tests point it at `stripe-fake`, a real
//! HTTP server, with `STRIPE_API_BASE`. Stripe objects are turned into the few facts we act on
//! ([`IntentFacts`], [`RefundFacts`]) in one place, shared by the handlers, the webhook and the
//! reconciliation job, so all three read Stripe the same way.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use service_kit::Problem;
use service_kit::config::{ConfigError, Env, Secret};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods, RetrievePaymentIntent,
};
use stripe_core::refund::{CreateRefund, CreateRefundReason};
use stripe_core::{PaymentIntent, PaymentIntentStatus, Refund};

/// The local-development API key (`cargo xtask up` runs `stripe-fake`, which accepts any
/// `sk_` key). Production refuses it.
pub const DEV_SECRET_KEY: &str = "sk_test_lomash_local";

/// The local-development webhook signing secret (also in `.env.example`, which
/// `cargo xtask stripe-webhook` signs with). Production refuses it.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_lomash_local_development";

/// Stripe's real API.
pub const STRIPE_API: &str = "https://api.stripe.com/";

/// How far a webhook's signed timestamp may be from our clock (Stripe's own default).
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// Stripe settings.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// The secret API key.
    pub secret_key: Secret<String>,
    /// Webhook signing secrets; more than one while a secret is rotated.
    pub webhook_secrets: Vec<Secret<String>>,
    /// The API base URL, ending with `/`.
    pub api_base: String,
    /// Timeout of one Stripe call.
    pub timeout: Duration,
    /// Intents still pending after this long are checked with Stripe by the reconciliation job.
    pub reconcile_after: Duration,
    /// How often the reconciliation job runs.
    pub reconcile_interval: Duration,
}

impl StripeSettings {
    /// Reads the Stripe settings; in production, development secrets and a non-HTTPS API are
    /// refused.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let secret_key = env.secret_or(
            "STRIPE_SECRET_KEY",
            DEV_SECRET_KEY,
            "Stripe secret API key (sk_live_... in production)",
        )?;
        let webhook = env.secret_or(
            "STRIPE_WEBHOOK_SECRET",
            DEV_WEBHOOK_SECRET,
            "Stripe webhook signing secret(s), comma-separated while rotating (whsec_...)",
        )?;
        let api_base: String = env.get(
            "STRIPE_API_BASE",
            STRIPE_API.to_owned(),
            "Stripe API base URL (a local stand-in such as stripe-fake in development and tests)",
        )?;
        let timeout = env.millis(
            "STRIPE_TIMEOUT_MS",
            Duration::from_secs(10),
            "Timeout of one Stripe API call, in milliseconds",
        )?;
        let reconcile_after: u64 = env.get(
            "PAYMENT_RECONCILE_AFTER_SECS",
            3600,
            "Seconds after which a still-pending payment is checked with Stripe",
        )?;
        let reconcile_every: u64 = env.get(
            "PAYMENT_RECONCILE_INTERVAL_SECS",
            300,
            "How often the payment reconciliation job runs, in seconds",
        )?;
        let webhook_secrets: Vec<Secret<String>> = webhook
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Secret::new(s.to_owned()))
            .collect();
        let refuse = |variable: &str, reason: &str| ConfigError {
            variable: variable.to_owned(),
            reason: reason.to_owned(),
        };
        if webhook_secrets.is_empty() {
            return Err(refuse(
                "STRIPE_WEBHOOK_SECRET",
                "must name at least one secret",
            ));
        }
        if env.is_production() {
            if secret_key.expose() == DEV_SECRET_KEY {
                return Err(refuse(
                    "STRIPE_SECRET_KEY",
                    "the development key is refused when ENVIRONMENT=production",
                ));
            }
            if webhook_secrets
                .iter()
                .any(|s| s.expose() == DEV_WEBHOOK_SECRET)
            {
                return Err(refuse(
                    "STRIPE_WEBHOOK_SECRET",
                    "the development secret is refused when ENVIRONMENT=production",
                ));
            }
            if !api_base.starts_with("https://") {
                return Err(refuse(
                    "STRIPE_API_BASE",
                    "must be an https:// URL when ENVIRONMENT=production",
                ));
            }
        }
        let mut api_base = api_base;
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        Ok(Self {
            secret_key,
            webhook_secrets,
            api_base,
            timeout: timeout.max(Duration::from_millis(1)),
            reconcile_after: Duration::from_secs(reconcile_after.max(60)),
            reconcile_interval: Duration::from_secs(reconcile_every.max(1)),
        })
    }
}

/// A PaymentIntent's state, ordered so that state only moves forward (see `payments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Waiting for the customer (or processing).
    Pending,
    /// The last attempt failed; the customer may try again on the same intent.
    Failed,
    /// Paid.
    Succeeded,
    /// Cancelled; final.
    Cancelled,
}

/// What we act on from a PaymentIntent.
#[derive(Debug, Clone)]
pub struct IntentFacts {
    /// `pi_...`
    pub id: String,
    /// For the browser's Stripe.js.
    pub client_secret: Option<String>,
    /// Where it stands.
    pub state: IntentState,
    /// Amount in pence.
    pub amount: i64,
    /// Amount captured in pence.
    pub amount_received: i64,
    /// The charge (`ch_...`), once paid.
    pub charge_id: Option<String>,
    /// The decline code of the last failed attempt, e.g. `card_declined`.
    pub failure_code: Option<String>,
    /// Its customer-safe message.
    pub failure_message: Option<String>,
    /// Our metadata (`orderId`, `userId`).
    pub metadata: HashMap<String, String>,
}

impl IntentFacts {
    /// Reads a PaymentIntent.
    pub fn of(intent: &PaymentIntent) -> Self {
        let error = intent.last_payment_error.as_deref();
        let state = match &intent.status {
            PaymentIntentStatus::Succeeded => IntentState::Succeeded,
            PaymentIntentStatus::Canceled => IntentState::Cancelled,
            // Back to requires_payment_method with an error = the attempt failed.
            PaymentIntentStatus::RequiresPaymentMethod if error.is_some() => IntentState::Failed,
            _ => IntentState::Pending,
        };
        Self {
            id: intent.id.as_str().to_owned(),
            client_secret: intent.client_secret.clone(),
            state,
            amount: intent.amount,
            amount_received: intent.amount_received,
            charge_id: intent
                .latest_charge
                .as_ref()
                .map(|c| c.id().as_str().to_owned()),
            failure_code: error.and_then(|e| {
                e.decline_code
                    .clone()
                    .or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))
            }),
            failure_message: error.and_then(|e| e.message.clone()),
            metadata: intent.metadata.clone(),
        }
    }
}

/// A refund's state as Stripe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    /// Not settled yet (`pending`, `requires_action`).
    Pending,
    /// The money went back.
    Succeeded,
    /// It did not (`failed`).
    Failed,
    /// It was cancelled (`canceled`).
    Cancelled,
}

/// What we act on from a Refund.
#[derive(Debug, Clone)]
pub struct RefundFacts {
    /// `re_...`
    pub id: String,
    /// Where it stands.
    pub state: RefundState,
    /// Amount in pence.
    pub amount: i64,
    /// Stripe's failure reason, when failed.
    pub failure_reason: Option<String>,
    /// The PaymentIntent refunded.
    pub payment_intent_id: Option<String>,
}

impl RefundFacts {
    /// Reads a Refund.
    pub fn of(refund: &Refund) -> Self {
        let state = match refund.status.as_deref() {
            Some("succeeded") => RefundState::Succeeded,
            Some("failed") => RefundState::Failed,
            Some("canceled") => RefundState::Cancelled,
            _ => RefundState::Pending,
        };
        Self {
            id: refund.id.as_str().to_owned(),
            state,
            amount: refund.amount,
            failure_reason: refund.failure_reason.clone(),
            payment_intent_id: refund
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_owned()),
        }
    }
}

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeCallError {
    /// Stripe answered with an error (4xx): our request or the card was refused.
    #[error("Stripe refused the request ({status} {error_type}: {code:?})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stripe's error type, e.g. `card_error`, `invalid_request_error`.
        error_type: String,
        /// Stripe's error code, e.g. `card_declined`, `amount_too_large`.
        code: Option<String>,
        /// Stripe's message (safe to show for card errors).
        message: Option<String>,
    },
    /// Stripe did not answer in time.
    #[error("Stripe timed out")]
    Timeout,
    /// Stripe could not be reached or failed (5xx, connection errors, unreadable answers).
    #[error("Stripe unavailable: {0}")]
    Unavailable(String),
}

impl From<StripeError> for StripeCallError {
    fn from(error: StripeError) -> Self {
        match error {
            StripeError::Stripe(error, status) if status < 500 => Self::Refused {
                status,
                error_type: error.type_.as_str().to_owned(),
                code: error.code.as_ref().map(|c| c.as_str().to_owned()),
                message: error.message.clone(),
            },
            StripeError::Timeout => Self::Timeout,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl StripeCallError {
    /// The problem a client sees (the cause is logged, Stripe's internals are not sent).
    pub fn to_problem(&self) -> Problem {
        tracing::warn!(error = %self, "Stripe call failed");
        match self {
            Self::Refused {
                error_type,
                message,
                ..
            } if error_type == "card_error" => Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "card-declined",
                "Card declined",
            )
            .with_detail(
                message
                    .clone()
                    .unwrap_or_else(|| "The card was declined.".to_owned()),
            ),
            Self::Refused { .. } => Problem::new(
                StatusCode::BAD_GATEWAY,
                "payment-provider-refused",
                "Payment provider refused the request",
            )
            .with_detail("The payment provider refused the request; nothing was charged."),
            Self::Timeout => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "Upstream timeout",
            )
            .with_detail("The payment provider did not answer in time."),
            Self::Unavailable(_) => {
                Problem::unavailable("The payment provider is unavailable; try again shortly.")
            }
        }
    }
}

/// Stripe, as this service uses it.
#[derive(Clone, Debug)]
pub struct Stripe {
    client: Client,
}

impl Stripe {
    /// A client for `settings`.
    pub fn new(settings: &StripeSettings) -> anyhow::Result<Self> {
        let client = ClientBuilder::new(settings.secret_key.expose().clone())
            .url(settings.api_base.clone())
            .timeout(settings.timeout)
            .app_info(
                "lomash-order-payment",
                Some(env!("CARGO_PKG_VERSION").to_owned()),
                None,
            )
            .build()?;
        Ok(Self { client })
    }

    fn idempotent(key: &str) -> Result<RequestStrategy, StripeCallError> {
        IdempotencyKey::new(key)
            .map(RequestStrategy::Idempotent)
            .map_err(|e| StripeCallError::Unavailable(format!("idempotency key: {e}")))
    }

    /// Creates a PaymentIntent for `amount` pence (GBP, automatic payment methods) under
    /// Stripe's `idempotency_key`, so a retried call returns the same intent.
    pub async fn create_intent(
        &self,
        amount: i64,
        metadata: HashMap<String, String>,
        description: &str,
        idempotency_key: &str,
    ) -> Result<IntentFacts, StripeCallError> {
        let intent = CreatePaymentIntent::new(amount, stripe_types::Currency::GBP)
            .automatic_payment_methods(CreatePaymentIntentAutomaticPaymentMethods::new(true))
            .metadata(metadata)
            .description(description)
            .customize()
            .request_strategy(Self::idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(IntentFacts::of(&intent))
    }

    /// The PaymentIntent `id` as Stripe has it now.
    pub async fn retrieve_intent(&self, id: &str) -> Result<IntentFacts, StripeCallError> {
        let intent = RetrievePaymentIntent::new(id).send(&self.client).await?;
        Ok(IntentFacts::of(&intent))
    }

    /// Refunds `amount` pence of the PaymentIntent `intent_id` under `idempotency_key`.
    pub async fn create_refund(
        &self,
        intent_id: &str,
        amount: i64,
        metadata: HashMap<String, String>,
        idempotency_key: &str,
    ) -> Result<RefundFacts, StripeCallError> {
        let refund = CreateRefund::new()
            .payment_intent(intent_id)
            .amount(amount)
            .reason(CreateRefundReason::RequestedByCustomer)
            .metadata(metadata)
            .customize()
            .request_strategy(Self::idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(RefundFacts::of(&refund))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn development_defaults_point_at_stripe_with_local_secrets() {
        let settings = StripeSettings::from_env(&env(&[])).expect("defaults");
        assert_eq!(settings.api_base, STRIPE_API);
        assert_eq!(settings.secret_key.expose(), DEV_SECRET_KEY);
        assert_eq!(settings.webhook_secrets.len(), 1);
    }

    #[test]
    fn several_webhook_secrets_are_accepted_during_rotation() {
        let settings =
            StripeSettings::from_env(&env(&[("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new")]))
                .expect("valid");
        let secrets: Vec<&String> = settings
            .webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["whsec_old", "whsec_new"]);
    }

    #[test]
    fn production_refuses_missing_or_development_secrets() {
        let missing = StripeSettings::from_env(&env(&[("ENVIRONMENT", "production")]));
        assert_eq!(missing.expect_err("refused").variable, "STRIPE_SECRET_KEY");

        let dev_key = StripeSettings::from_env(&env(&[
            ("ENVIRONMENT", "production"),
            ("STRIPE_SECRET_KEY", DEV_SECRET_KEY),
            ("STRIPE_WEBHOOK_SECRET", "whsec_real"),
        ]));
        assert_eq!(dev_key.expect_err("refused").variable, "STRIPE_SECRET_KEY");

        let dev_webhook = StripeSettings::from_env(&env(&[
            ("ENVIRONMENT", "production"),
            ("STRIPE_SECRET_KEY", "sk_live_real"),
            (
                "STRIPE_WEBHOOK_SECRET",
                &format!("whsec_real,{DEV_WEBHOOK_SECRET}"),
            ),
        ]));
        assert_eq!(
            dev_webhook.expect_err("refused").variable,
            "STRIPE_WEBHOOK_SECRET"
        );

        let plain_http = StripeSettings::from_env(&env(&[
            ("ENVIRONMENT", "production"),
            ("STRIPE_SECRET_KEY", "sk_live_real"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_real"),
            ("STRIPE_API_BASE", "http://127.0.0.1:12111"),
        ]));
        assert_eq!(plain_http.expect_err("refused").variable, "STRIPE_API_BASE");

        let real = StripeSettings::from_env(&env(&[
            ("ENVIRONMENT", "production"),
            ("STRIPE_SECRET_KEY", "sk_live_real"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_real"),
        ]));
        assert!(real.is_ok());
    }
}
