//! Every event topic, as constants (DESIGN.md §1 lists who publishes and who consumes each).
//!
//! A topic is `<entity>.<past-tense verb>`; it is the RabbitMQ routing key and the key of the SQS
//! routing table.

/// auth: a user registered.
pub const USER_CREATED: &str = "user.created";
/// auth: a user proved they own their email address.
pub const USER_EMAIL_VERIFIED: &str = "user.email_verified";
/// auth: a one-time password was issued and must be delivered.
pub const AUTH_OTP_REQUESTED: &str = "auth.otp_requested";
/// auth: a user's personal data must be erased everywhere (GDPR).
pub const USER_ERASURE_REQUESTED: &str = "user.erasure_requested";

/// product: a product was created.
pub const PRODUCT_CREATED: &str = "product.created";
/// product: a product was changed.
pub const PRODUCT_UPDATED: &str = "product.updated";
/// product: a product was (soft) deleted.
pub const PRODUCT_DELETED: &str = "product.deleted";
/// product: a product's price changed.
pub const PRICE_CHANGED: &str = "price.changed";
/// product: a product's stock level changed.
pub const INVENTORY_UPDATED: &str = "inventory.updated";

/// order-payment: an order was placed.
pub const ORDER_CREATED: &str = "order.created";
/// order-payment: an order was cancelled.
pub const ORDER_CANCELLED: &str = "order.cancelled";
/// order-payment: a payment was captured.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// order-payment: a payment attempt failed.
pub const PAYMENT_FAILED: &str = "payment.failed";
/// order-payment: money was refunded.
pub const REFUND_ISSUED: &str = "refund.issued";

/// appointment: a consultation was booked.
pub const BOOKING_CREATED: &str = "booking.created";
/// appointment: a booking was confirmed by staff.
pub const BOOKING_CONFIRMED: &str = "booking.confirmed";
/// appointment: a booking moved to another slot.
pub const BOOKING_RESCHEDULED: &str = "booking.rescheduled";
/// appointment: a booking was cancelled.
pub const BOOKING_CANCELLED: &str = "booking.cancelled";
/// appointment: a booking's reminder is due.
pub const BOOKING_REMINDER_DUE: &str = "booking.reminder_due";
/// appointment: a brochure was requested.
pub const BROCHURE_REQUESTED: &str = "brochure.requested";

/// content: a blog post was published.
pub const BLOG_PUBLISHED: &str = "blog.published";
/// content: a CMS page was published.
pub const PAGE_PUBLISHED: &str = "page.published";
/// content: a media asset was uploaded.
pub const MEDIA_UPLOADED: &str = "media.uploaded";
/// content: the contact form was submitted.
pub const CONTACT_RECEIVED: &str = "contact.received";
/// content: the business-enquiry form was submitted.
pub const BUSINESS_ENQUIRY_RECEIVED: &str = "business_enquiry.received";
/// content: someone subscribed to the newsletter.
pub const NEWSLETTER_SUBSCRIBED: &str = "newsletter.subscribed";

/// customer: a product review was written.
pub const REVIEW_CREATED: &str = "review.created";
/// customer: a support ticket was opened.
pub const TICKET_CREATED: &str = "ticket.created";
/// customer: a support ticket changed.
pub const TICKET_UPDATED: &str = "ticket.updated";

/// notification: a notification was delivered to its provider.
pub const NOTIFICATION_SENT: &str = "notification.sent";
/// notification: a notification could not be delivered.
pub const NOTIFICATION_FAILED: &str = "notification.failed";

/// Every topic, grouped by producing service in DESIGN.md §1 order.
pub const ALL: &[&str] = &[
    USER_CREATED,
    USER_EMAIL_VERIFIED,
    AUTH_OTP_REQUESTED,
    USER_ERASURE_REQUESTED,
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    PRODUCT_DELETED,
    PRICE_CHANGED,
    INVENTORY_UPDATED,
    ORDER_CREATED,
    ORDER_CANCELLED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    REFUND_ISSUED,
    BOOKING_CREATED,
    BOOKING_CONFIRMED,
    BOOKING_RESCHEDULED,
    BOOKING_CANCELLED,
    BOOKING_REMINDER_DUE,
    BROCHURE_REQUESTED,
    BLOG_PUBLISHED,
    PAGE_PUBLISHED,
    MEDIA_UPLOADED,
    CONTACT_RECEIVED,
    BUSINESS_ENQUIRY_RECEIVED,
    NEWSLETTER_SUBSCRIBED,
    REVIEW_CREATED,
    TICKET_CREATED,
    TICKET_UPDATED,
    NOTIFICATION_SENT,
    NOTIFICATION_FAILED,
];

/// Which topics each consuming service handles (DESIGN.md §1's "consumes" column). It binds the
/// RabbitMQ queues' topics where a service declares no narrower set, and it is the default
/// topic → queues routing table of the SQS backend.
pub const SUBSCRIPTIONS: &[(&str, &[&str])] = &[
    ("product", &[PAYMENT_SUCCEEDED, ORDER_CANCELLED]),
    ("order-payment", &[USER_ERASURE_REQUESTED]),
    (
        "appointment",
        &[USER_ERASURE_REQUESTED, USER_EMAIL_VERIFIED],
    ),
    (
        "customer",
        &[
            USER_CREATED,
            PAYMENT_SUCCEEDED,
            REFUND_ISSUED,
            USER_ERASURE_REQUESTED,
        ],
    ),
    (
        "notification",
        &[
            USER_CREATED,
            AUTH_OTP_REQUESTED,
            BOOKING_CREATED,
            BOOKING_CONFIRMED,
            BOOKING_RESCHEDULED,
            BOOKING_CANCELLED,
            BOOKING_REMINDER_DUE,
            PAYMENT_SUCCEEDED,
            PAYMENT_FAILED,
            REFUND_ISSUED,
            BROCHURE_REQUESTED,
            TICKET_CREATED,
            TICKET_UPDATED,
            CONTACT_RECEIVED,
            NEWSLETTER_SUBSCRIBED,
            USER_ERASURE_REQUESTED,
        ],
    ),
    // What analytics records (its consumer's handlers): binding every topic would only fill its
    // queue with events it acknowledges unread.
    (
        "analytics",
        &[
            USER_CREATED,
            USER_ERASURE_REQUESTED,
            ORDER_CREATED,
            ORDER_CANCELLED,
            PAYMENT_SUCCEEDED,
            REFUND_ISSUED,
            BOOKING_CREATED,
            BOOKING_CONFIRMED,
            BOOKING_CANCELLED,
            BROCHURE_REQUESTED,
            BLOG_PUBLISHED,
            CONTACT_RECEIVED,
            BUSINESS_ENQUIRY_RECEIVED,
            NEWSLETTER_SUBSCRIBED,
            REVIEW_CREATED,
        ],
    ),
];

/// The services whose queues receive `topic`.
pub fn subscribers(topic: &str) -> impl Iterator<Item = &'static str> + '_ {
    SUBSCRIPTIONS
        .iter()
        .filter(move |(_, topics)| topics.contains(&topic))
        .map(|(service, _)| *service)
}

#[cfg(test)]
mod subscription_tests {
    use super::*;

    #[test]
    fn every_subscribed_topic_exists_and_analytics_gets_only_what_it_records() {
        for (service, topics) in SUBSCRIPTIONS {
            for topic in *topics {
                assert!(
                    ALL.contains(topic),
                    "{service} subscribes to unknown {topic}"
                );
            }
        }
        // analytics-service's tests check this list against its consumer's handlers.
        for topic in [
            USER_CREATED,
            PAYMENT_SUCCEEDED,
            BOOKING_CREATED,
            BLOG_PUBLISHED,
        ] {
            assert!(subscribers(topic).any(|s| s == "analytics"), "{topic}");
        }
        for topic in [
            PRODUCT_UPDATED,
            PRICE_CHANGED,
            NOTIFICATION_SENT,
            AUTH_OTP_REQUESTED,
        ] {
            assert!(!subscribers(topic).any(|s| s == "analytics"), "{topic}");
        }
        let payment: Vec<_> = subscribers(PAYMENT_SUCCEEDED).collect();
        assert_eq!(
            payment,
            vec!["product", "customer", "notification", "analytics"]
        );
    }
}
