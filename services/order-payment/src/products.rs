//! The product service's internal API as this service uses it: current prices and snapshots
//! (`POST /internal/products/lookup`) and stock reservations
//! (`/internal/inventory/reservations`), over [`PeerClient`].
//!
//! Prices always come from here, never from the client: carts, checkout summaries and orders all
//! re-price through [`ProductClient::lookup`].

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use service_kit::{CommonConfig, PeerClient, PeerError};
use uuid::Uuid;

use crate::error::{OrderError, OrderResult};

/// Most ids product's lookup takes in one call.
const LOOKUP_BATCH: usize = 100;

/// A price as product sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (pence).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A product as an order line sees it (product's `ProductSnapshot`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    /// Id.
    pub id: Uuid,
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Slug.
    #[serde(default)]
    pub slug: String,
    /// `DRAFT`, `PUBLISHED`, `ARCHIVED`, ...
    pub status: String,
    /// Whether it was withdrawn.
    #[serde(default)]
    pub deleted: bool,
    /// Price (null = on consultation: cannot be bought online).
    pub price: Option<Money>,
    /// First image URL.
    #[serde(default)]
    pub image_url: Option<String>,
    /// Units available across its tracked stock (null when stock is not tracked).
    #[serde(default)]
    pub available: Option<i64>,
}

impl ProductSnapshot {
    /// The unit price in pence when the product can be bought online now (published, not
    /// withdrawn, priced in GBP).
    pub fn purchasable_price(&self) -> Option<i64> {
        if self.deleted || self.status != "PUBLISHED" {
            return None;
        }
        self.price
            .as_ref()
            .filter(|p| p.currency == "GBP" && p.amount >= 0)
            .map(|p| p.amount)
    }
}

#[derive(Debug, Deserialize)]
struct LookupResponse {
    data: Vec<ProductSnapshot>,
}

/// One line to reserve.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationLine {
    /// The product.
    pub product_id: Uuid,
    /// Its stock item (size/colour variant), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<Uuid>,
    /// Units.
    pub quantity: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationRequest<'a> {
    order_id: Uuid,
    items: &'a [ReservationLine],
    ttl_seconds: u32,
}

/// What product answers about a reservation (only the fields used here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The reservation.
    pub id: Uuid,
    /// `ACTIVE`, `COMMITTED`, `RELEASED` or `EXPIRED`.
    pub status: String,
}

/// The product service's internal API.
#[derive(Clone, Debug)]
pub struct ProductClient {
    peer: PeerClient,
}

impl ProductClient {
    /// A client of product at `base_url`, calls giving up after `timeout`.
    /// Its breaker and retry budget are the service's `PEER_*` settings.
    pub fn new(common: &CommonConfig, base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            peer: PeerClient::for_service(common, "product", base_url, timeout)?,
        })
    }

    /// Current snapshots of `ids` (duplicates allowed), keyed by id; ids with no product are
    /// absent from the map.
    pub async fn lookup(&self, ids: &[Uuid]) -> OrderResult<HashMap<Uuid, ProductSnapshot>> {
        let mut unique: Vec<Uuid> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut found = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(LOOKUP_BATCH) {
            let answer: LookupResponse = self
                .peer
                .post(
                    "/internal/products/lookup",
                    &serde_json::json!({ "ids": chunk }),
                )
                .await?;
            found.extend(answer.data.into_iter().map(|s| (s.id, s)));
        }
        Ok(found)
    }

    /// Holds stock for `order_id`, all or nothing, for `ttl`. A line product cannot hold makes
    /// the whole call fail with [`OrderError::InsufficientStock`] listing product's short lines.
    pub async fn reserve(
        &self,
        order_id: Uuid,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> OrderResult<Reservation> {
        let ttl_seconds = u32::try_from(ttl.as_secs().clamp(30, 86_400)).unwrap_or(86_400);
        let request = ReservationRequest {
            order_id,
            items: lines,
            ttl_seconds,
        };
        match self
            .peer
            .post("/internal/inventory/reservations", &request)
            .await
        {
            Ok(reservation) => Ok(reservation),
            Err(PeerError::Rejected { status, body, .. })
                if status == axum::http::StatusCode::CONFLICT
                    && body["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("/insufficient-stock")) =>
            {
                Err(OrderError::InsufficientStock(body["items"].clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Gives `order_id`'s reserved units back now (used when an order could not be stored after
    /// its stock was reserved). Idempotent; a missing reservation is fine.
    pub async fn release(&self, order_id: Uuid) -> OrderResult<()> {
        let path = format!("/internal/inventory/reservations/{order_id}/release");
        match self
            .peer
            .post_no_content(&path, &serde_json::json!({}))
            .await
        {
            Ok(()) => Ok(()),
            Err(PeerError::Rejected { status, .. })
                if status == axum::http::StatusCode::NOT_FOUND =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}
