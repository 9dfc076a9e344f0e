//! Events published by the customer service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::event_payload, topics};

/// Moderation state of a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewStatus {
    /// Waiting for moderation.
    Pending,
    /// Visible to shoppers.
    Approved,
    /// Hidden.
    Rejected,
}

/// `review.created`: a customer reviewed a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewCreated {
    /// The review.
    pub review_id: Uuid,
    /// The product reviewed.
    pub product_id: Uuid,
    /// The author.
    pub user_id: Uuid,
    /// Stars, 1 to 5.
    pub rating: u8,
    /// Headline, if given.
    #[serde(default)]
    pub title: Option<String>,
    /// Moderation state.
    pub status: ReviewStatus,
    /// Whether the author bought the product.
    #[serde(default)]
    pub verified_purchase: bool,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}
event_payload!(ReviewCreated, topics::REVIEW_CREATED, 1);

/// What a support ticket is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketCategory {
    /// An order.
    Order,
    /// An appointment booking.
    Booking,
    /// Delivery.
    Delivery,
    /// Fitting and installation.
    Installation,
    /// A product question or fault.
    Product,
    /// Payments and invoices.
    Billing,
    /// Anything else.
    Other,
}

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketPriority {
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    /// New, not yet picked up.
    Open,
    /// Being worked on.
    InProgress,
    /// Waiting for the customer's reply.
    AwaitingCustomer,
    /// Solved.
    Resolved,
    /// Closed.
    Closed,
}

/// `ticket.created`: a support ticket was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketCreated {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The human-facing number, e.g. `T-000123`.
    pub ticket_number: String,
    /// The customer.
    pub user_id: Uuid,
    /// Subject line.
    pub subject: String,
    /// What it is about.
    pub category: TicketCategory,
    /// How urgent.
    pub priority: TicketPriority,
    /// The order concerned, if any.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
}
event_payload!(TicketCreated, topics::TICKET_CREATED, 1);

/// `ticket.updated`: a ticket's status changed or someone replied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketUpdated {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The human-facing number.
    pub ticket_number: String,
    /// The customer.
    pub user_id: Uuid,
    /// Status after the change.
    pub status: TicketStatus,
    /// Status before the change, when it changed.
    #[serde(default)]
    pub previous_status: Option<TicketStatus>,
    /// Whether staff added a reply the customer should be told about.
    #[serde(default)]
    pub staff_replied: bool,
    /// Who changed it.
    #[serde(default)]
    pub updated_by: Option<Uuid>,
    /// When it changed.
    pub updated_at: DateTime<Utc>,
}
event_payload!(TicketUpdated, topics::TICKET_UPDATED, 1);
