//! Invoices: issued in the payment's transaction ([`issue`]), numbered `INV-YYYY-NNNNNN` without
//! gaps, immutable snapshots of the order's lines, VAT, totals and addresses; `ISSUED` or `VOID`.
//!
//! - `GET /v1/invoices/{id}` (owner or admin; `{id}` may also be the invoice number, which
//!   receipts link to): JSON; `GET /v1/invoices/{id}.pdf`: the same
//!   invoice as a PDF (one route, since the router's `{id}` cannot carry a suffix: an id ending
//!   in `.pdf` asks for the PDF).
//! - `GET /v1/orders/{id}/invoice` (owner or admin): the order's live invoice.
//! - `POST /v1/admin/invoices/{id}/void {reason}` (ADMIN): voids it; the number stays used.
//!
//! **Numbering.** `invoice_counters` holds one row per year; [`issue`] increments it with an
//! upsert inside the payment's transaction. The row lock makes concurrent payments take turns,
//! and a rolled-back payment rolls its increment back too, so numbers have no gaps (a sequence
//! would skip on rollback).
//!
//! **VAT.** One rate per order (the tax rule of the shipping country, stored on the order);
//! the breakdown shows net, VAT and gross of the whole invoice at that rate. Line amounts are as
//! charged: VAT-inclusive when the order's prices include VAT.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
use serde::{Deserialize, Serialize};
use service_kit::audit::Entry;
use service_kit::extract::ValidatedJson;
use service_kit::{AdminCaller, Caller, Problem};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{OrderError, OrderResult};

/// One line of an invoice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLine {
    /// What was sold.
    pub description: String,
    /// Its SKU (none for delivery and discounts).
    pub sku: Option<String>,
    /// How many.
    pub quantity: i64,
    /// Price of one, in pence (negative for a discount).
    pub unit_price: i64,
    /// `quantity × unit_price`, in pence.
    pub total: i64,
}

/// VAT at one rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VatLine {
    /// The rate in basis points (2000 = 20%).
    pub rate_bp: i32,
    /// Net amount in pence.
    pub net: i64,
    /// VAT in pence.
    pub vat: i64,
    /// Gross amount in pence.
    pub gross: i64,
}

/// An invoice.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// Our id.
    pub id: Uuid,
    /// `INV-YYYY-NNNNNN`.
    pub invoice_number: String,
    /// The order.
    pub order_id: Uuid,
    /// Its number.
    pub order_number: String,
    /// The payment it records.
    pub payment_id: Uuid,
    /// `ISSUED` or `VOID`.
    pub status: String,
    /// `GBP`.
    pub currency: String,
    /// The lines (goods, then delivery and discount).
    pub lines: Vec<InvoiceLine>,
    /// Goods in pence.
    pub subtotal: i64,
    /// Discount in pence.
    pub discount: i64,
    /// Delivery in pence.
    pub shipping: i64,
    /// VAT in pence.
    pub tax: i64,
    /// Paid, in pence.
    pub total: i64,
    /// Whether line prices include VAT.
    pub prices_include_vat: bool,
    /// VAT by rate.
    pub vat_breakdown: Vec<VatLine>,
    /// Billing address as ordered.
    #[schema(value_type = Object)]
    pub billing_address: serde_json::Value,
    /// Delivery address as ordered.
    #[schema(value_type = Object)]
    pub shipping_address: serde_json::Value,
    /// When issued.
    pub issued_at: DateTime<Utc>,
    /// When voided.
    pub voided_at: Option<DateTime<Utc>>,
    /// Why voided.
    pub void_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: Uuid,
    invoice_number: String,
    order_id: Uuid,
    order_number: String,
    payment_id: Uuid,
    user_id: Option<Uuid>,
    status: String,
    currency: String,
    lines: serde_json::Value,
    subtotal_pence: i64,
    discount_pence: i64,
    shipping_pence: i64,
    tax_pence: i64,
    total_pence: i64,
    prices_include_vat: bool,
    vat_breakdown: serde_json::Value,
    billing_address: serde_json::Value,
    shipping_address: serde_json::Value,
    issued_at: DateTime<Utc>,
    voided_at: Option<DateTime<Utc>>,
    void_reason: Option<String>,
}

const INVOICE_COLUMNS: &str = "id, invoice_number, order_id, order_number, payment_id, user_id, \
     status, currency, lines, subtotal_pence, discount_pence, shipping_pence, tax_pence, \
     total_pence, prices_include_vat, vat_breakdown, billing_address, shipping_address, \
     issued_at, voided_at, void_reason";

impl InvoiceRow {
    fn into_invoice(self) -> OrderResult<Invoice> {
        Ok(Invoice {
            id: self.id,
            invoice_number: self.invoice_number,
            order_id: self.order_id,
            order_number: self.order_number,
            payment_id: self.payment_id,
            status: self.status,
            currency: self.currency,
            lines: serde_json::from_value(self.lines).map_err(anyhow::Error::from)?,
            subtotal: self.subtotal_pence,
            discount: self.discount_pence,
            shipping: self.shipping_pence,
            tax: self.tax_pence,
            total: self.total_pence,
            prices_include_vat: self.prices_include_vat,
            vat_breakdown: serde_json::from_value(self.vat_breakdown)
                .map_err(anyhow::Error::from)?,
            billing_address: self.billing_address,
            shipping_address: self.shipping_address,
            issued_at: self.issued_at,
            voided_at: self.voided_at,
            void_reason: self.void_reason,
        })
    }
}

/// The number of the `n`th invoice of `year`.
pub fn invoice_number(year: i32, n: i32) -> String {
    format!("INV-{year:04}-{n:06}")
}

#[derive(sqlx::FromRow)]
struct OrderForInvoice {
    order_number: String,
    user_id: Option<Uuid>,
    customer_email: Option<String>,
    subtotal_pence: i64,
    discount_pence: i64,
    shipping_pence: i64,
    tax_pence: i64,
    total_pence: i64,
    vat_rate_bp: i32,
    prices_include_vat: bool,
    shipping_method: String,
    coupon_code: Option<String>,
    billing_address: serde_json::Value,
    shipping_address: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct ItemForInvoice {
    title: String,
    sku: String,
    quantity: i32,
    unit_price_pence: i64,
    line_total_pence: i64,
}

/// The invoice's lines: the goods, then delivery and the discount.
fn invoice_lines(order: &OrderForInvoice, items: &[ItemForInvoice]) -> Vec<InvoiceLine> {
    let mut lines: Vec<InvoiceLine> = items
        .iter()
        .map(|item| InvoiceLine {
            description: item.title.clone(),
            sku: Some(item.sku.clone()),
            quantity: i64::from(item.quantity),
            unit_price: item.unit_price_pence,
            total: item.line_total_pence,
        })
        .collect();
    if order.shipping_pence > 0 {
        lines.push(InvoiceLine {
            description: format!("Delivery ({})", order.shipping_method),
            sku: None,
            quantity: 1,
            unit_price: order.shipping_pence,
            total: order.shipping_pence,
        });
    }
    if order.discount_pence > 0 {
        let label = match &order.coupon_code {
            Some(code) => format!("Discount ({code})"),
            None => "Discount".to_owned(),
        };
        lines.push(InvoiceLine {
            description: label,
            sku: None,
            quantity: 1,
            unit_price: -order.discount_pence,
            total: -order.discount_pence,
        });
    }
    lines
}

/// The VAT breakdown of an order taxed at one rate.
pub fn vat_breakdown(total: i64, tax: i64, rate_bp: i32) -> Vec<VatLine> {
    vec![VatLine {
        rate_bp,
        net: total - tax,
        vat: tax,
        gross: total,
    }]
}

/// Issues the invoice of a paid order inside the payment's transaction: takes the next number
/// of the year (gap-free, see the module notes) and snapshots the order.
pub async fn issue(
    conn: &mut PgConnection,
    order_id: Uuid,
    payment_id: Uuid,
    now: DateTime<Utc>,
) -> OrderResult<Invoice> {
    let order: OrderForInvoice = sqlx::query_as(
        "SELECT order_number, user_id, customer_email, subtotal_pence, discount_pence,
                shipping_pence, tax_pence, total_pence, vat_rate_bp, prices_include_vat,
                shipping_method, coupon_code, billing_address, shipping_address
         FROM orders WHERE id = $1",
    )
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await?;
    let items: Vec<ItemForInvoice> = sqlx::query_as(
        "SELECT title, sku, quantity, unit_price_pence, line_total_pence
         FROM order_items WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let year = now.year();
    let n: i32 = sqlx::query_scalar(
        "INSERT INTO invoice_counters (year, last_number) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last_number = invoice_counters.last_number + 1
         RETURNING last_number",
    )
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    let lines = invoice_lines(&order, &items);
    let breakdown = vat_breakdown(order.total_pence, order.tax_pence, order.vat_rate_bp);
    let row: InvoiceRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO invoices (id, invoice_number, order_id, payment_id, user_id, order_number,
             subtotal_pence, discount_pence, shipping_pence, tax_pence, total_pence, vat_rate_bp,
             prices_include_vat, lines, vat_breakdown, billing_address, shipping_address,
             customer_email, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         RETURNING {INVOICE_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(invoice_number(year, n))
    .bind(order_id)
    .bind(payment_id)
    .bind(order.user_id)
    .bind(&order.order_number)
    .bind(order.subtotal_pence)
    .bind(order.discount_pence)
    .bind(order.shipping_pence)
    .bind(order.tax_pence)
    .bind(order.total_pence)
    .bind(order.vat_rate_bp)
    .bind(order.prices_include_vat)
    .bind(serde_json::to_value(&lines).map_err(anyhow::Error::from)?)
    .bind(serde_json::to_value(&breakdown).map_err(anyhow::Error::from)?)
    .bind(&order.billing_address)
    .bind(&order.shipping_address)
    .bind(&order.customer_email)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    row.into_invoice()
}

/// The order `id` if the caller may see it (its owner or an admin); 404 otherwise.
pub async fn visible_order(db: &PgPool, id: Uuid, caller: &Caller) -> OrderResult<()> {
    let visible: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM orders WHERE id = $1 AND (user_id = $2 OR $3)")
            .bind(id)
            .bind(caller.user_id)
            .bind(caller.role.is_admin())
            .fetch_optional(db)
            .await?;
    visible.map(|_| ()).ok_or(OrderError::NotFound("order"))
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_invoice))
        .routes(routes!(order_invoice))
        .routes(routes!(void_invoice))
}

/// An invoice by its id or its number (receipts link to `/v1/invoices/INV-...`).
enum InvoiceRef {
    Id(Uuid),
    Number(String),
}

impl InvoiceRef {
    fn parse(raw: &str) -> Option<Self> {
        if let Ok(id) = Uuid::parse_str(raw) {
            return Some(Self::Id(id));
        }
        let number = raw.to_ascii_uppercase();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        match number.split('-').collect::<Vec<_>>().as_slice() {
            ["INV", year, n] if digits(year, 4) && digits(n, 6) => Some(Self::Number(number)),
            _ => None,
        }
    }
}

async fn load(db: &PgPool, which: &InvoiceRef, caller: &Caller) -> OrderResult<InvoiceRow> {
    let query = match which {
        InvoiceRef::Id(_) => format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1"),
        InvoiceRef::Number(_) => {
            format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE invoice_number = $1")
        }
    };
    let query = sqlx::query_as(sqlx::AssertSqlSafe(query));
    let query = match which {
        InvoiceRef::Id(id) => query.bind(*id),
        InvoiceRef::Number(number) => query.bind(number.clone()),
    };
    let row: Option<InvoiceRow> = query.fetch_optional(db).await?;
    match row {
        Some(row) if caller.role.is_admin() || row.user_id == Some(caller.user_id) => Ok(row),
        _ => Err(OrderError::NotFound("invoice")),
    }
}

#[utoipa::path(
    get,
    path = "/v1/invoices/{id}",
    tag = "invoices",
    params(("id" = String, Path, description = "Invoice id or number (INV-YYYY-NNNNNN); with a `.pdf` suffix the invoice is rendered as a PDF")),
    responses(
        (status = 200, description = "The invoice (JSON, or application/pdf for `{id}.pdf`)", body = Invoice),
        (status = 404, description = "No such invoice of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> OrderResult<Response> {
    let (raw, pdf) = match id.strip_suffix(".pdf") {
        Some(raw) => (raw, true),
        None => (id.as_str(), false),
    };
    let which = InvoiceRef::parse(raw).ok_or(OrderError::NotFound("invoice"))?;
    let invoice = load(&state.db, &which, &caller).await?.into_invoice()?;
    if pdf {
        let bytes = render_pdf(&invoice);
        let disposition = format!("inline; filename=\"{}.pdf\"", invoice.invoice_number);
        return Ok((
            [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
            ],
            bytes,
        )
            .into_response());
    }
    Ok(Json(invoice).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/orders/{id}/invoice",
    tag = "invoices",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order's invoice (the live one, else the latest voided)", body = Invoice),
        (status = 404, description = "No such order of yours, or not invoiced yet", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn order_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> OrderResult<Json<Invoice>> {
    visible_order(&state.db, id, &caller).await?;
    let row: Option<InvoiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE order_id = $1
         ORDER BY (status = 'ISSUED') DESC, issued_at DESC LIMIT 1"
    )))
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    row.ok_or(OrderError::NotFound("invoice"))?
        .into_invoice()
        .map(Json)
}

/// The body of a void.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoidInvoice {
    /// Why (kept with the invoice).
    #[validate(length(min = 1, max = 500))]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

#[utoipa::path(
    post,
    path = "/v1/admin/invoices/{id}/void",
    tag = "invoices",
    params(("id" = Uuid, Path, description = "Invoice id")),
    request_body = VoidInvoice,
    responses(
        (status = 200, description = "Voided", body = Invoice),
        (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already void", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reason", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn void_invoice(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<VoidInvoice>,
) -> OrderResult<Json<Invoice>> {
    let mut tx = state.db.begin().await?;
    let row: Option<InvoiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE invoices SET status = 'VOID', voided_at = now(), voided_by = $2, void_reason = $3
         WHERE id = $1 AND status = 'ISSUED'
         RETURNING {INVOICE_COLUMNS}"
    )))
    .bind(id)
    .bind(admin.user_id)
    .bind(input.reason.trim())
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        Some(row) => {
            // The reason is free text: the trail keeps only that one was given.
            Entry::new(&admin, "invoice", id, "void")
                .before(&serde_json::json!({"status": "ISSUED"}))
                .after(&serde_json::json!({"status": "VOID", "voidReason": input.reason}))
                .record(&mut tx)
                .await?;
            tx.commit().await?;
            tracing::info!(invoice_id = %id, admin = %admin.user_id, "invoice voided");
            row.into_invoice().map(Json)
        }
        None => {
            let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM invoices WHERE id = $1")
                .bind(id)
                .fetch_optional(&state.db)
                .await?;
            match exists {
                Some(_) => Err(OrderError::conflict(
                    "invoice-void",
                    "This invoice is already void.",
                )),
                None => Err(OrderError::NotFound("invoice")),
            }
        }
    }
}

/// Pence as `£1,234.56` (negative as `-£12.00`).
pub fn money(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let pence = pence.unsigned_abs();
    let pounds = (pence / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in pounds.chars().enumerate() {
        if i > 0 && (pounds.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}£{grouped}.{:02}", pence % 100)
}

/// Text in the standard fonts' WinAnsi encoding (what `£`, `–` and `€` need); anything it lacks
/// becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '£' => 0xA3,
            '€' => 0x80,
            '–' => 0x96,
            '—' => 0x97,
            '’' => 0x92,
            'é' => 0xE9,
            _ => b'?',
        })
        .collect()
}

fn address_lines(address: &serde_json::Value) -> Vec<String> {
    [
        "fullName", "line1", "line2", "city", "county", "postcode", "country",
    ]
    .iter()
    .filter_map(|key| address.get(key).and_then(|v| v.as_str()))
    .filter(|s| !s.is_empty())
    .map(str::to_owned)
    .collect()
}

/// Renders the invoice as a one-page A4 PDF in the standard Helvetica font (nothing to embed).
pub fn render_pdf(invoice: &Invoice) -> Vec<u8> {
    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page = Ref::new(3);
    let regular = Ref::new(4);
    let bold = Ref::new(5);
    let content_id = Ref::new(6);
    let info = Ref::new(7);
    let (f_regular, f_bold) = (Name(b"F1"), Name(b"F2"));

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    {
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        p.parent(pages);
        p.contents(content_id);
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        fonts.pair(f_regular, regular);
        fonts.pair(f_bold, bold);
    }
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(pdf_writer::TextStr(&format!(
            "Invoice {}",
            invoice.invoice_number
        )))
        .producer(pdf_writer::TextStr("Lomash Wood order-payment"));

    let mut content = Content::new();
    let text = |content: &mut Content, font: Name, size: f32, x: f32, y: f32, s: &str| {
        let bytes = win_ansi(s);
        content.begin_text();
        content.set_font(font, size);
        content.next_line(x, y);
        content.show(Str(&bytes));
        content.end_text();
    };
    let mut y = 790.0;
    text(&mut content, f_bold, 20.0, 50.0, y, "Lomash Wood");
    let title = if invoice.status == "VOID" {
        "VOID INVOICE"
    } else {
        "INVOICE"
    };
    text(&mut content, f_bold, 16.0, 400.0, y, title);
    y -= 22.0;
    text(
        &mut content,
        f_regular,
        10.0,
        400.0,
        y,
        &invoice.invoice_number,
    );
    y -= 14.0;
    text(
        &mut content,
        f_regular,
        10.0,
        400.0,
        y,
        &format!("Order {}", invoice.order_number),
    );
    y -= 14.0;
    text(
        &mut content,
        f_regular,
        10.0,
        400.0,
        y,
        &format!("Issued {}", invoice.issued_at.format("%d %B %Y")),
    );

    y -= 30.0;
    text(&mut content, f_bold, 10.0, 50.0, y, "Bill to");
    text(&mut content, f_bold, 10.0, 300.0, y, "Deliver to");
    let billing = address_lines(&invoice.billing_address);
    let shipping = address_lines(&invoice.shipping_address);
    for i in 0..billing.len().max(shipping.len()) {
        y -= 13.0;
        if let Some(line) = billing.get(i) {
            text(&mut content, f_regular, 10.0, 50.0, y, line);
        }
        if let Some(line) = shipping.get(i) {
            text(&mut content, f_regular, 10.0, 300.0, y, line);
        }
    }

    y -= 30.0;
    for (x, label) in [
        (50.0, "Description"),
        (330.0, "Qty"),
        (380.0, "Unit price"),
        (480.0, "Amount"),
    ] {
        text(&mut content, f_bold, 10.0, x, y, label);
    }
    y -= 6.0;
    content.move_to(50.0, y).line_to(545.0, y).stroke();
    for line in &invoice.lines {
        y -= 15.0;
        if y < 120.0 {
            // One page holds ~30 lines; beyond that the totals below still state the sums.
            text(
                &mut content,
                f_regular,
                9.0,
                50.0,
                y,
                "... further lines omitted; see the order for every line",
            );
            break;
        }
        let mut description = line.description.clone();
        if let Some(sku) = &line.sku {
            description = format!("{description} ({sku})");
        }
        let description: String = description.chars().take(55).collect();
        text(&mut content, f_regular, 10.0, 50.0, y, &description);
        text(
            &mut content,
            f_regular,
            10.0,
            330.0,
            y,
            &line.quantity.to_string(),
        );
        text(
            &mut content,
            f_regular,
            10.0,
            380.0,
            y,
            &money(line.unit_price),
        );
        text(&mut content, f_regular, 10.0, 480.0, y, &money(line.total));
    }
    y -= 8.0;
    content.move_to(50.0, y).line_to(545.0, y).stroke();

    let vat_note = if invoice.prices_include_vat {
        " (included)"
    } else {
        ""
    };
    let mut totals = vec![("Subtotal".to_owned(), invoice.subtotal)];
    if invoice.discount > 0 {
        totals.push(("Discount".to_owned(), -invoice.discount));
    }
    totals.push(("Delivery".to_owned(), invoice.shipping));
    for vat in &invoice.vat_breakdown {
        let rate = format!("{}.{:02}", vat.rate_bp / 100, vat.rate_bp % 100);
        let rate = rate.trim_end_matches('0').trim_end_matches('.');
        totals.push((
            format!("VAT at {rate}%{vat_note} on {}", money(vat.net)),
            vat.vat,
        ));
    }
    for (label, amount) in totals {
        y -= 15.0;
        text(&mut content, f_regular, 10.0, 300.0, y, &label);
        text(&mut content, f_regular, 10.0, 480.0, y, &money(amount));
    }
    y -= 18.0;
    text(&mut content, f_bold, 11.0, 300.0, y, "Total paid");
    text(&mut content, f_bold, 11.0, 480.0, y, &money(invoice.total));
    if let Some(reason) = &invoice.void_reason {
        y -= 30.0;
        text(
            &mut content,
            f_bold,
            10.0,
            50.0,
            y,
            &format!("Voided: {reason}"),
        );
    }
    text(
        &mut content,
        f_regular,
        8.0,
        50.0,
        50.0,
        "Lomash Wood Ltd · Amounts in pounds sterling (GBP)",
    );
    pdf.stream(content_id, &content.finish());
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_numbers_are_zero_padded_per_year() {
        assert_eq!(invoice_number(2026, 1), "INV-2026-000001");
        assert_eq!(invoice_number(2026, 123_456), "INV-2026-123456");
    }

    #[test]
    fn money_is_pounds_with_separators() {
        assert_eq!(money(0), "£0.00");
        assert_eq!(money(995), "£9.95");
        assert_eq!(money(129_900), "£1,299.00");
        assert_eq!(money(123_456_789), "£1,234,567.89");
        assert_eq!(money(-1500), "-£15.00");
    }

    #[test]
    fn the_vat_breakdown_splits_the_total() {
        let vat = vat_breakdown(12_000, 2_000, 2000);
        assert_eq!(
            (vat[0].net, vat[0].vat, vat[0].gross),
            (10_000, 2_000, 12_000)
        );
    }

    #[test]
    fn the_pdf_is_a_pdf_naming_the_invoice() {
        let invoice = Invoice {
            id: Uuid::now_v7(),
            invoice_number: "INV-2026-000042".into(),
            order_id: Uuid::now_v7(),
            order_number: "ORD-20261204-ABC123".into(),
            payment_id: Uuid::now_v7(),
            status: "ISSUED".into(),
            currency: "GBP".into(),
            lines: vec![InvoiceLine {
                description: "Shaker kitchen – oak".into(),
                sku: Some("SHK-OAK".into()),
                quantity: 1,
                unit_price: 12_000,
                total: 12_000,
            }],
            subtotal: 12_000,
            discount: 0,
            shipping: 0,
            tax: 2_000,
            total: 12_000,
            prices_include_vat: true,
            vat_breakdown: vat_breakdown(12_000, 2_000, 2000),
            billing_address: serde_json::json!({"fullName": "A Shopper", "postcode": "SW1A 1AA"}),
            shipping_address: serde_json::json!({"fullName": "A Shopper", "postcode": "SW1A 1AA"}),
            issued_at: Utc::now(),
            voided_at: None,
            void_reason: None,
        };
        let bytes = render_pdf(&invoice);
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(bytes.windows(15).any(|w| w == b"INV-2026-000042"));
        assert!(bytes.ends_with(b"%%EOF") || bytes.ends_with(b"%%EOF\n"));
    }
}
