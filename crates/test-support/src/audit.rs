//! Reading and checking a service's audit trail (`audit_log`, written by
//! `service_kit::audit::Entry`) from its integration tests.
//!
//! Tests read the table directly rather than through `GET …/audit` so they see every row,
//! including ones the endpoint's filters would hide, and can prove the table is append-only.
//! ```ignore
//! let row = audit::one_row(&pool, &request_id, audit::expect(admin.id, "ADMIN", "product", "update")
//!     .entity_id(product_id))
//! .await;
//! assert_eq!(row.changes["price"], json!({"before": 100, "after": 120}));
//! ```

use std::fmt::Display;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{TestApp, TestUser};

/// One row of `audit_log`, without the columns tests never check (`id`, `occurred_at`,
/// `service`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    /// Who made the change.
    pub actor_id: Uuid,
    /// Their role at the time, e.g. `ADMIN`.
    pub actor_role: String,
    /// What kind of thing changed, e.g. `product`.
    pub entity: String,
    /// Its id.
    pub entity_id: String,
    /// What was done, e.g. `update`.
    pub action: String,
    /// The redacted diff, `{"field": {"before": …, "after": …}}`.
    pub changes: Value,
    /// The request that made the change.
    pub request_id: Option<String>,
}

/// A request as `user` carrying a fresh `X-Request-Id`, returned with it so the test can find
/// the rows it writes; `json` is sent as `application/merge-patch+json` for `PATCH` (what every
/// `PATCH` route takes) and as `application/json` otherwise.
pub fn request(
    app: &TestApp,
    user: &TestUser,
    method: reqwest::Method,
    path: &str,
    json: Option<&Value>,
) -> (reqwest::RequestBuilder, String) {
    let request_id = format!("audit-{}", Uuid::now_v7());
    let mut request = app
        .request_as(method.clone(), path, user)
        .header("X-Request-Id", &request_id);
    if let Some(json) = json {
        request = if method == reqwest::Method::PATCH {
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/merge-patch+json",
                )
                .body(json.to_string())
        } else {
            request.json(json)
        };
    }
    (request, request_id)
}

/// Every row of the trail, oldest first.
pub async fn rows(pool: &PgPool) -> Vec<AuditRow> {
    sqlx::query_as(
        "SELECT actor_id, actor_role, entity, entity_id, action, changes, request_id \
         FROM audit_log ORDER BY occurred_at, id",
    )
    .fetch_all(pool)
    .await
    .expect("read audit_log")
}

/// The rows written under `request_id`, oldest first.
pub async fn rows_of_request(pool: &PgPool, request_id: &str) -> Vec<AuditRow> {
    sqlx::query_as(
        "SELECT actor_id, actor_role, entity, entity_id, action, changes, request_id \
         FROM audit_log WHERE request_id = $1 ORDER BY occurred_at, id",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await
    .expect("read audit_log")
}

/// How many rows the trail holds.
pub async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(pool)
        .await
        .expect("count audit_log")
}

/// What one audit row must say; build it with [`expect`].
#[derive(Debug, Clone)]
#[must_use = "an expectation checks nothing until it is asserted"]
pub struct Expected {
    actor_id: Uuid,
    actor_role: String,
    entity: String,
    entity_id: Option<String>,
    action: String,
    request_id: Option<String>,
}

/// A row by `actor_id` acting as `actor_role` (e.g. `ADMIN`) that did `action` to an `entity`.
/// Add [`Expected::entity_id`] and [`Expected::request_id`] where the test knows them.
pub fn expect(actor_id: Uuid, actor_role: &str, entity: &str, action: &str) -> Expected {
    Expected {
        actor_id,
        actor_role: actor_role.to_owned(),
        entity: entity.to_owned(),
        entity_id: None,
        action: action.to_owned(),
        request_id: None,
    }
}

impl Expected {
    /// The row must be about this entity id.
    pub fn entity_id(mut self, id: impl Display) -> Self {
        self.entity_id = Some(id.to_string());
        self
    }

    /// The row must carry this request id.
    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_owned());
        self
    }

    /// Panics unless `row` says what is expected.
    #[track_caller]
    pub fn check(&self, row: &AuditRow) {
        assert_eq!(row.actor_id, self.actor_id, "actor of {row:?}");
        assert_eq!(row.actor_role, self.actor_role, "role of {row:?}");
        assert_eq!(row.entity, self.entity, "entity of {row:?}");
        if let Some(id) = &self.entity_id {
            assert_eq!(&row.entity_id, id, "entity id of {row:?}");
        }
        assert_eq!(row.action, self.action, "action of {row:?}");
        if let Some(id) = &self.request_id {
            assert_eq!(row.request_id.as_ref(), Some(id), "request id of {row:?}");
        }
    }

    /// Panics unless `rows` is exactly one row that says what is expected; returns it so the
    /// test can check its `changes`.
    #[track_caller]
    pub fn only(&self, rows: &[AuditRow]) -> AuditRow {
        assert_eq!(rows.len(), 1, "expected exactly one audit row: {rows:#?}");
        self.check(&rows[0]);
        rows[0].clone()
    }
}

/// Exactly one row was written under `request_id`, and it says what `expected` says (its
/// request id is checked too). Returns the row so the test can check its `changes`.
pub async fn one_row(pool: &PgPool, request_id: &str, expected: Expected) -> AuditRow {
    let rows = rows_of_request(pool, request_id).await;
    expected.request_id(request_id).only(&rows)
}

/// Panics if any of `secrets` appears anywhere in `changes`: the trail must say *that* a
/// personal field changed, never what it held.
#[track_caller]
pub fn assert_no_leak(changes: &Value, secrets: &[&str]) {
    let text = changes.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// Panics unless the database refuses `UPDATE`, `DELETE` and `TRUNCATE` of `audit_log` with
/// its append-only error, even for the service's own user, and no row was lost.
pub async fn assert_append_only(pool: &PgPool) {
    let before = count(pool).await;
    for statement in [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(count(pool).await, before, "rows lost");
}
