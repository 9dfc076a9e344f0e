//! Storefront content the home page reads: hero slides, completed projects, finance options,
//! FAQs, accreditations and partner logos, testimonials (ordered lists), and the media wall (one
//! object, [`media_wall`]).
//!
//! Every ordered list works the same way, so one generic implementation serves them all and
//! `collection!` stamps out each kind's typed, documented handlers:
//! - public `GET /v1/<kind>` (active items, ascending `position`, cursor pages; cached) and
//!   `GET /v1/<kind>/{id}`;
//! - ADMIN `POST /v1/<kind>` (appended at the end), `PATCH /v1/<kind>/{id}` (merge patch),
//!   `DELETE /v1/<kind>/{id}` (soft), `PUT /v1/<kind>/order` (the complete new order) and
//!   `GET /v1/admin/<kind>` (every undeleted item, inactive ones too; offset pages).
//!
//! Rows are written through `jsonb_populate_record` from the validated input (its top-level
//! members are the table's columns) and read back with `to_jsonb`, so each kind is its input type,
//! its table and its column list: nothing else to keep in step. Media are referenced by asset id
//! or URL ([`MediaRef`]), never by a foreign key (the media tables belong to another module).

pub mod kinds;
pub mod media_wall;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use service_kit::cache::Ttl;
use service_kit::extract::decode_cursor;
use service_kit::{Caller, CursorPage, OffsetPage, PageParams};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::AppState;
use crate::error::{ContentError, ContentResult};
use service_kit::merge_patch::patched;

/// Whether a referenced medium is a picture or a film.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaKind {
    /// A picture.
    #[default]
    Image,
    /// A film.
    Video,
}

/// A picture or film: a media asset id or a URL (at least one, which the document states with
/// [`document`]), with alt text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaRef {
    /// Media asset id.
    #[serde(default)]
    pub media_id: Option<Uuid>,
    /// URL (http or https); required without a `mediaId`.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^(?:https://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|http://[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{2,})$"
    )]
    pub url: Option<String>,
    /// Alternative text, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub alt: Option<String>,
    /// Picture or film.
    #[serde(default)]
    pub kind: MediaKind,
}

// Written by hand so that a missing source is reported on `url` (a derived struct-level check
// would be named `__all__`).
impl Validate for MediaRef {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        let mut errors = validator::ValidationErrors::new();
        match &self.url {
            None if self.media_id.is_none() => errors.add(
                "url",
                ValidationError::new("source").with_message("give a mediaId or a url".into()),
            ),
            Some(url) => {
                if let Err(error) = validate_http_url(url) {
                    errors.add("url", error);
                }
            }
            None => {}
        }
        if self
            .alt
            .as_deref()
            .is_some_and(|alt| alt.chars().count() > 200)
        {
            errors.add(
                "alt",
                ValidationError::new("length")
                    .with_message("must be at most 200 characters".into()),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// States in `doc` the rules of the storefront's types its derived schemas cannot: a
/// [`MediaRef`] needs a `mediaId` or a `url` (and a merge patch of one must not clear both).
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use service_kit::openapi::{not_null, require_any, require_any_of};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    require_any_of(doc, "MediaRef", &[&["mediaId"], &["url"]]);
    // In a merge patch (members merged into the stored media): not both sources cleared. Any
    // other patch can be right, depending on the stored media (see `media_source_conflict`).
    let keeps = |member: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(member, not_null())
            .build()
    };
    require_any(doc, "MediaRef", [keeps("mediaId"), keeps("url")], true);
}

/// An absolute http(s) URL without spaces, at most 2000 characters.
pub fn validate_http_url(value: &str) -> Result<(), ValidationError> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && value.len() <= 2000
        && !value.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("url").with_message("must be an http(s) URL".into()))
    }
}

/// A site path (`/book-appointment`) or an absolute http(s) URL.
pub fn validate_link(value: &str) -> Result<(), ValidationError> {
    let path = value.starts_with('/')
        && !value.starts_with("//")
        && value.len() <= 2000
        && !value.chars().any(char::is_whitespace);
    if path || validate_http_url(value).is_ok() {
        Ok(())
    } else {
        Err(ValidationError::new("link")
            .with_message("must be a site path (/...) or an http(s) URL".into()))
    }
}

/// The SQL of one kind (each a literal made by `collection!`).
pub struct Sql {
    /// Singular name for 404s.
    pub name: &'static str,
    /// Cache kind.
    pub cache_kind: &'static str,
    /// The public list's path (what the CDN drops after a change).
    pub path: &'static str,
    /// `$1` position, `$2` id (keyset, both null for the first page), `$3` limit.
    pub list_public: &'static str,
    /// `$1` id.
    pub get_public: &'static str,
    /// `$1` limit, `$2` offset.
    pub list_admin: &'static str,
    /// Undeleted rows.
    pub count_admin: &'static str,
    /// `$1` id; locks the row.
    pub get_for_update: &'static str,
    /// `$1` id, `$2` the row as snake_case JSON.
    pub insert: &'static str,
    /// `$1` id, `$2` the row as snake_case JSON.
    pub update: &'static str,
    /// `$1` id.
    pub delete: &'static str,
    /// Ids of the undeleted rows (locked).
    pub ids: &'static str,
    /// `$1` id, `$2` position.
    pub set_position: &'static str,
}

/// `buttonText` → `button_text`.
fn to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `button_text` → `buttonText`.
fn to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames the top-level members of `value` (nested JSON keeps the API's spelling).
fn rename_top_level(value: Value, rename: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (rename(&k), v))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// The members every stored item has besides its input fields.
const META: [&str; 4] = ["id", "position", "createdAt", "updatedAt"];

/// The schema of an item as the API shows it, from its input's schema: the input's members plus
/// `id`, `position`, `createdAt` and `updatedAt`. The input refuses unknown members; the view does
/// not, since it is an answer, not something a client sends.
pub fn view_schema(input: RefOr<Schema>) -> RefOr<Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let RefOr::T(Schema::Object(mut object)) = input else {
        return input;
    };
    object.additional_properties = None;
    let string_as = |format: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .build()
    };
    let meta = [
        ("id", string_as(KnownFormat::Uuid), "The item's id."),
        (
            "position",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                .build(),
            "Its place in the list, from 0.",
        ),
        (
            "createdAt",
            string_as(KnownFormat::DateTime),
            "When it was added.",
        ),
        (
            "updatedAt",
            string_as(KnownFormat::DateTime),
            "When it last changed.",
        ),
    ];
    for (name, mut schema, description) in meta {
        schema.description = Some(description.to_owned());
        object
            .properties
            .insert(name.to_owned(), RefOr::T(Schema::Object(schema)));
        if !object.required.iter().any(|r| r == name) {
            object.required.push(name.to_owned());
        }
    }
    RefOr::T(Schema::Object(object))
}

/// Declares `$view`, the documented shape of a stored `$input` item (see [`view_schema`]); the
/// handlers answer `serde_json::Value`s, so it is a schema only.
macro_rules! view {
    ($(#[$doc:meta])* $view:ident, $input:ty) => {
        $(#[$doc])*
        pub struct $view;

        impl utoipa::PartialSchema for $view {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::storefront::view_schema(<$input as utoipa::PartialSchema>::schema())
            }
        }

        impl utoipa::ToSchema for $view {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($view))
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                <$input as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}
pub(crate) use view;

/// An item as the API shows it: the input's members plus `id`, `position`, `createdAt` and
/// `updatedAt`.
fn item(row: Value) -> Value {
    rename_top_level(row, to_camel)
}

fn row_json<I: Serialize>(input: &I) -> ContentResult<Value> {
    Ok(rename_top_level(
        serde_json::to_value(input).map_err(anyhow::Error::from)?,
        to_snake,
    ))
}

/// The keyset position of a public list cursor.
#[derive(Debug, Serialize, Deserialize)]
struct OrderCursor {
    position: i32,
    id: Uuid,
}

/// Public list parameters.
#[derive(Debug, Clone, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Opaque cursor from a previous page's `nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The complete new order of a list.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Every undeleted item's id, once each, first to last.
    #[validate(length(max = 1000, message = "at most 1000 ids"))]
    #[validate(custom(function = "validate_no_repeats"))]
    #[schema(schema_with = order_ids_schema)]
    pub ids: Vec<Uuid>,
}

/// An order names each item once: a repeated id is a malformed request (422), whatever the list
/// holds.
fn validate_no_repeats(ids: &[Uuid]) -> Result<(), ValidationError> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    if ids.iter().all(|id| seen.insert(id)) {
        Ok(())
    } else {
        Err(ValidationError::new("unique").with_message("must not repeat an id".into()))
    }
}

/// `ids`: at most 1000 distinct uuids (`uniqueItems`, which the derive cannot state for a `Vec`).
fn order_ids_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .max_items(Some(1000))
        .unique_items(true)
        .description(Some(
            "Every undeleted item's id, once each, first to last. A set of ids other than the \
             list's current items is a 409: the list changed; reload it.",
        ))
        .build()
}

/// The ids of a list, in order.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OrderResponse {
    /// Ids, first to last.
    pub ids: Vec<Uuid>,
}

/// What the CDN should drop after a change to a kind: its list (item URLs are rarely cached
/// apart from it, and a stale one lives at most the CDN's TTL).
fn changed_paths(sql: &Sql) -> Vec<String> {
    vec![sql.path.to_owned()]
}

/// Public: active items in order, one cursor page (cached).
pub async fn list_public(
    state: &AppState,
    sql: &'static Sql,
    headers: &HeaderMap,
    query: ListQuery,
) -> ContentResult<Response> {
    let cursor: Option<OrderCursor> = match query.cursor.as_deref() {
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ContentError::field("cursor", "is not a valid cursor"))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(20);
    let normalised = format!(
        "cursor={}&limit={limit}",
        query.cursor.as_deref().unwrap_or_default()
    );
    state
        .blog_cache
        .serve(headers, sql.cache_kind, &normalised, Ttl::List, || async {
            let rows: Vec<Value> = sqlx::query_scalar(sql.list_public)
                .bind(cursor.as_ref().map(|c| c.position))
                .bind(cursor.as_ref().map(|c| c.id))
                .bind(i64::from(limit) + 1)
                .fetch_all(&state.db)
                .await?;
            let items: Vec<Value> = rows.into_iter().map(item).collect();
            let page = CursorPage::from_rows(items, limit, |item| OrderCursor {
                position: item["position"]
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or_default(),
                id: item["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .unwrap_or_default(),
            });
            Ok::<_, ContentError>(serde_json::to_vec(&page).map_err(anyhow::Error::from)?)
        })
        .await
}

/// Public: one active item.
pub async fn get_public(
    state: &AppState,
    sql: &'static Sql,
    id: Uuid,
) -> ContentResult<Json<Value>> {
    let row: Option<Value> = sqlx::query_scalar(sql.get_public)
        .bind(id)
        .fetch_optional(&state.db)
        .await?;
    row.map(|r| Json(item(r)))
        .ok_or(ContentError::NotFound(sql.name))
}

/// ADMIN: every undeleted item in order, one offset page.
pub async fn list_admin(
    state: &AppState,
    sql: &'static Sql,
    paging: PageParams,
) -> ContentResult<Json<OffsetPage<Value>>> {
    let rows: Vec<Value> = sqlx::query_scalar(sql.list_admin)
        .bind(i64::from(paging.page_size()))
        .bind(paging.offset())
        .fetch_all(&state.db)
        .await?;
    let total: i64 = sqlx::query_scalar(sql.count_admin)
        .fetch_one(&state.db)
        .await?;
    Ok(Json(OffsetPage {
        data: rows.into_iter().map(item).collect(),
        page: paging.page(),
        page_size: paging.page_size(),
        total,
    }))
}

/// Free text of the storefront kinds (personal fields such as a testimonial's `name` and `text`
/// are redacted by name already): the audit trail says only that it changed.
const AUDIT_REDACTED: &[&str] = &["description", "answer", "location"];

/// The audit trail's name of a kind: `hero slide` → `hero_slide`.
fn audit_entity(sql: &Sql) -> String {
    sql.name.to_ascii_lowercase().replace(' ', "_")
}

/// Records `action` on item `id` in the audit trail, in the change's transaction.
async fn audit_item(
    conn: &mut sqlx::PgConnection,
    admin: &Caller,
    sql: &Sql,
    id: Uuid,
    action: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), sqlx::Error> {
    let mut entry = service_kit::audit::Entry::new(admin, &audit_entity(sql), id, action)
        .redact(AUDIT_REDACTED);
    if let Some(before) = before {
        entry = entry.before(before);
    }
    if let Some(after) = after {
        entry = entry.after(after);
    }
    entry.record(conn).await
}

/// ADMIN: appends a new item at the end of the list.
pub async fn create<I: Serialize>(
    state: &AppState,
    admin: &Caller,
    sql: &'static Sql,
    input: &I,
) -> ContentResult<(StatusCode, Json<Value>)> {
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    let row: Value = sqlx::query_scalar(sql.insert)
        .bind(id)
        .bind(row_json(input)?)
        .fetch_one(&mut *tx)
        .await?;
    let row = item(row);
    audit_item(&mut tx, admin, sql, id, "create", None, Some(&row)).await?;
    tx.commit().await?;
    state.content_changed(&changed_paths(sql)).await;
    Ok((StatusCode::CREATED, Json(row)))
}

/// ADMIN: applies a merge patch of the input type to an item.
pub async fn patch<I: Serialize + DeserializeOwned + Validate>(
    state: &AppState,
    admin: &Caller,
    sql: &'static Sql,
    id: Uuid,
    patch: &Value,
) -> ContentResult<Json<Value>> {
    let mut tx = state.db.begin().await?;
    let current: Value = sqlx::query_scalar(sql.get_for_update)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ContentError::NotFound(sql.name))?;
    let before = item(current);
    let mut document = before.clone();
    if let Value::Object(map) = &mut document {
        for key in META {
            map.remove(key);
        }
    }
    if let Some(conflict) = media_source_conflict(&document, patch) {
        return Err(conflict);
    }
    let input: I = patched(document, patch)?;
    let row: Value = sqlx::query_scalar(sql.update)
        .bind(id)
        .bind(row_json(&input)?)
        .fetch_one(&mut *tx)
        .await?;
    let row = item(row);
    audit_item(&mut tx, admin, sql, id, "update", Some(&before), Some(&row)).await?;
    tx.commit().await?;
    state.content_changed(&changed_paths(sql)).await;
    Ok(Json(row))
}

/// The members of the storefront kinds that are a [`MediaRef`] (merged member by member).
const MEDIA_MEMBERS: [&str; 1] = ["media"];

/// A merge patch that would leave the stored media without a source (`{"media": {"url": null}}`
/// when the stored media has no `mediaId`, `{"media": {"alt": "…"}}` on an item without media)
/// conflicts with the item's state: 409, since the same patch is fine on an item whose media has
/// the other source. A patch clearing both sources itself is invalid as it stands (the
/// document says so): left to the validation's 422.
fn media_source_conflict(stored: &Value, patch: &Value) -> Option<ContentError> {
    MEDIA_MEMBERS.iter().find_map(|member| {
        let change = patch.get(*member)?.as_object()?;
        let clears = |key: &str| change.get(key).is_some_and(Value::is_null);
        if clears("url") && clears("mediaId") {
            return None;
        }
        let source = |key: &str| match change.get(key) {
            Some(value) => !value.is_null(),
            None => stored
                .get(*member)
                .and_then(|media| media.get(key))
                .is_some_and(|value| !value.is_null()),
        };
        (!source("url") && !source("mediaId")).then(|| {
            ContentError::Conflict(
                "media-source-missing",
                format!(
                    "After this patch `{member}` would have neither a mediaId nor a url (the \
                     stored {member} has no other source): send a url or a mediaId in the same \
                     patch."
                ),
            )
        })
    })
}

/// ADMIN: soft-deletes an item.
pub async fn delete(
    state: &AppState,
    admin: &Caller,
    sql: &'static Sql,
    id: Uuid,
) -> ContentResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let before: Value = sqlx::query_scalar(sql.get_for_update)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ContentError::NotFound(sql.name))?;
    let deleted = sqlx::query(sql.delete).bind(id).execute(&mut *tx).await?;
    if deleted.rows_affected() == 0 {
        return Err(ContentError::NotFound(sql.name));
    }
    audit_item(&mut tx, admin, sql, id, "delete", Some(&item(before)), None).await?;
    tx.commit().await?;
    state.content_changed(&changed_paths(sql)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// ADMIN: puts the list in the given order (which must name every undeleted item once).
pub async fn reorder(
    state: &AppState,
    admin: &Caller,
    sql: &'static Sql,
    request: OrderRequest,
) -> ContentResult<Json<OrderResponse>> {
    let mut tx = state.db.begin().await?;
    let mut current: Vec<Uuid> = sqlx::query_scalar(sql.ids).fetch_all(&mut *tx).await?;
    let before = current.clone();
    let mut asked = request.ids.clone();
    current.sort_unstable();
    asked.sort_unstable();
    if current != asked {
        // The ids are distinct (the request was validated), so they are simply not the list's
        // items: an item was added or deleted since the client read the list.
        return Err(ContentError::Conflict(
            "order-stale",
            format!(
                "The ids are not the {} list's current items (it changed since it was read); \
                 reload the list and send every item's id once.",
                sql.name
            ),
        ));
    }
    for (position, id) in request.ids.iter().enumerate() {
        sqlx::query(sql.set_position)
            .bind(id)
            .bind(i32::try_from(position).map_err(anyhow::Error::from)?)
            .execute(&mut *tx)
            .await?;
    }
    service_kit::audit::Entry::new(admin, &audit_entity(sql), sql.cache_kind, "reorder")
        .before(&serde_json::json!({ "ids": before }))
        .after(&serde_json::json!({ "ids": request.ids }))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    state.content_changed(&changed_paths(sql)).await;
    Ok(Json(OrderResponse { ids: request.ids }))
}

/// Generates one ordered kind's SQL, handlers (with their OpenAPI descriptions) and router.
macro_rules! collection {
    (
        module: $module:ident,
        input: $input:ty,
        view: $view:ty,
        name: $name:literal,
        tag: $tag:literal,
        table: $table:literal,
        columns: $columns:literal,
        list: $list:literal,
        item: $item:literal,
        order: $order:literal,
        admin: $admin:literal $(,)?
    ) => {
        /// The routes of this kind (see [`crate::storefront`]).
        pub mod $module {
            use axum::Json;
            use axum::extract::{Path, State};
            use axum::http::{HeaderMap, StatusCode};
            use axum::response::Response;
            use serde_json::Value;
            use service_kit::{
                AdminCaller, CursorPage, OffsetPage, PageParams, ValidatedJson, ValidatedQuery,
            };
            use utoipa_axum::router::OpenApiRouter;
            use utoipa_axum::routes;
            use uuid::Uuid;

            #[allow(unused_imports)]
            use super::*;
            use crate::AppState;
            use crate::error::ContentResult;
            use service_kit::merge_patch::MergePatch;
            use crate::storefront::{self as generic, ListQuery, OrderRequest, OrderResponse, Sql};

            static SQL: Sql = Sql {
                name: $name,
                cache_kind: $table,
                path: $list,
                list_public: concat!(
                    "SELECT to_jsonb(t) - 'deleted_at' FROM ", $table, " t
                     WHERE deleted_at IS NULL AND active
                       AND ($1::int IS NULL OR (position, id) > ($1, $2))
                     ORDER BY position, id LIMIT $3"
                ),
                get_public: concat!(
                    "SELECT to_jsonb(t) - 'deleted_at' FROM ", $table, " t
                     WHERE id = $1 AND deleted_at IS NULL AND active"
                ),
                list_admin: concat!(
                    "SELECT to_jsonb(t) - 'deleted_at' FROM ", $table, " t
                     WHERE deleted_at IS NULL ORDER BY position, id LIMIT $1 OFFSET $2"
                ),
                count_admin: concat!("SELECT count(*) FROM ", $table, " WHERE deleted_at IS NULL"),
                get_for_update: concat!(
                    "SELECT to_jsonb(t) - 'deleted_at' FROM ", $table, " t
                     WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
                ),
                insert: concat!(
                    "INSERT INTO ", $table, " AS t (id, position, ", $columns, ")
                     SELECT $1, coalesce((SELECT max(position) + 1 FROM ", $table, "
                                          WHERE deleted_at IS NULL), 0), ", $columns, "
                     FROM jsonb_populate_record(NULL::", $table, ", $2)
                     RETURNING to_jsonb(t) - 'deleted_at'"
                ),
                update: concat!(
                    "UPDATE ", $table, " AS t SET (", $columns, ") =
                         (SELECT ", $columns, " FROM jsonb_populate_record(NULL::", $table, ", $2))
                     WHERE id = $1 AND deleted_at IS NULL
                     RETURNING to_jsonb(t) - 'deleted_at'"
                ),
                delete: concat!(
                    "UPDATE ", $table, " SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
                ),
                ids: concat!("SELECT id FROM ", $table, " WHERE deleted_at IS NULL FOR UPDATE"),
                set_position: concat!("UPDATE ", $table, " SET position = $2 WHERE id = $1"),
            };

            /// Active items in order (cursor pages).
            #[utoipa::path(
                get,
                path = $list,
                tag = $tag,
                params(ListQuery),
                responses(
                    (status = 200, description = "A page of items (each: the input's fields plus id, position, createdAt, updatedAt)", body = CursorPage<$view>),
                    (status = 422, description = "Invalid parameters", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn list(
                State(state): State<AppState>,
                headers: HeaderMap,
                ValidatedQuery(query): ValidatedQuery<ListQuery>,
            ) -> ContentResult<Response> {
                generic::list_public(&state, &SQL, &headers, query).await
            }

            /// One active item.
            #[utoipa::path(
                get,
                path = $item,
                tag = $tag,
                params(("id" = Uuid, Path, description = "Item id")),
                responses(
                    (status = 200, description = "The item", body = $view),
                    (status = 404, description = "No such active item", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn get(State(state): State<AppState>, Path(id): Path<Uuid>) -> ContentResult<Json<Value>> {
                generic::get_public(&state, &SQL, id).await
            }

            /// Adds an item at the end of the list (ADMIN).
            #[utoipa::path(
                post,
                path = $list,
                tag = $tag,
                request_body = $input,
                responses(
                    (status = 201, description = "Created", body = $view),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 422, description = "Invalid item", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn create(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                ValidatedJson(input): ValidatedJson<$input>,
            ) -> ContentResult<(StatusCode, Json<Value>)> {
                generic::create(&state, &admin, &SQL, &input).await
            }

            /// Changes an item with a JSON Merge Patch (ADMIN).
            #[utoipa::path(
                patch,
                path = $item,
                tag = $tag,
                params(("id" = Uuid, Path, description = "Item id")),
                request_body(content = $input, content_type = "application/merge-patch+json"),
                responses(
                    (status = 200, description = "Updated", body = $view),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such item", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 409, description = "Kinds with a `media` member: the patch would leave the stored media without a mediaId or a url (send one in the same patch)", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 415, description = "Not a JSON merge patch", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 422, description = "Invalid patch", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn patch(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                Path(id): Path<Uuid>,
                MergePatch(patch): MergePatch,
            ) -> ContentResult<Json<Value>> {
                generic::patch::<$input>(&state, &admin, &SQL, id, &patch).await
            }

            /// Deletes an item (ADMIN; soft).
            #[utoipa::path(
                delete,
                path = $item,
                tag = $tag,
                params(("id" = Uuid, Path, description = "Item id")),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 404, description = "No such item", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn delete(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                Path(id): Path<Uuid>,
            ) -> ContentResult<StatusCode> {
                generic::delete(&state, &admin, &SQL, id).await
            }

            /// Puts the list in a new order (ADMIN): every undeleted item's id, once, first to last.
            #[utoipa::path(
                put,
                path = $order,
                tag = $tag,
                request_body = OrderRequest,
                responses(
                    (status = 200, description = "The new order", body = OrderResponse),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 409, description = "The ids are not the list's current items (it changed since it was read): reload it", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 422, description = "An id is repeated, or too many ids", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn reorder(
                State(state): State<AppState>,
                AdminCaller(admin): AdminCaller,
                ValidatedJson(request): ValidatedJson<OrderRequest>,
            ) -> ContentResult<Json<OrderResponse>> {
                generic::reorder(&state, &admin, &SQL, request).await
            }

            /// Every undeleted item in order, inactive ones too (ADMIN).
            #[utoipa::path(
                get,
                path = $admin,
                tag = $tag,
                params(PageParams),
                responses(
                    (status = 200, description = "A page of items", body = OffsetPage<$view>),
                    (status = 401, description = "Not signed in", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 403, description = "Not an administrator", body = service_kit::Problem, content_type = "application/problem+json"),
                    (status = 422, description = "Invalid parameters", body = service_kit::Problem, content_type = "application/problem+json"),
                )
            )]
            async fn admin_list(
                State(state): State<AppState>,
                _admin: AdminCaller,
                ValidatedQuery(paging): ValidatedQuery<PageParams>,
            ) -> ContentResult<Json<OffsetPage<Value>>> {
                generic::list_admin(&state, &SQL, paging).await
            }

            /// This kind's routes.
            pub fn router() -> OpenApiRouter<AppState> {
                OpenApiRouter::new()
                    .routes(routes!(list, create))
                    .routes(routes!(get, patch, delete))
                    .routes(routes!(reorder))
                    .routes(routes!(admin_list))
            }
        }
    };
}
pub(crate) use collection;

/// Every storefront route.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(kinds::hero_slides::router())
        .merge(kinds::projects::router())
        .merge(kinds::finance::router())
        .merge(kinds::faqs::router())
        .merge(kinds::accreditations::router())
        .merge(kinds::testimonials::router())
        .merge(media_wall::router())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_convert_between_api_and_column_spelling() {
        assert_eq!(to_snake("buttonText"), "button_text");
        assert_eq!(to_snake("minSpendPence"), "min_spend_pence");
        assert_eq!(to_camel("logo_media_id"), "logoMediaId");
        assert_eq!(to_camel(&to_snake("completedAt")), "completedAt");
    }

    #[test]
    fn an_order_names_each_id_once_and_the_document_says_so() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(OrderRequest { ids: vec![a, b] }.validate().is_ok());
        assert!(OrderRequest { ids: vec![a, b, a] }.validate().is_err());
        let schema = serde_json::to_value(order_ids_schema()).unwrap_or_default();
        assert_eq!(schema["uniqueItems"], true);
        assert_eq!(schema["maxItems"], 1000);
        assert_eq!(schema["items"]["format"], "uuid");
    }

    #[test]
    fn links_are_site_paths_or_http_urls() {
        assert!(validate_link("/book-appointment").is_ok());
        assert!(validate_link("https://example.com/x").is_ok());
        assert!(validate_link("//evil.example").is_err());
        assert!(validate_link("javascript:alert(1)").is_err());
        assert!(validate_http_url("https://").is_err());
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_view_schema_is_its_input_plus_the_stored_members_and_is_not_closed() {
        use utoipa::{PartialSchema, ToSchema};

        use super::kinds::{AccreditationInput, AccreditationView};

        let input = serde_json::to_value(AccreditationInput::schema()).unwrap();
        let view = serde_json::to_value(AccreditationView::schema()).unwrap();
        assert_eq!(
            input["additionalProperties"], false,
            "the input refuses unknown members"
        );
        assert!(view.get("additionalProperties").is_none(), "{view}");
        let keys = |schema: &serde_json::Value| {
            schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        let mut expected = keys(&input);
        expected.extend(META.map(str::to_owned));
        assert_eq!(keys(&view), expected);
        for member in META {
            assert!(
                view["required"]
                    .as_array()
                    .unwrap()
                    .contains(&member.into()),
                "{member}"
            );
        }
        assert_eq!(view["properties"]["id"]["format"], "uuid");
        assert_eq!(AccreditationView::name(), "AccreditationView");
        // The input's own references (LogoKind) are still collected for the components.
        let mut schemas = Vec::new();
        AccreditationView::schemas(&mut schemas);
        let names: Vec<&String> = schemas.iter().map(|(name, _)| name).collect();
        assert!(names.iter().any(|name| *name == "LogoKind"), "{names:?}");
    }
}
