//! Support tickets: a reference `TK-YYYYMMDD-XXXX` (a per-day counter), a thread of customer and
//! staff messages (staff internal notes are never shown to the customer), status
//! `OPEN → IN_PROGRESS → AWAITING_CUSTOMER → RESOLVED → CLOSED` with reopen, priority and
//! assignment. Customers see only their own tickets (another's is a 404); staff work the queue.
//! `ticket.created` and `ticket.updated` (status changes, staff replies) go through the outbox.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::shared_types::customer::{
    TicketCategory, TicketCreated, TicketPriority, TicketStatus, TicketUpdated,
};
use service_kit::{
    Caller, CursorPage, CursorParams, OffsetPage, PageParams, Problem, StaffCaller, ValidatedJson,
    ValidatedQuery, event_bus,
};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::error::{CustomerError, CustomerResult};
use crate::{AppState, enum_from_db, enum_to_db};

/// A ticket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// Id.
    pub id: Uuid,
    /// `TK-YYYYMMDD-XXXX`.
    pub reference: String,
    /// The customer (null once erased).
    pub user_id: Option<Uuid>,
    /// Subject.
    pub subject: String,
    /// `ORDER`, `BOOKING`, `PRODUCT`, `DELIVERY`, `INSTALLATION`, `BILLING` or `OTHER`.
    #[schema(value_type = String)]
    pub category: TicketCategory,
    /// `LOW`, `NORMAL`, `HIGH` or `URGENT`.
    #[schema(value_type = String)]
    pub priority: TicketPriority,
    /// `OPEN`, `IN_PROGRESS`, `AWAITING_CUSTOMER`, `RESOLVED` or `CLOSED`.
    #[schema(value_type = String)]
    pub status: TicketStatus,
    /// Order concerned.
    pub order_id: Option<Uuid>,
    /// Booking concerned.
    pub booking_id: Option<Uuid>,
    /// Staff member assigned.
    pub assigned_to: Option<Uuid>,
    /// Seconds since it was opened (the SLA clock).
    pub age_seconds: i64,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The thread, oldest first (only in single-ticket answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<TicketMessage>>,
}

/// A message of a ticket's thread.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketMessage {
    /// Id.
    pub id: Uuid,
    /// Author (null once an erased customer's).
    pub author_id: Option<Uuid>,
    /// `CUSTOMER` or `STAFF`.
    pub author_role: String,
    /// Text.
    pub body: String,
    /// A staff-only note.
    pub internal: bool,
    /// Written.
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, sqlx::FromRow)]
struct TicketRow {
    id: Uuid,
    reference: String,
    user_id: Option<Uuid>,
    subject: String,
    category: String,
    priority: String,
    status: String,
    order_id: Option<Uuid>,
    booking_id: Option<Uuid>,
    assigned_to: Option<Uuid>,
    age_seconds: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TicketRow {
    fn into_ticket(self) -> CustomerResult<Ticket> {
        Ok(Ticket {
            id: self.id,
            reference: self.reference,
            user_id: self.user_id,
            subject: self.subject,
            category: enum_from_db(&self.category)?,
            priority: enum_from_db(&self.priority)?,
            status: enum_from_db(&self.status)?,
            order_id: self.order_id,
            booking_id: self.booking_id,
            assigned_to: self.assigned_to,
            age_seconds: self.age_seconds,
            created_at: self.created_at,
            updated_at: self.updated_at,
            messages: None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    author_id: Option<Uuid>,
    author_role: String,
    body: String,
    internal: bool,
    created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, reference, user_id, subject, category, priority, status, order_id, \
     booking_id, assigned_to, extract(epoch FROM now() - created_at)::bigint AS age_seconds, \
     created_at, updated_at";

/// A new ticket.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTicket {
    /// Subject, 1–200 characters.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// What it is about.
    #[schema(value_type = String, pattern = "^(ORDER|BOOKING|DELIVERY|INSTALLATION|PRODUCT|BILLING|OTHER)$")]
    pub category: TicketCategory,
    /// The first message, 1–10000 characters.
    #[validate(length(min = 1, max = 10000, message = "must be 1–10000 characters"))]
    #[schema(min_length = 1, max_length = 10000)]
    pub message: String,
    /// Order concerned.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    /// Booking concerned.
    #[serde(default)]
    pub booking_id: Option<Uuid>,
}

/// A reply.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMessage {
    /// Text, 1–10000 characters.
    #[validate(length(min = 1, max = 10000, message = "must be 1–10000 characters"))]
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
    /// A staff-only note (staff only).
    #[serde(default)]
    pub internal: bool,
}

async fn load(conn: &mut PgConnection, id: Uuid) -> CustomerResult<TicketRow> {
    let row: Option<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(CustomerError::NotFound("ticket"))
}

/// The ticket if the caller may see it: its customer, or staff. Others get 404.
async fn visible(conn: &mut PgConnection, id: Uuid, caller: &Caller) -> CustomerResult<TicketRow> {
    let row = load(conn, id).await?;
    if caller.role.is_staff() || row.user_id == Some(caller.user_id) {
        Ok(row)
    } else {
        Err(CustomerError::NotFound("ticket"))
    }
}

async fn with_thread(
    conn: &mut PgConnection,
    row: TicketRow,
    include_internal: bool,
) -> CustomerResult<Ticket> {
    let messages: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, author_id, author_role, body, internal, created_at FROM ticket_messages \
         WHERE ticket_id = $1 AND (NOT internal OR $2) ORDER BY created_at, id",
    )
    .bind(row.id)
    .bind(include_internal)
    .fetch_all(conn)
    .await?;
    let mut ticket = row.into_ticket()?;
    ticket.messages = Some(
        messages
            .into_iter()
            .map(|m| TicketMessage {
                id: m.id,
                author_id: m.author_id,
                author_role: m.author_role,
                body: m.body,
                internal: m.internal,
                created_at: m.created_at,
            })
            .collect(),
    );
    Ok(ticket)
}

async fn add_message(
    conn: &mut PgConnection,
    ticket_id: Uuid,
    caller: &Caller,
    body: &str,
    internal: bool,
) -> sqlx::Result<()> {
    let role = if caller.role.is_staff() {
        "STAFF"
    } else {
        "CUSTOMER"
    };
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, author_id, author_role, body, internal) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(ticket_id)
    .bind(caller.user_id)
    .bind(role)
    .bind(body.trim())
    .bind(internal)
    .execute(conn)
    .await?;
    Ok(())
}

async fn updated_event(
    conn: &mut PgConnection,
    ticket: &TicketRow,
    previous: Option<TicketStatus>,
    staff_replied: bool,
    by: Uuid,
) -> CustomerResult<()> {
    let Some(user_id) = ticket.user_id else {
        return Ok(()); // nobody to tell any more
    };
    event_bus::outbox::publish(
        conn,
        &crate::event(TicketUpdated {
            ticket_id: ticket.id,
            ticket_number: ticket.reference.clone(),
            user_id,
            status: enum_from_db(&ticket.status)?,
            previous_status: previous,
            staff_replied,
            updated_by: Some(by),
            updated_at: ticket.updated_at,
        }),
    )
    .await?;
    Ok(())
}

/// Opens a ticket.
#[utoipa::path(
    post,
    path = "/v1/tickets",
    tag = "tickets",
    request_body = NewTicket,
    responses(
        (status = 201, description = "Opened", body = Ticket),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(input): ValidatedJson<NewTicket>,
) -> CustomerResult<(StatusCode, Json<Ticket>)> {
    let mut tx = state.db.begin().await?;
    let today = Utc::now().date_naive();
    let number: i32 = sqlx::query_scalar(
        "INSERT INTO ticket_counters (day, last) VALUES ($1, 1) \
         ON CONFLICT (day) DO UPDATE SET last = ticket_counters.last + 1 RETURNING last",
    )
    .bind(today)
    .fetch_one(&mut *tx)
    .await?;
    let reference = format!("TK-{}-{number:04}", today.format("%Y%m%d"));
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO tickets (id, reference, user_id, subject, category, order_id, booking_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(&reference)
    .bind(caller.user_id)
    .bind(input.subject.trim())
    .bind(enum_to_db(&input.category))
    .bind(input.order_id)
    .bind(input.booking_id)
    .execute(&mut *tx)
    .await?;
    add_message(&mut tx, id, &caller, &input.message, false).await?;
    let row = load(&mut tx, id).await?;
    event_bus::outbox::publish(
        &mut tx,
        &crate::event(TicketCreated {
            ticket_id: id,
            ticket_number: reference,
            user_id: caller.user_id,
            subject: row.subject.clone(),
            category: input.category,
            priority: TicketPriority::Normal,
            order_id: input.order_id,
            created_at: row.created_at,
        }),
    )
    .await?;
    let ticket = with_thread(&mut tx, row, false).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// The caller's tickets, newest first (cursor pages).
#[utoipa::path(
    get,
    path = "/v1/tickets",
    tag = "tickets",
    params(CursorParams),
    responses((status = 200, description = "A page of tickets", body = CursorPage<Ticket>))
)]
async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedQuery(page): ValidatedQuery<CursorParams>,
) -> CustomerResult<Json<CursorPage<Ticket>>> {
    let after: Option<(DateTime<Utc>, Uuid)> = page.decode()?;
    let limit = page.limit();
    let rows: Vec<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE user_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(caller.user_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    let tickets = rows
        .into_iter()
        .map(TicketRow::into_ticket)
        .collect::<CustomerResult<Vec<_>>>()?;
    Ok(Json(CursorPage::from_rows(tickets, limit, |t| {
        (t.created_at, t.id)
    })))
}

/// A ticket with its thread (internal notes for staff only).
#[utoipa::path(
    get,
    path = "/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket", body = Ticket),
        (status = 404, description = "No such ticket of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<Json<Ticket>> {
    let mut conn = state.db.acquire().await?;
    let row = visible(&mut conn, id, &caller).await?;
    Ok(Json(
        with_thread(&mut conn, row, caller.role.is_staff()).await?,
    ))
}

/// Replies on a ticket. A customer's reply to a ticket awaiting them puts it back in progress;
/// a staff reply that is not an internal note is announced in `ticket.updated`.
#[utoipa::path(
    post,
    path = "/v1/tickets/{id}/messages",
    tag = "tickets",
    params(("id" = Uuid, Path, description = "Ticket id")),
    request_body = NewMessage,
    responses(
        (status = 201, description = "The ticket with its thread", body = Ticket),
        (status = 403, description = "An internal note from a customer (staff only)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The ticket is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<NewMessage>,
) -> CustomerResult<(StatusCode, Json<Ticket>)> {
    let staff = caller.role.is_staff();
    if input.internal && !staff {
        // A customer asking for a staff privilege is refused for who they are, not for what
        // they sent: 403, as for any other staff-only action.
        return Err(Problem::forbidden("Only staff write internal notes.").into());
    }
    let mut tx = state.db.begin().await?;
    visible(&mut tx, id, &caller).await?;
    sqlx::query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let row = load(&mut tx, id).await?;
    let status: TicketStatus = enum_from_db(&row.status)?;
    if status == TicketStatus::Closed {
        return Err(CustomerError::Conflict(
            "ticket-closed",
            "This ticket is closed; open a new one.".into(),
        ));
    }
    add_message(&mut tx, id, &caller, &input.body, input.internal).await?;
    if staff {
        // The text is the customer's business and the thread keeps it; the trail keeps the act.
        let action = if input.internal { "note" } else { "reply" };
        audit::Entry::new(&caller, "ticket", id, action)
            .after(&serde_json::json!({ "internal": input.internal }))
            .record(&mut tx)
            .await?;
    }
    if !staff && status == TicketStatus::AwaitingCustomer {
        sqlx::query("UPDATE tickets SET status = 'IN_PROGRESS' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let row = load(&mut tx, id).await?;
        updated_event(&mut tx, &row, Some(status), false, caller.user_id).await?;
    } else if staff && !input.internal {
        sqlx::query("UPDATE tickets SET updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let row = load(&mut tx, id).await?;
        updated_event(&mut tx, &row, None, true, caller.user_id).await?;
    }
    let row = load(&mut tx, id).await?;
    let ticket = with_thread(&mut tx, row, staff).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Whether staff may move a ticket from `from` to `to`: forward or back between the working
/// states, and reopening (→ `OPEN`) only from `RESOLVED` or `CLOSED`; `CLOSED` is final but for
/// a reopen.
fn allowed(from: TicketStatus, to: TicketStatus) -> bool {
    use TicketStatus::{Closed, Open, Resolved};
    match (from, to) {
        _ if from == to => false,
        (Resolved | Closed, Open) => true,
        (_, Open) | (Closed, _) => false,
        _ => true,
    }
}

async fn change_status(
    conn: &mut PgConnection,
    row: TicketRow,
    to: TicketStatus,
    by: Uuid,
) -> CustomerResult<TicketRow> {
    let from: TicketStatus = enum_from_db(&row.status)?;
    if !allowed(from, to) {
        return Err(CustomerError::Conflict(
            "invalid-transition",
            format!(
                "A {} ticket cannot become {}.",
                enum_to_db(&from),
                enum_to_db(&to)
            ),
        ));
    }
    sqlx::query("UPDATE tickets SET status = $2 WHERE id = $1")
        .bind(row.id)
        .bind(enum_to_db(&to))
        .execute(&mut *conn)
        .await?;
    let row = load(conn, row.id).await?;
    updated_event(conn, &row, Some(from), false, by).await?;
    Ok(row)
}

/// Reopens the caller's resolved or closed ticket.
#[utoipa::path(
    post,
    path = "/v1/tickets/{id}/reopen",
    tag = "tickets",
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "Open again", body = Ticket),
        (status = 404, description = "No such ticket of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not resolved or closed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> CustomerResult<Json<Ticket>> {
    let mut tx = state.db.begin().await?;
    visible(&mut tx, id, &caller).await?;
    sqlx::query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let before = load(&mut tx, id).await?;
    let audited_before = Audited::from(&before);
    let row = change_status(&mut tx, before.clone(), TicketStatus::Open, caller.user_id).await?;
    if caller.role.is_staff() {
        audit::Entry::new(&caller, "ticket", id, "status.open")
            .before(&audited_before)
            .after(&Audited::from(&row))
            .record(&mut tx)
            .await?;
    }
    let ticket = with_thread(&mut tx, row, caller.role.is_staff()).await?;
    tx.commit().await?;
    Ok(Json(ticket))
}

/// Filters of the staff queue.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct QueueParams {
    /// Status (default: every status but CLOSED).
    #[param(value_type = Option<String>, pattern = "^(OPEN|IN_PROGRESS|AWAITING_CUSTOMER|RESOLVED|CLOSED)$")]
    pub status: Option<TicketStatus>,
    /// Category.
    #[param(value_type = Option<String>, pattern = "^(ORDER|BOOKING|DELIVERY|INSTALLATION|PRODUCT|BILLING|OTHER)$")]
    pub category: Option<TicketCategory>,
    /// Priority.
    #[param(value_type = Option<String>, pattern = "^(LOW|NORMAL|HIGH|URGENT)$")]
    pub priority: Option<TicketPriority>,
    /// Assigned staff member.
    pub assigned_to: Option<Uuid>,
    /// Page from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// The support queue, oldest first (staff).
#[utoipa::path(
    get,
    path = "/v1/admin/tickets",
    tag = "tickets",
    params(QueueParams),
    responses(
        (status = 200, description = "A page of tickets", body = OffsetPage<Ticket>),
        (status = 403, description = "Not staff", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn queue(
    State(state): State<AppState>,
    _staff: StaffCaller,
    ValidatedQuery(params): ValidatedQuery<QueueParams>,
) -> CustomerResult<Json<OffsetPage<Ticket>>> {
    let paging = PageParams {
        page: params.page,
        page_size: params.page_size,
    };
    let filter = "($1::text IS NULL AND status <> 'CLOSED' OR status = $1) \
         AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR priority = $3) \
         AND ($4::uuid IS NULL OR assigned_to = $4)";
    let status = params.status.as_ref().map(enum_to_db);
    let category = params.category.as_ref().map(enum_to_db);
    let priority = params.priority.as_ref().map(enum_to_db);
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM tickets WHERE {filter}"
    )))
    .bind(&status)
    .bind(&category)
    .bind(&priority)
    .bind(params.assigned_to)
    .fetch_one(&state.db)
    .await?;
    let rows: Vec<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE {filter} ORDER BY created_at, id LIMIT $5 OFFSET $6"
    )))
    .bind(&status)
    .bind(&category)
    .bind(&priority)
    .bind(params.assigned_to)
    .bind(i64::from(paging.page_size()))
    .bind(paging.offset())
    .fetch_all(&state.db)
    .await?;
    Ok(Json(OffsetPage {
        data: rows
            .into_iter()
            .map(TicketRow::into_ticket)
            .collect::<CustomerResult<Vec<_>>>()?,
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// A staff change of a ticket.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketChange {
    /// New status.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(OPEN|IN_PROGRESS|AWAITING_CUSTOMER|RESOLVED|CLOSED)$")]
    pub status: Option<TicketStatus>,
    /// New priority.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(LOW|NORMAL|HIGH|URGENT)$")]
    pub priority: Option<TicketPriority>,
    /// Staff member to assign.
    #[serde(default)]
    pub assigned_to: Option<Uuid>,
}

/// Changes a ticket's status, priority or assignee (staff).
#[utoipa::path(
    patch,
    path = "/v1/admin/tickets/{id}",
    tag = "tickets",
    params(("id" = Uuid, Path, description = "Ticket id")),
    request_body = TicketChange,
    responses(
        (status = 200, description = "Changed", body = Ticket),
        (status = 403, description = "Not staff", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a permitted status change", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn change(
    State(state): State<AppState>,
    StaffCaller(staff): StaffCaller,
    Path(id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<TicketChange>,
) -> CustomerResult<Json<Ticket>> {
    let mut tx = state.db.begin().await?;
    sqlx::query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let before = load(&mut tx, id).await?;
    let mut row = before.clone();
    if input.priority.is_some() || input.assigned_to.is_some() {
        sqlx::query(
            "UPDATE tickets SET priority = coalesce($2, priority), \
             assigned_to = coalesce($3, assigned_to) WHERE id = $1",
        )
        .bind(id)
        .bind(input.priority.as_ref().map(enum_to_db))
        .bind(input.assigned_to)
        .execute(&mut *tx)
        .await?;
        row = load(&mut tx, id).await?;
    }
    if let Some(to) = input.status {
        row = change_status(&mut tx, row, to, staff.user_id).await?;
    }
    let action = match input.status {
        Some(to) => format!("status.{}", enum_to_db(&to).to_ascii_lowercase()),
        None => "update".to_owned(),
    };
    audit::Entry::new(&staff, "ticket", id, &action)
        .before(&Audited::from(&before))
        .after(&Audited::from(&row))
        .record(&mut tx)
        .await?;
    let ticket = with_thread(&mut tx, row, true).await?;
    tx.commit().await?;
    Ok(Json(ticket))
}

/// What the audit trail keeps of a ticket: its handling, never its subject or thread.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Audited<'a> {
    status: &'a str,
    priority: &'a str,
    assigned_to: Option<Uuid>,
}

impl<'a> From<&'a TicketRow> for Audited<'a> {
    fn from(row: &'a TicketRow) -> Self {
        Self {
            status: &row.status,
            priority: &row.priority,
            assigned_to: row.assigned_to,
        }
    }
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, mine))
        .routes(routes!(get_one))
        .routes(routes!(reply))
        .routes(routes!(reopen))
        .routes(routes!(queue))
        .routes(routes!(change))
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::*;

    #[test]
    fn transitions_allow_work_and_reopen_but_not_leaving_closed() {
        assert!(allowed(Open, InProgress));
        assert!(allowed(InProgress, AwaitingCustomer));
        assert!(allowed(AwaitingCustomer, Resolved));
        assert!(allowed(Resolved, Closed));
        assert!(allowed(Resolved, Open));
        assert!(allowed(Closed, Open));
        assert!(!allowed(Closed, InProgress));
        assert!(!allowed(InProgress, Open));
        assert!(!allowed(Open, Open));
    }
}
