//! The ordered storefront lists: each kind's input type and its routes (see [`super`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::{MediaRef, collection, validate_http_url, validate_link, view};

fn yes() -> bool {
    true
}

/// A home-page hero slide.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeroSlideInput {
    /// Headline, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    /// Sub-text, at most 500 characters.
    #[serde(default)]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    #[schema(max_length = 500)]
    pub description: String,
    /// The picture or film behind it.
    #[validate(nested)]
    pub media: MediaRef,
    /// Button text, 1–40 characters.
    #[serde(default)]
    #[validate(length(min = 1, max = 40, message = "must be 1–40 characters"))]
    #[schema(min_length = 1, max_length = 40)]
    pub button_text: Option<String>,
    /// Button link: a site path or an http(s) URL.
    #[serde(default)]
    #[validate(custom(function = "validate_link"))]
    #[schema(
        max_length = 2000,
        pattern = r"^(?:/(?:[^/\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?|https://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|http://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{2,})$"
    )]
    pub button_link: Option<String>,
    /// Shown on the storefront (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// Kitchen or bedroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProjectCategory {
    /// A kitchen.
    Kitchen,
    /// A bedroom.
    Bedroom,
}

/// A completed project.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectInput {
    /// Title, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    /// Description, at most 5000 characters.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Pictures, in order (at most 30).
    #[serde(default)]
    #[validate(length(max = 30, message = "at most 30 images"), nested)]
    #[schema(max_items = 30)]
    pub images: Vec<MediaRef>,
    /// Kitchen or bedroom.
    pub category: ProjectCategory,
    /// Where, e.g. `Harrow, London`.
    #[serde(default)]
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub location: Option<String>,
    /// When it was finished.
    #[serde(default)]
    pub completed_at: Option<NaiveDate>,
    /// Shown on the storefront (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// A finance option.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinanceInput {
    /// Title, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub title: String,
    /// Description, at most 5000 characters.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: String,
    /// APR in basis points (1990 = 19.9 %), 0–10000.
    #[serde(default)]
    #[validate(range(min = 0, max = 10000, message = "must be 0–10000 basis points"))]
    #[schema(minimum = 0, maximum = 10000)]
    pub apr_bps: Option<i32>,
    /// Term in months, 1–240.
    #[serde(default)]
    #[validate(range(min = 1, max = 240, message = "must be 1–240 months"))]
    #[schema(minimum = 1, maximum = 240)]
    pub term_months: Option<i32>,
    /// Minimum spend in pence (GBP).
    #[serde(default)]
    #[validate(range(min = 0, message = "must not be negative"))]
    #[schema(minimum = 0)]
    pub min_spend_pence: Option<i64>,
    /// More information: a site path or an http(s) URL.
    #[serde(default)]
    #[validate(custom(function = "validate_link"))]
    #[schema(
        max_length = 2000,
        pattern = r"^(?:/(?:[^/\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?|https://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|http://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{2,})$"
    )]
    pub link: Option<String>,
    /// Shown on the storefront (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// A frequently asked question.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaqInput {
    /// The question, 1–300 characters.
    #[validate(length(min = 1, max = 300, message = "must be 1–300 characters"))]
    #[schema(min_length = 1, max_length = 300)]
    pub question: String,
    /// The answer, 1–5000 characters.
    #[validate(length(min = 1, max = 5000, message = "must be 1–5000 characters"))]
    #[schema(min_length = 1, max_length = 5000)]
    pub answer: String,
    /// Grouping, e.g. `Delivery`.
    #[serde(default)]
    #[validate(length(min = 1, max = 60, message = "must be 1–60 characters"))]
    #[schema(min_length = 1, max_length = 60)]
    pub category: Option<String>,
    /// Shown on the storefront (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// What a logo stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogoKind {
    /// A trade body or certification.
    Accreditation,
    /// A supplier or partner.
    Partner,
}

/// An accreditation or partner logo.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccreditationInput {
    /// Name, 1–120 characters (the logo's alt text).
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// Accreditation or partner.
    pub kind: LogoKind,
    /// Logo URL.
    #[serde(default)]
    #[validate(custom(function = "validate_http_url"))]
    #[schema(
        max_length = 2000,
        pattern = r"^(?:https://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|http://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{2,})$"
    )]
    pub logo_url: Option<String>,
    /// Logo media asset id.
    #[serde(default)]
    pub logo_media_id: Option<Uuid>,
    /// Their site: a site path or an http(s) URL.
    #[serde(default)]
    #[validate(custom(function = "validate_link"))]
    #[schema(
        max_length = 2000,
        pattern = r"^(?:/(?:[^/\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?|https://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|http://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{2,})$"
    )]
    pub link: Option<String>,
    /// Shown on the storefront (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// A customer testimonial.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestimonialInput {
    /// The customer's name as shown, 1–120 characters.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// What they said, 1–2000 characters.
    #[validate(length(min = 1, max = 2000, message = "must be 1–2000 characters"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub text: String,
    /// Stars, 1–5.
    #[serde(default)]
    #[validate(range(min = 1, max = 5, message = "must be 1–5"))]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<i16>,
    /// Where they live, e.g. `Leeds`.
    #[serde(default)]
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub location: Option<String>,
    /// A picture or film of them or their room.
    #[serde(default)]
    #[validate(nested)]
    pub media: Option<MediaRef>,
    /// Shown on the storefront (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

view! {
    /// A hero slide as stored: its input's fields plus `id`, `position`, `createdAt` and `updatedAt`.
    HeroSlideView,
    HeroSlideInput
}

view! {
    /// A project as stored: its input's fields plus `id`, `position`, `createdAt` and `updatedAt`.
    ProjectView,
    ProjectInput
}

view! {
    /// A finance option as stored: its input's fields plus `id`, `position`, `createdAt` and `updatedAt`.
    FinanceOptionView,
    FinanceInput
}

view! {
    /// An FAQ as stored: its input's fields plus `id`, `position`, `createdAt` and `updatedAt`.
    FaqView,
    FaqInput
}

view! {
    /// An accreditation as stored: its input's fields plus `id`, `position`, `createdAt` and `updatedAt`.
    AccreditationView,
    AccreditationInput
}

view! {
    /// A testimonial as stored: its input's fields plus `id`, `position`, `createdAt` and `updatedAt`.
    TestimonialView,
    TestimonialInput
}

collection! {
    module: hero_slides,
    input: super::HeroSlideInput,
    view: super::HeroSlideView,
    name: "hero slide",
    tag: "storefront",
    table: "hero_slides",
    columns: "title, description, media, button_text, button_link, active",
    list: "/v1/hero-slides",
    item: "/v1/hero-slides/{id}",
    order: "/v1/hero-slides/order",
    admin: "/v1/admin/hero-slides",
}

collection! {
    module: projects,
    input: super::ProjectInput,
    view: super::ProjectView,
    name: "project",
    tag: "storefront",
    table: "projects",
    columns: "title, description, images, category, location, completed_at, active",
    list: "/v1/projects",
    item: "/v1/projects/{id}",
    order: "/v1/projects/order",
    admin: "/v1/admin/projects",
}

collection! {
    module: finance,
    input: super::FinanceInput,
    view: super::FinanceOptionView,
    name: "finance option",
    tag: "storefront",
    table: "finance_options",
    columns: "title, description, apr_bps, term_months, min_spend_pence, link, active",
    list: "/v1/finance",
    item: "/v1/finance/{id}",
    order: "/v1/finance/order",
    admin: "/v1/admin/finance",
}

collection! {
    module: faqs,
    input: super::FaqInput,
    view: super::FaqView,
    name: "FAQ",
    tag: "storefront",
    table: "faqs",
    columns: "question, answer, category, active",
    list: "/v1/faqs",
    item: "/v1/faqs/{id}",
    order: "/v1/faqs/order",
    admin: "/v1/admin/faqs",
}

collection! {
    module: accreditations,
    input: super::AccreditationInput,
    view: super::AccreditationView,
    name: "accreditation",
    tag: "storefront",
    table: "accreditations",
    columns: "name, kind, logo_url, logo_media_id, link, active",
    list: "/v1/accreditations",
    item: "/v1/accreditations/{id}",
    order: "/v1/accreditations/order",
    admin: "/v1/admin/accreditations",
}

collection! {
    module: testimonials,
    input: super::TestimonialInput,
    view: super::TestimonialView,
    name: "testimonial",
    tag: "storefront",
    table: "testimonials",
    columns: "name, text, rating, location, media, active",
    list: "/v1/testimonials",
    item: "/v1/testimonials/{id}",
    order: "/v1/testimonials/order",
    admin: "/v1/admin/testimonials",
}
