//! Events published by the product service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::event_payload, topics};

/// The two product families Lomash Wood sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductCategory {
    /// Kitchens.
    Kitchen,
    /// Bedrooms.
    Bedroom,
}

/// `product.created`: a product was added to the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    /// The product.
    pub product_id: Uuid,
    /// The stock-keeping unit.
    pub sku: String,
    /// URL slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Kitchen or bedroom.
    pub category: ProductCategory,
    /// The range it belongs to, if any.
    #[serde(default)]
    pub range_id: Option<Uuid>,
    /// Price in minor units (pence); 0 when the price is on consultation.
    pub price: i64,
    /// ISO 4217 currency code, e.g. `GBP`.
    pub currency: String,
    /// Whether the product has no list price ("price on consultation"); `price` is then 0.
    #[serde(default)]
    pub price_on_consultation: bool,
    /// Whether shoppers can see it yet.
    pub is_published: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}
event_payload!(ProductCreated, topics::PRODUCT_CREATED, 1);

/// `product.updated`: a product's details changed (prices have their own event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    /// The product.
    pub product_id: Uuid,
    /// URL slug after the change.
    pub slug: String,
    /// Display name after the change.
    pub name: String,
    /// Whether shoppers can see it after the change.
    pub is_published: bool,
    /// The camelCase names of the fields that changed, e.g. `["name", "colourIds"]`.
    #[serde(default)]
    pub changed_fields: Vec<String>,
    /// When it changed.
    pub updated_at: DateTime<Utc>,
}
event_payload!(ProductUpdated, topics::PRODUCT_UPDATED, 1);

/// `product.deleted`: a product was withdrawn from the catalogue (soft delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    /// The product.
    pub product_id: Uuid,
    /// Its SKU, for consumers that keyed on it.
    pub sku: String,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
}
event_payload!(ProductDeleted, topics::PRODUCT_DELETED, 1);

/// `price.changed`: a product's price changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceChanged {
    /// The product.
    pub product_id: Uuid,
    /// The previous price in minor units (pence); 0 when it was on consultation.
    pub old_price: i64,
    /// The new price in minor units (pence); 0 when it is now on consultation.
    pub new_price: i64,
    /// Whether the previous price was "on consultation" (no list price).
    #[serde(default)]
    pub old_price_on_consultation: bool,
    /// Whether the new price is "on consultation" (no list price).
    #[serde(default)]
    pub new_price_on_consultation: bool,
    /// ISO 4217 currency code of both prices.
    pub currency: String,
    /// When the new price applies from.
    pub effective_from: DateTime<Utc>,
    /// The admin who changed it.
    #[serde(default)]
    pub changed_by: Option<Uuid>,
}
event_payload!(PriceChanged, topics::PRICE_CHANGED, 1);

/// Why a stock level changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InventoryChangeReason {
    /// New stock arrived.
    Restock,
    /// Stock was reserved for an unpaid order.
    Reservation,
    /// A reservation was released (order cancelled or expired).
    ReservationReleased,
    /// A reservation became a sale (payment succeeded).
    Sale,
    /// Goods came back.
    Return,
    /// A manual correction.
    Adjustment,
}

/// `inventory.updated`: a product's stock level changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryUpdated {
    /// The product.
    pub product_id: Uuid,
    /// Its SKU.
    pub sku: String,
    /// Units on hand and not reserved.
    pub available: i64,
    /// Units reserved for unpaid orders.
    pub reserved: i64,
    /// What changed it.
    pub reason: InventoryChangeReason,
    /// The stock item (a size/colour variant of the product, or the product itself).
    #[serde(default)]
    pub stock_item_id: Option<Uuid>,
    /// Whether `available` is at or below the item's low-stock threshold (the low-stock signal).
    #[serde(default)]
    pub low_stock: bool,
    /// The order behind a reservation, release or sale.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    /// When it changed.
    pub updated_at: DateTime<Utc>,
}
event_payload!(InventoryUpdated, topics::INVENTORY_UPDATED, 1);
