//! Reading the problem+json (RFC 7807) answers services give, as tests assert on them.

use reqwest::{Response, StatusCode};
use serde_json::Value;

/// The problem's machine code: the last segment of its `type` URI (`""` when there is none).
pub fn code(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
}

/// The fields a 422 names in its `errors`, in order.
pub fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A response's status and JSON body: `Null` when empty, a string when it is not JSON.
///
/// # Panics
/// When the body cannot be read.
pub async fn status_and_body(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a readable body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn code_and_fields_are_read_from_a_problem() {
        let problem = json!({
            "type": "https://lomashwood.co.uk/problems/validation-failed",
            "errors": [{"field": "email"}, {"field": "items[0].quantity"}, {"detail": "no field"}]
        });
        assert_eq!(code(&problem), "validation-failed");
        assert_eq!(fields(&problem), vec!["email", "items[0].quantity"]);
        assert_eq!(code(&json!({})), "");
        assert!(fields(&json!({"errors": "not a list"})).is_empty());
    }
}
