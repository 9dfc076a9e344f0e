//! Demo data: `product-service seed [--products N]` (run by `cargo xtask up --seed`).
//!
//! Loads a realistic demo catalogue — both families, every facet populated, images pointing at
//! demo media (`/media/demo/...`), stock for some products, current and upcoming sales and a
//! set of packages — and, with `--products N`, tops the catalogue up to N generated products
//! (for benchmarks: `--products 50000` takes a few seconds). Idempotent: entries are matched by
//! slug and generated products are counted, so running it again adds nothing.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What `seed` was asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedArgs {
    /// Total generated products wanted (0 = none).
    pub products: usize,
}

impl SeedArgs {
    /// Parses `--products N` (also `--products=N`).
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut parsed = Self::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let value = match arg.as_str() {
                "--products" => iter
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--products needs a number"))?
                    .clone(),
                other => match other.strip_prefix("--products=") {
                    Some(value) => value.to_owned(),
                    None => anyhow::bail!("unknown seed argument `{other}` (use --products N)"),
                },
            };
            parsed.products = value
                .parse()
                .map_err(|_| anyhow::anyhow!("--products needs a number, got `{value}`"))?;
        }
        Ok(parsed)
    }
}

/// Seeds `db` (already migrated).
pub async fn run(db: PgPool, args: Vec<String>) -> anyhow::Result<()> {
    let args = SeedArgs::parse(&args)?;
    let mut tx = db.begin().await?;
    let taxonomy = demo_taxonomy(&mut tx).await?;
    demo_products(&mut tx, &taxonomy).await?;
    demo_offers(&mut tx).await?;
    tx.commit().await?;
    if args.products > 0 {
        generate(&db, &taxonomy, args.products).await?;
    }
    tracing::info!(generated = args.products, "product catalogue seeded");
    Ok(())
}

/// Ids of the demo taxonomy by slug.
#[derive(Debug, Default)]
pub struct Taxonomy {
    ids: HashMap<(&'static str, String), Uuid>,
}

impl Taxonomy {
    fn id(&self, table: &'static str, slug: &str) -> Uuid {
        self.ids
            .get(&(table, slug.to_owned()))
            .copied()
            .unwrap_or_else(Uuid::nil)
    }

    fn all(&self, table: &'static str) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .ids
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|(_, id)| *id)
            .collect();
        ids.sort();
        ids
    }
}

/// Inserts a row unless a live row has its slug; returns the id either way.
async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    table: &'static str,
    row: serde_json::Value,
) -> anyhow::Result<Uuid> {
    let slug = row["slug"].as_str().unwrap_or_default().to_owned();
    let existing: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE slug = $1 AND deleted_at IS NULL"
    )))
    .bind(&slug)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let columns: Vec<String> = row
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let columns = columns.join(", ");
    let id = Uuid::now_v7();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} ({columns}, id) SELECT {columns}, $2 FROM jsonb_populate_record(NULL::{table}, $1)"
    )))
    .bind(&row)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

async fn demo_taxonomy(tx: &mut Transaction<'_, Postgres>) -> anyhow::Result<Taxonomy> {
    let mut taxonomy = Taxonomy::default();
    let families = [
        ("KITCHEN", "Kitchens", "kitchens"),
        ("BEDROOM", "Bedrooms", "bedrooms"),
    ];
    for (order, (family, name, slug)) in families.iter().enumerate() {
        let id = upsert(
            tx,
            "categories",
            json!({"family": family, "name": name, "slug": slug, "sort_order": order,
                   "image_url": format!("/media/demo/categories/{slug}.jpg"),
                   "seo_title": format!("{name} | Lomash Wood"),
                   "seo_description": format!("Made-to-measure {} designed and fitted by Lomash Wood.", name.to_lowercase())}),
        )
        .await?;
        taxonomy.ids.insert(("categories", (*slug).to_owned()), id);
    }
    for (order, (family, parent, name)) in [
        ("KITCHEN", "kitchens", "Fitted Kitchens"),
        ("KITCHEN", "kitchens", "Kitchen Islands"),
        ("BEDROOM", "bedrooms", "Fitted Wardrobes"),
        ("BEDROOM", "bedrooms", "Sliding Wardrobes"),
    ]
    .iter()
    .enumerate()
    {
        let slug = validation::slugify(name)?.to_string();
        let parent_id = taxonomy.id("categories", parent);
        let id = upsert(
            tx,
            "categories",
            json!({"family": family, "parent_id": parent_id, "name": name, "slug": slug,
                   "sort_order": order + 10}),
        )
        .await?;
        taxonomy.ids.insert(("categories", slug), id);
    }
    for (order, (name, family)) in [
        ("Heritage", Some("KITCHEN")),
        ("Metropolitan", None),
        ("Coastal", None),
        ("Nordic", Some("KITCHEN")),
        ("Classic Oak", None),
        ("Serenity", Some("BEDROOM")),
    ]
    .iter()
    .enumerate()
    {
        let slug = validation::slugify(name)?.to_string();
        let id = upsert(
            tx,
            "ranges",
            json!({"name": name, "slug": slug, "family": family, "sort_order": order,
                   "description": format!("The {name} range."),
                   "image_url": format!("/media/demo/ranges/{slug}.jpg")}),
        )
        .await?;
        taxonomy.ids.insert(("ranges", slug), id);
    }
    for (order, (name, hex, applies)) in [
        ("White", "#FFFFFF", "BOTH"),
        ("Cream", "#F3E9D2", "BOTH"),
        ("Dove Grey", "#B5B5B0", "BOTH"),
        ("Graphite", "#3B3F42", "KITCHEN"),
        ("Sage Green", "#8A9A5B", "KITCHEN"),
        ("Navy", "#1F2A44", "BOTH"),
        ("Natural Oak", "#C8A165", "BOTH"),
        ("Walnut", "#5C4033", "BEDROOM"),
        ("Black", "#111111", "KITCHEN"),
    ]
    .iter()
    .enumerate()
    {
        let slug = validation::slugify(name)?.to_string();
        let id = upsert(
            tx,
            "colours",
            json!({"name": name, "slug": slug, "hex_code": hex, "applies_to": applies,
                   "sort_order": order}),
        )
        .await?;
        taxonomy.ids.insert(("colours", slug), id);
    }
    for (table, terms) in [
        (
            "styles",
            &[
                ("SHAKER", "Shaker"),
                ("MODERN", "Modern"),
                ("HANDLELESS", "Handleless"),
                ("CONTEMPORARY", "Contemporary"),
                ("TRADITIONAL", "Traditional"),
                ("INDUSTRIAL", "Industrial"),
            ][..],
        ),
        (
            "finishes",
            &[
                ("GLOSS", "Gloss"),
                ("MATT", "Matt"),
                ("SATIN", "Satin"),
                ("WOOD_GRAIN", "Wood Grain"),
            ][..],
        ),
    ] {
        for (order, (code, name)) in terms.iter().enumerate() {
            let slug = validation::slugify(name)?.to_string();
            let id = upsert(
                tx,
                table,
                json!({"code": code, "name": name, "slug": slug, "sort_order": order}),
            )
            .await?;
            taxonomy.ids.insert((table, slug), id);
        }
    }
    for (order, (title, w, h, d)) in [
        ("300mm Base Unit", 300, 720, 560),
        ("500mm Base Unit", 500, 720, 560),
        ("600mm Base Unit", 600, 720, 560),
        ("1000mm Base Unit", 1000, 720, 560),
        ("600mm Wall Unit", 600, 720, 320),
        ("Tall Larder Unit", 600, 2150, 560),
        ("Two Door Wardrobe", 1000, 2260, 600),
        ("Three Door Wardrobe", 1500, 2260, 600),
    ]
    .iter()
    .enumerate()
    {
        let slug = validation::slugify(title)?.to_string();
        let id = upsert(
            tx,
            "sizes",
            json!({"title": title, "slug": slug, "width_mm": w, "height_mm": h, "depth_mm": d,
                   "sort_order": order, "image_url": format!("/media/demo/sizes/{slug}.png")}),
        )
        .await?;
        taxonomy.ids.insert(("sizes", slug), id);
    }
    Ok(taxonomy)
}

/// (title, family, range, style, finish, colours, price in pounds or none, featured)
type DemoProduct = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<i64>,
    bool,
);

const DEMO_PRODUCTS: &[DemoProduct] = &[
    (
        "Heritage Sage Shaker Kitchen",
        "KITCHEN",
        "heritage",
        "shaker",
        "matt",
        &["sage-green", "cream"],
        Some(12_995),
        true,
    ),
    (
        "Heritage Navy Shaker Kitchen",
        "KITCHEN",
        "heritage",
        "shaker",
        "matt",
        &["navy", "white"],
        Some(13_495),
        false,
    ),
    (
        "Heritage Cream Traditional Kitchen",
        "KITCHEN",
        "heritage",
        "traditional",
        "satin",
        &["cream"],
        None,
        false,
    ),
    (
        "Metropolitan Graphite Handleless Kitchen",
        "KITCHEN",
        "metropolitan",
        "handleless",
        "matt",
        &["graphite", "black"],
        Some(15_950),
        true,
    ),
    (
        "Metropolitan White Gloss Kitchen",
        "KITCHEN",
        "metropolitan",
        "modern",
        "gloss",
        &["white"],
        Some(9_995),
        false,
    ),
    (
        "Coastal Dove Grey Kitchen",
        "KITCHEN",
        "coastal",
        "contemporary",
        "satin",
        &["dove-grey", "white"],
        Some(10_750),
        false,
    ),
    (
        "Nordic Oak Kitchen",
        "KITCHEN",
        "nordic",
        "modern",
        "wood-grain",
        &["natural-oak"],
        Some(14_200),
        true,
    ),
    (
        "Nordic Black Industrial Kitchen",
        "KITCHEN",
        "nordic",
        "industrial",
        "matt",
        &["black", "natural-oak"],
        None,
        false,
    ),
    (
        "Classic Oak Shaker Kitchen",
        "KITCHEN",
        "classic-oak",
        "shaker",
        "wood-grain",
        &["natural-oak"],
        Some(16_500),
        false,
    ),
    (
        "Sage Kitchen Island",
        "KITCHEN",
        "heritage",
        "shaker",
        "matt",
        &["sage-green"],
        Some(4_995),
        false,
    ),
    (
        "Graphite Contemporary Island",
        "KITCHEN",
        "metropolitan",
        "contemporary",
        "gloss",
        &["graphite"],
        Some(5_750),
        false,
    ),
    (
        "Cream Farmhouse Kitchen",
        "KITCHEN",
        "classic-oak",
        "traditional",
        "matt",
        &["cream", "natural-oak"],
        Some(11_300),
        false,
    ),
    (
        "Serenity White Fitted Wardrobe",
        "BEDROOM",
        "serenity",
        "modern",
        "gloss",
        &["white"],
        Some(3_495),
        true,
    ),
    (
        "Serenity Walnut Fitted Wardrobe",
        "BEDROOM",
        "serenity",
        "contemporary",
        "wood-grain",
        &["walnut"],
        Some(4_250),
        false,
    ),
    (
        "Coastal Dove Grey Wardrobe",
        "BEDROOM",
        "coastal",
        "shaker",
        "satin",
        &["dove-grey"],
        Some(2_995),
        false,
    ),
    (
        "Classic Oak Bedroom Suite",
        "BEDROOM",
        "classic-oak",
        "traditional",
        "wood-grain",
        &["natural-oak"],
        None,
        true,
    ),
    (
        "Metropolitan Sliding Wardrobe",
        "BEDROOM",
        "metropolitan",
        "handleless",
        "gloss",
        &["white", "black"],
        Some(2_750),
        false,
    ),
    (
        "Navy Shaker Wardrobe",
        "BEDROOM",
        "heritage",
        "shaker",
        "matt",
        &["navy"],
        Some(3_150),
        false,
    ),
    (
        "Cream Traditional Dresser",
        "BEDROOM",
        "classic-oak",
        "traditional",
        "satin",
        &["cream"],
        Some(1_295),
        false,
    ),
    (
        "Walnut Industrial Bedroom",
        "BEDROOM",
        "nordic",
        "industrial",
        "matt",
        &["walnut", "black"],
        Some(3_850),
        false,
    ),
];

async fn demo_products(
    tx: &mut Transaction<'_, Postgres>,
    taxonomy: &Taxonomy,
) -> anyhow::Result<()> {
    let kitchen_sizes = [
        "300mm-base-unit",
        "600mm-base-unit",
        "1000mm-base-unit",
        "600mm-wall-unit",
        "tall-larder-unit",
    ];
    let bedroom_sizes = ["two-door-wardrobe", "three-door-wardrobe"];
    for (i, (title, family, range, style, finish, colours, pounds, featured)) in
        DEMO_PRODUCTS.iter().enumerate()
    {
        let slug = validation::slugify(title)?.to_string();
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM products WHERE slug = $1 AND deleted_at IS NULL")
                .bind(&slug)
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_some() {
            continue;
        }
        let id = Uuid::now_v7();
        let subcategory = match (*family, title.contains("Island"), title.contains("Sliding")) {
            ("KITCHEN", true, _) => "kitchen-islands",
            ("KITCHEN", false, _) => "fitted-kitchens",
            (_, _, true) => "sliding-wardrobes",
            _ => "fitted-wardrobes",
        };
        let images = json!([
            {"url": format!("/media/demo/products/{slug}-1.jpg"), "alt": format!("{title}, front view"),
             "variants": {"thumb": format!("/media/demo/products/{slug}-1-thumb.webp"),
                          "w800": format!("/media/demo/products/{slug}-1-w800.webp")}},
            {"url": format!("/media/demo/products/{slug}-2.jpg"), "alt": format!("{title}, detail"),
             "variants": {"thumb": format!("/media/demo/products/{slug}-2-thumb.webp")}}
        ]);
        sqlx::query(
            "INSERT INTO products (id, sku, title, slug, description, category, subcategory_id,
                                   range_id, style_id, finish_id, price_pence, status, featured,
                                   images, seo_title, seo_description)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'PUBLISHED', $12, $13, $14, $15)",
        )
        .bind(id)
        .bind(format!("LW-DEMO-{:03}", i + 1))
        .bind(title)
        .bind(&slug)
        .bind(format!(
            "The {title}: designed in our studio, made to measure and fitted by our own team. \
             Soft-close hinges and drawers, a 10-year guarantee and a free home design visit."
        ))
        .bind(family)
        .bind(taxonomy.id("categories", subcategory))
        .bind(taxonomy.id("ranges", range))
        .bind(taxonomy.id("styles", style))
        .bind(taxonomy.id("finishes", finish))
        .bind(pounds.map(|p| p * 100))
        .bind(featured)
        .bind(&images)
        .bind(format!("{title} | Lomash Wood"))
        .bind(format!("Discover the {title} from Lomash Wood."))
        .execute(&mut **tx)
        .await?;
        let colour_ids: Vec<Uuid> = colours.iter().map(|c| taxonomy.id("colours", c)).collect();
        sqlx::query(
            "INSERT INTO product_colours (product_id, colour_id) SELECT $1, unnest($2::uuid[])",
        )
        .bind(id)
        .bind(&colour_ids)
        .execute(&mut **tx)
        .await?;
        let sizes: &[&str] = if *family == "KITCHEN" {
            &kitchen_sizes
        } else {
            &bedroom_sizes
        };
        let size_ids: Vec<Uuid> = sizes.iter().map(|s| taxonomy.id("sizes", s)).collect();
        sqlx::query(
            "INSERT INTO product_sizes (product_id, size_id) SELECT $1, unnest($2::uuid[])",
        )
        .bind(id)
        .bind(&size_ids)
        .execute(&mut **tx)
        .await?;
        if let Some(pounds) = pounds {
            sqlx::query(
                "INSERT INTO price_history (id, product_id, old_price_pence, new_price_pence, currency)
                 VALUES ($1, $2, NULL, $3, 'GBP')",
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(pounds * 100)
            .execute(&mut **tx)
            .await?;
            // Priced products can be bought online: track their stock.
            sqlx::query(
                "INSERT INTO stock_items (id, product_id, on_hand, low_stock_threshold)
                 VALUES ($1, $2, $3, 2)",
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(((i * 7) % 15) as i32 + 1)
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("SELECT product_search_refresh(ARRAY[$1::uuid])")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn demo_offers(tx: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
    let now = Utc::now();
    let featured: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM products WHERE featured AND deleted_at IS NULL ORDER BY id LIMIT 4",
    )
    .fetch_all(&mut **tx)
    .await?;
    let sales = [
        (
            "Winter Kitchen Sale",
            "Up to 30% off selected kitchen ranges.",
            Some(30),
            vec!["KITCHEN"],
            now - Duration::days(7),
            now + Duration::days(60),
        ),
        (
            "Free Wardrobe Interiors",
            "Free interior fittings with every fitted wardrobe.",
            None,
            vec!["BEDROOM"],
            now - Duration::days(1),
            now + Duration::days(30),
        ),
        (
            "Spring Preview",
            "Early access to the spring ranges.",
            Some(15),
            vec!["KITCHEN", "BEDROOM"],
            now + Duration::days(90),
            now + Duration::days(120),
        ),
    ];
    for (order, (title, description, discount, categories, from, until)) in
        sales.into_iter().enumerate()
    {
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM sales WHERE title = $1 AND deleted_at IS NULL")
                .bind(title)
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_some() {
            continue;
        }
        let slug = validation::slugify(title)?.to_string();
        sqlx::query(
            "INSERT INTO sales (id, title, description, image_url, discount_percent, categories,
                                valid_from, valid_until, terms, product_ids, sort_order)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(Uuid::now_v7())
        .bind(title)
        .bind(description)
        .bind(format!("/media/demo/sales/{slug}.jpg"))
        .bind(discount)
        .bind(&categories)
        .bind(from)
        .bind(until)
        .bind("Offer applies to new orders only; see in store for details.")
        .bind(&featured)
        .bind(order as i32)
        .execute(&mut **tx)
        .await?;
    }
    let packages = [
        (
            "Essential Kitchen",
            6_995,
            vec!["Design visit", "Fitted units", "Laminate worktops"],
            false,
        ),
        (
            "Signature Kitchen",
            12_995,
            vec![
                "Design visit",
                "Fitted units",
                "Quartz worktops",
                "Integrated appliances",
            ],
            true,
        ),
        (
            "Complete Bedroom",
            4_495,
            vec![
                "Design visit",
                "Fitted wardrobes",
                "Interior fittings",
                "LED lighting",
            ],
            false,
        ),
    ];
    for (order, (title, pounds, features, popular)) in packages.into_iter().enumerate() {
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM packages WHERE title = $1 AND deleted_at IS NULL")
                .bind(title)
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_some() {
            continue;
        }
        let slug = validation::slugify(title)?.to_string();
        sqlx::query(
            "INSERT INTO packages (id, title, description, image_url, price_pence, features, popular, sort_order)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(title)
        .bind(format!("The {title} package, designed and fitted by Lomash Wood."))
        .bind(format!("/media/demo/packages/{slug}.jpg"))
        .bind(pounds * 100)
        .bind(&features)
        .bind(popular)
        .bind(order as i32)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

const ADJECTIVES: &[&str] = &[
    "Classic", "Modern", "Rustic", "Urban", "Coastal", "Country", "Luxury", "Compact", "Bespoke",
    "Elegant", "Minimal", "Warm", "Bright", "Timeless", "Bold",
];
const NOUNS_KITCHEN: &[&str] = &[
    "Kitchen",
    "Island",
    "Larder",
    "Galley Kitchen",
    "Family Kitchen",
];
const NOUNS_BEDROOM: &[&str] = &[
    "Wardrobe",
    "Bedroom",
    "Dresser",
    "Sliding Wardrobe",
    "Walk-in Closet",
];

/// Tops the catalogue up to `total` generated products (SKUs `GEN-…`), in batches.
async fn generate(db: &PgPool, taxonomy: &Taxonomy, total: usize) -> anyhow::Result<()> {
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM products WHERE sku LIKE 'GEN-%'")
        .fetch_one(db)
        .await?;
    let start = usize::try_from(existing).unwrap_or(0);
    if start >= total {
        return Ok(());
    }
    let ranges = taxonomy.all("ranges");
    let styles = taxonomy.all("styles");
    let finishes = taxonomy.all("finishes");
    let colours = taxonomy.all("colours");
    let style_names: HashMap<Uuid, String> = sqlx::query_as("SELECT id, name FROM styles")
        .fetch_all(db)
        .await?
        .into_iter()
        .collect();
    let now = Utc::now();
    let batch = 5_000;
    let mut n = start;
    while n < total {
        let end = (n + batch).min(total);
        let mut rng = rand::rngs::StdRng::from_os_rng();
        let mut ids = Vec::with_capacity(end - n);
        let mut skus = Vec::new();
        let mut titles = Vec::new();
        let mut slugs = Vec::new();
        let mut families = Vec::new();
        let mut range_ids = Vec::new();
        let mut style_ids = Vec::new();
        let mut finish_ids = Vec::new();
        let mut prices: Vec<Option<i64>> = Vec::new();
        let mut featured = Vec::new();
        let mut popularity = Vec::new();
        let mut created = Vec::new();
        let mut link_products = Vec::new();
        let mut link_colours = Vec::new();
        for i in n..end {
            let id = Uuid::now_v7();
            let kitchen = rng.random_bool(0.6);
            let style = *styles.choose(&mut rng).unwrap_or(&Uuid::nil());
            let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("Classic");
            let noun = if kitchen {
                NOUNS_KITCHEN
            } else {
                NOUNS_BEDROOM
            }
            .choose(&mut rng)
            .copied()
            .unwrap_or("Kitchen");
            let style_name = style_names.get(&style).map_or("Shaker", String::as_str);
            let title = format!("{adjective} {style_name} {noun} {}", i + 1);
            slugs.push(validation::slugify(&title)?.to_string());
            titles.push(title);
            ids.push(id);
            skus.push(format!("GEN-{:06}", i + 1));
            families.push(if kitchen { "KITCHEN" } else { "BEDROOM" });
            range_ids.push(*ranges.choose(&mut rng).unwrap_or(&Uuid::nil()));
            style_ids.push(style);
            finish_ids.push(*finishes.choose(&mut rng).unwrap_or(&Uuid::nil()));
            prices.push(if rng.random_bool(0.15) {
                None
            } else {
                Some(rng.random_range(500..2_000_000) * 10)
            });
            featured.push(rng.random_bool(0.05));
            popularity.push(rng.random_range(0..10_000_i64));
            created.push(now - Duration::seconds(rng.random_range(0..31_536_000)));
            let how_many = rng.random_range(1..=3);
            for colour in colours.choose_multiple(&mut rng, how_many) {
                link_products.push(id);
                link_colours.push(*colour);
            }
        }
        let mut tx = db.begin().await?;
        sqlx::query(
            "INSERT INTO products (id, sku, title, slug, description, category, range_id, style_id,
                                   finish_id, price_pence, status, featured, popularity, images,
                                   created_at)
             SELECT v.id, v.sku, v.title, v.slug, 'A generated product for load testing.', v.family,
                    v.range_id, v.style_id, v.finish_id, v.price, 'PUBLISHED', v.featured,
                    v.popularity,
                    jsonb_build_array(jsonb_build_object('url', '/media/demo/products/generated.jpg',
                                                         'alt', v.title, 'variants', '{}'::jsonb)),
                    v.created_at
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[],
                         $7::uuid[], $8::uuid[], $9::bigint[], $10::bool[], $11::bigint[],
                         $12::timestamptz[])
                  AS v(id, sku, title, slug, family, range_id, style_id, finish_id, price,
                       featured, popularity, created_at)",
        )
        .bind(&ids)
        .bind(&skus)
        .bind(&titles)
        .bind(&slugs)
        .bind(&families)
        .bind(&range_ids)
        .bind(&style_ids)
        .bind(&finish_ids)
        .bind(&prices)
        .bind(&featured)
        .bind(&popularity)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO product_colours (product_id, colour_id)
             SELECT * FROM unnest($1::uuid[], $2::uuid[])",
        )
        .bind(&link_products)
        .bind(&link_colours)
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT product_search_refresh($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(done = end, total, "generated products");
        n = end;
    }
    sqlx::query("ANALYZE products").execute(db).await?;
    sqlx::query("ANALYZE product_colours").execute(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_product_count() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(SeedArgs::parse(&[]).expect("empty").products, 0);
        assert_eq!(
            SeedArgs::parse(&args(&["--products", "50000"]))
                .expect("n")
                .products,
            50_000
        );
        assert_eq!(
            SeedArgs::parse(&args(&["--products=7"]))
                .expect("n")
                .products,
            7
        );
        assert!(SeedArgs::parse(&args(&["--products"])).is_err());
        assert!(SeedArgs::parse(&args(&["--users", "3"])).is_err());
    }
}
