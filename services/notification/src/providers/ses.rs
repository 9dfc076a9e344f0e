//! Email through Amazon SES v2 (`SendEmail` with a raw MIME message, which is how attachments
//! travel), the client built from the platform's shared AWS setup
//! ([`event_bus::aws::sdk_config`]).

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{EmailContent, RawMessage};
use futures::future::BoxFuture;
use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::raw::Raw;

use super::{Email, EmailProvider, ProviderError};

/// Sends email with SES.
pub struct SesProvider {
    client: Client,
}

impl SesProvider {
    /// A provider using the shared AWS settings.
    pub async fn new(aws: &event_bus::aws::AwsSettings) -> Self {
        Self {
            client: Client::new(&event_bus::aws::sdk_config(aws).await),
        }
    }
}

/// `Name <address>` → (name, address); a bare address has an empty name.
pub fn split_mailbox(mailbox: &str) -> (String, String) {
    match (mailbox.find('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => (
            mailbox[..open].trim().trim_matches('"').to_owned(),
            mailbox[open + 1..close].trim().to_owned(),
        ),
        _ => (String::new(), mailbox.trim().to_owned()),
    }
}

/// The RFC 5322 message of `email`: text and HTML alternatives, attachments, and for marketing
/// mail the RFC 8058 one-click unsubscribe headers.
pub fn mime(email: &Email) -> Result<Vec<u8>, ProviderError> {
    let (name, address) = split_mailbox(&email.from);
    let mut builder = MessageBuilder::new()
        .from((name, address))
        .to(email.to.as_str())
        .subject(email.subject.as_str())
        .text_body(email.text.as_str());
    if let Some(html) = &email.html {
        builder = builder.html_body(html.as_str());
    }
    if let Some(url) = &email.unsubscribe_url {
        builder = builder
            .header(
                "List-Unsubscribe",
                HeaderType::Raw(Raw::new(format!("<{url}>"))),
            )
            .header(
                "List-Unsubscribe-Post",
                HeaderType::Raw(Raw::new("List-Unsubscribe=One-Click")),
            );
    }
    for attachment in &email.attachments {
        builder = builder.attachment(
            attachment.content_type.clone(),
            attachment.filename.clone(),
            attachment.data.clone(),
        );
    }
    builder
        .write_to_vec()
        .map_err(|e| ProviderError::Permanent(format!("MIME: {e}")))
}

impl EmailProvider for SesProvider {
    fn name(&self) -> &'static str {
        "ses"
    }

    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let raw = RawMessage::builder()
                .data(Blob::new(mime(email)?))
                .build()
                .map_err(|e| ProviderError::Permanent(e.to_string()))?;
            let result = self
                .client
                .send_email()
                .content(EmailContent::builder().raw(raw).build())
                .send()
                .await;
            match result {
                Ok(output) => Ok(output.message_id().unwrap_or_default().to_owned()),
                Err(error) => Err(classify(error)),
            }
        })
    }
}

fn classify(error: SdkError<SendEmailError, HttpResponse>) -> ProviderError {
    let transient = match &error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            matches!(
                service.err().code(),
                Some("TooManyRequestsException" | "LimitExceededException" | "Throttling")
            ) || service.raw().status().is_server_error()
        }
        _ => false,
    };
    let detail = DisplayErrorContext(&error).to_string();
    if transient {
        ProviderError::Transient(detail)
    } else {
        ProviderError::Permanent(detail)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_splits_into_name_and_address() {
        assert_eq!(
            split_mailbox("Lomash Wood <hello@lomashwood.co.uk>"),
            (
                "Lomash Wood".to_owned(),
                "hello@lomashwood.co.uk".to_owned()
            )
        );
        assert_eq!(
            split_mailbox("hello@lomashwood.co.uk"),
            (String::new(), "hello@lomashwood.co.uk".to_owned())
        );
    }

    #[test]
    fn the_mime_message_carries_both_bodies_the_attachment_and_one_click_unsubscribe() {
        let email = Email {
            id: uuid::Uuid::nil(),
            from: "Lomash Wood <hello@lomashwood.co.uk>".into(),
            to: "jane@example.com".into(),
            subject: "Your brochure".into(),
            text: "Plain".into(),
            html: Some("<p>Rich</p>".into()),
            attachments: vec![super::super::Attachment {
                filename: "booking.ics".into(),
                content_type: "text/calendar".into(),
                data: b"BEGIN:VCALENDAR".to_vec(),
            }],
            unsubscribe_url: Some("https://api.test/v1/notifications/unsubscribe/t".into()),
        };
        let raw = String::from_utf8(mime(&email).unwrap()).unwrap();
        assert!(raw.contains("Subject: Your brochure"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/calendar"));
        assert!(raw.contains("booking.ics"));
        assert!(
            raw.contains("List-Unsubscribe: <https://api.test/v1/notifications/unsubscribe/t>")
        );
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    }
}
