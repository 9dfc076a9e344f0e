//! The arithmetic of a checkout: subtotal, coupon discount, shipping and VAT, as pure functions
//! over integer pence (no floating point anywhere).
//!
//! # The rules
//! - **Subtotal** is the sum of `unit price × quantity` at the product service's current prices.
//! - **Discount** applies to the goods only (never shipping). A coupon needs the subtotal to reach
//!   its minimum order; `PERCENTAGE` coupons (value in basis points) round half up to the penny
//!   and are capped at their maximum discount; `FIXED` coupons take their value. A discount
//!   never exceeds the subtotal.
//! - **Shipping** is the method's price, or free when the goods after discount reach its
//!   `freeOver` threshold (STANDARD: £500 or more ships free).
//! - **VAT** uses one rate for goods and shipping (UK: delivery follows the goods' rate).
//!   Catalogue prices are **VAT-inclusive** by default (`PRICES_INCLUDE_VAT=true`, the UK retail
//!   norm): the VAT contained in the order is extracted **once per order** as
//!   `taxable × rate / (1 + rate)` rounded half up, and the total is `goods + shipping`. With
//!   `PRICES_INCLUDE_VAT=false` VAT is `taxable × rate` (rounded half up, per order) and is added
//!   to the total. Rounding per order (not per line) keeps the VAT within half a penny of exact.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The UK standard rate, used when no active tax rule exists for the destination.
pub const DEFAULT_VAT_BP: i32 = 2000;

/// `numerator / denominator` rounded half up (both non-negative; denominator > 0).
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i64 {
    if denominator <= 0 || numerator <= 0 {
        return 0;
    }
    let rounded = (numerator * 2 + denominator) / (denominator * 2);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// How a coupon discounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponKind {
    /// A share of the subtotal; the value is in basis points (1000 = 10%).
    Percentage,
    /// A fixed amount in pence.
    Fixed,
}

/// The money terms of a coupon (its validity window and limits are checked elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponTerms {
    /// Percentage or fixed.
    pub kind: CouponKind,
    /// Basis points or pence.
    pub value: i64,
    /// Smallest subtotal it applies to, in pence.
    pub min_order: i64,
    /// Largest discount it gives, in pence.
    pub max_discount: Option<i64>,
}

/// The subtotal is below the coupon's minimum order (in pence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BelowMinimum {
    /// The minimum order.
    pub minimum: i64,
}

/// The discount `terms` give on `subtotal`.
pub fn coupon_discount(terms: &CouponTerms, subtotal: i64) -> Result<i64, BelowMinimum> {
    if subtotal < terms.min_order {
        return Err(BelowMinimum {
            minimum: terms.min_order,
        });
    }
    let raw = match terms.kind {
        CouponKind::Percentage => {
            div_round_half_up(i128::from(subtotal) * i128::from(terms.value), 10_000)
        }
        CouponKind::Fixed => terms.value,
    };
    let capped = terms.max_discount.map_or(raw, |cap| raw.min(cap));
    Ok(capped.clamp(0, subtotal.max(0)))
}

/// The price terms of a shipping method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShippingTerms {
    /// Its price in pence.
    pub price: i64,
    /// Goods (after discount) of at least this ship free.
    pub free_over: Option<i64>,
}

/// What the shipping costs for `goods` pence of goods after discount.
pub fn shipping_cost(terms: &ShippingTerms, goods: i64) -> i64 {
    match terms.free_over {
        Some(threshold) if goods >= threshold => 0,
        _ => terms.price,
    }
}

/// How VAT is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatTerms {
    /// The rate in basis points (2000 = 20%).
    pub rate_bp: i32,
    /// Whether prices already include it.
    pub prices_include_vat: bool,
}

/// The VAT on `taxable` pence under `vat`.
pub fn vat_on(taxable: i64, vat: &VatTerms) -> i64 {
    let rate = i128::from(vat.rate_bp.max(0));
    if vat.prices_include_vat {
        div_round_half_up(i128::from(taxable) * rate, 10_000 + rate)
    } else {
        div_round_half_up(i128::from(taxable) * rate, 10_000)
    }
}

/// The totals of a checkout, in pence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Sum of the lines.
    pub subtotal: i64,
    /// Coupon discount on the goods.
    pub discount: i64,
    /// Delivery charge.
    pub shipping: i64,
    /// VAT included in (or added to) the total.
    pub tax: i64,
    /// What the customer pays.
    pub total: i64,
}

/// The totals for `subtotal` with `discount`, shipped under `shipping` and taxed under `vat`.
pub fn totals(subtotal: i64, discount: i64, shipping: &ShippingTerms, vat: &VatTerms) -> Totals {
    let discount = discount.clamp(0, subtotal.max(0));
    let goods = subtotal - discount;
    let shipping = shipping_cost(shipping, goods);
    let tax = vat_on(goods + shipping, vat);
    let total = if vat.prices_include_vat {
        goods + shipping
    } else {
        goods + shipping + tax
    };
    Totals {
        subtotal,
        discount,
        shipping,
        tax,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: ShippingTerms = ShippingTerms {
        price: 995,
        free_over: Some(50_000),
    };
    const EXPRESS: ShippingTerms = ShippingTerms {
        price: 2495,
        free_over: None,
    };
    const INCLUSIVE: VatTerms = VatTerms {
        rate_bp: 2000,
        prices_include_vat: true,
    };
    const EXCLUSIVE: VatTerms = VatTerms {
        rate_bp: 2000,
        prices_include_vat: false,
    };

    fn percent(bp: i64, min_order: i64, cap: Option<i64>) -> CouponTerms {
        CouponTerms {
            kind: CouponKind::Percentage,
            value: bp,
            min_order,
            max_discount: cap,
        }
    }

    fn fixed(pence: i64, min_order: i64) -> CouponTerms {
        CouponTerms {
            kind: CouponKind::Fixed,
            value: pence,
            min_order,
            max_discount: None,
        }
    }

    #[test]
    fn rounding_is_half_up_to_the_penny() {
        for (n, d, expected) in [(5, 10, 1), (4, 10, 0), (15, 10, 2), (14, 10, 1), (0, 3, 0)] {
            assert_eq!(div_round_half_up(n, d), expected, "{n}/{d}");
        }
    }

    #[test]
    fn coupon_discounts_follow_their_terms() {
        // (case, terms, subtotal, expected discount or the minimum it fell below)
        let cases: Vec<(&str, CouponTerms, i64, Result<i64, i64>)> = vec![
            (
                "10% of £123.45 rounds half up",
                percent(1000, 0, None),
                12_345,
                Ok(1235),
            ),
            (
                "percentage capped at its maximum",
                percent(2000, 0, Some(5_000)),
                100_000,
                Ok(5_000),
            ),
            (
                "percentage under its cap is not capped",
                percent(2000, 0, Some(5_000)),
                10_000,
                Ok(2_000),
            ),
            ("fixed takes its value", fixed(1_500, 0), 10_000, Ok(1_500)),
            (
                "fixed never exceeds the subtotal",
                fixed(5_000, 0),
                3_000,
                Ok(3_000),
            ),
            (
                "100% leaves nothing to pay for goods",
                percent(10_000, 0, None),
                9_999,
                Ok(9_999),
            ),
            (
                "exactly the minimum order qualifies",
                fixed(1_000, 20_000),
                20_000,
                Ok(1_000),
            ),
            (
                "a penny below the minimum does not",
                fixed(1_000, 20_000),
                19_999,
                Err(20_000),
            ),
        ];
        for (case, terms, subtotal, expected) in cases {
            let got = coupon_discount(&terms, subtotal).map_err(|b| b.minimum);
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn shipping_is_free_from_the_threshold_on_the_discounted_goods() {
        let cases = [
            ("below the threshold pays", STANDARD, 49_999, 995),
            ("at the threshold ships free", STANDARD, 50_000, 0),
            ("above the threshold ships free", STANDARD, 120_000, 0),
            ("express is never free", EXPRESS, 500_000, 2495),
        ];
        for (case, terms, goods, expected) in cases {
            assert_eq!(shipping_cost(&terms, goods), expected, "{case}");
        }
    }

    #[test]
    fn totals_add_up_for_inclusive_and_exclusive_prices() {
        // (case, subtotal, discount, shipping terms, VAT terms, expected totals)
        let cases = [
            (
                "inclusive: VAT extracted from goods and shipping (£100 + £9.95 → £18.33)",
                10_000,
                0,
                STANDARD,
                INCLUSIVE,
                Totals {
                    subtotal: 10_000,
                    discount: 0,
                    shipping: 995,
                    tax: 1_833,
                    total: 10_995,
                },
            ),
            (
                "inclusive: a discount that drops goods below £500 brings shipping back",
                52_000,
                5_200,
                STANDARD,
                INCLUSIVE,
                Totals {
                    subtotal: 52_000,
                    discount: 5_200,
                    shipping: 995,
                    tax: 7_966,
                    total: 47_795,
                },
            ),
            (
                "inclusive: £600 ships free, VAT is a sixth",
                60_000,
                0,
                STANDARD,
                INCLUSIVE,
                Totals {
                    subtotal: 60_000,
                    discount: 0,
                    shipping: 0,
                    tax: 10_000,
                    total: 60_000,
                },
            ),
            (
                "exclusive: VAT is added on goods and shipping",
                10_000,
                1_000,
                EXPRESS,
                EXCLUSIVE,
                Totals {
                    subtotal: 10_000,
                    discount: 1_000,
                    shipping: 2_495,
                    tax: 2_299,
                    total: 13_794,
                },
            ),
            (
                "zero-rated destination charges no VAT",
                10_000,
                0,
                EXPRESS,
                VatTerms {
                    rate_bp: 0,
                    prices_include_vat: false,
                },
                Totals {
                    subtotal: 10_000,
                    discount: 0,
                    shipping: 2_495,
                    tax: 0,
                    total: 12_495,
                },
            ),
            (
                "a discount larger than the subtotal is clamped",
                1_000,
                5_000,
                EXPRESS,
                INCLUSIVE,
                Totals {
                    subtotal: 1_000,
                    discount: 1_000,
                    shipping: 2_495,
                    tax: 416,
                    total: 2_495,
                },
            ),
        ];
        for (case, subtotal, discount, shipping, vat, expected) in cases {
            assert_eq!(
                totals(subtotal, discount, &shipping, &vat),
                expected,
                "{case}"
            );
        }
    }
}
