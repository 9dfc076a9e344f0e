//! JSON Merge Patch (RFC 7396) for the admin `PATCH` routes: the body extractor and the apply /
//! re-validate step. (Product, customer and appointment carry their own copies of the same few
//! lines; these belong in service-kit once one of them is touched next.)

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use service_kit::Problem;

use crate::error::{ContentError, ContentResult};

/// Applies an RFC 7396 JSON Merge Patch to `target`: objects merge member by member, `null`
/// removes a member, anything else replaces it.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies `patch` to the document form of the current state and reads the result back as the
/// input type, validated exactly as a `POST` body would be (the same 422 shape).
pub fn patched<T: DeserializeOwned + validator::Validate>(
    mut current: Value,
    patch: &Value,
) -> ContentResult<T> {
    merge_patch(&mut current, patch);
    let bytes = serde_json::to_vec(&current).map_err(anyhow::Error::from)?;
    let value: T = service_kit::extract::parse_json(&bytes)?;
    value
        .validate()
        .map_err(service_kit::extract::validation_problem)?;
    Ok(value)
}

/// A JSON Merge Patch body (`application/merge-patch+json` or `application/json`), which must be
/// a JSON object. Another media type → 415, malformed JSON → 400, not an object → 422.
#[derive(Debug, Clone)]
pub struct MergePatch(pub Value);

impl<S: Send + Sync> FromRequest<S> for MergePatch {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let essence = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let json = essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
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
        let patch: Value = service_kit::extract::parse_json(&bytes)?;
        if !patch.is_object() {
            return Err(
                ContentError::field("", "a merge patch must be a JSON object").to_problem(),
            );
        }
        Ok(Self(patch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}, "new": [1]}));
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "keep": 1, "new": [1]})
        );
    }
}
