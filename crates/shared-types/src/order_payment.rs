//! Events published by the order-payment service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::event_payload, topics};

/// One line of an order, as snapshotted when the order was placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// Its SKU.
    pub sku: String,
    /// Its name at the time of ordering.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Price of one unit in minor units (pence).
    pub unit_price: i64,
    /// `quantity × unit_price` in minor units.
    pub line_total: i64,
}

/// `order.created`: an order was placed (stock is reserved, payment pending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    /// The order.
    pub order_id: Uuid,
    /// The human-facing order number, e.g. `LW-2026-000123`.
    pub order_number: String,
    /// The customer, unless they checked out as a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Where order emails go.
    pub customer_email: String,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// Sum of the lines in minor units.
    pub subtotal: i64,
    /// Delivery charge in minor units.
    pub delivery: i64,
    /// VAT included in the total, in minor units.
    pub tax: i64,
    /// What the customer pays, in minor units.
    pub total: i64,
    /// ISO 4217 currency code of every amount.
    pub currency: String,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}
event_payload!(OrderCreated, topics::ORDER_CREATED, 1);

/// A product and quantity whose reservation an event releases or settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedItem {
    /// The product.
    pub product_id: Uuid,
    /// How many units.
    pub quantity: u32,
}

/// Who cancelled an order or booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelledBy {
    /// The customer.
    Customer,
    /// A member of staff.
    Staff,
    /// The system, e.g. an unpaid order expiring.
    System,
}

/// `order.cancelled`: an order was cancelled; its reserved stock goes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    /// The order.
    pub order_id: Uuid,
    /// The human-facing order number.
    pub order_number: String,
    /// The customer, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Who cancelled it.
    pub cancelled_by: CancelledBy,
    /// Free-text reason, if given.
    #[serde(default)]
    pub reason: Option<String>,
    /// The reserved items to release.
    pub items: Vec<ReservedItem>,
    /// When it was cancelled.
    pub cancelled_at: DateTime<Utc>,
}
event_payload!(OrderCancelled, topics::ORDER_CANCELLED, 1);

/// `payment.succeeded`: an order was paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceeded {
    /// The order paid for.
    pub order_id: Uuid,
    /// Our payment record.
    pub payment_id: Uuid,
    /// The customer, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Amount captured in minor units (pence).
    pub amount: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The invoice issued for it, once numbered.
    #[serde(default)]
    pub invoice_number: Option<String>,
    /// The payment provider's id (a Stripe PaymentIntent id).
    pub provider_payment_id: String,
    /// Where the receipt goes.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// When the payment succeeded.
    pub paid_at: DateTime<Utc>,
}
event_payload!(PaymentSucceeded, topics::PAYMENT_SUCCEEDED, 1);

/// `payment.failed`: a payment attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    /// The order.
    pub order_id: Uuid,
    /// Our payment record.
    pub payment_id: Uuid,
    /// The customer, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Amount attempted in minor units.
    pub amount: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The provider's failure code, e.g. `card_declined`.
    #[serde(default)]
    pub failure_code: Option<String>,
    /// The provider's customer-safe failure message.
    #[serde(default)]
    pub failure_message: Option<String>,
    /// Where to tell the customer.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// When it failed.
    pub failed_at: DateTime<Utc>,
}
event_payload!(PaymentFailed, topics::PAYMENT_FAILED, 1);

/// `refund.issued`: money was refunded to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundIssued {
    /// Our refund record.
    pub refund_id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The payment refunded.
    pub payment_id: Uuid,
    /// The customer, unless a guest.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Amount refunded in minor units (may be partial).
    pub amount: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Free-text reason, if given.
    #[serde(default)]
    pub reason: Option<String>,
    /// Where to tell the customer.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}
event_payload!(RefundIssued, topics::REFUND_ISSUED, 1);
