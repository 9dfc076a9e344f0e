//! Loyalty: one account per customer and an append-only ledger (`EARN`, `REDEEM`, `REVERSE`,
//! `EXPIRE`, `ADJUST`). The balance is kept in the account row in the same transaction as every
//! ledger row, under the account's row lock, and a check keeps it from going negative.
//!
//! `payment.succeeded` earns `LOYALTY_POINTS_PER_POUND` points per whole pound, once per payment
//! (a partial unique index on the `EARN` rows backs the check). `refund.issued` reverses the
//! refunded share of what that payment earned — `floor(earned × refund ÷ paid)`, never more than
//! is left unreversed, and never more than the balance holds (points already spent stay spent).
//! Tiers follow the points earned (net of reversals) over the last 12 months.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::audit;
use service_kit::event_bus::HandlerError;
use service_kit::shared_types::DomainEvent;
use service_kit::shared_types::order_payment::{PaymentSucceeded, RefundIssued};
use service_kit::{
    AdminCaller, Caller, CursorPage, CursorParams, Problem, ValidatedJson, ValidatedQuery,
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::AppState;
use crate::error::{CustomerError, CustomerResult};

/// Points over 12 months from which SILVER starts.
pub const SILVER_FROM: i64 = 1_000;
/// Points over 12 months from which GOLD starts.
pub const GOLD_FROM: i64 = 5_000;

/// A loyalty tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    /// Under 1,000 points in 12 months.
    Bronze,
    /// 1,000–4,999.
    Silver,
    /// 5,000 and more.
    Gold,
}

impl Tier {
    /// The tier of `points` earned over 12 months.
    pub fn of(points: i64) -> Self {
        if points >= GOLD_FROM {
            Self::Gold
        } else if points >= SILVER_FROM {
            Self::Silver
        } else {
            Self::Bronze
        }
    }
}

/// A customer's loyalty account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyAccount {
    /// Points available.
    pub balance: i64,
    /// Current tier.
    pub tier: Tier,
    /// Points earned (net of reversals) over the last 12 months.
    pub points_last_12_months: i64,
    /// Points still needed for the next tier (null at GOLD).
    pub points_to_next_tier: Option<i64>,
    /// Points earned per whole pound paid.
    pub points_per_pound: i64,
}

/// Kind of a ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionKind {
    /// Earned by a payment.
    Earn,
    /// Spent.
    Redeem,
    /// Taken back after a refund.
    Reverse,
    /// Expired.
    Expire,
    /// Changed by an administrator.
    Adjust,
}

/// One ledger row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyTransaction {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: TransactionKind,
    /// Points (negative for debits).
    pub points: i64,
    /// Balance after this row.
    pub balance_after: i64,
    /// Order concerned.
    pub order_id: Option<Uuid>,
    /// Payment concerned.
    pub payment_id: Option<Uuid>,
    /// Refund concerned.
    pub refund_id: Option<Uuid>,
    /// Why (adjustments).
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

struct TransactionRow {
    id: Uuid,
    kind: String,
    points: i64,
    balance_after: i64,
    order_id: Option<Uuid>,
    payment_id: Option<Uuid>,
    refund_id: Option<Uuid>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<TransactionRow> for LoyaltyTransaction {
    fn from(r: TransactionRow) -> Self {
        let kind = match r.kind.as_str() {
            "EARN" => TransactionKind::Earn,
            "REDEEM" => TransactionKind::Redeem,
            "REVERSE" => TransactionKind::Reverse,
            "EXPIRE" => TransactionKind::Expire,
            _ => TransactionKind::Adjust,
        };
        Self {
            id: r.id,
            kind,
            points: r.points,
            balance_after: r.balance_after,
            order_id: r.order_id,
            payment_id: r.payment_id,
            refund_id: r.refund_id,
            reason: r.reason,
            created_at: r.created_at,
        }
    }
}

/// Creates the account if needed, locks it and returns its balance.
async fn lock_account(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query!(
        "INSERT INTO loyalty_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar!(
        "SELECT balance FROM loyalty_accounts WHERE user_id = $1 FOR UPDATE",
        user_id
    )
    .fetch_one(conn)
    .await
}

/// A ledger row to append (the account must be locked).
struct Entry<'a> {
    user_id: Uuid,
    kind: &'a str,
    points: i64,
    order_id: Option<Uuid>,
    payment_id: Option<Uuid>,
    refund_id: Option<Uuid>,
    amount_pence: Option<i64>,
    reason: Option<&'a str>,
    created_by: Option<Uuid>,
}

/// Moves the balance by `entry.points` and appends the row; the balance check refuses a
/// negative result.
async fn append(conn: &mut PgConnection, entry: Entry<'_>) -> sqlx::Result<LoyaltyTransaction> {
    let balance = sqlx::query_scalar!(
        "UPDATE loyalty_accounts SET balance = balance + $2 WHERE user_id = $1 RETURNING balance",
        entry.user_id,
        entry.points
    )
    .fetch_one(&mut *conn)
    .await?;
    let row = sqlx::query_as!(
        TransactionRow,
        "INSERT INTO loyalty_transactions (id, user_id, kind, points, balance_after, order_id, \
         payment_id, refund_id, amount_pence, reason, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         RETURNING id, kind, points, balance_after, order_id, payment_id, refund_id, reason, created_at",
        Uuid::now_v7(),
        entry.user_id,
        entry.kind,
        entry.points,
        balance,
        entry.order_id,
        entry.payment_id,
        entry.refund_id,
        entry.amount_pence,
        entry.reason,
        entry.created_by
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// The account summary of `user_id` (created when missing).
pub(crate) async fn account(
    conn: &mut PgConnection,
    user_id: Uuid,
    points_per_pound: i64,
) -> sqlx::Result<LoyaltyAccount> {
    sqlx::query!(
        "INSERT INTO loyalty_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
        user_id
    )
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query!(
        r#"SELECT a.balance, coalesce((SELECT sum(t.points) FROM loyalty_transactions t
             WHERE t.user_id = a.user_id AND t.kind IN ('EARN', 'REVERSE')
               AND t.created_at > now() - interval '12 months'), 0)::bigint AS "recent!"
           FROM loyalty_accounts a WHERE a.user_id = $1"#,
        user_id
    )
    .fetch_one(conn)
    .await?;
    let (balance, recent) = (row.balance, row.recent);
    let tier = Tier::of(recent);
    let points_to_next_tier = match tier {
        Tier::Bronze => Some(SILVER_FROM - recent),
        Tier::Silver => Some(GOLD_FROM - recent),
        Tier::Gold => None,
    };
    Ok(LoyaltyAccount {
        balance,
        tier,
        points_last_12_months: recent,
        points_to_next_tier,
        points_per_pound,
    })
}

/// The caller's loyalty account and tier.
#[utoipa::path(
    get,
    path = "/v1/loyalty",
    tag = "loyalty",
    responses((status = 200, description = "The account", body = LoyaltyAccount))
)]
async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
) -> CustomerResult<Json<LoyaltyAccount>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        account(&mut conn, caller.user_id, state.settings.points_per_pound).await?,
    ))
}

/// The caller's ledger, newest first (cursor pages).
#[utoipa::path(
    get,
    path = "/v1/loyalty/transactions",
    tag = "loyalty",
    params(CursorParams),
    responses(
        (status = 200, description = "A page of ledger rows", body = CursorPage<LoyaltyTransaction>),
        (status = 422, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn transactions(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedQuery(page): ValidatedQuery<CursorParams>,
) -> CustomerResult<Json<CursorPage<LoyaltyTransaction>>> {
    let after: Option<(DateTime<Utc>, Uuid)> = page.decode()?;
    let limit = page.limit();
    let rows = sqlx::query_as!(
        TransactionRow,
        "SELECT id, kind, points, balance_after, order_id, payment_id, refund_id, reason, created_at \
         FROM loyalty_transactions WHERE user_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid)) \
         ORDER BY created_at DESC, id DESC LIMIT $4",
        caller.user_id,
        after.map(|a| a.0),
        after.map(|a| a.1),
        i64::from(limit) + 1
    )
    .fetch_all(&state.db)
    .await?;
    let rows: Vec<LoyaltyTransaction> = rows.into_iter().map(Into::into).collect();
    Ok(Json(CursorPage::from_rows(rows, limit, |t| {
        (t.created_at, t.id)
    })))
}

/// Points to spend.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redemption {
    /// 1–1,000,000 points.
    #[validate(range(min = 1, max = 1_000_000, message = "must be between 1 and 1000000"))]
    #[schema(minimum = 1, maximum = 1000000)]
    pub points: i64,
    /// The order they pay towards.
    #[serde(default)]
    pub order_id: Option<Uuid>,
}

/// Spends points (409 when the balance is too low; concurrent redemptions never overdraw).
#[utoipa::path(
    post,
    path = "/v1/loyalty/redemptions",
    tag = "loyalty",
    request_body = Redemption,
    responses(
        (status = 201, description = "Redeemed", body = LoyaltyTransaction),
        (status = 409, description = "Not enough points", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn redeem(
    State(state): State<AppState>,
    caller: Caller,
    ValidatedJson(input): ValidatedJson<Redemption>,
) -> CustomerResult<(StatusCode, Json<LoyaltyTransaction>)> {
    let mut tx = state.db.begin().await?;
    let balance = lock_account(&mut tx, caller.user_id).await?;
    if balance < input.points {
        return Err(CustomerError::Conflict(
            "insufficient-points",
            format!("The balance is {balance} points."),
        ));
    }
    let row = append(
        &mut tx,
        Entry {
            user_id: caller.user_id,
            kind: "REDEEM",
            points: -input.points,
            order_id: input.order_id,
            payment_id: None,
            refund_id: None,
            amount_pence: None,
            reason: None,
            // The customer is the account holder (so erasure's pseudonym covers it).
            created_by: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// An administrator's correction.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = LoyaltyAdjustment)]
pub struct Adjustment {
    /// Points to add (negative to remove), not zero.
    #[validate(range(min = -1_000_000, max = 1_000_000, message = "must be between -1000000 and 1000000"))]
    #[schema(schema_with = adjustment_points_schema)]
    pub points: i64,
    /// Why, 1–500 characters.
    #[validate(length(min = 1, max = 500, message = "must be 1–500 characters"))]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// An adjustment's points: -1000000 to 1000000 but not zero, as two ranges (`not` would say it
/// shorter, but utoipa's typed document has no `not` and the shared OpenAPI completion reads the
/// document back into it).
fn adjustment_points_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let range = |min: i64, max: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min))
            .maximum(Some(max))
    };
    utoipa::openapi::schema::Schema::OneOf(
        OneOfBuilder::new()
            .description(Some(
                "Points to add (1 to 1000000) or remove (-1 to -1000000); not zero.",
            ))
            .item(range(1, 1_000_000))
            .item(range(-1_000_000, -1))
            .build(),
    )
}

/// Adds or removes points with a reason (ADMIN; 409 when it would overdraw).
#[utoipa::path(
    post,
    path = "/v1/admin/loyalty/{userId}/adjustments",
    tag = "loyalty",
    params(("userId" = Uuid, Path, description = "The customer")),
    request_body = Adjustment,
    responses(
        (status = 201, description = "Adjusted", body = LoyaltyTransaction),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would overdraw", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn adjust(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(user_id): Path<Uuid>,
    ValidatedJson(input): ValidatedJson<Adjustment>,
) -> CustomerResult<(StatusCode, Json<LoyaltyTransaction>)> {
    if input.points == 0 {
        return Err(CustomerError::field("points", "must not be zero"));
    }
    let mut tx = state.db.begin().await?;
    let balance = lock_account(&mut tx, user_id).await?;
    let row = append(
        &mut tx,
        Entry {
            user_id,
            kind: "ADJUST",
            points: input.points,
            order_id: None,
            payment_id: None,
            refund_id: None,
            amount_pence: None,
            reason: Some(input.reason.trim()),
            created_by: Some(admin.user_id),
        },
    )
    .await?;
    audit::Entry::new(&admin, "loyalty_account", user_id, "adjust")
        .before(&serde_json::json!({ "balance": balance }))
        .after(&serde_json::json!({
            "balance": row.balance_after,
            "points": row.points,
            "transactionId": row.id,
            "reason": row.reason,
        }))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// `payment.succeeded`: earns points once per payment.
pub async fn on_payment_succeeded(
    event: DomainEvent<PaymentSucceeded>,
    conn: &mut PgConnection,
    points_per_pound: i64,
) -> Result<(), HandlerError> {
    let payment = event.payload;
    let Some(user_id) = payment.user_id else {
        return Ok(()); // a guest checkout has no account
    };
    let points = (payment.amount / 100) * points_per_pound;
    if points <= 0 {
        return Ok(());
    }
    lock_account(conn, user_id).await?;
    let earned = sqlx::query_scalar!(
        "SELECT id FROM loyalty_transactions WHERE payment_id = $1 AND kind = 'EARN'",
        payment.payment_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if earned.is_some() {
        return Ok(()); // another event for the same payment
    }
    append(
        conn,
        Entry {
            user_id,
            kind: "EARN",
            points,
            order_id: Some(payment.order_id),
            payment_id: Some(payment.payment_id),
            refund_id: None,
            amount_pence: Some(payment.amount),
            reason: None,
            created_by: None,
        },
    )
    .await?;
    Ok(())
}

/// `refund.issued`: reverses the refunded share of what the payment earned.
pub async fn on_refund_issued(
    event: DomainEvent<RefundIssued>,
    conn: &mut PgConnection,
) -> Result<(), HandlerError> {
    let refund = event.payload;
    let earn = sqlx::query!(
        r#"SELECT user_id, points, amount_pence AS "amount_pence!" FROM loyalty_transactions
           WHERE payment_id = $1 AND kind = 'EARN'"#,
        refund.payment_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(earn) = earn else {
        return Ok(()); // the payment earned nothing
    };
    let (user_id, earned, paid) = (earn.user_id, earn.points, earn.amount_pence);
    let balance = lock_account(conn, user_id).await?;
    let prior = sqlx::query!(
        r#"SELECT coalesce(bool_or(refund_id = $2), false) AS "done!",
                  coalesce(-sum(points), 0)::bigint AS "reversed!"
           FROM loyalty_transactions WHERE payment_id = $1 AND kind = 'REVERSE'"#,
        refund.payment_id,
        refund.refund_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let (done, reversed) = (prior.done, prior.reversed);
    if done {
        return Ok(());
    }
    let share = i64::try_from(
        i128::from(earned) * i128::from(refund.amount.max(0)) / i128::from(paid.max(1)),
    )
    .unwrap_or(earned);
    let points = share.min(earned - reversed).min(balance);
    if points <= 0 {
        return Ok(());
    }
    append(
        conn,
        Entry {
            user_id,
            kind: "REVERSE",
            points: -points,
            order_id: Some(refund.order_id),
            payment_id: Some(refund.payment_id),
            refund_id: Some(refund.refund_id),
            amount_pence: Some(refund.amount),
            reason: None,
            created_by: None,
        },
    )
    .await?;
    Ok(())
}

/// Expires points credited before `cutoff` that have not been spent since: debits consume the
/// oldest credits first, so what is due is `credits before cutoff − all debits` (at most the
/// balance). Running it again expires nothing more. Returns the accounts touched.
pub async fn expire_points(db: &sqlx::PgPool, cutoff: DateTime<Utc>) -> sqlx::Result<usize> {
    let candidates = sqlx::query_scalar!(
        "SELECT a.user_id FROM loyalty_accounts a WHERE a.balance > 0 AND ( \
           SELECT coalesce(sum(t.points) FILTER (WHERE t.points > 0 AND t.created_at < $1), 0) \
                + coalesce(sum(t.points) FILTER (WHERE t.points < 0), 0) \
           FROM loyalty_transactions t WHERE t.user_id = a.user_id) > 0 LIMIT 1000",
        cutoff
    )
    .fetch_all(db)
    .await?;
    let mut touched = 0;
    for user_id in candidates {
        let mut tx = db.begin().await?;
        let balance = lock_account(&mut tx, user_id).await?;
        let due = sqlx::query_scalar!(
            r#"SELECT (coalesce(sum(points) FILTER (WHERE points > 0 AND created_at < $2), 0)
                 + coalesce(sum(points) FILTER (WHERE points < 0), 0))::bigint AS "due!"
               FROM loyalty_transactions WHERE user_id = $1"#,
            user_id,
            cutoff
        )
        .fetch_one(&mut *tx)
        .await?;
        let points = due.min(balance);
        if points > 0 {
            append(
                &mut tx,
                Entry {
                    user_id,
                    kind: "EXPIRE",
                    points: -points,
                    order_id: None,
                    payment_id: None,
                    refund_id: None,
                    amount_pence: None,
                    reason: None,
                    created_by: None,
                },
            )
            .await?;
            touched += 1;
        }
        tx.commit().await?;
    }
    Ok(touched)
}

/// Runs [`expire_points`] every `every` for points older than `after`, until cancelled.
pub async fn run_expiry(
    db: sqlx::PgPool,
    after: std::time::Duration,
    every: std::time::Duration,
    token: tokio_util::sync::CancellationToken,
) {
    let Ok(after) = chrono::Duration::from_std(after) else {
        return;
    };
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match expire_points(&db, Utc::now() - after).await {
            Ok(0) => {}
            Ok(accounts) => tracing::info!(accounts, "loyalty points expired"),
            Err(error) => tracing::warn!(%error, "loyalty expiry failed; will retry"),
        }
    }
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_account))
        .routes(routes!(transactions))
        .routes(routes!(redeem))
        .routes(routes!(adjust))
}
