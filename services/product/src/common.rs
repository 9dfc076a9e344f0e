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
    #[schema(minimum = 0)]
    pub amount: i64,
    /// ISO 4217 code; the catalogue is priced in `GBP`.
    #[schema(pattern = "^GBP$")]
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
        if value.eq_ignore_ascii_case("KITCHEN") {
            Some(Self::Kitchen)
        } else if value.eq_ignore_ascii_case("BEDROOM") {
            Some(Self::Bedroom)
        } else {
            None
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

#[cfg(test)]
mod tests {
    use super::*;

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
