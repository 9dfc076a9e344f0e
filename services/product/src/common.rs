//! Small types and helpers the catalogue modules share: money, the product family, JSON Merge
//! Patch and slug handling.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ProductError, ProductResult};

/// An amount of money in minor units (pence), never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Minor units, e.g. `129900` for £1,299.00.
    pub amount: i64,
    /// ISO 4217 code; the catalogue is priced in `GBP`.
    pub currency: String,
}

impl Money {
    /// An amount in pounds sterling.
    pub fn gbp(amount: i64) -> Self {
        Self {
            amount,
            currency: "GBP".to_owned(),
        }
    }

    /// From the nullable columns of a row (`NULL` amount = price on consultation).
    pub fn from_columns(amount: Option<i64>, currency: &str) -> Option<Self> {
        amount.map(|amount| Self {
            amount,
            currency: currency.to_owned(),
        })
    }

    /// Checks the amount and currency, naming `field` on failure.
    pub fn check(&self, field: &str) -> ProductResult<()> {
        if self.amount < 0 {
            return Err(ProductError::field(
                &format!("{field}.amount"),
                "cannot be negative",
            ));
        }
        if self.currency != "GBP" {
            return Err(ProductError::field(
                &format!("{field}.currency"),
                "must be GBP",
            ));
        }
        Ok(())
    }
}

/// The two product families: every product and category is one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Family {
    /// Kitchens.
    Kitchen,
    /// Bedrooms.
    Bedroom,
}

impl Family {
    /// The database and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kitchen => "KITCHEN",
            Self::Bedroom => "BEDROOM",
        }
    }

    /// Parses the wire spelling (case-insensitive, as it arrives in query strings).
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "KITCHEN" => Some(Self::Kitchen),
            "BEDROOM" => Some(Self::Bedroom),
            _ => None,
        }
    }

    /// From a database value (checked by the schema).
    pub fn from_db(value: &str) -> Self {
        Self::parse(value).unwrap_or(Self::Kitchen)
    }
}

impl From<Family> for service_kit::shared_types::product::ProductCategory {
    fn from(family: Family) -> Self {
        match family {
            Family::Kitchen => Self::Kitchen,
            Family::Bedroom => Self::Bedroom,
        }
    }
}

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

/// Reads a merge-patch body: a JSON object (anything else is 422).
pub fn patch_object(body: &[u8]) -> ProductResult<Value> {
    let patch: Value = service_kit::extract::parse_json(body)?;
    if patch.is_object() {
        Ok(patch)
    } else {
        Err(ProductError::field(
            "",
            "a merge patch must be a JSON object",
        ))
    }
}

/// Deserialises the patched document into the input type and validates it, with the same
/// 422 shape as `ValidatedJson`.
pub fn parse_patched<T: serde::de::DeserializeOwned + validator::Validate>(
    document: &Value,
) -> ProductResult<T> {
    let bytes = serde_json::to_vec(document).map_err(anyhow::Error::from)?;
    let value: T = service_kit::extract::parse_json(&bytes)?;
    value
        .validate()
        .map_err(service_kit::extract::validation_problem)?;
    Ok(value)
}

/// The given slug (checked) or one made from `title`.
pub fn slug_or_title(slug: Option<&str>, title: &str) -> ProductResult<String> {
    let parsed = match slug {
        Some(slug) => validation::Slug::parse(slug).map_err(|e| ("slug", e)),
        None => validation::slugify(title).map_err(|e| ("title", e)),
    };
    parsed
        .map(String::from)
        .map_err(|(field, e)| ProductError::field(field, e.message()))
}

/// A reference to a taxonomy entry inside a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TermRef {
    /// Its id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// URL slug (also the value used in `filter[...]`).
    pub slug: String,
}

/// A new UUIDv7.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
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
        let mut doc = json!({"price": {"amount": 1, "currency": "GBP"}});
        merge_patch(&mut doc, &json!({"price": null}));
        assert_eq!(doc, json!({}));
    }

    #[test]
    fn money_must_be_gbp_and_not_negative() {
        assert!(Money::gbp(0).check("price").is_ok());
        assert!(Money::gbp(-1).check("price").is_err());
        assert!(
            Money {
                amount: 1,
                currency: "EUR".into()
            }
            .check("price")
            .is_err()
        );
    }
}

/// A JSON Merge Patch body (`application/merge-patch+json` or `application/json`): must be an
/// object. Wrong media type → 415, malformed JSON → 400.
#[derive(Debug, Clone)]
pub struct MergePatch(pub Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for MergePatch {
    type Rejection = service_kit::Problem;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::http::{StatusCode, header};
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime_guess_free::Mime>().ok())
            .is_some_and(|m| m.is_json());
        if !json {
            return Err(service_kit::Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .with_detail("Send the patch as application/merge-patch+json."));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| {
                service_kit::Problem::bad_request("The request body could not be read.")
            })?;
        let patch = patch_object(&bytes).map_err(|e| e.to_problem())?;
        Ok(Self(patch))
    }
}

/// Just enough media-type parsing for the patch extractor.
mod mime_guess_free {
    /// `type/subtype[+suffix]; params`.
    pub struct Mime {
        essence: String,
    }

    impl std::str::FromStr for Mime {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence.contains('/') {
                Ok(Self { essence })
            } else {
                Err(())
            }
        }
    }

    impl Mime {
        /// `application/json` or any `application/*+json`.
        pub fn is_json(&self) -> bool {
            self.essence == "application/json"
                || (self.essence.starts_with("application/") && self.essence.ends_with("+json"))
        }
    }
}

/// `first_name` → `firstName`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
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

/// `firstName` → `first_name`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames the top-level members of a JSON object with `rename`.
pub fn rename_keys(value: Value, rename: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (rename(&k), v)).collect())
        }
        other => other,
    }
}
