//! Sales/offers and packages for the storefront's home page, through the generic resource
//! machinery of [`crate::taxonomy`]. Only sales valid now are listed publicly (by id, any sale
//! can be read, so admins can check a future one).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::common::{Family, Money};
use crate::error::{ProductError, ProductResult};
use crate::taxonomy::{Resource, resource_routes};

/// A sale or offer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sale {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Image URL.
    pub image_url: Option<String>,
    /// Discount, 1–100 %.
    pub discount_percent: Option<i32>,
    /// The families it applies to.
    pub categories: Vec<Family>,
    /// Starts.
    pub valid_from: DateTime<Utc>,
    /// Ends.
    pub valid_until: DateTime<Utc>,
    /// Terms and conditions.
    pub terms: Option<String>,
    /// Products it features.
    pub product_ids: Vec<Uuid>,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What admins write about a sale.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaleInput {
    /// Title.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Image URL.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub image_url: Option<String>,
    /// Discount, 1–100 %.
    #[serde(default)]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[schema(minimum = 1, maximum = 100)]
    pub discount_percent: Option<i32>,
    /// The families it applies to.
    #[serde(default)]
    pub categories: Vec<Family>,
    /// Starts.
    pub valid_from: DateTime<Utc>,
    /// Ends (after `validFrom`).
    pub valid_until: DateTime<Utc>,
    /// Terms and conditions.
    #[serde(default)]
    #[validate(length(max = 10000, message = "must be at most 10000 characters"))]
    #[schema(max_length = 10000)]
    pub terms: Option<String>,
    /// Products it features.
    #[serde(default)]
    #[validate(length(max = 200, message = "at most 200 products"))]
    #[schema(max_items = 200)]
    pub product_ids: Vec<Uuid>,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

/// Sales.
pub struct Sales;
impl Resource for Sales {
    const TABLE: &'static str = "sales";
    const NAME: &'static str = "sale";
    const FIELDS: &'static [&'static str] = &[
        "title",
        "description",
        "imageUrl",
        "discountPercent",
        "categories",
        "validFrom",
        "validUntil",
        "terms",
        "productIds",
        "sortOrder",
    ];
    const PUBLIC_FILTER: &'static str = "AND t.valid_from <= now() AND t.valid_until > now()";
    type Input = SaleInput;
    type View = Sale;

    fn to_row(input: SaleInput) -> ProductResult<Value> {
        if input.valid_until <= input.valid_from {
            return Err(ProductError::field("validUntil", "must be after validFrom"));
        }
        let value = serde_json::to_value(input).map_err(anyhow::Error::from)?;
        Ok(crate::common::rename_keys(value, crate::common::snake_case))
    }
}
resource_routes!(
    sales,
    Sales,
    SaleInput,
    Sale,
    "/v1/sales",
    "/v1/sales/{id}",
    "offers"
);

/// A package (a bundle with a headline price).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Image URL.
    pub image_url: Option<String>,
    /// Price (null = on consultation).
    pub price: Option<Money>,
    /// What is included.
    pub features: Vec<String>,
    /// Highlighted as the popular choice.
    pub popular: bool,
    /// Display order.
    pub sort_order: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What admins write about a package.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageInput {
    /// Title.
    #[validate(length(min = 1, max = 200, message = "must be 1–200 characters"))]
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Description.
    #[serde(default)]
    #[validate(length(max = 5000, message = "must be at most 5000 characters"))]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Image URL.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub image_url: Option<String>,
    /// Price (null = on consultation).
    #[serde(default)]
    pub price: Option<Money>,
    /// What is included.
    #[serde(default)]
    #[validate(length(max = 50, message = "at most 50 features"))]
    #[schema(max_items = 50)]
    pub features: Vec<String>,
    /// Highlighted as the popular choice.
    #[serde(default)]
    pub popular: bool,
    /// Display order.
    #[serde(default)]
    pub sort_order: i32,
}

/// Packages.
pub struct Packages;
impl Resource for Packages {
    const TABLE: &'static str = "packages";
    const NAME: &'static str = "package";
    const FIELDS: &'static [&'static str] = &[
        "title",
        "description",
        "imageUrl",
        "price",
        "features",
        "popular",
        "sortOrder",
    ];
    type Input = PackageInput;
    type View = Package;

    fn to_row(input: PackageInput) -> ProductResult<Value> {
        if let Some(price) = &input.price {
            price.check("price")?;
        }
        Ok(json!({
            "title": input.title,
            "description": input.description,
            "image_url": input.image_url,
            "price_pence": input.price.as_ref().map(|m| m.amount),
            "currency": input.price.as_ref().map_or("GBP", |m| m.currency.as_str()),
            "features": input.features,
            "popular": input.popular,
            "sort_order": input.sort_order,
        }))
    }

    fn from_row(row: Value) -> ProductResult<Package> {
        #[derive(Deserialize)]
        struct Row {
            id: Uuid,
            title: String,
            description: String,
            image_url: Option<String>,
            price_pence: Option<i64>,
            currency: String,
            features: Vec<String>,
            popular: bool,
            sort_order: i32,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
        }
        let r: Row = serde_json::from_value(row).map_err(anyhow::Error::from)?;
        Ok(Package {
            id: r.id,
            title: r.title,
            description: r.description,
            image_url: r.image_url,
            price: Money::from_columns(r.price_pence, &r.currency),
            features: r.features,
            popular: r.popular,
            sort_order: r.sort_order,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}
resource_routes!(
    packages,
    Packages,
    PackageInput,
    Package,
    "/v1/packages",
    "/v1/packages/{id}",
    "offers"
);

/// The routes.
pub fn router() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(sales::router())
        .merge(packages::router())
}
