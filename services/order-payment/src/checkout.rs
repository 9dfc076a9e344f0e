//! `POST /v1/checkout/summary` and the quote that orders are placed from.
//!
//! A quote re-prices the lines at the product service (never trusting a client's price), picks
//! the shipping rate by method code for the destination country, applies the coupon and VAT
//! (see [`crate::pricing`] for the arithmetic and the VAT-inclusive decision) and returns every
//! figure in pence. The summary shows lines that can no longer be bought as `unavailableItems`
//! and leaves them out of the totals; placing an order refuses them instead (409).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use service_kit::{MaybeCaller, ValidatedJson};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::AppState;
use crate::cart::{self, CartToken, ItemRequest, MAX_QUANTITY, Shopper};
use crate::coupons::{self, Applied};
use crate::error::{OrderError, OrderResult};
use crate::pricing::{ShippingTerms, Totals, VatTerms, totals};
use crate::rates::{self, ShippingRate};

/// A postal address. For `GB` the postcode is validated and normalised (`sw1a1aa` → `SW1A 1AA`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CheckoutAddress)]
pub struct Address {
    /// Recipient.
    #[validate(length(min = 1, max = 120, message = "must be 1–120 characters"))]
    #[schema(min_length = 1, max_length = 120)]
    pub full_name: String,
    /// First line.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    /// Second line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    /// Town or city.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    /// County.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(max_length = 100)]
    pub county: Option<String>,
    /// Postcode.
    #[validate(length(min = 1, max = 16, message = "must be 1–16 characters"))]
    #[schema(min_length = 1, max_length = 16)]
    pub postcode: String,
    /// ISO 3166-1 alpha-2 country code (`GB`).
    #[validate(custom(function = "country"))]
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
}

fn country(code: &str) -> Result<(), ValidationError> {
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ValidationError::new("country")
            .with_message("must be an ISO 3166-1 alpha-2 code in upper case, e.g. GB".into()))
    }
}

impl Address {
    /// The address with trimmed fields and, for GB, the normalised postcode; 422 naming
    /// `{field}.postcode` when a GB postcode is not one.
    pub fn normalised(mut self, field: &str) -> OrderResult<Self> {
        let trim = |s: &mut String| *s = s.trim().to_owned();
        trim(&mut self.full_name);
        trim(&mut self.line1);
        trim(&mut self.city);
        self.line2 = self
            .line2
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        self.county = self
            .county
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if self.country == "GB" {
            self.postcode = validation::UkPostcode::parse(&self.postcode)
                .map_err(|_| {
                    OrderError::field(&format!("{field}.postcode"), "is not a UK postcode")
                })?
                .as_str()
                .to_owned();
        } else {
            self.postcode = self.postcode.trim().to_ascii_uppercase();
        }
        for (name, value) in [
            ("fullName", &self.full_name),
            ("line1", &self.line1),
            ("city", &self.city),
        ] {
            if value.is_empty() {
                return Err(OrderError::field(
                    &format!("{field}.{name}"),
                    "must not be blank",
                ));
            }
        }
        Ok(self)
    }
}

/// Adds up repeated product/variant lines; 422 when one exceeds the per-line maximum.
pub fn merge_lines(items: &[ItemRequest], field: &str) -> OrderResult<Vec<ItemRequest>> {
    let mut merged: Vec<ItemRequest> = Vec::with_capacity(items.len());
    for item in items {
        match merged
            .iter_mut()
            .find(|m| m.product_id == item.product_id && m.variant_id == item.variant_id)
        {
            Some(line) => line.quantity += item.quantity,
            None => merged.push(item.clone()),
        }
    }
    if let Some(i) = merged.iter().position(|l| l.quantity > MAX_QUANTITY) {
        return Err(OrderError::field(
            &format!("{field}[{i}].quantity"),
            format!("at most {MAX_QUANTITY} units of one item"),
        ));
    }
    Ok(merged)
}

/// A line priced at the product service's current price, with its snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricedLine {
    /// The product.
    pub product_id: Uuid,
    /// The variant.
    pub variant_id: Option<Uuid>,
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// First image.
    pub image_url: Option<String>,
    /// Unit price in pence.
    pub unit_price: i64,
    /// Units.
    pub quantity: i32,
    /// `unitPrice × quantity`.
    pub line_total: i64,
}

/// A line that cannot be bought online now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnavailableLine {
    /// The product.
    pub product_id: Uuid,
    /// The variant asked for.
    pub variant_id: Option<Uuid>,
    /// Units asked for.
    pub requested: i32,
    /// Units available (0: not for sale).
    pub available: i64,
    /// `NOT_FOR_SALE` (unknown, withdrawn, unpublished or priced on consultation).
    pub reason: String,
}

/// Prices `lines` at the product service.
pub async fn price_lines(
    state: &AppState,
    lines: &[ItemRequest],
) -> OrderResult<(Vec<PricedLine>, Vec<UnavailableLine>)> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let snapshots = if ids.is_empty() {
        HashMap::new()
    } else {
        state.products.lookup(&ids).await?
    };
    let mut priced = Vec::with_capacity(lines.len());
    let mut unavailable = Vec::new();
    for line in lines {
        let snapshot = snapshots.get(&line.product_id);
        match snapshot.and_then(|s| s.purchasable_price().map(|p| (s, p))) {
            Some((snapshot, price)) => priced.push(PricedLine {
                product_id: line.product_id,
                variant_id: line.variant_id,
                sku: snapshot.sku.clone(),
                title: snapshot.title.clone(),
                image_url: snapshot.image_url.clone(),
                unit_price: price,
                quantity: line.quantity,
                line_total: price * i64::from(line.quantity),
            }),
            None => unavailable.push(UnavailableLine {
                product_id: line.product_id,
                variant_id: line.variant_id,
                requested: line.quantity,
                available: 0,
                reason: "NOT_FOR_SALE".to_owned(),
            }),
        }
    }
    Ok((priced, unavailable))
}

/// A priced checkout.
#[derive(Debug, Clone)]
pub struct Quote {
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// The totals.
    pub totals: Totals,
    /// The VAT terms used.
    pub vat: VatTerms,
    /// The shipping method.
    pub shipping: ShippingRate,
    /// The coupon, when one applies.
    pub coupon: Option<Applied>,
}

/// Where and how a quote ships, and for whom.
#[derive(Debug, Clone, Copy)]
pub struct QuoteTerms<'a> {
    /// Delivery method code.
    pub method: &'a str,
    /// Destination country.
    pub country: &'a str,
    /// Coupon code, if any.
    pub coupon_code: Option<&'a str>,
    /// The customer (for per-customer coupon limits).
    pub user: Option<Uuid>,
    /// Keep the coupon row locked for the caller's transaction (placing an order).
    pub lock_coupon: bool,
}

/// Completes a quote for `lines` under `terms`. An unknown method or a coupon that does not
/// apply is a 422 naming the field.
pub async fn quote(
    conn: &mut PgConnection,
    state: &AppState,
    lines: Vec<PricedLine>,
    terms: QuoteTerms<'_>,
) -> OrderResult<Quote> {
    let QuoteTerms {
        method,
        country,
        coupon_code,
        user,
        lock_coupon,
    } = terms;
    let shipping = rates::shipping_rate(conn, method, country)
        .await?
        .ok_or_else(|| {
            OrderError::field(
                "shippingMethod",
                format!("is not a delivery method we offer to {country}"),
            )
        })?;
    let vat = VatTerms {
        rate_bp: rates::vat_rate(conn, country).await?,
        prices_include_vat: state.settings.prices_include_vat,
    };
    let subtotal: i64 = lines.iter().map(|l| l.line_total).sum();
    let coupon = match coupon_code.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => match coupons::check(conn, code, user, Some(subtotal), lock_coupon).await? {
            Ok(applied) => Some(applied),
            Err((reason, coupon)) => {
                return Err(OrderError::field(
                    "couponCode",
                    reason.message(coupon.as_ref()),
                ));
            }
        },
        None => None,
    };
    let discount = coupon.as_ref().map_or(0, |c| c.discount);
    // Nothing to deliver, nothing to charge for delivery.
    let shipping_terms = if lines.is_empty() {
        ShippingTerms {
            price: 0,
            free_over: None,
        }
    } else {
        shipping.terms()
    };
    let totals = totals(subtotal, discount, &shipping_terms, &vat);
    Ok(Quote {
        lines,
        totals,
        vat,
        shipping,
        coupon,
    })
}

/// What to price.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryRequest {
    /// Lines to price; absent → the shopper's cart.
    #[validate(length(min = 1, max = 100, message = "must list 1–100 items"), nested)]
    #[schema(min_items = 1, max_items = 100)]
    pub items: Option<Vec<ItemRequest>>,
    /// Delivery method code (default `STANDARD`).
    #[serde(default = "standard")]
    #[validate(length(min = 1, max = 32, message = "must be 1–32 characters"))]
    #[schema(min_length = 1, max_length = 32)]
    pub shipping_method: String,
    /// Destination country (default `GB`).
    #[serde(default = "gb")]
    #[validate(custom(function = "country"))]
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
    /// A coupon code.
    #[validate(length(min = 1, max = 64, message = "must be 1–64 characters"))]
    #[schema(min_length = 1, max_length = 64)]
    pub coupon_code: Option<String>,
}

fn standard() -> String {
    "STANDARD".to_owned()
}

fn gb() -> String {
    "GB".to_owned()
}

/// The applied coupon.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedCoupon {
    /// Its code.
    pub code: String,
    /// Its discount in pence.
    pub discount: i64,
}

/// The figures of a checkout, in pence.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Priced lines.
    pub lines: Vec<PricedLine>,
    /// Lines that cannot be bought now (not in the totals).
    pub unavailable_items: Vec<UnavailableLine>,
    /// Sum of the lines.
    pub subtotal: i64,
    /// Coupon discount.
    pub discount: i64,
    /// Delivery.
    pub shipping: i64,
    /// VAT included in (or added to) the total.
    pub tax: i64,
    /// What the customer pays.
    pub total: i64,
    /// Currency of every amount.
    pub currency: String,
    /// VAT rate in basis points.
    pub vat_rate_bp: i32,
    /// Whether prices include VAT.
    pub prices_include_vat: bool,
    /// The delivery method.
    pub shipping_method: String,
    /// Goods (after discount) from which delivery is free, if the method has a threshold.
    pub free_shipping_threshold: Option<i64>,
    /// How much more would make delivery free.
    pub amount_to_free_shipping: Option<i64>,
    /// The coupon applied.
    pub coupon: Option<AppliedCoupon>,
}

impl Summary {
    /// The summary of `quote`.
    pub fn of(quote: Quote, unavailable: Vec<UnavailableLine>) -> Self {
        let goods = quote.totals.subtotal - quote.totals.discount;
        let threshold = quote.shipping.free_over;
        Self {
            lines: quote.lines,
            unavailable_items: unavailable,
            subtotal: quote.totals.subtotal,
            discount: quote.totals.discount,
            shipping: quote.totals.shipping,
            tax: quote.totals.tax,
            total: quote.totals.total,
            currency: "GBP".to_owned(),
            vat_rate_bp: quote.vat.rate_bp,
            prices_include_vat: quote.vat.prices_include_vat,
            shipping_method: quote.shipping.code,
            free_shipping_threshold: threshold,
            amount_to_free_shipping: threshold.map(|t| (t - goods).max(0)),
            coupon: quote.coupon.map(|c| AppliedCoupon {
                code: c.coupon.code,
                discount: c.discount,
            }),
        }
    }
}

/// The lines of the shopper's cart as requests.
pub async fn cart_lines(
    conn: &mut PgConnection,
    shopper: &Shopper,
) -> OrderResult<(Option<Uuid>, Vec<ItemRequest>)> {
    let Some(cart) = cart::current_cart(conn, shopper).await? else {
        return Ok((None, Vec::new()));
    };
    let lines = cart::lines_of(conn, cart.id)
        .await?
        .into_iter()
        .map(|l| ItemRequest {
            product_id: l.product_id,
            variant_id: l.variant_id,
            quantity: l.quantity,
        })
        .collect();
    Ok((Some(cart.id), lines))
}

/// Prices a checkout: the given items or the shopper's cart, a delivery method, a destination
/// and a coupon (anyone; guests send their `X-Cart-Token`).
#[utoipa::path(
    post,
    path = "/v1/checkout/summary",
    tag = "checkout",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    request_body = SummaryRequest,
    responses(
        (status = 200, description = "The figures", body = Summary),
        (status = 422, description = "Invalid request, unknown delivery method, or a coupon that does not apply", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The product service is unavailable", body = service_kit::Problem, content_type = "application/problem+json"),
    )
)]
async fn summary(
    State(state): State<AppState>,
    caller: MaybeCaller,
    token: CartToken,
    ValidatedJson(request): ValidatedJson<SummaryRequest>,
) -> OrderResult<Json<Summary>> {
    let user = caller.0.as_ref().map(|c| c.user_id);
    let lines = match &request.items {
        Some(items) => merge_lines(items, "items")?,
        None => {
            let mut tx = state.db.begin().await?;
            let (_, lines) = cart_lines(&mut tx, &Shopper::new(&caller, &token)).await?;
            tx.commit().await?;
            lines
        }
    };
    let (priced, unavailable) = price_lines(&state, &lines).await?;
    let mut conn = state.db.acquire().await?;
    let quote = quote(
        &mut conn,
        &state,
        priced,
        QuoteTerms {
            method: &request.shipping_method,
            country: &request.country,
            coupon_code: request.coupon_code.as_deref(),
            user,
            lock_coupon: false,
        },
    )
    .await?;
    Ok(Json(Summary::of(quote, unavailable)))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(summary))
}
