//! Message templates: files under `services/notification/templates/` (versioned with the code),
//! compiled into the binary and rendered with minijinja.
//!
//! - `layout.html` / `layout.txt`: the shared layout (brand colours, footer, the unsubscribe link
//!   of marketing mail); every email extends both and fills `subject` and `content`.
//! - `email/<name>.html` + `email/<name>.txt`, `sms/<name>.txt`, `push/<name>.txt` (its `subject`
//!   block is the notification title).
//! - `samples.json`: a sample context per template — the admin preview's default, and what the
//!   test rendering every template uses.
//!
//! Undefined variables are errors (`UndefinedBehavior::Strict`), so a template and the code that
//! feeds it cannot drift into blank emails: the drift fails a test or, at worst, dead-letters the
//! event rather than sending nonsense. HTML templates are auto-escaped.
//!
//! `POST /v1/notifications/templates/{name}/preview` (ADMIN) renders one with a given context or
//! its sample.

use axum::Json;
use axum::extract::{Path, State};
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use service_kit::AdminCaller;
use service_kit::ValidatedJson;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{NotificationError, NotificationResult};
use crate::{AppState, Category, Channel};

/// What a template is for.
#[derive(Debug, Clone, Copy)]
pub struct TemplateSpec {
    /// Its name, e.g. `booking_confirmed`.
    pub name: &'static str,
    /// The channel it renders for.
    pub channel: Channel,
    /// Transactional messages always go; marketing ones respect opt-outs.
    pub category: Category,
    /// Whether the rendered message holds a secret (a one-time code): its content is erased from
    /// the delivery log once it is settled, and it cannot be resent.
    pub sensitive: bool,
}

const fn spec(name: &'static str, channel: Channel, category: Category) -> TemplateSpec {
    TemplateSpec {
        name,
        channel,
        category,
        sensitive: false,
    }
}

const fn secret(name: &'static str) -> TemplateSpec {
    TemplateSpec {
        name,
        channel: Channel::Email,
        category: Category::Transactional,
        sensitive: true,
    }
}

use Category::{Marketing, Transactional};
use Channel::{Email, Push, Sms};

/// Every template.
pub const TEMPLATES: &[TemplateSpec] = &[
    // The welcome email shows off the ranges: marketing, sent only with consent.
    spec("welcome", Email, Marketing),
    secret("otp_email_verification"),
    secret("otp_password_reset"),
    secret("otp_two_factor"),
    secret("otp_login"),
    spec("booking_received", Email, Transactional),
    spec("booking_team_alert", Email, Transactional),
    spec("booking_confirmed", Email, Transactional),
    spec("booking_rescheduled", Email, Transactional),
    spec("booking_cancelled", Email, Transactional),
    spec("booking_reminder", Email, Transactional),
    spec("payment_receipt", Email, Transactional),
    spec("payment_failed", Email, Transactional),
    spec("refund_confirmation", Email, Transactional),
    spec("brochure", Email, Transactional),
    spec("ticket_reply", Email, Transactional),
    spec("contact_ack", Email, Transactional),
    // The double opt-in itself: the one message a new subscriber asked for.
    spec("newsletter_confirm", Email, Transactional),
    spec("booking_confirmed_sms", Sms, Transactional),
    spec("booking_reminder_sms", Sms, Transactional),
    spec("booking_confirmed_push", Push, Transactional),
];

/// The template files, compiled in.
const FILES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("layout.txt", include_str!("../templates/layout.txt")),
    (
        "email/welcome.html",
        include_str!("../templates/email/welcome.html"),
    ),
    (
        "email/welcome.txt",
        include_str!("../templates/email/welcome.txt"),
    ),
    (
        "email/otp_email_verification.html",
        include_str!("../templates/email/otp_email_verification.html"),
    ),
    (
        "email/otp_email_verification.txt",
        include_str!("../templates/email/otp_email_verification.txt"),
    ),
    (
        "email/otp_password_reset.html",
        include_str!("../templates/email/otp_password_reset.html"),
    ),
    (
        "email/otp_password_reset.txt",
        include_str!("../templates/email/otp_password_reset.txt"),
    ),
    (
        "email/otp_two_factor.html",
        include_str!("../templates/email/otp_two_factor.html"),
    ),
    (
        "email/otp_two_factor.txt",
        include_str!("../templates/email/otp_two_factor.txt"),
    ),
    (
        "email/otp_login.html",
        include_str!("../templates/email/otp_login.html"),
    ),
    (
        "email/otp_login.txt",
        include_str!("../templates/email/otp_login.txt"),
    ),
    (
        "email/booking_received.html",
        include_str!("../templates/email/booking_received.html"),
    ),
    (
        "email/booking_received.txt",
        include_str!("../templates/email/booking_received.txt"),
    ),
    (
        "email/booking_team_alert.html",
        include_str!("../templates/email/booking_team_alert.html"),
    ),
    (
        "email/booking_team_alert.txt",
        include_str!("../templates/email/booking_team_alert.txt"),
    ),
    (
        "email/booking_confirmed.html",
        include_str!("../templates/email/booking_confirmed.html"),
    ),
    (
        "email/booking_confirmed.txt",
        include_str!("../templates/email/booking_confirmed.txt"),
    ),
    (
        "email/booking_rescheduled.html",
        include_str!("../templates/email/booking_rescheduled.html"),
    ),
    (
        "email/booking_rescheduled.txt",
        include_str!("../templates/email/booking_rescheduled.txt"),
    ),
    (
        "email/booking_cancelled.html",
        include_str!("../templates/email/booking_cancelled.html"),
    ),
    (
        "email/booking_cancelled.txt",
        include_str!("../templates/email/booking_cancelled.txt"),
    ),
    (
        "email/booking_reminder.html",
        include_str!("../templates/email/booking_reminder.html"),
    ),
    (
        "email/booking_reminder.txt",
        include_str!("../templates/email/booking_reminder.txt"),
    ),
    (
        "email/payment_receipt.html",
        include_str!("../templates/email/payment_receipt.html"),
    ),
    (
        "email/payment_receipt.txt",
        include_str!("../templates/email/payment_receipt.txt"),
    ),
    (
        "email/payment_failed.html",
        include_str!("../templates/email/payment_failed.html"),
    ),
    (
        "email/payment_failed.txt",
        include_str!("../templates/email/payment_failed.txt"),
    ),
    (
        "email/refund_confirmation.html",
        include_str!("../templates/email/refund_confirmation.html"),
    ),
    (
        "email/refund_confirmation.txt",
        include_str!("../templates/email/refund_confirmation.txt"),
    ),
    (
        "email/brochure.html",
        include_str!("../templates/email/brochure.html"),
    ),
    (
        "email/brochure.txt",
        include_str!("../templates/email/brochure.txt"),
    ),
    (
        "email/ticket_reply.html",
        include_str!("../templates/email/ticket_reply.html"),
    ),
    (
        "email/ticket_reply.txt",
        include_str!("../templates/email/ticket_reply.txt"),
    ),
    (
        "email/contact_ack.html",
        include_str!("../templates/email/contact_ack.html"),
    ),
    (
        "email/contact_ack.txt",
        include_str!("../templates/email/contact_ack.txt"),
    ),
    (
        "email/newsletter_confirm.html",
        include_str!("../templates/email/newsletter_confirm.html"),
    ),
    (
        "email/newsletter_confirm.txt",
        include_str!("../templates/email/newsletter_confirm.txt"),
    ),
    (
        "sms/booking_confirmed_sms.txt",
        include_str!("../templates/sms/booking_confirmed_sms.txt"),
    ),
    (
        "sms/booking_reminder_sms.txt",
        include_str!("../templates/sms/booking_reminder_sms.txt"),
    ),
    (
        "push/booking_confirmed_push.txt",
        include_str!("../templates/push/booking_confirmed_push.txt"),
    ),
];

const SAMPLES: &str = include_str!("../templates/samples.json");

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    /// Email subject or push title (none for SMS).
    pub subject: Option<String>,
    /// The plain-text body (the SMS text, the push body).
    pub text: String,
    /// The HTML body (email only).
    pub html: Option<String>,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    samples: serde_json::Map<String, Value>,
    web_url: String,
}

impl Templates {
    /// Compiles every template; `web_url` is given to all of them as `web_url`.
    pub fn load(web_url: &str) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_keep_trailing_newline(false);
        for (name, source) in FILES {
            env.add_template(name, source)?;
        }
        let samples = match serde_json::from_str(SAMPLES)? {
            Value::Object(map) => map,
            _ => anyhow::bail!("templates/samples.json must be an object"),
        };
        Ok(Self {
            env,
            samples,
            web_url: web_url.to_owned(),
        })
    }

    /// The spec of template `name`.
    pub fn spec(name: &str) -> Option<&'static TemplateSpec> {
        TEMPLATES.iter().find(|spec| spec.name == name)
    }

    /// The sample context of template `name`.
    pub fn sample(&self, name: &str) -> Option<&Value> {
        self.samples.get(name)
    }

    /// Renders template `name` with `context` (a JSON object).
    pub fn render(&self, name: &str, context: &Value) -> Result<Rendered, minijinja::Error> {
        let Some(spec) = Self::spec(name) else {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                format!("no template {name}"),
            ));
        };
        let mut context = match context {
            Value::Object(map) => map.clone(),
            _ => {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    "the context must be a JSON object",
                ));
            }
        };
        context
            .entry("web_url")
            .or_insert_with(|| Value::String(self.web_url.clone()));
        let context = Value::Object(context);
        match spec.channel {
            Channel::Email => {
                let text = self.env.get_template(&format!("email/{name}.txt"))?;
                let html = self.env.get_template(&format!("email/{name}.html"))?;
                let mut captured = text.render_captured(&context)?;
                let subject = captured.with_state_mut(|state| state.render_block("subject"))?;
                Ok(Rendered {
                    subject: Some(subject.trim().to_owned()),
                    text: tidy(&captured.into_output()),
                    html: Some(html.render(&context)?),
                })
            }
            Channel::Sms => {
                let text = self.env.get_template(&format!("sms/{name}.txt"))?;
                Ok(Rendered {
                    subject: None,
                    text: text.render(&context)?.trim().to_owned(),
                    html: None,
                })
            }
            Channel::Push => {
                let template = self.env.get_template(&format!("push/{name}.txt"))?;
                let mut captured = template.render_captured(&context)?;
                let title = captured.with_state_mut(|state| state.render_block("subject"))?;
                let body = captured.with_state_mut(|state| state.render_block("content"))?;
                Ok(Rendered {
                    subject: Some(title.trim().to_owned()),
                    text: body.trim().to_owned(),
                    html: None,
                })
            }
        }
    }
}

/// Plain text without the blank lines a layout leaves behind.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The body of a preview request.
#[derive(Debug, Default, Deserialize, ToSchema, validator::Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewRequest {
    /// The variables; the template's sample context when absent.
    #[serde(default)]
    pub context: Option<Value>,
}

/// Renders a template with the given context (or its sample) without sending anything.
#[utoipa::path(
    post,
    path = "/v1/notifications/templates/{name}/preview",
    tag = "notifications",
    params(("name" = String, Path, description = "Template name, e.g. booking_confirmed")),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The rendered message", body = Rendered),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such template"),
        (status = 422, description = "The context does not fit the template"),
    )
)]
async fn preview(
    _admin: AdminCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Option<ValidatedJson<PreviewRequest>>,
) -> NotificationResult<Json<Rendered>> {
    if Templates::spec(&name).is_none() {
        return Err(NotificationError::NotFound("template"));
    }
    let context = match body.and_then(|ValidatedJson(body)| body.context) {
        Some(context @ Value::Object(_)) => context,
        Some(_) => return Err(NotificationError::field("context", "must be a JSON object")),
        None => state
            .templates
            .sample(&name)
            .cloned()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
    };
    Ok(Json(state.templates.render(&name, &context)?))
}

/// The template routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        Templates::load("https://lomashwood.test").unwrap()
    }

    #[test]
    fn every_template_renders_with_its_sample_context() {
        let templates = templates();
        for spec in TEMPLATES {
            let sample = templates
                .sample(spec.name)
                .unwrap_or_else(|| panic!("{} has no sample context", spec.name));
            let rendered = templates
                .render(spec.name, sample)
                .unwrap_or_else(|e| panic!("{} does not render: {e:#}", spec.name));
            assert!(!rendered.text.trim().is_empty(), "{} is blank", spec.name);
            match spec.channel {
                Channel::Email => {
                    let subject = rendered.subject.unwrap();
                    assert!(!subject.is_empty(), "{} has no subject", spec.name);
                    let html = rendered.html.unwrap();
                    assert!(html.contains("#1F3A2E"), "{} lacks the layout", spec.name);
                    assert!(rendered.text.contains("https://lomashwood.test"));
                }
                Channel::Sms => assert!(rendered.text.len() <= 320, "{} is long", spec.name),
                Channel::Push => assert!(rendered.subject.is_some()),
            }
        }
    }

    #[test]
    fn every_template_file_belongs_to_a_template_and_every_template_has_its_files() {
        for spec in TEMPLATES {
            let prefix = match spec.channel {
                Channel::Email => "email",
                Channel::Sms => "sms",
                Channel::Push => "push",
            };
            assert!(
                FILES
                    .iter()
                    .any(|(f, _)| f.starts_with(&format!("{prefix}/{}.", spec.name))),
                "{} has no file",
                spec.name
            );
        }
        assert_eq!(templates().samples.len(), TEMPLATES.len());
    }

    #[test]
    fn a_missing_variable_is_an_error_not_a_blank() {
        let error = templates()
            .render(
                "booking_confirmed",
                &serde_json::json!({"reference": "BK-1"}),
            )
            .unwrap_err();
        assert_eq!(error.kind(), minijinja::ErrorKind::UndefinedError);
    }

    #[test]
    fn html_is_escaped_but_text_is_not() {
        let rendered = templates()
            .render(
                "contact_ack",
                &serde_json::json!({"name": "<b>Jo</b> & Co", "subject": null}),
            )
            .unwrap();
        assert!(
            rendered
                .html
                .unwrap()
                .contains("&lt;b&gt;Jo&lt;&#x2f;b&gt; &amp; Co")
        );
        assert!(rendered.text.contains("Thank you, <b>Jo</b> & Co"));
    }

    #[test]
    fn marketing_mail_carries_the_unsubscribe_link_transactional_mail_does_not_need_it() {
        let templates = templates();
        let with = templates
            .render(
                "welcome",
                &serde_json::json!({"first_name": "Jane", "unsubscribe_url": "https://x/u/t"}),
            )
            .unwrap();
        assert!(with.text.contains("Unsubscribe: https://x/u/t"));
        assert!(
            with.html
                .unwrap()
                .contains("href=\"https:&#x2f;&#x2f;x&#x2f;u&#x2f;t\"")
        );
        let without = templates
            .render("welcome", &serde_json::json!({"first_name": "Jane"}))
            .unwrap();
        assert!(!without.text.contains("Unsubscribe"));
        assert_eq!(
            without.subject.as_deref(),
            Some("Welcome to Lomash Wood, Jane")
        );
    }
}
