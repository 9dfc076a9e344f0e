//! JSON Merge Patch (RFC 7396), the meaning of every `PATCH` route (DESIGN: "Writes").
//!
//! A handler either
//! * works on documents: takes the body with [`MergePatch`], [`apply`]s it to the JSON form of
//!   the current state and reads the result back as the `POST` input type with [`patched`], so
//!   a patch is validated exactly as a create is; or
//! * declares a typed patch struct whose clearable fields are `Option<Option<T>>` read with
//!   [`nullable`], telling an absent member (leave it) from `null` (clear it).
//!
//! ```
//! use serde_json::json;
//! let mut doc = json!({"title": "Oak", "tags": {"a": 1, "b": 2}});
//! service_kit::merge_patch::apply(&mut doc, &json!({"tags": {"a": null}, "new": true}));
//! assert_eq!(doc, json!({"title": "Oak", "tags": {"b": 2}, "new": true}));
//! ```

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use validator::Validate;

use crate::extract::{parse_json, validation_problem};
use crate::problem::Problem;

/// The 422 message for a patch that is not a JSON object.
pub const NOT_AN_OBJECT: &str = "a merge patch must be a JSON object";

/// Applies `patch` to `target` (RFC 7396 §2): objects merge member by member, a `null` member
/// removes that member, anything else (arrays included) replaces the target whole.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                apply(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies `patch` to `current` (the JSON form of the state, shaped like `T`) and reads the
/// result back as `T`, validated exactly as a `POST` body would be (the same 400/422 shapes).
/// A patch that is not a JSON object is refused with 422: replacing a whole resource is `PUT`'s
/// job, and no route here has one.
pub fn patched<T: DeserializeOwned + Validate>(
    mut current: Value,
    patch: &Value,
) -> Result<T, Problem> {
    if !patch.is_object() {
        return Err(Problem::invalid_field("", NOT_AN_OBJECT));
    }
    apply(&mut current, patch);
    let bytes = serde_json::to_vec(&current).map_err(|e| Problem::internal(&e))?;
    let value: T = parse_json(&bytes)?;
    value.validate().map_err(validation_problem)?;
    Ok(value)
}

/// For `#[serde(default, deserialize_with = "service_kit::merge_patch::nullable")]` on an
/// `Option<Option<T>>` field: absent → `None` (leave it), `null` → `Some(None)` (clear it), a
/// value → `Some(Some(v))`. `default` is what makes an absent member `None`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Whether a `Content-Type` value is `application/json` or any `application/*+json` (such as
/// `application/merge-patch+json`), parameters ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON Merge Patch body (`application/merge-patch+json` or `application/json`), which must be
/// a JSON object. Another media type → 415, malformed JSON → 400, not an object → 422.
#[derive(Debug, Clone)]
pub struct MergePatch(pub Value);

impl<S: Send + Sync> FromRequest<S> for MergePatch {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .with_detail("Send the patch as application/merge-patch+json."));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| Problem::bad_request("The request body could not be read."))?;
        let patch: Value = parse_json(&bytes)?;
        if !patch.is_object() {
            return Err(Problem::invalid_field("", NOT_AN_OBJECT));
        }
        Ok(Self(patch))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use serde_json::json;

    use super::*;

    #[test]
    fn apply_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1});
        apply(&mut doc, &json!({"a": "z", "c": {"f": null}, "new": [1]}));
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "keep": 1, "new": [1]})
        );
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": "x"});
        apply(&mut doc, &json!({"a": null, "b": {"c": 5}, "f": [1]}));
        assert_eq!(doc, json!({"b": {"c": 5, "d": 3}, "e": "x", "f": [1]}));
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        apply(&mut doc, &json!({"a": null, "c": {"f": "h"}}));
        assert_eq!(doc, json!({"c": {"d": "e", "f": "h"}}));
        let mut doc = json!({"price": {"amount": 1, "currency": "GBP"}});
        apply(&mut doc, &json!({"price": null}));
        assert_eq!(doc, json!({}));
    }

    #[test]
    fn apply_matches_the_examples_of_rfc_7396_appendix_a() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            let mut doc = target.clone();
            apply(&mut doc, &patch);
            assert_eq!(doc, expected, "{target} + {patch}");
        }
    }

    #[derive(Debug, Deserialize, Validate, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Input {
        #[validate(length(min = 1, message = "must not be empty"))]
        title: String,
        note: Option<String>,
    }

    #[test]
    fn patched_reads_back_the_input_type_validated() {
        let current = json!({"title": "Oak", "note": "old"});
        let input: Input = patched(current.clone(), &json!({"note": null})).unwrap();
        assert_eq!(
            input,
            Input {
                title: "Oak".into(),
                note: None
            }
        );

        let problem = patched::<Input>(current.clone(), &json!({"title": ""})).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].field, "title");

        let problem = patched::<Input>(current.clone(), &json!(["title"])).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].message, NOT_AN_OBJECT);

        let problem = patched::<Input>(current, &json!({"colour": "red"})).unwrap_err();
        assert_eq!(problem.status, 422, "{problem:?}");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct TriState {
        #[serde(default, deserialize_with = "nullable")]
        limit: Option<Option<i32>>,
    }

    #[test]
    fn nullable_tells_absent_from_null() {
        let read = |text: &str| serde_json::from_str::<TriState>(text).unwrap().limit;
        assert_eq!(read("{}"), None);
        assert_eq!(read(r#"{"limit": null}"#), Some(None));
        assert_eq!(read(r#"{"limit": 3}"#), Some(Some(3)));
        assert!(serde_json::from_str::<TriState>(r#"{"limit": "x"}"#).is_err());
    }

    async fn extract(content_type: Option<&str>, body: &str) -> Result<Value, Problem> {
        let mut request = axum::http::Request::builder().method("PATCH").uri("/");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        MergePatch::from_request(request, &()).await.map(|p| p.0)
    }

    #[tokio::test]
    async fn the_extractor_takes_json_objects_and_refuses_the_rest() {
        for content_type in [
            "application/merge-patch+json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            assert_eq!(
                extract(Some(content_type), r#"{"a": null}"#).await.unwrap(),
                json!({"a": null}),
                "{content_type}"
            );
        }
        for content_type in [None, Some("text/plain"), Some("application/xml")] {
            let problem = extract(content_type, "{}").await.unwrap_err();
            assert_eq!(problem.status, 415, "{content_type:?}");
        }
        let malformed = extract(Some("application/merge-patch+json"), "{").await;
        assert_eq!(malformed.unwrap_err().status, 400);
        let array = extract(Some("application/merge-patch+json"), "[1]").await;
        let problem = array.unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors[0].message, NOT_AN_OBJECT);
    }
}
