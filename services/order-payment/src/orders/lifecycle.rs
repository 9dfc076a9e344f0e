//! The order state machine: which status may follow which, who moved it, and cancellation.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use service_kit::Role;
use service_kit::event_bus;
use service_kit::shared_types::order_payment::{CancelledBy, OrderCancelled, ReservedItem};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::OrderRow;
use crate::error::{OrderError, OrderResult};
use crate::{AppState, coupons, event};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed, stock reserved, awaiting payment.
    Pending,
    /// Paid.
    Confirmed,
    /// Being prepared.
    Processing,
    /// With the carrier.
    Shipped,
    /// Received.
    Delivered,
    /// Cancelled (stock released; refunded if it was paid).
    Cancelled,
}

impl OrderStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Processing => "PROCESSING",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Whether `self → to` is a step of the lifecycle.
    pub fn can_move_to(self, to: Self) -> bool {
        use OrderStatus::{Cancelled, Confirmed, Delivered, Pending, Processing, Shipped};
        matches!(
            (self, to),
            (Pending, Confirmed)
                | (Confirmed, Processing)
                | (Processing, Shipped)
                | (Shipped, Delivered)
                | (Pending | Confirmed, Cancelled)
        )
    }
}

/// Where an order's money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Not paid.
    Unpaid,
    /// Paid in full.
    Paid,
    /// Partly refunded.
    PartiallyRefunded,
    /// Refunded in full.
    Refunded,
}

/// Who changed an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The customer.
    Customer(Uuid),
    /// A member of staff.
    Staff(Uuid, Role),
    /// The system (expiry job, payment webhook).
    System,
}

impl Actor {
    fn id(self) -> Option<Uuid> {
        match self {
            Self::Customer(id) | Self::Staff(id, _) => Some(id),
            Self::System => None,
        }
    }

    fn role(self) -> String {
        match self {
            Self::Customer(_) => "CUSTOMER".to_owned(),
            Self::Staff(_, role) => crate::enum_to_db(&role),
            Self::System => "SYSTEM".to_owned(),
        }
    }

    fn cancelled_by(self) -> CancelledBy {
        match self {
            Self::Customer(_) => CancelledBy::Customer,
            Self::Staff(..) => CancelledBy::Staff,
            Self::System => CancelledBy::System,
        }
    }
}

fn status_of(row: &OrderRow) -> OrderResult<OrderStatus> {
    Ok(crate::enum_from_db(&row.status)?)
}

/// 409 for a step the lifecycle does not have.
pub fn illegal(from: OrderStatus, to: OrderStatus) -> OrderError {
    OrderError::conflict(
        "illegal-transition",
        format!(
            "An order that is {} cannot become {}.",
            from.as_str(),
            to.as_str()
        ),
    )
}

/// Appends a status change to the order's history.
pub async fn record(
    conn: &mut PgConnection,
    order: Uuid,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: Actor,
    reason: Option<&str>,
) -> OrderResult<()> {
    sqlx::query!("INSERT INTO order_status_history (id, order_id, from_status, to_status, actor_id, actor_role, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)", Uuid::now_v7(), order, from.map(OrderStatus::as_str), to.as_str(), actor.id(), actor.role(), reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the locked order `row` to `to` (PROCESSING, SHIPPED or DELIVERED: fulfilment steps),
/// checked against the lifecycle; returns the new status. Confirmation belongs to payments and
/// cancellation to [`cancel`].
pub async fn advance(
    conn: &mut PgConnection,
    row: &OrderRow,
    to: OrderStatus,
    actor: Actor,
    reason: Option<&str>,
) -> OrderResult<OrderStatus> {
    let from = status_of(row)?;
    match to {
        OrderStatus::Confirmed => {
            return Err(OrderError::conflict(
                "payment-required",
                "Only a successful payment confirms an order.",
            ));
        }
        OrderStatus::Pending | OrderStatus::Cancelled => return Err(illegal(from, to)),
        _ => {}
    }
    if !from.can_move_to(to) {
        return Err(illegal(from, to));
    }
    sqlx::query!(
        "UPDATE orders SET status = $2,
             shipped_at = CASE WHEN $2 = 'SHIPPED' THEN now() ELSE shipped_at END,
             delivered_at = CASE WHEN $2 = 'DELIVERED' THEN now() ELSE delivered_at END
         WHERE id = $1",
        row.id,
        to.as_str()
    )
    .execute(&mut *conn)
    .await?;
    record(conn, row.id, Some(from), to, actor, reason).await?;
    Ok(to)
}

/// What a cancellation did.
#[derive(Debug, Clone)]
pub struct Cancelled {
    /// The order.
    pub order_id: Uuid,
    /// Whether money was taken (so a refund is due).
    pub was_paid: bool,
    /// The reason recorded.
    pub reason: Option<String>,
}

/// Cancels the locked order `row` (PENDING or CONFIRMED; else 409): records it, gives the
/// coupon use back and writes `order.cancelled` (product releases the stock) — all in the
/// caller's transaction. A paid order's refund follows the commit ([`after_cancel`]).
pub async fn cancel(
    conn: &mut PgConnection,
    row: OrderRow,
    actor: Actor,
    reason: Option<&str>,
) -> OrderResult<Cancelled> {
    let from = status_of(&row)?;
    if !from.can_move_to(OrderStatus::Cancelled) {
        return Err(illegal(from, OrderStatus::Cancelled));
    }
    let now = Utc::now();
    sqlx::query!(
        "UPDATE orders SET status = 'CANCELLED', cancelled_at = $2, cancel_reason = $3,
             reservation_expires_at = NULL
         WHERE id = $1",
        row.id,
        now,
        reason
    )
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        row.id,
        Some(from),
        OrderStatus::Cancelled,
        actor,
        reason,
    )
    .await?;
    coupons::release(conn, row.id).await?;
    let items: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT product_id, sum(quantity)::int FROM order_items WHERE order_id = $1
         GROUP BY product_id ORDER BY product_id",
    )
    .bind(row.id)
    .fetch_all(&mut *conn)
    .await?;
    event_bus::outbox::publish(
        conn,
        &event(OrderCancelled {
            order_id: row.id,
            order_number: row.order_number.clone(),
            user_id: row.user_id,
            cancelled_by: actor.cancelled_by(),
            reason: reason.map(str::to_owned),
            items: items
                .into_iter()
                .map(|(product_id, quantity)| ReservedItem {
                    product_id,
                    quantity: u32::try_from(quantity).unwrap_or(0),
                })
                .collect(),
            cancelled_at: now,
        }),
    )
    .await?;
    Ok(Cancelled {
        order_id: row.id,
        was_paid: row.payment_status != "UNPAID",
        reason: reason.map(str::to_owned),
    })
}

/// After a cancellation committed: refunds a paid order in full (through part B's refunds,
/// which call Stripe and so must run outside the transaction). A failure is logged; the refund
/// can be retried by an admin (`POST /v1/refunds`), and the order still shows as paid until a
/// refund settles.
pub async fn after_cancel(state: &AppState, cancelled: &Cancelled, actor: Actor) {
    if !cancelled.was_paid {
        return;
    }
    let reason = cancelled
        .reason
        .clone()
        .unwrap_or_else(|| "order cancelled".to_owned());
    if let Err(error) =
        crate::refunds::refund_order(state, cancelled.order_id, &reason, actor.id()).await
    {
        tracing::error!(order_id = %cancelled.order_id, %error, "refund of a cancelled paid order failed; retry it from the back office");
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn the_lifecycle_allows_exactly_its_steps() {
        let all = [
            Pending, Confirmed, Processing, Shipped, Delivered, Cancelled,
        ];
        let allowed = [
            (Pending, Confirmed),
            (Confirmed, Processing),
            (Processing, Shipped),
            (Shipped, Delivered),
            (Pending, Cancelled),
            (Confirmed, Cancelled),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    OrderStatus::can_move_to(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }
}
