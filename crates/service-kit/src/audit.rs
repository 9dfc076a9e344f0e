//! The audit trail: who changed what, when, under which request — kept in each service's own
//! database, append-only, readable by SUPER_ADMIN only.
//!
//! # Writing
//! A handler that changes state records one [`Entry`] **in the same transaction** as the change,
//! so a rolled-back change leaves no audit row and a committed one always has its row:
//! ```ignore
//! let mut tx = state.db.begin().await?;
//! let before = load(&mut tx, id).await?;
//! let after = update(&mut tx, id, &patch).await?;
//! audit::Entry::new(&caller, "product", id, "update")
//!     .before(&before)
//!     .after(&after)
//!     .record(&mut tx)
//!     .await?;
//! tx.commit().await?;
//! ```
//! Reads record nothing.
//!
//! An operations command run from a shell (no HTTP request, no caller), such as
//! `<service>-service dlq replay --actor <who>`, records with [`Entry::by_operator`] and an
//! [`Operator`] (a staff user id or an operator handle); its rows carry the role
//! [`OPERATOR_ROLE`] and no request id.
//!
//! # What the diff keeps
//! `before` and `after` are serialised to JSON; `changes` keeps only the **top-level fields whose
//! values differ**, as `{"field": {"before": …, "after": …}}` (a create has only `after`, a
//! delete only `before`). A value that is not a JSON object is compared as one field, `value`.
//!
//! # Redaction: nothing personal beyond ids
//! A field is personal when its name, lower-cased with `_` and `-` removed, **contains** one of
//! [`REDACTED_FIELD_PARTS`] (email, phone, name, address, postcode, note, message, password,
//! token, secret, …) or **is** one of [`REDACTED_FIELD_NAMES`] (`ip`, `dob`, …). A changed personal
//! field appears with both sides replaced by `"[redacted]"`, so the trail says *that* it changed,
//! never *what* it was; personal fields nested inside other values are redacted the same way at
//! any depth. The rule errs on the safe side (`name` of a product is redacted too); a handler
//! that knows a field is not personal may [`Entry::reveal`] it.
//!
//! # Reading
//! [`router`] serves `GET {prefix}/audit` (filters `entity`, `entityId`, `actor`, `action`,
//! `from`, `to`; keyset-paged newest first with `cursor`/`limit`) to SUPER_ADMIN only.
//!
//! # The table
//! Each service's migrations create `audit_log` with the SQL in `migrations/<service>/*_audit.sql`
//! (the `service` column defaults to the service's name). Triggers refuse `UPDATE`, `DELETE` and
//! `TRUNCATE`, so not even the service's own database user can rewrite history.

use axum::Json;
use axum::extract::{FromRef, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use validator::Validate;

use crate::caller::Caller;
use crate::extract::{CursorPage, ValidatedQuery, decode_cursor};
use crate::problem::{FieldError, Problem};
use crate::{ApiResult, Role};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// A field whose normalised name (lower case, no `_`/`-`) contains one of these is personal or
/// secret and is redacted.
pub const REDACTED_FIELD_PARTS: &[&str] = &[
    "email",
    "phone",
    "mobile",
    "name",
    "address",
    "line1",
    "line2",
    "line3",
    "street",
    "town",
    "city",
    "county",
    "postcode",
    "postalcode",
    "zip",
    "note",
    "message",
    "comment",
    "reason",
    "body",
    "text",
    "password",
    "passcode",
    "secret",
    "token",
    "otp",
    "recovery",
    "hash",
    "apikey",
    "privatekey",
    "card",
    "iban",
    "sortcode",
    "accountnumber",
    "birth",
    "useragent",
    "signature",
    "cookie",
];

/// A field whose normalised name is exactly one of these is redacted (too short to match as a
/// part without catching innocent names, e.g. `ip` inside `shipping`).
pub const REDACTED_FIELD_NAMES: &[&str] = &["ip", "ipaddress", "dob", "pin"];

fn normalise(field: &str) -> String {
    field
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a field of this name is redacted in audit diffs (see the module documentation).
pub fn is_personal_field(field: &str) -> bool {
    let name = normalise(field);
    REDACTED_FIELD_NAMES.contains(&name.as_str())
        || REDACTED_FIELD_PARTS.iter().any(|part| name.contains(part))
}

/// Redacts personal fields at any depth of `value`.
fn redact_nested(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_personal_field(k) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact_nested(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_nested).collect()),
        other => other.clone(),
    }
}

fn as_fields(value: Option<Value>) -> Map<String, Value> {
    match value {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => Map::from_iter([("value".to_owned(), other)]),
    }
}

/// The redacted diff of two states: only top-level fields whose values differ, as
/// `{"field": {"before": …, "after": …}}`; `reveal` names fields exempt from the name rule.
pub fn diff(before: Option<Value>, after: Option<Value>, reveal: &[&str]) -> Value {
    let before = as_fields(before);
    let after = as_fields(after);
    let mut changes = Map::new();
    let keys = before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)));
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        let personal = is_personal_field(key) && !reveal.contains(&key.as_str());
        let side = |v: &Value| {
            if personal {
                Value::String(REDACTED.to_owned())
            } else {
                redact_nested(v)
            }
        };
        let mut change = Map::new();
        if let Some(old) = old {
            change.insert("before".to_owned(), side(old));
        }
        if let Some(new) = new {
            change.insert("after".to_owned(), side(new));
        }
        changes.insert(key.clone(), Value::Object(change));
    }
    Value::Object(changes)
}

/// Replaces both sides of these changed top-level `fields` of a [`diff`] with [`REDACTED`].
fn redact_fields(mut changes: Value, fields: &[&str]) -> Value {
    if let Value::Object(changed) = &mut changes {
        for field in fields {
            if let Some(Value::Object(sides)) = changed.get_mut(*field) {
                for side in sides.values_mut() {
                    *side = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
    changes
}

/// The `actor_role` of rows written by [`Entry::by_operator`]: someone with shell access to a
/// deployment running an operations command, not a signed-in user acting through the API.
pub const OPERATOR_ROLE: &str = "OPERATOR";

/// Who ran an audited operations command (`--actor <who>`): a staff member's user id, so their
/// API and command-line actions share one `actor`, or an operator handle such as `jsmith` or
/// `oncall-bot`.
///
/// A handle's `actor_id` is a UUID derived from it (version 8, the first 16 bytes of
/// SHA-256 of `lomash-operator:<handle>`), stable so `GET …/audit?actor=` finds every action by
/// the same handle; [`Operator::id`] computes it. Handles are 1–64 ASCII letters, digits, `.`,
/// `_` or `-`: ids, not e-mail addresses or names, since the trail keeps nothing personal
/// beyond ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// A staff member's user id.
    User(Uuid),
    /// An operator handle.
    Handle(String),
}

impl Operator {
    /// The `actor_id` recorded for this operator.
    pub fn id(&self) -> Uuid {
        match self {
            Self::User(id) => *id,
            Self::Handle(handle) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(format!("lomash-operator:{handle}"));
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&digest[..16]);
                uuid::Builder::from_custom_bytes(bytes).into_uuid()
            }
        }
    }
}

impl std::str::FromStr for Operator {
    type Err = String;

    fn from_str(who: &str) -> Result<Self, Self::Err> {
        let who = who.trim();
        if let Ok(id) = who.parse::<Uuid>() {
            return Ok(Self::User(id));
        }
        let valid = !who.is_empty()
            && who.len() <= 64
            && who
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(Self::Handle(who.to_owned()))
        } else {
            Err(format!(
                "`{who}` is neither a user id nor an operator handle (1–64 letters, digits, `.`, \
                 `_` or `-`; no e-mail addresses)"
            ))
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(id) => write!(f, "{id}"),
            Self::Handle(handle) => f.write_str(handle),
        }
    }
}

/// One audited action, recorded with [`Entry::record`] in the transaction of the change.
#[derive(Debug, Clone)]
#[must_use = "an audit entry does nothing until it is recorded"]
pub struct Entry {
    actor_id: Uuid,
    actor_role: &'static str,
    request_id: Option<String>,
    entity: String,
    entity_id: String,
    action: String,
    before: Option<Value>,
    after: Option<Value>,
    reveal: Vec<&'static str>,
    redact: Vec<&'static str>,
    error: Option<String>,
}

impl Entry {
    /// `caller` did `action` (e.g. `update`, `status.shipped`) to the `entity` (e.g. `product`)
    /// with id `entity_id`. The request id is the caller's.
    pub fn new(
        caller: &Caller,
        entity: &str,
        entity_id: impl std::fmt::Display,
        action: &str,
    ) -> Self {
        Self {
            actor_id: caller.user_id,
            actor_role: caller.role.as_str(),
            request_id: caller
                .request_id
                .clone()
                .or_else(crate::request_id::current),
            entity: entity.to_owned(),
            entity_id: entity_id.to_string(),
            action: action.to_owned(),
            before: None,
            after: None,
            reveal: Vec::new(),
            redact: Vec::new(),
            error: None,
        }
    }

    /// `operator` did `action` from an operations command (no HTTP request, so no caller and no
    /// request id), e.g. `<service>-service dlq replay --actor <who>`. The row's `actor_id` is
    /// the operator's id and its `actor_role` is [`OPERATOR_ROLE`]; a handle (not a user id) is
    /// also kept in the diff as `operator`, so the trail reads who it was.
    pub fn by_operator(
        operator: &Operator,
        entity: &str,
        entity_id: impl std::fmt::Display,
        action: &str,
    ) -> Self {
        let mut entry = Self {
            actor_id: operator.id(),
            actor_role: OPERATOR_ROLE,
            request_id: None,
            entity: entity.to_owned(),
            entity_id: entity_id.to_string(),
            action: action.to_owned(),
            before: None,
            after: None,
            reveal: Vec::new(),
            redact: Vec::new(),
            error: None,
        };
        if let Operator::Handle(handle) = operator {
            entry.after = Some(serde_json::json!({ "operator": handle }));
        }
        entry
    }

    fn serialise(&mut self, state: &impl Serialize) -> Option<Value> {
        match serde_json::to_value(state) {
            Ok(value) => Some(value),
            Err(error) => {
                self.error = Some(error.to_string());
                None
            }
        }
    }

    /// The state before the change (omit for a create).
    pub fn before(mut self, state: &impl Serialize) -> Self {
        self.before = self.serialise(state);
        self
    }

    /// The state after the change (omit for a delete). For an [`Entry::by_operator`] entry by
    /// a handle, the `operator` field is kept beside the state's fields.
    pub fn after(mut self, state: &impl Serialize) -> Self {
        let operator = self
            .after
            .as_ref()
            .and_then(|after| after.get("operator"))
            .cloned();
        self.after = self.serialise(state);
        if let (Some(operator), Some(Value::Object(after))) = (operator, self.after.as_mut()) {
            after.entry("operator").or_insert(operator);
        }
        self
    }

    /// Shows these top-level fields in clear although their names look personal (e.g. a
    /// product's `name`). Only for fields that never hold personal data.
    pub fn reveal(mut self, fields: &[&'static str]) -> Self {
        self.reveal.extend_from_slice(fields);
        self
    }

    /// Redacts these top-level fields although their names look innocent: free text such as a
    /// consultant's `bio` or a page's `content`, so the trail says *that* it changed, never what.
    pub fn redact(mut self, fields: &[&'static str]) -> Self {
        self.redact.extend_from_slice(fields);
        self
    }

    /// The redacted diff this entry will store.
    pub fn changes(&self) -> Value {
        redact_fields(
            diff(self.before.clone(), self.after.clone(), &self.reveal),
            &self.redact,
        )
    }

    /// Inserts the row on `conn` — pass the transaction of the change (`&mut tx`).
    pub async fn record(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if let Some(error) = self.error {
            return Err(sqlx::Error::Encode(
                format!("audit state not serialisable: {error}").into(),
            ));
        }
        let changes = self.changes();
        sqlx::query(
            "INSERT INTO audit_log \
             (id, actor_id, actor_role, entity, entity_id, action, changes, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(self.actor_id)
        .bind(self.actor_role)
        .bind(&self.entity)
        .bind(&self.entity_id)
        .bind(&self.action)
        .bind(changes)
        .bind(&self.request_id)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// One row of the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Row id (UUIDv7).
    pub id: Uuid,
    /// When the change was committed (its transaction's start).
    pub occurred_at: DateTime<Utc>,
    /// Who made it.
    pub actor_id: Uuid,
    /// Their role at the time, e.g. `ADMIN`.
    pub actor_role: String,
    /// The service that recorded it.
    pub service: String,
    /// What kind of thing changed, e.g. `product`.
    pub entity: String,
    /// Its id.
    pub entity_id: String,
    /// What was done, e.g. `update`.
    pub action: String,
    /// Redacted diff: `{"field": {"before": …, "after": …}}` for changed top-level fields.
    #[schema(value_type = Object)]
    pub changes: Value,
    /// The request that made the change.
    pub request_id: Option<String>,
}

/// Filters of `GET …/audit`. Unknown parameters are refused with 422.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AuditQuery {
    /// Only this kind of entity, e.g. `product`.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[param(min_length = 1, max_length = 100)]
    pub entity: Option<String>,
    /// Only this entity id.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[param(min_length = 1, max_length = 200)]
    pub entity_id: Option<String>,
    /// Only changes by this user id.
    pub actor: Option<Uuid>,
    /// Only this action, e.g. `update`.
    #[validate(length(min = 1, max = 100, message = "must be 1–100 characters"))]
    #[param(min_length = 1, max_length = 100)]
    pub action: Option<String>,
    /// From this instant (inclusive, ISO 8601).
    pub from: Option<DateTime<Utc>>,
    /// Before this instant (exclusive, ISO 8601).
    pub to: Option<DateTime<Utc>>,
    /// Opaque cursor from a previous page's `nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Position(DateTime<Utc>, Uuid);

/// One page of audit rows, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// The rows of this page.
    pub data: Vec<AuditRecord>,
    /// Cursor of the next (older) page, if there is one.
    pub next_cursor: Option<String>,
    /// Whether another page follows.
    pub has_next_page: bool,
}

/// Reads the audit trail with `filters`, newest first (`(occurred_at, id)` keyset).
pub async fn list(db: &PgPool, filters: &AuditQuery) -> ApiResult<AuditPage> {
    if let (Some(from), Some(to)) = (filters.from, filters.to)
        && from >= to
    {
        return Err(Problem::validation(vec![FieldError::new(
            "to",
            "must be after from",
        )]));
    }
    let after: Option<Position> = filters
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c)
                .ok_or_else(|| Problem::invalid_field("cursor", "is not a valid cursor"))
        })
        .transpose()?;
    let limit = filters.limit.unwrap_or(20);

    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, occurred_at, actor_id, actor_role, service, entity, entity_id, action, \
         changes, request_id FROM audit_log WHERE true",
    );
    if let Some(entity) = &filters.entity {
        query.push(" AND entity = ").push_bind(entity);
    }
    if let Some(entity_id) = &filters.entity_id {
        query.push(" AND entity_id = ").push_bind(entity_id);
    }
    if let Some(actor) = filters.actor {
        query.push(" AND actor_id = ").push_bind(actor);
    }
    if let Some(action) = &filters.action {
        query.push(" AND action = ").push_bind(action);
    }
    if let Some(from) = filters.from {
        query.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = filters.to {
        query.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some(Position(at, id)) = after {
        query
            .push(" AND (occurred_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows: Vec<AuditRecord> = query
        .build_query_as()
        .fetch_all(db)
        .await
        .map_err(|e| Problem::from_database(&e))?;
    let page = CursorPage::from_rows(rows, limit, |r| Position(r.occurred_at, r.id));
    Ok(AuditPage {
        data: page.data,
        next_cursor: page.next_cursor,
        has_next_page: page.has_next_page,
    })
}

/// The audit trail of this service, newest first. SUPER_ADMIN only.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit rows, newest first", body = AuditPage),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a SUPER_ADMIN", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn audit_trail(
    State(db): State<PgPool>,
    caller: Caller,
    ValidatedQuery(filters): ValidatedQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    caller.require(&[Role::SuperAdmin])?;
    list(&db, &filters).await.map(Json)
}

/// `GET /audit`, to be nested under the service's public prefix so the gateway routes it:
/// `.nest("/v1/products", service_kit::audit::router())` serves `GET /v1/products/audit`.
/// The state must hand out the service's pool (`impl FromRef<AppState> for PgPool`).
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PgPool: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(audit_trail))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_diff_keeps_only_changed_top_level_fields() {
        let changes = diff(
            Some(json!({"priceMinor": 100, "slug": "a", "stock": 3})),
            Some(json!({"priceMinor": 120, "slug": "a", "stock": 3, "active": true})),
            &[],
        );
        assert_eq!(
            changes,
            json!({"priceMinor": {"before": 100, "after": 120}, "active": {"after": true}})
        );
    }

    #[test]
    fn personal_fields_are_redacted_at_any_depth() {
        let changes = diff(
            Some(
                json!({"email": "a@b.c", "firstName": "Ann", "status": "PENDING",
                        "shipping": {"line1": "1 Road", "postcode": "AB1 2CD", "method": "STD"}}),
            ),
            Some(
                json!({"email": "x@y.z", "firstName": "Ann", "status": "PAID",
                        "shipping": {"line1": "2 Road", "postcode": "AB1 2CD", "method": "EXP"}}),
            ),
            &[],
        );
        assert_eq!(
            changes,
            json!({
                "email": {"before": REDACTED, "after": REDACTED},
                "status": {"before": "PENDING", "after": "PAID"},
                "shipping": {
                    "before": {"line1": REDACTED, "postcode": REDACTED, "method": "STD"},
                    "after": {"line1": REDACTED, "postcode": REDACTED, "method": "EXP"}
                }
            })
        );
        let text = changes.to_string();
        for secret in ["a@b.c", "x@y.z", "Road", "AB1"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    #[test]
    fn the_name_rule_catches_variants_but_not_innocent_fields() {
        for personal in [
            "email",
            "contact_email",
            "phoneNumber",
            "last-name",
            "addressLine1",
            "internalNotes",
            "passwordHash",
            "refresh_token",
            "ip",
            "totpSecret",
        ] {
            assert!(is_personal_field(personal), "{personal}");
        }
        for innocent in ["status", "shippingMinor", "priceMinor", "id", "trackingUrl"] {
            assert!(!is_personal_field(innocent), "{innocent}");
        }
    }

    #[test]
    fn redacted_free_text_shows_only_that_it_changed() {
        let changes = redact_fields(
            diff(
                Some(json!({"bio": "Loves oak", "active": true, "specialisation": "KITCHEN"})),
                Some(json!({"bio": "Loves ash", "active": false, "specialisation": "KITCHEN"})),
                &[],
            ),
            &["bio", "absent"],
        );
        assert_eq!(
            changes,
            json!({
                "bio": {"before": REDACTED, "after": REDACTED},
                "active": {"before": true, "after": false}
            })
        );
    }

    #[test]
    fn revealed_fields_show_in_clear_and_scalars_compare_as_value() {
        let changes = diff(
            Some(json!({"name": "Oak"})),
            Some(json!({"name": "Ash"})),
            &["name"],
        );
        assert_eq!(changes, json!({"name": {"before": "Oak", "after": "Ash"}}));
        assert_eq!(
            diff(Some(json!(3)), Some(json!(5)), &[]),
            json!({"value": {"before": 3, "after": 5}})
        );
        assert_eq!(diff(None, None, &[]), json!({}));
    }
}
