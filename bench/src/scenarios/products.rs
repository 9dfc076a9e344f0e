//! `products`: browsing the 50k-product catalogue through the gateway (issue 5, DESIGN.md §7).
//!
//! Release-built auth, product and gateway on fresh databases; product's `seed --products
//! 50000` generates the catalogue (then `ANALYZE`, as a live database would have statistics).
//! Every run goes through the gateway with the same connections and length:
//! 1. **cached list**: one fixed `GET /v1/products?...` (20 items), answered from product's cache
//!    (held in memory while its version is known current, else Redis) after the first request —
//!    the budget: p99 ≤ 5 ms at 64 connections;
//! 2. **uncached list**, **filtered list**, **search**: each request's price bound differs
//!    (`filter[price]=0..<N+n>`, above every price), so each misses the cache (keyed by the
//!    normalised query) and is a real keyset query in Postgres;
//! 3. **page 1 vs page 200**: the cursors are walked first (199 `nextCursor` hops), then the
//!    page-1 and page-200 URLs are loaded, uncached the same way — the budget: page 200 within
//!    1.5× of page 1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::Ctx;
use super::support::{self, Launch};
use crate::cleanup::Item;
use crate::load::{self, LoadResult, Req, Target};
use crate::report::{Mark, Section, Table, Verdict};
use crate::stats;

super::scenario!(
    "products",
    "50k-product catalogue through the gateway: cached/uncached/filtered list, search, page 200 vs page 1 (budgets: cached p99 ≤ 5 ms, page 200 ≤ 1.5× page 1)"
);

/// Products generated.
const PRODUCTS: u32 = 50_000;
/// The deep page compared with page 1.
const DEEP_PAGE: usize = 200;
/// The connection count the budgets are set at.
const BUDGET_CONNECTIONS: usize = 64;
/// The budget: cached list p99 at most this many ms.
const MAX_CACHED_P99_MS: f64 = 5.0;
/// The budget: page 200 ÷ page 1 at most this.
const MAX_DEEP_RATIO: f64 = 1.5;
/// Above every generated price (≤ £199,999.90), so the varying bound never changes the rows.
const PRICE_CEILING: u64 = 100_000_000;

/// The fixed query of the cached run.
const CACHED_PATH: &str = "/v1/products?category=KITCHEN&sort=-createdAt&limit=20";

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let platform = support::platform(
        ctx,
        &client,
        "products",
        // Views are flushed rarely: the runs measure reads, not the popularity writer.
        vec![Launch::ready("product").env("POPULARITY_FLUSH_MS", "60000")],
    )
    .await?;
    let (product, gateway) = (platform.service("product")?, &platform.gateway);

    println!("  seeding {PRODUCTS} products (product-service seed --products {PRODUCTS}) ...");
    let seeded =
        support::command(ctx, product, &["seed", "--products", &PRODUCTS.to_string()]).await?;
    let db_url = product
        .database_url
        .clone()
        .context("product has a database")?;
    let pool = sqlx::PgPool::connect(&db_url)
        .await
        .context("step `catalogue`")?;
    ctx.cleanup.push(Item::Pool(pool.clone()));
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .context("step `analyze`")?;
    let published: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM products WHERE status = 'PUBLISHED' AND deleted_at IS NULL",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "    {published} published products after {:.1} s",
        seeded.as_secs_f64()
    );

    // Filter values and a search word that exist in this catalogue.
    let colours: Vec<String> = sqlx::query_scalar(
        "SELECT c.slug FROM colours c JOIN product_colours pc ON pc.colour_id = c.id
         GROUP BY c.slug ORDER BY count(*) DESC LIMIT 2",
    )
    .fetch_all(&pool)
    .await?;
    let style: String = sqlx::query_scalar(
        "SELECT s.slug FROM styles s JOIN products p ON p.style_id = s.id
         GROUP BY s.slug ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    let word: String = sqlx::query_scalar(
        "SELECT lower(split_part(title, ' ', 1)) FROM products WHERE sku LIKE 'GEN-%'
         GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    if colours.is_empty() {
        bail!("step `catalogue`: the seeded catalogue has no colours on products");
    }
    let filtered_base = format!(
        "/v1/products?category=KITCHEN&filter[colour]={}&filter[style]={style}&limit=20",
        colours.join(",")
    );
    let search_base = format!("/v1/products?q={word}&limit=20");
    let list_base = "/v1/products?category=KITCHEN&sort=-createdAt&limit=20".to_owned();
    let walk_base = "/v1/products?sort=-createdAt&limit=20".to_owned();

    // Check each query answers 20 items, and walk to page 200.
    let gw = &gateway.base;
    for path in [CACHED_PATH, &filtered_base, &search_base] {
        let page = support::get_json(&client, &format!("{gw}{path}")).await?;
        let n = page["data"].as_array().map_or(0, Vec::len);
        if n == 0 {
            bail!("step `check`: {path} answered no products");
        }
        println!("    {path}: {n} items");
    }
    let walk_path = format!("{walk_base}&filter[price]=0..{PRICE_CEILING}");
    let walked = Instant::now();
    let mut cursor = None::<String>;
    for page in 1..DEEP_PAGE {
        let url = match &cursor {
            Some(c) => format!("{gw}{walk_path}&cursor={c}"),
            None => format!("{gw}{walk_path}"),
        };
        let body = support::get_json(&client, &url).await?;
        cursor = body["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            bail!("step `walk`: the list ended at page {page}");
        }
    }
    let deep_cursor = cursor.context("a cursor for the deep page")?;
    println!(
        "    walked {} pages of 20 to page {DEEP_PAGE} in {:.1} s",
        DEEP_PAGE - 1,
        walked.elapsed().as_secs_f64()
    );

    let mut rows: Vec<(String, String, LoadResult)> = Vec::new();
    let alive = platform.processes();
    let target = |label: &str, path: &str| {
        Target::get(
            label,
            gateway.port,
            path,
            gateway.process.tree(),
            product.process.tree(),
        )
    };

    // 1. Cached: one URL.
    for cached in support::sweep(ctx, &target("cached list", CACHED_PATH), &alive).await? {
        rows.push(("cached list".to_owned(), CACHED_PATH.to_owned(), cached));
    }

    // 2 and 3. Uncached: every request's query differs.
    let runs: [(&str, String, Option<String>); 5] = [
        ("uncached list", list_base, None),
        ("filtered list (uncached)", filtered_base, None),
        ("search (uncached)", search_base, None),
        ("page 1 (uncached)", walk_base.clone(), None),
        (
            "page 200 (uncached)",
            walk_base,
            Some(format!("&cursor={deep_cursor}")),
        ),
    ];
    for (label, base, tail) in runs {
        let tail = tail.unwrap_or_default();
        let shown = format!(
            "{base}&filter[price]=0..<{PRICE_CEILING}+n>{}",
            if tail.is_empty() {
                ""
            } else {
                "&cursor=<page 200>"
            }
        );
        let uncached = Target {
            vary: Some(Arc::new(move |n, _| {
                Req::get(format!(
                    "{base}&filter[price]=0..{}{tail}",
                    PRICE_CEILING + n
                ))
            })),
            ..target(label, &shown)
        };
        for result in support::sweep(ctx, &uncached, &alive).await? {
            rows.push((label.to_owned(), shown.clone(), result));
        }
    }
    platform.check_alive()?;
    Ok(section(ctx, published, seeded, &rows))
}

fn section(
    ctx: &Ctx,
    published: i64,
    seeded: Duration,
    rows: &[(String, String, LoadResult)],
) -> Section {
    let s = &ctx.settings;
    let mut table = Table::new(&[
        "run",
        "request",
        "connections",
        "req/s",
        "p50",
        "p99",
        "non-2xx / errors",
    ]);
    for (label, path, result) in rows {
        table.row(support::load_row(label, path, result));
    }
    // Budgets are set at 64 connections: the run at the count nearest to it.
    let find = |label: &str| {
        let runs: Vec<LoadResult> = rows
            .iter()
            .filter(|(l, _, _)| l.starts_with(label))
            .map(|r| r.2.clone())
            .collect();
        support::at(&runs, BUDGET_CONNECTIONS).cloned()
    };
    let mut verdicts = Vec::new();
    if let Some(cached) = &find("cached list") {
        let p99 = cached.p99_ms.unwrap_or(f64::INFINITY);
        verdicts.push(Verdict {
            mark: match (cached.clean(), p99 <= MAX_CACHED_P99_MS) {
                (false, _) => Mark::Invalid,
                (true, true) => Mark::Pass,
                (true, false) => Mark::Fail,
            },
            text: format!(
                "cached list p99 = **{}** at {} connections (budget ≤ {MAX_CACHED_P99_MS} ms){}",
                stats::latency(cached.p99()),
                cached.connections,
                if cached.clean() {
                    ""
                } else {
                    " — not decidable: the run had errors or non-2xx answers"
                }
            ),
        });
    }
    if let (Some(first), Some(deep)) = (&find("page 1 "), &find("page 200")) {
        let clean = first.clean() && deep.clean();
        // The cost of a request is its mean latency at a fixed concurrency: connections ÷
        // req/s (Little's law). Not p50: under saturation the latencies are bimodal (queued or
        // not) and the median jumps between the modes from run to run.
        let mean_ms =
            |run: &LoadResult| (run.rps > 0.0).then(|| run.connections as f64 / run.rps * 1000.0);
        let ratio = mean_ms(deep)
            .zip(mean_ms(first))
            .map(|(d, f)| d / f)
            .unwrap_or(f64::INFINITY);
        let shown = |ms: Option<f64>| stats::latency(load::duration(ms));
        verdicts.push(Verdict {
            mark: match (clean, ratio <= MAX_DEEP_RATIO) {
                (false, _) => Mark::Invalid,
                (true, true) => Mark::Pass,
                (true, false) => Mark::Fail,
            },
            text: format!(
                "page 200 mean latency ÷ page 1 mean latency = {} ÷ {} = **{ratio:.2}** at {} \
                 connections (budget ≤ {MAX_DEEP_RATIO}; mean = connections ÷ req/s); p50 {} vs \
                 {}{}",
                shown(mean_ms(deep)),
                shown(mean_ms(first)),
                deep.connections,
                stats::latency(deep.p50()),
                stats::latency(first.p50()),
                if clean {
                    ""
                } else {
                    " — not decidable: a run had errors or non-2xx answers"
                }
            ),
        });
    }
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|(label, _, result)| support::load_json(label, result))
        .collect();
    Section {
        scenario: "products",
        title: "products: the 50k catalogue through the gateway".to_owned(),
        settings: vec![
            format!(
                "catalogue: `product-service seed --products {PRODUCTS}` ({published} published, \
                 generated in {:.1} s), then `ANALYZE`",
                seeded.as_secs_f64()
            ),
            "services: auth-service, product-service and gateway-service (release), each on a \
             fresh database / Redis prefix; rate limits raised by configuration \
             (`RATE_LIMIT_DEFAULT_IP=1000000000/60s`)"
                .to_owned(),
            format!(
                "load: {} ({} per run); the uncached runs build each request's URL in turn",
                s.tool.describe(),
                stats::show_duration(s.duration)
            ),
        ],
        design: vec![
            "A list answer is cached in Redis under the normalised query (60 s) with a \
             versioned namespace, and held in product's memory with its version: while the \
             version read from Redis is trusted (≤ 1 s) a hit is answered from memory with no \
             Redis round trip; otherwise it is one `GET` of the stored JSON and its ETag. The \
             uncached runs change the price bound on every request (`filter[price]=0..N+n`, \
             above every price, so the rows are the same but the cache key is new): each is a \
             keyset query (`(sort key, id) < (cursor)` on the sort's index, `LIMIT 21`) plus \
             one query loading the 20 products with their colours, sizes and images — and a \
             cache write."
                .to_owned(),
            format!(
                "Page {DEEP_PAGE} is reached by walking `nextCursor` {} times first; its cursor \
                 is the last row's (createdAt, id), so the deep page costs one index range scan \
                 like page 1, with no OFFSET.",
                DEEP_PAGE - 1
            ),
        ],
        table,
        verdicts,
        notes: vec![
            "The load generator, the gateway, product, Postgres and Redis share the two cores \
             (the load average at start, above, shows whether other work shared them too); read \
             the figures as an upper bound on latency."
                .to_owned(),
        ],
        json: json!({ "published": published, "seedSeconds": seeded.as_secs_f64(), "runs": json_rows }),
        curves: support::curves(rows),
    }
}
