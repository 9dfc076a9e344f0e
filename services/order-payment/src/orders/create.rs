//! `POST /v1/orders`: place an order, once per `Idempotency-Key`.
//!
//! 1. The key is claimed ([`crate::idempotency`]): a replay answers the stored response, another
//!    body under the same key is a 422, a concurrent duplicate a 409.
//! 2. The body is validated (addresses normalised, GB postcodes checked); the lines are the given
//!    `items` or the customer's cart.
//! 3. Every line is re-priced at the product service; a line that cannot be bought is a 409
//!    listing it. The shipping method, VAT and coupon are checked (422s) before any stock is held.
//! 4. Stock is reserved at the product service for the order's id, all or nothing (409 listing
//!    what is short; nothing is stored and nothing stays reserved).
//! 5. One transaction re-checks the coupon under its row lock, stores the order with item
//!    snapshots (title, SKU, unit price, image), its first history entry, the coupon redemption,
//!    `order.created` in the outbox, empties the cart it came from, and stores the response under
//!    the key. If that fails, the reservation is released at once.
//!
//! The order number is `ORD-YYYYMMDD-XXXXXX` (UTC date, six random characters from an
//! unambiguous alphabet), retried on the rare collision. An unpaid order holds its stock for
//! `ORDER_RESERVATION_TTL_SECS` (product holds it five minutes longer, so our expiry job is
//! always the one that cancels).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use rand::Rng;
use serde::Deserialize;
use service_kit::shared_types::order_payment::{OrderCreated, OrderLine};
use service_kit::{Caller, IdempotencyKey, Problem, event_bus};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::{Actor, OrderStatus, full_view, lifecycle, order_row};
use crate::cart::{CartToken, ItemRequest, Shopper};
use crate::checkout::{self, Address, PricedLine, Quote, QuoteTerms};
use crate::error::{OrderError, OrderResult};
use crate::idempotency::{self, Begin, Claim};
use crate::products::ReservationLine;
use crate::{AppState, coupons, event};

/// Extra time product holds stock beyond our own expiry, so we cancel first.
const RESERVATION_MARGIN: std::time::Duration = std::time::Duration::from_secs(300);

/// An order to place.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrder {
    /// Lines to buy; absent → the customer's cart (which is emptied once the order is placed).
    #[validate(length(min = 1, max = 100, message = "must list 1–100 items"), nested)]
    #[schema(min_items = 1, max_items = 100)]
    pub items: Option<Vec<ItemRequest>>,
    /// Where order emails go.
    #[validate(custom(function = "validation::validate_email"))]
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Delivery address.
    #[validate(nested)]
    pub shipping_address: Address,
    /// Billing address (default: the delivery address).
    #[validate(nested)]
    pub billing_address: Option<Address>,
    /// Delivery method code (default `STANDARD`).
    #[serde(default = "standard")]
    #[validate(length(min = 1, max = 32, message = "must be 1–32 characters"))]
    #[schema(min_length = 1, max_length = 32)]
    pub shipping_method: String,
    /// A coupon code.
    #[validate(length(min = 1, max = 64, message = "must be 1–64 characters"))]
    #[schema(min_length = 1, max_length = 64)]
    pub coupon_code: Option<String>,
}

fn standard() -> String {
    "STANDARD".to_owned()
}

/// Whether a failure is the client's (stored and replayed under its key) rather than ours or a
/// peer's (the key is released so a retry can run).
fn is_final(error: &OrderError) -> bool {
    match error {
        OrderError::Validation(_)
        | OrderError::NotFound(_)
        | OrderError::Conflict(..)
        | OrderError::InsufficientStock(_) => true,
        OrderError::Problem(problem) => problem.status_code().is_client_error(),
        _ => false,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

/// Places an order (requires `Idempotency-Key`). Prices come from the product service; stock is
/// reserved all or nothing; the order starts PENDING/UNPAID and is cancelled if unpaid when its
/// reservation expires.
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    params(
        ("Idempotency-Key" = String, Header, description = "1–255 visible ASCII characters; a retry with the same key and body gets the same answer"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart to merge into the customer's cart first"),
    ),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "Placed", body = super::Order),
        (status = 400, description = "Missing Idempotency-Key or malformed JSON", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Items short or not for sale (listed in `items`), or the same key is in flight", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid order, or the key was used for another request", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The product service is unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    token: CartToken,
    headers: HeaderMap,
    body: Bytes,
) -> OrderResult<Response> {
    if !is_json(&headers) {
        return Err(OrderError::Problem(
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .with_detail("Send the body as application/json."),
        ));
    }
    // Malformed JSON is refused before the key is claimed: there is nothing to fingerprint.
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        OrderError::Problem(Problem::bad_request(format!(
            "The body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        )))
    })?;
    let fingerprint = idempotency::fingerprint("POST", "/v1/orders", &json);
    let caller_key = format!("user:{}", caller.user_id);
    let claim = match idempotency::begin(&state.db, &caller_key, &key.0, &fingerprint).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    match place(&state, &caller, &token, &body, &claim).await {
        Ok(response) => Ok(response),
        Err(error) if is_final(&error) => {
            let problem = error.to_problem();
            let mut conn = state.db.acquire().await?;
            claim.complete_problem(&mut conn, &problem).await
        }
        Err(error) => {
            claim.abandon(&state.db).await;
            Err(error)
        }
    }
}

async fn place(
    state: &AppState,
    caller: &Caller,
    token: &CartToken,
    body: &[u8],
    claim: &Claim,
) -> OrderResult<Response> {
    let request: CreateOrder = service_kit::extract::parse_json(body)?;
    request
        .validate()
        .map_err(service_kit::extract::validation_problem)?;
    let shipping_address = request
        .shipping_address
        .clone()
        .normalised("shippingAddress")?;
    let billing_address = match request.billing_address.clone() {
        Some(address) => address.normalised("billingAddress")?,
        None => shipping_address.clone(),
    };
    let email = request.email.trim().to_ascii_lowercase();

    // The lines: given, or the customer's cart.
    let shopper = Shopper {
        user: Some(caller.user_id),
        token: token.0.clone(),
    };
    let (cart_id, lines) = match &request.items {
        Some(items) => (None, checkout::merge_lines(items, "items")?),
        None => {
            let mut tx = state.db.begin().await?;
            let found = checkout::cart_lines(&mut tx, &shopper).await?;
            tx.commit().await?;
            found
        }
    };
    if lines.is_empty() {
        return Err(OrderError::field(
            "items",
            "the cart is empty; add items or send `items`",
        ));
    }

    // Re-price; anything that cannot be bought stops the order before stock is touched.
    let (priced, unavailable) = checkout::price_lines(state, &lines).await?;
    if !unavailable.is_empty() {
        return Err(OrderError::InsufficientStock(
            serde_json::to_value(&unavailable).map_err(anyhow::Error::from)?,
        ));
    }
    let terms = QuoteTerms {
        method: &request.shipping_method,
        country: &shipping_address.country,
        coupon_code: request.coupon_code.as_deref(),
        user: Some(caller.user_id),
        lock_coupon: false,
    };
    {
        // Checked now so a bad method or coupon does not hold stock even briefly.
        let mut conn = state.db.acquire().await?;
        checkout::quote(&mut conn, state, priced.clone(), terms).await?;
    }

    let order_id = Uuid::now_v7();
    let reservation: Vec<ReservationLine> = priced
        .iter()
        .map(|l| ReservationLine {
            product_id: l.product_id,
            variant_id: l.variant_id,
            quantity: l.quantity,
        })
        .collect();
    if let Err(error) = state
        .products
        .reserve(
            order_id,
            &reservation,
            state.settings.reservation_ttl + RESERVATION_MARGIN,
        )
        .await
    {
        // A timeout may hide a reservation product did make: give it back now rather than
        // leave it held until product's sweeper, since a retry reserves under a new order id.
        if matches!(error, OrderError::Peer(_))
            && let Err(release) = state.products.release(order_id).await
        {
            tracing::warn!(%order_id, error = %release, "could not release a possibly held reservation");
        }
        return Err(error);
    }

    let stored = store(
        state,
        caller,
        claim,
        NewOrder {
            id: order_id,
            email: &email,
            shipping_address: &shipping_address,
            billing_address: &billing_address,
            cart_id,
            lines: priced,
            terms: QuoteTerms {
                lock_coupon: true,
                ..terms
            },
        },
    )
    .await;
    if stored.is_err()
        && let Err(error) = state.products.release(order_id).await
    {
        // Product's own sweeper frees it when the hold lapses.
        tracing::warn!(%order_id, %error, "could not release the stock of an order that was not stored");
    }
    stored
}

struct NewOrder<'a> {
    id: Uuid,
    email: &'a str,
    shipping_address: &'a Address,
    billing_address: &'a Address,
    cart_id: Option<Uuid>,
    lines: Vec<PricedLine>,
    terms: QuoteTerms<'a>,
}

fn order_number() -> String {
    // No 0/O or 1/I/L: numbers are read out over the phone.
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("ORD-{}-{suffix}", Utc::now().format("%Y%m%d"))
}

async fn insert_order(
    conn: &mut PgConnection,
    state: &AppState,
    caller: &Caller,
    new: &NewOrder<'_>,
    quote: &Quote,
) -> OrderResult<String> {
    let ttl =
        chrono::Duration::from_std(state.settings.reservation_ttl).map_err(anyhow::Error::from)?;
    for _ in 0..5 {
        let number = order_number();
        let inserted = sqlx::query(
            "INSERT INTO orders (id, order_number, user_id, customer_email, subtotal_pence,
                 discount_pence, shipping_pence, tax_pence, total_pence, vat_rate_bp,
                 prices_include_vat, coupon_id, coupon_code, shipping_method, shipping_address,
                 billing_address, reservation_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now() + $17)
             ON CONFLICT (order_number) DO NOTHING",
        )
        .bind(new.id)
        .bind(&number)
        .bind(caller.user_id)
        .bind(new.email)
        .bind(quote.totals.subtotal)
        .bind(quote.totals.discount)
        .bind(quote.totals.shipping)
        .bind(quote.totals.tax)
        .bind(quote.totals.total)
        .bind(quote.vat.rate_bp)
        .bind(quote.vat.prices_include_vat)
        .bind(quote.coupon.as_ref().map(|c| c.coupon.id))
        .bind(quote.coupon.as_ref().map(|c| c.coupon.code.clone()))
        .bind(&quote.shipping.code)
        .bind(serde_json::to_value(new.shipping_address).map_err(anyhow::Error::from)?)
        .bind(serde_json::to_value(new.billing_address).map_err(anyhow::Error::from)?)
        .bind(ttl)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(number);
        }
    }
    Err(anyhow::anyhow!("no free order number after five tries").into())
}

async fn store(
    state: &AppState,
    caller: &Caller,
    claim: &Claim,
    new: NewOrder<'_>,
) -> OrderResult<Response> {
    let mut tx = state.db.begin().await?;
    // Re-checked under the coupon's row lock: a limit cannot be overrun by concurrent orders.
    let quote = checkout::quote(&mut tx, state, new.lines.clone(), new.terms).await?;
    let number = insert_order(&mut tx, state, caller, &new, &quote).await?;
    for (position, line) in quote.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_items (id, order_id, position, product_id, variant_id, sku, title,
                 image_url, unit_price_pence, quantity, line_total_pence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(Uuid::now_v7())
        .bind(new.id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(line.product_id)
        .bind(line.variant_id)
        .bind(&line.sku)
        .bind(&line.title)
        .bind(&line.image_url)
        .bind(line.unit_price)
        .bind(line.quantity)
        .bind(line.line_total)
        .execute(&mut *tx)
        .await?;
    }
    lifecycle::record(
        &mut tx,
        new.id,
        None,
        OrderStatus::Pending,
        Actor::Customer(caller.user_id),
        Some("order placed"),
    )
    .await?;
    if let Some(applied) = &quote.coupon {
        coupons::redeem(&mut tx, applied, new.id, Some(caller.user_id)).await?;
    }
    if let Some(cart) = new.cart_id {
        crate::cart::clear(&mut tx, cart).await?;
    }
    let row = order_row(&mut tx, new.id, false)
        .await?
        .ok_or(OrderError::NotFound("order"))?;
    event_bus::outbox::publish(
        &mut tx,
        &event(OrderCreated {
            order_id: new.id,
            order_number: number,
            user_id: Some(caller.user_id),
            customer_email: new.email.to_owned(),
            lines: quote
                .lines
                .iter()
                .map(|l| OrderLine {
                    product_id: l.product_id,
                    sku: l.sku.clone(),
                    name: l.title.clone(),
                    quantity: u32::try_from(l.quantity).unwrap_or(0),
                    unit_price: l.unit_price,
                    line_total: l.line_total,
                })
                .collect(),
            subtotal: quote.totals.subtotal,
            delivery: quote.totals.shipping,
            tax: quote.totals.tax,
            total: quote.totals.total,
            currency: "GBP".to_owned(),
            created_at: row.created_at,
        }),
    )
    .await?;
    let order = full_view(&mut tx, row).await?;
    let response = claim.complete(&mut tx, StatusCode::CREATED, &order).await?;
    tx.commit().await?;
    Ok(response)
}
