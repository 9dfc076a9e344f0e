//! Events published by the content service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::event_payload, topics};

/// `blog.published`: a blog post went live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlogPublished {
    /// The post.
    pub post_id: Uuid,
    /// URL slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// The author's user id.
    #[serde(default)]
    pub author_id: Option<Uuid>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it went live.
    pub published_at: DateTime<Utc>,
}
event_payload!(BlogPublished, topics::BLOG_PUBLISHED, 1);

/// `page.published`: a CMS page (or a new revision of it) went live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PagePublished {
    /// The page.
    pub page_id: Uuid,
    /// URL slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// When it went live.
    pub published_at: DateTime<Utc>,
}
event_payload!(PagePublished, topics::PAGE_PUBLISHED, 1);

/// `media.uploaded`: an image or video was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaUploaded {
    /// The media asset.
    pub asset_id: Uuid,
    /// The storage key of the original.
    pub storage_key: String,
    /// The media type sniffed from the bytes, e.g. `image/webp`.
    pub content_type: String,
    /// Size of the original in bytes.
    pub size_bytes: i64,
    /// Pixel width, for images.
    #[serde(default)]
    pub width: Option<u32>,
    /// Pixel height, for images.
    #[serde(default)]
    pub height: Option<u32>,
    /// The admin who uploaded it.
    #[serde(default)]
    pub uploaded_by: Option<Uuid>,
    /// When it was stored.
    pub uploaded_at: DateTime<Utc>,
}
event_payload!(MediaUploaded, topics::MEDIA_UPLOADED, 1);

/// `contact.received`: the contact form was submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactReceived {
    /// The stored submission.
    pub submission_id: Uuid,
    /// Sender's name.
    pub name: String,
    /// Sender's email.
    pub email: String,
    /// Sender's E.164 phone number, if given.
    #[serde(default)]
    pub phone: Option<String>,
    /// Subject line, if given.
    #[serde(default)]
    pub subject: Option<String>,
    /// The message.
    pub message: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}
event_payload!(ContactReceived, topics::CONTACT_RECEIVED, 1);

/// What a business enquiry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnquiryType {
    /// A trade account (builders, fitters).
    Trade,
    /// A commercial or multi-unit project.
    Commercial,
    /// A partnership or supplier proposal.
    Partnership,
    /// Anything else.
    Other,
}

/// `business_enquiry.received`: the business-enquiry form was submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusinessEnquiryReceived {
    /// The stored submission.
    pub submission_id: Uuid,
    /// The company.
    pub company_name: String,
    /// The person to reply to.
    pub contact_name: String,
    /// Their email.
    pub email: String,
    /// Their E.164 phone number, if given.
    #[serde(default)]
    pub phone: Option<String>,
    /// What it is about.
    pub enquiry_type: EnquiryType,
    /// The message.
    pub message: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}
event_payload!(
    BusinessEnquiryReceived,
    topics::BUSINESS_ENQUIRY_RECEIVED,
    1
);

/// `newsletter.subscribed`: someone subscribed to the newsletter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewsletterSubscribed {
    /// The subscription.
    pub subscription_id: Uuid,
    /// The subscribed address.
    pub email: String,
    /// Where they subscribed, e.g. `footer` or `checkout`.
    #[serde(default)]
    pub source: Option<String>,
    /// When they subscribed.
    pub subscribed_at: DateTime<Utc>,
    /// The double opt-in token for the confirmation email's link (the subscription stays
    /// pending until `POST /v1/newsletter/{token}/confirm`); absent in older events.
    #[serde(default)]
    pub confirmation_token: Option<String>,
}
event_payload!(NewsletterSubscribed, topics::NEWSLETTER_SUBSCRIBED, 1);
