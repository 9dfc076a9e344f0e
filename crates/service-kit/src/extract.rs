//! Extractors that answer bad input with problem+json: `ValidatedJson`, `ValidatedQuery`,
//! cursor and offset pagination, and the `Idempotency-Key` header.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::problem::{FieldError, Problem};
use crate::strict_json::Strict;

/// A JSON body that was well-formed, of the right shape, and passed its `validator` rules.
///
/// Wrong content type → 415; malformed JSON → 400; wrong shape (missing field, wrong type) or
/// failed rules → 422 with one entry per field; too large → 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatedJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidatedJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = read_body(request, state).await?;
        Self::decode(&bytes)
    }
}

/// An optional body (`Option<ValidatedJson<T>>`): nothing sent is `None`; anything sent is read
/// exactly as a required body is, so a malformed or wrongly shaped body is refused (400/415/422)
/// and never taken for "no body".
impl<S, T> axum::extract::OptionalFromRequest<S> for ValidatedJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let json = is_json(request.headers());
        let bytes = read_body(request, state).await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        if !json {
            return Err(unsupported_media_type());
        }
        Self::decode(&bytes).map(Some)
    }
}

impl<T: DeserializeOwned + Validate> ValidatedJson<T> {
    fn decode(bytes: &[u8]) -> Result<Self, Problem> {
        let value = parse_json::<T>(bytes)?;
        value.validate().map_err(validation_problem)?;
        Ok(Self(value))
    }
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
    )
    .with_detail("Send the body as application/json.")
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                Problem::bad_request("The request body could not be read.")
            }
        })
}

/// JSON Schema counts `1799.0` as an integer (what the documents say `integer` fields take), but
/// serde refuses it for an integer type. Only on that slow path: the body with every float that
/// is a whole number within `i64` written as an integer, when that then deserialises.
fn with_integral_floats_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn rewrite(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(number) if number.is_f64() => {
                let float = number.as_f64().unwrap_or(f64::NAN);
                // Below 2^63 in magnitude, so the cast is exact.
                if float.fract() == 0.0 && float.abs() < 9.2e18 {
                    *value = serde_json::Value::from(float as i64);
                    return true;
                }
                false
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, v| rewrite(v) | c),
            serde_json::Value::Object(members) => {
                members.values_mut().fold(false, |c, v| rewrite(v) | c)
            }
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !rewrite(&mut value) {
        return None;
    }
    T::deserialize(Strict(value)).ok()
}

/// Deserialises JSON, telling syntax errors (400) from shape errors (422 naming the field).
///
/// Only an object is taken where a struct is expected ([`Strict`]): serde alone would also fill
/// a struct from an array of its fields in order, which no OpenAPI document of ours allows.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(Strict(&mut deserializer)) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|_| Problem::bad_request("Trailing characters after the JSON body."))?;
            Ok(value)
        }
        Err(error) => {
            if error.inner().classify() == serde_json::error::Category::Data
                && let Some(value) = with_integral_floats_as_integers(bytes)
            {
                return Ok(value);
            }
            let path = error.path().to_string();
            let inner = error.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." {
                        missing_field_name(&inner.to_string()).unwrap_or_default()
                    } else {
                        path
                    };
                    Err(Problem::validation(vec![FieldError::new(
                        field,
                        data_error_message(&inner),
                    )]))
                }
                _ => Err(Problem::bad_request(format!(
                    "The body is not valid JSON (line {}, column {}).",
                    inner.line(),
                    inner.column()
                ))),
            }
        }
    }
}

fn missing_field_name(message: &str) -> Option<String> {
    let start = message.find("missing field `")? + "missing field `".len();
    let end = message[start..].find('`')?;
    Some(message[start..start + end].to_owned())
}

fn data_error_message(error: &serde_json::Error) -> String {
    // serde's message names Rust types and positions; keep the human part only.
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    if text.starts_with("missing field") {
        "is required".to_owned()
    } else {
        text.to_owned()
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Ok(mime) = content_type.parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == "application"
        && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
}

/// Turns `validator` errors into a 422 problem with one entry per failing field, nested paths
/// written as `items[2].quantity`.
pub fn validation_problem(errors: ValidationErrors) -> Problem {
    let mut out = Vec::new();
    flatten_errors(&errors, String::new(), &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    Problem::validation(out)
}

fn flatten_errors(errors: &ValidationErrors, prefix: String, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let name = camel_case(field);
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let message = error
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| default_message(&error.code));
                    out.push(FieldError::new(path.clone(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten_errors(inner, path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten_errors(inner, format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

fn default_message(code: &str) -> String {
    match code {
        "length" => "has the wrong length".to_owned(),
        "range" => "is out of range".to_owned(),
        "email" => "is not a valid email address".to_owned(),
        "url" => "is not a valid URL".to_owned(),
        "required" => "is required".to_owned(),
        other => format!("is invalid ({other})"),
    }
}

/// `first_name` → `firstName`, so field paths match the camelCase JSON the client sent.
fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Query parameters deserialised and validated; failures are 422 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatedQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidatedQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let value: T = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let field = error.path().to_string();
            let message = error.into_inner().to_string();
            let field = if field == "." {
                missing_field_name(&message).unwrap_or_default()
            } else {
                field
            };
            Problem::invalid_field(&field, message)
        })?;
        value.validate().map_err(validation_problem)?;
        Ok(Self(value))
    }
}

/// Cursor pagination parameters for public lists: `?cursor=…&limit=…` (limit 1–100, default 20).
#[derive(Debug, Clone, Default, serde::Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorParams {
    /// Opaque cursor from a previous page's `nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl CursorParams {
    /// The page size asked for, or the default of 20.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(20)
    }

    /// Decodes the cursor into the keyset position it carries; a tampered cursor is a 422.
    pub fn decode<K: DeserializeOwned>(&self) -> Result<Option<K>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| {
                decode_cursor(c)
                    .ok_or_else(|| Problem::invalid_field("cursor", "is not a valid cursor"))
            })
            .transpose()
    }
}

/// Encodes a keyset position as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes an opaque cursor; `None` when it was not made by [`encode_cursor`].
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One page of a public list.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CursorPage<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// Whether another page follows.
    pub has_next_page: bool,
}

impl<T> CursorPage<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells whether more exist.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: u32, key_of: impl Fn(&T) -> K) -> Self {
        let has_next_page = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if has_next_page {
            rows.last().map(|last| encode_cursor(&key_of(last)))
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
            has_next_page,
        }
    }
}

/// Offset pagination for admin tables: `?page=1&pageSize=20` (page ≥ 1, size 1–100).
#[derive(Debug, Clone, Default, serde::Deserialize, Validate, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PageParams {
    /// Page number from 1.
    #[validate(range(min = 1, max = 100000, message = "must be at least 1"))]
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// Rows a page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

impl PageParams {
    /// The page number (default 1).
    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1)
    }
    /// The page size (default 20).
    pub fn page_size(&self) -> u32 {
        self.page_size.unwrap_or(20)
    }
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from(self.page() - 1) * i64::from(self.page_size())
    }
}

/// One page of an admin table.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffsetPage<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// Page number from 1.
    pub page: u32,
    /// Rows a page.
    pub page_size: u32,
    /// Rows in all pages.
    pub total: i64,
}

/// The `Idempotency-Key` header, required on order and payment `POST`s: 1–255 visible ASCII
/// characters. Missing or malformed → 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency-key-required",
                    "Idempotency-Key required",
                )
                .with_detail("Send an Idempotency-Key header with this request.")
            })?
            .to_str()
            .ok()
            .filter(|v| !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Problem::bad_request("Idempotency-Key must be 1–255 visible ASCII characters.")
            })?;
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Key {
        at: i64,
        id: String,
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = Key {
            at: 42,
            id: "p1".into(),
        };
        let cursor = encode_cursor(&key);
        assert_eq!(decode_cursor::<Key>(&cursor), Some(key));
        assert_eq!(decode_cursor::<Key>("not a cursor!"), None);
        let params = CursorParams {
            cursor: Some("Zm9v".into()),
            limit: None,
        };
        let err = params.decode::<Key>().expect_err("tampered");
        assert_eq!(err.status, 422);
    }

    #[test]
    fn pages_are_built_from_limit_plus_one_rows() {
        let page = CursorPage::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.data, vec![1, 2]);
        assert!(page.has_next_page);
        assert_eq!(
            decode_cursor::<i32>(page.next_cursor.as_deref().unwrap_or("")),
            Some(2)
        );
        let last = CursorPage::from_rows(vec![1, 2], 2, |n| *n);
        assert!(!last.has_next_page);
        assert!(last.next_cursor.is_none());
    }

    #[derive(Debug, serde::Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Preview {
        #[validate(length(max = 5))]
        name: Option<String>,
    }

    async fn optional_body(
        content_type: Option<&str>,
        body: &'static str,
    ) -> Result<Option<ValidatedJson<Preview>>, Problem> {
        let mut request = axum::http::Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(axum::body::Body::from(body)).unwrap();
        <ValidatedJson<Preview> as axum::extract::OptionalFromRequest<()>>::from_request(
            request,
            &(),
        )
        .await
    }

    #[tokio::test]
    async fn an_optional_body_is_none_only_when_nothing_is_sent() {
        assert!(optional_body(None, "").await.unwrap().is_none());
        assert!(
            optional_body(Some("application/json"), "")
                .await
                .unwrap()
                .is_none()
        );
        let sent = optional_body(Some("application/json"), r#"{"name":"oak"}"#)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent.0.name.as_deref(), Some("oak"));
        // What is sent is read as a required body would be: never quietly dropped.
        let status = |r: Result<Option<ValidatedJson<Preview>>, Problem>| r.unwrap_err().status;
        assert_eq!(
            status(optional_body(Some("application/json"), "{").await),
            400
        );
        assert_eq!(
            status(optional_body(Some("application/json"), r#"{"nmae":"x"}"#).await),
            422
        );
        assert_eq!(
            status(optional_body(Some("application/json"), r#"{"name":"walnut"}"#).await),
            422
        );
        assert_eq!(
            status(optional_body(Some("application/json"), "[null]").await),
            422
        );
        assert_eq!(status(optional_body(None, r#"{"name":"oak"}"#).await), 415);
    }

    #[test]
    fn field_names_are_camel_cased() {
        assert_eq!(camel_case("first_name"), "firstName");
        assert_eq!(camel_case("email"), "email");
    }

    fn param_bounds(params: Vec<utoipa::openapi::path::Parameter>) -> Vec<(String, Value)> {
        params
            .into_iter()
            .map(|p| {
                let schema = serde_json::to_value(&p.schema).unwrap();
                (p.name, json!([schema["minimum"], schema["maximum"]]))
            })
            .collect()
    }

    #[test]
    fn integral_floats_are_integers_as_json_schema_says() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Rate {
            rate_bp: i32,
            items: Vec<u8>,
        }
        let rate: Rate = parse_json(br#"{"rate_bp": 1799.0, "items": [1.0, 2]}"#).unwrap();
        assert_eq!(
            rate,
            Rate {
                rate_bp: 1799,
                items: vec![1, 2]
            }
        );
        // A fraction stays a shape error naming the field.
        let error = parse_json::<Rate>(br#"{"rate_bp": 17.5, "items": []}"#).unwrap_err();
        assert_eq!(error.status, 422);
    }

    #[test]
    fn pagination_parameters_document_the_bounds_they_enforce() {
        use utoipa::IntoParams;
        assert_eq!(
            param_bounds(CursorParams::into_params(|| None)),
            vec![
                ("cursor".to_owned(), json!([null, null])),
                ("limit".to_owned(), json!([1, 100])),
            ]
        );
        assert_eq!(
            param_bounds(PageParams::into_params(|| None)),
            vec![
                ("page".to_owned(), json!([1, 100000])),
                ("pageSize".to_owned(), json!([1, 100])),
            ]
        );
        // The documented bounds are the enforced ones: just outside them is refused.
        let over = CursorParams {
            cursor: None,
            limit: Some(101),
        };
        assert!(over.validate().is_err());
        let under = PageParams {
            page: Some(0),
            page_size: Some(1),
        };
        assert!(under.validate().is_err());
    }
}
