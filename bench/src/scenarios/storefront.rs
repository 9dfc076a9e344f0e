//! `storefront`: the mixed traffic of a shop's visitors through the gateway (issue 13), and
//! `soak`: the same mix for `--minutes`, sampled every minute.
//!
//! Release-built auth, product, content, appointment, order-payment (with the fake Stripe)
//! and the gateway on fresh databases. Fixtures: `product-service seed --products 2000` plus
//! [`STOCKED`] products with ample stock for orders, 20 published blog posts and an about page,
//! consultants with open home-measurement slots, and one signed-in customer. Every connection
//! then sends, by the request's number, the browse-heavy [`MIX`]: product lists and filtered
//! lists, product pages, blog and CMS pages, availability searches, and a few guest bookings
//! (each of a slot not booked before) and orders (the customer's token, a fresh
//! `Idempotency-Key`). Reported at each connection count: req/s, p50/p99 and non-2xx.
//!
//! The soak runs the mix at one connection count (64 unless `--connections` names one) in
//! one-minute windows and reads after each the resident memory of every service; memory must
//! stay flat, so a service whose RSS grew by more than [`GROWTH_LIMIT`] from the first minute
//! to the last is flagged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::support::{self, Launch, Platform};
use super::{Ctx, booking, checkout, content};
use crate::load::{self, LoadResult, Req, Target};
use crate::report::{Curve, Mark, Section, Table, Verdict};
use crate::stats;

super::scenario!(
    "storefront",
    "the mixed storefront profile through the gateway (browse-heavy: product lists, filters and pages, blog and CMS pages, availability; some bookings and orders)"
);

/// Generated catalogue size.
const PRODUCTS: u32 = 2_000;
/// Products with stock for the orders (as many as checkout's).
const STOCKED: usize = checkout::PRODUCTS;
/// Consultants × open slots for the bookings (as booking's).
const CONSULTANTS: i64 = booking::CONSULTANTS;
const SLOTS_EACH: i64 = booking::SLOTS_EACH;
/// Blog posts published.
const POSTS: usize = 20;

/// One kind of request of the mix and its share (per 100 requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cached category list.
    List,
    /// A colour/style-filtered list.
    Filtered,
    /// A product page.
    Product,
    /// The blog list or a post.
    Blog,
    /// A CMS page.
    Page,
    /// An availability search.
    Availability,
    /// A guest booking.
    Booking,
    /// A customer's order.
    Order,
}

impl Kind {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "List",
            Self::Filtered => "Filtered",
            Self::Product => "Product",
            Self::Blog => "Blog",
            Self::Page => "Page",
            Self::Availability => "Availability",
            Self::Booking => "Booking",
            Self::Order => "Order",
        }
    }
}

/// The browse-heavy profile: (kind, requests of every 100).
pub const MIX: &[(Kind, u64)] = &[
    (Kind::List, 30),
    (Kind::Filtered, 15),
    (Kind::Product, 25),
    (Kind::Blog, 12),
    (Kind::Page, 8),
    (Kind::Availability, 6),
    (Kind::Booking, 2),
    (Kind::Order, 2),
];

/// The kind of the n-th request: the mix's shares laid out over every 100 requests, spread so
/// that the rare writes are not bunched together.
pub fn kind_of(n: u64) -> Kind {
    // 37 is coprime with 100: n → 37n mod 100 visits every slot once per 100 requests.
    let mut slot = (n.wrapping_mul(37)) % 100;
    for (kind, share) in MIX {
        if slot < *share {
            return *kind;
        }
        slot -= share;
    }
    Kind::List
}

/// What the mix reads and writes.
struct Fixtures {
    lists: Vec<String>,
    filtered: Vec<String>,
    products: Vec<String>,
    blog: Vec<String>,
    page: String,
    availability: String,
    slots: Vec<Uuid>,
    stocked: Vec<Uuid>,
    token: String,
}

/// The n-th request of the mix.
fn request(fx: &Fixtures, next_slot: &AtomicUsize, n: u64) -> Req {
    let pick = |items: &[String]| items[(n as usize / 7) % items.len().max(1)].clone();
    let kind = kind_of(n);
    let req = match kind {
        Kind::List => Req::get(pick(&fx.lists)),
        Kind::Filtered => Req::get(pick(&fx.filtered)),
        Kind::Product => Req::get(pick(&fx.products)),
        Kind::Blog => Req::get(pick(&fx.blog)),
        Kind::Page => Req::get(fx.page.clone()),
        Kind::Availability => Req::get(fx.availability.clone()),
        Kind::Booking => {
            let i = next_slot.fetch_add(1, Ordering::Relaxed);
            // Past the last slot bookings are refused (409), which the report shows.
            let slot = fx.slots.get(i).copied().unwrap_or_default();
            Req::post(
                "/v1/appointments",
                Bytes::from(booking::booking_body(slot, i)),
            )
        }
        Kind::Order => {
            let product = fx.stocked[(n as usize) % fx.stocked.len().max(1)];
            Req::post("/v1/orders", Bytes::from(checkout::order_body(product)))
                .header("authorization", &format!("Bearer {}", fx.token))
                .header("idempotency-key", &Uuid::now_v7().to_string())
        }
    };
    req.labelled(kind.name())
}

/// The running platform and the mix's target.
pub(super) struct Storefront {
    platform: Platform,
    /// The mix through the gateway.
    pub(super) target: Target,
    _stripe: Arc<crate::procs::ChildProc>,
}

impl Storefront {
    /// Every process, for liveness checks.
    pub(super) fn alive(&self) -> Vec<&Arc<crate::procs::ChildProc>> {
        self.platform.processes()
    }

    /// (service name, pid) of each service, gateway and auth included.
    pub(super) fn pids(&self) -> Vec<(String, i32)> {
        std::iter::once(&self.platform.auth)
            .chain(&self.platform.services)
            .chain(std::iter::once(&self.platform.gateway))
            .map(|s| (s.name.clone(), s.process.pid))
            .collect()
    }
}

/// Starts the platform, lays the fixtures and checks every kind of request answers 2xx once.
pub(super) async fn start(ctx: &Ctx, scenario: &str) -> Result<Storefront> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    support::require(ctx, &["stripe-fake"])?;
    let (stripe, stripe_base) = support::start_stripe(ctx, &client).await?;
    let media_dir = ctx
        .settings
        .work_dir
        .join(format!("storefront-media-{}", ctx.suffix));
    let platform = support::platform(
        ctx,
        &client,
        scenario,
        vec![
            Launch::ready("product").env("POPULARITY_FLUSH_MS", "60000"),
            Launch::health("content")
                .env("MEDIA_STORAGE", "local")
                .env("MEDIA_LOCAL_DIR", &media_dir.display().to_string())
                .env("BLOG_SCHEDULE_INTERVAL_SECS", "0"),
            Launch::ready("appointment")
                .env("REMINDER_INTERVAL_SECS", "0")
                .env("SLOT_MATERIALISE_INTERVAL_SECS", "0"),
            // `@product`: product's URL, known once it runs.
            support::order_payment("@product", &stripe_base, "whsec_bench_storefront"),
        ],
    )
    .await?;

    let fixtures = fixtures(ctx, &client, &platform).await?;
    let gateway = &platform.gateway;
    let next_slot = Arc::new(AtomicUsize::new(0));
    let fx = Arc::new(fixtures);
    let target = Target {
        vary: Some(Arc::new(move |n, _| request(&fx, &next_slot, n))),
        ..Target::get(
            "storefront mix",
            gateway.port,
            "<the mix>",
            gateway.process.tree(),
            platform
                .services
                .iter()
                .flat_map(|s| s.process.tree())
                .collect(),
        )
    };
    Ok(Storefront {
        platform,
        target,
        _stripe: stripe,
    })
}

async fn fixtures(ctx: &Ctx, client: &reqwest::Client, platform: &Platform) -> Result<Fixtures> {
    let product = platform.service("product")?;
    let content_service = platform.service("content")?;
    let appointment = platform.service("appointment")?;
    let gw = platform.gateway.base.clone();

    println!("  seeding {PRODUCTS} products, {STOCKED} stocked ones, {POSTS} posts, slots ...");
    support::command(ctx, product, &["seed", "--products", &PRODUCTS.to_string()]).await?;
    let stocked = checkout::stocked_products(
        product
            .database_url
            .as_deref()
            .context("product has a database")?,
        STOCKED,
    )
    .await?;
    let slug = content::publish_fixtures(client, &content_service.base, POSTS).await?;
    let pool = booking::appointment_pool(ctx, appointment).await?;
    let (_, slots) = booking::open_slots(&pool, CONSULTANTS, SLOTS_EACH).await?;

    let lists: Vec<String> = ["KITCHEN", "BEDROOM"]
        .iter()
        .flat_map(|category| {
            ["-createdAt", "price", "-price"]
                .map(move |sort| format!("/v1/products?category={category}&sort={sort}&limit=20"))
        })
        .collect();
    let filtered: Vec<String> = ["white", "natural-oak", "grey"]
        .iter()
        .map(|colour| format!("/v1/products?category=KITCHEN&filter[colour]={colour}&limit=20"))
        .collect();
    let listed = support::get_json(client, &format!("{gw}{}", lists[0])).await?;
    let products: Vec<String> = listed["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["id"].as_str())
                .map(|id| format!("/v1/products/{id}"))
                .collect()
        })
        .unwrap_or_default();
    let posts = support::get_json(client, &format!("{gw}/v1/blog?limit=20")).await?;
    let mut blog = vec!["/v1/blog?limit=20".to_owned()];
    if let Some(items) = posts["data"].as_array() {
        blog.extend(
            items
                .iter()
                .filter_map(|p| p["slug"].as_str())
                .take(5)
                .map(|slug| format!("/v1/blog/{slug}")),
        );
    }
    let from = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let to = from + chrono::Duration::days(13);
    let email = format!("bench-shopper-{}@example.com", ctx.suffix);
    let token = support::sign_in(client, &gw, &platform.auth, &email).await?;
    let fx = Fixtures {
        lists,
        filtered,
        products,
        blog,
        page: format!("/v1/pages/{slug}"),
        availability: format!(
            "/v1/availability?type=HOME_MEASUREMENT&postcode=SW4%200AB&from={from}&to={to}"
        ),
        slots,
        stocked,
        token,
    };
    if fx.products.is_empty() || fx.stocked.is_empty() || fx.slots.is_empty() {
        bail!("step `fixtures`: no products, stock or slots to use");
    }
    // Every read of the mix answers 2xx before anything is measured.
    for path in fx
        .lists
        .iter()
        .chain(&fx.filtered)
        .chain(&fx.products)
        .chain(&fx.blog)
        .chain([&fx.page, &fx.availability])
    {
        support::get_json(client, &format!("{gw}{path}"))
            .await
            .context("step `check`")?;
    }
    println!(
        "  fixtures ready: {} product pages, {} posts, {} open slots, signed in {email}",
        fx.products.len(),
        fx.blog.len() - 1,
        fx.slots.len()
    );
    Ok(fx)
}

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let shop = start(ctx, "storefront").await?;
    let results = support::sweep(ctx, &shop.target, &shop.alive()).await?;
    shop.platform.check_alive()?;
    Ok(section(ctx, &results))
}

/// The mix as text: `List 30%, ...`.
fn mix_text() -> String {
    MIX.iter()
        .map(|(kind, share)| format!("{} {share}%", kind.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn section(ctx: &Ctx, results: &[LoadResult]) -> Section {
    let s = &ctx.settings;
    let mut table = Table::new(&[
        "connections",
        "requests",
        "req/s",
        "p50",
        "p99",
        "max",
        "answers",
        "errors",
    ]);
    for result in results {
        table.row(vec![
            result.connections.to_string(),
            "**all**".to_owned(),
            stats::rate(result.rps),
            stats::latency(result.p50()),
            stats::latency(result.p99()),
            stats::latency(result.max()),
            stats::status_counts(&result.statuses),
            result.errors.to_string(),
        ]);
        // Each kind of the mix on its own, so a slow or failing kind shows which it is.
        for (kind, _) in MIX {
            let Some(of_kind) = result.by_label.get(kind.name()) else {
                continue;
            };
            table.row(vec![
                result.connections.to_string(),
                kind.name().to_owned(),
                stats::rate(of_kind.requests as f64 / result.seconds.max(f64::EPSILON)),
                stats::latency(load::duration(of_kind.p50_ms)),
                stats::latency(load::duration(of_kind.p99_ms)),
                stats::latency(load::duration(of_kind.max_ms)),
                stats::status_counts(&of_kind.statuses),
                String::new(),
            ]);
        }
    }
    let mut notes = vec![
        "A non-2xx answer other than 5xx (e.g. 409 once the slots run out on a long run) is \
         shown in the answers column; DESIGN.md §7 sets no budget for the mix."
            .to_owned(),
    ];
    for result in results {
        for (status, body) in &result.sample_bodies {
            notes.push(format!(
                "First {status} answer at {} connections: `{}`",
                result.connections,
                body.replace('`', "'").replace('\n', " ")
            ));
        }
    }
    let verdicts = results
        .iter()
        .map(|r| Verdict {
            mark: if r.errors == 0 && r.statuses.keys().all(|s| *s < 500) {
                Mark::Pass
            } else {
                Mark::Fail
            },
            text: format!(
                "no 5xx and no failed request at {} connections ({} errors)",
                r.connections, r.errors
            ),
        })
        .collect();
    Section {
        scenario: "storefront",
        title: "storefront: the mixed visitor profile through the gateway".to_owned(),
        settings: vec![
            format!("mix per 100 requests: {}", mix_text()),
            format!(
                "{} connections, {} each, {}",
                s.show_connections(),
                stats::show_duration(s.duration),
                s.tool.describe()
            ),
            format!(
                "fixtures: {PRODUCTS} generated products + {STOCKED} stocked, {POSTS} posts and a \
                 page, {CONSULTANTS} consultants × {SLOTS_EACH} slots, one signed-in customer"
            ),
        ],
        design: vec![
            "Each request's kind comes from its number (the shares laid over every 100 \
             requests); reads cycle over fixed lists, so the response caches warm as they would \
             for real visitors; a booking takes the next unbooked slot as a guest; an order is \
             the signed-in customer's, with a fresh Idempotency-Key."
                .to_owned(),
        ],
        table,
        verdicts,
        notes,
        json: json!({
            "mix": MIX.iter().map(|(k, s)| json!({"kind": k.name(), "share": s})).collect::<Vec<_>>(),
            "runs": results,
        }),
        curves: vec![Curve::of("storefront mix", results)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_its_shares_in_every_hundred_requests() {
        assert_eq!(MIX.iter().map(|(_, s)| s).sum::<u64>(), 100);
        for start in [0u64, 100, 12_300] {
            for (kind, share) in MIX {
                let seen = (start..start + 100)
                    .filter(|n| kind_of(*n) == *kind)
                    .count();
                assert_eq!(seen as u64, *share, "{kind:?} from {start}");
            }
        }
        // The rare writes are spread out, not consecutive.
        let orders: Vec<u64> = (0..100).filter(|n| kind_of(*n) == Kind::Order).collect();
        assert!(orders.windows(2).all(|w| w[1] - w[0] > 1), "{orders:?}");
    }
}
