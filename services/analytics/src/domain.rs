//! Domain events recorded as server-side tracking events, in the consumer's transaction (so the
//! `processed_events` record and the row commit together) and keyed by the event id (so even a
//! replay past the inbox inserts nothing twice).

use serde_json::json;
use service_kit::event_bus::{Consumer, HandlerError};
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::appointment::{
    BookingCancelled, BookingConfirmed, BookingCreated, BrochureRequested,
};
use service_kit::shared_types::auth::{UserCreated, UserErasureRequested};
use service_kit::shared_types::content::{
    BlogPublished, BusinessEnquiryReceived, ContactReceived, NewsletterSubscribed,
};
use service_kit::shared_types::customer::ReviewCreated;
use service_kit::shared_types::order_payment::{
    OrderCancelled, OrderCreated, PaymentSucceeded, RefundIssued,
};
use sqlx::PgConnection;

use crate::store::{self, EventRow};

/// Registers a handler for every topic this service records.
pub fn handlers(consumer: Consumer) -> Consumer {
    consumer
        .on::<UserCreated, _>(|e, c| Box::pin(user_created(e, c)))
        .on::<BookingCreated, _>(|e, c| Box::pin(booking_created(e, c)))
        .on::<PaymentSucceeded, _>(|e, c| Box::pin(payment_succeeded(e, c)))
        .on::<BrochureRequested, _>(|e, c| Box::pin(brochure_requested(e, c)))
        .on::<BlogPublished, _>(|e, c| Box::pin(blog_published(e, c)))
        .on::<ReviewCreated, _>(|e, c| Box::pin(review_created(e, c)))
        .on::<OrderCreated, _>(|e, c| Box::pin(order_created(e, c)))
        .on::<OrderCancelled, _>(|e, c| Box::pin(order_cancelled(e, c)))
        .on::<RefundIssued, _>(|e, c| Box::pin(refund_issued(e, c)))
        .on::<BookingConfirmed, _>(|e, c| Box::pin(booking_confirmed(e, c)))
        .on::<BookingCancelled, _>(|e, c| Box::pin(booking_cancelled(e, c)))
        .on::<NewsletterSubscribed, _>(|e, c| Box::pin(newsletter_subscribed(e, c)))
        .on::<ContactReceived, _>(|e, c| Box::pin(contact_received(e, c)))
        .on::<BusinessEnquiryReceived, _>(|e, c| Box::pin(business_enquiry_received(e, c)))
        .on::<UserErasureRequested, _>(|e, c| Box::pin(user_erasure_requested(e, c)))
}

fn row<P>(
    event: &DomainEvent<P>,
    name: &str,
    user: Option<uuid::Uuid>,
    properties: serde_json::Value,
) -> EventRow {
    EventRow::server(
        event.id.to_string(),
        name,
        user,
        properties,
        event.timestamp,
    )
}

async fn record(conn: &mut PgConnection, row: EventRow) -> Result<(), HandlerError> {
    store::insert(conn, &[row]).await?;
    Ok(())
}

async fn user_created(
    e: DomainEvent<UserCreated>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "user_registered",
        Some(p.user_id),
        json!({
            "role": p.role, "marketingOptIn": p.marketing_opt_in,
        }),
    );
    record(conn, r).await
}

async fn booking_created(
    e: DomainEvent<BookingCreated>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "booking_created",
        p.user_id,
        json!({
            "bookingId": p.booking_id, "appointmentType": p.appointment_type,
            "forKitchen": p.for_kitchen, "forBedroom": p.for_bedroom, "showroomId": p.showroom_id,
        }),
    );
    record(conn, r).await
}

async fn payment_succeeded(
    e: DomainEvent<PaymentSucceeded>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let mut r = row(
        &e,
        "purchase",
        p.user_id,
        json!({
            "orderId": p.order_id, "paymentId": p.payment_id,
        }),
    );
    r.revenue = Some(p.amount);
    r.currency = Some(p.currency.clone());
    record(conn, r).await
}

async fn brochure_requested(
    e: DomainEvent<BrochureRequested>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "brochure_requested",
        p.user_id,
        json!({
            "requestId": p.request_id, "forKitchen": p.for_kitchen, "forBedroom": p.for_bedroom,
            "delivery": p.delivery,
        }),
    );
    record(conn, r).await
}

/// Records the post and, by the seed's rule, marks the sitemap stale; [`crate::sitemap`] asks
/// content to refresh it (outside this transaction, retried).
async fn blog_published(
    e: DomainEvent<BlogPublished>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "blog_published",
        p.author_id,
        json!({
            "postId": p.post_id, "slug": p.slug, "tags": p.tags,
        }),
    );
    record(&mut *conn, r).await?;
    sqlx::query(
        "INSERT INTO sitemap_state (id, stale_since, last_post, publishes) VALUES (TRUE, $1, $2, 1)
         ON CONFLICT (id) DO UPDATE SET stale_since = COALESCE(sitemap_state.stale_since, $1),
             last_post = $2, publishes = sitemap_state.publishes + 1",
    )
    .bind(p.published_at)
    .bind(p.post_id)
    .execute(conn)
    .await?;
    Ok(())
}

async fn review_created(
    e: DomainEvent<ReviewCreated>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "review_created",
        Some(p.user_id),
        json!({
            "reviewId": p.review_id, "productId": p.product_id, "rating": p.rating,
            "verifiedPurchase": p.verified_purchase,
        }),
    );
    record(conn, r).await
}

async fn order_created(
    e: DomainEvent<OrderCreated>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "order_created",
        p.user_id,
        json!({
            "orderId": p.order_id, "total": p.total, "currency": p.currency, "lines": p.lines.len(),
        }),
    );
    record(conn, r).await
}

async fn order_cancelled(
    e: DomainEvent<OrderCancelled>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "order_cancelled",
        p.user_id,
        json!({
            "orderId": p.order_id, "cancelledBy": p.cancelled_by,
        }),
    );
    record(conn, r).await
}

/// Refunds are recorded with their amount as a property; revenue stays that of purchases.
async fn refund_issued(
    e: DomainEvent<RefundIssued>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "refund_issued",
        p.user_id,
        json!({
            "orderId": p.order_id, "refundId": p.refund_id, "amount": p.amount,
            "currency": p.currency,
        }),
    );
    record(conn, r).await
}

async fn booking_confirmed(
    e: DomainEvent<BookingConfirmed>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "booking_confirmed",
        p.user_id,
        json!({
            "bookingId": p.booking_id, "appointmentType": p.appointment_type,
        }),
    );
    record(conn, r).await
}

async fn booking_cancelled(
    e: DomainEvent<BookingCancelled>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "booking_cancelled",
        p.user_id,
        json!({
            "bookingId": p.booking_id, "cancelledBy": p.cancelled_by,
        }),
    );
    record(conn, r).await
}

/// Personal data (emails, names, messages) is never copied into analytics.
async fn newsletter_subscribed(
    e: DomainEvent<NewsletterSubscribed>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "newsletter_subscribed",
        None,
        json!({"source": p.source}),
    );
    record(conn, r).await
}

async fn contact_received(
    e: DomainEvent<ContactReceived>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let r = row(&e, "contact_received", None, json!({}));
    record(conn, r).await
}

async fn business_enquiry_received(
    e: DomainEvent<BusinessEnquiryReceived>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let p = &e.payload;
    let r = row(
        &e,
        "business_enquiry_received",
        None,
        json!({"enquiryType": p.enquiry_type}),
    );
    record(conn, r).await
}

/// GDPR erasure: the user's events stay as anonymous statistics, unlinked from the user
/// (`actor` is generated from `user_id`, so it falls back to the browser ids).
async fn user_erasure_requested(
    e: DomainEvent<UserErasureRequested>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    sqlx::query("UPDATE tracking_events SET user_id = NULL WHERE user_id = $1")
        .bind(e.payload.user_id)
        .execute(conn)
        .await?;
    Ok(())
}
