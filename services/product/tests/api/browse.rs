//! Browsing: filters, sorts, cursor pages, facets, search and the 422s.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Api, fields};

/// A small catalogue with every facet in play.
struct Catalogue {
    api: Api,
}

impl Catalogue {
    async fn new() -> Self {
        let api = Api::spawn().await;
        let white = api.colour("White", "#FFFFFF").await;
        let grey = api.colour("Grey", "#808080").await;
        let navy = api.colour("Navy", "#000080").await;
        let shaker = api.style("SHAKER", "Shaker").await;
        let modern = api.style("MODERN", "Modern").await;
        let matt = api.finish("MATT", "Matt").await;
        let gloss = api.finish("GLOSS", "Gloss").await;
        let grain = api.finish("WOOD_GRAIN", "Wood Grain").await;
        let heritage = api.range("Heritage").await;
        let products = [
            (
                "Alder Shaker",
                "KITCHEN",
                vec![white],
                shaker,
                matt,
                Some(heritage),
                Some(450000),
                true,
            ),
            (
                "Birch Shaker",
                "KITCHEN",
                vec![grey, white],
                shaker,
                gloss,
                Some(heritage),
                Some(300000),
                false,
            ),
            (
                "Cedar Modern",
                "KITCHEN",
                vec![grey],
                modern,
                matt,
                None,
                Some(800000),
                false,
            ),
            (
                "Damson Modern",
                "KITCHEN",
                vec![navy],
                modern,
                gloss,
                None,
                None,
                true,
            ),
            (
                "Elm Wardrobe",
                "BEDROOM",
                vec![white],
                shaker,
                grain,
                None,
                Some(120000),
                false,
            ),
            (
                "Fir Wardrobe",
                "BEDROOM",
                vec![navy, grey],
                modern,
                matt,
                None,
                Some(90000),
                false,
            ),
        ];
        for (title, category, colours, style, finish, range, price, featured) in products {
            let price: Value = price.map_or(
                Value::Null,
                |p: i64| json!({"amount": p, "currency": "GBP"}),
            );
            api.product(json!({
                "title": title, "category": category, "colourIds": colours, "styleId": style,
                "finishId": finish, "rangeId": range, "price": price, "featured": featured,
            }))
            .await;
        }
        api.product(json!({"title": "Ghost Draft", "status": "DRAFT", "colourIds": [white]}))
            .await;
        Self { api }
    }

    async fn titles(&self, query: &str) -> Vec<String> {
        let (status, body) = self.api.get(&format!("/v1/products?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        Api::titles(&body)
    }
}

#[tokio::test]
async fn each_filter_and_their_combinations_select_the_right_products() {
    let c = Catalogue::new().await;
    let sorted = "sort=title";
    for (filter, expected) in [
        (
            "category=KITCHEN",
            vec![
                "Alder Shaker",
                "Birch Shaker",
                "Cedar Modern",
                "Damson Modern",
            ],
        ),
        ("category=bedroom", vec!["Elm Wardrobe", "Fir Wardrobe"]),
        ("filter[colour]=navy", vec!["Damson Modern", "Fir Wardrobe"]),
        (
            "filter[colour]=white,navy",
            vec![
                "Alder Shaker",
                "Birch Shaker",
                "Damson Modern",
                "Elm Wardrobe",
                "Fir Wardrobe",
            ],
        ),
        (
            "filter[style]=shaker",
            vec!["Alder Shaker", "Birch Shaker", "Elm Wardrobe"],
        ),
        ("filter[finish]=WOOD_GRAIN", vec!["Elm Wardrobe"]),
        (
            "filter[finish]=matt,gloss&category=KITCHEN",
            vec![
                "Alder Shaker",
                "Birch Shaker",
                "Cedar Modern",
                "Damson Modern",
            ],
        ),
        (
            "filter[range]=heritage",
            vec!["Alder Shaker", "Birch Shaker"],
        ),
        (
            "filter[featured]=true",
            vec!["Alder Shaker", "Damson Modern"],
        ),
        (
            "filter[price]=100000..450000",
            vec!["Alder Shaker", "Birch Shaker", "Elm Wardrobe"],
        ),
        ("filter[price]=..100000", vec!["Fir Wardrobe"]),
        (
            "category=KITCHEN&filter[colour]=grey&filter[style]=shaker",
            vec!["Birch Shaker"],
        ),
        (
            "filter[colour]=grey&filter[finish]=matt&filter[price]=500000..",
            vec!["Cedar Modern"],
        ),
        ("filter[colour]=purple", vec![]),
        (
            "filter[style]=shaker&filter[featured]=false&category=BEDROOM",
            vec!["Elm Wardrobe"],
        ),
    ] {
        assert_eq!(
            c.titles(&format!("{filter}&{sorted}")).await,
            expected,
            "{filter}"
        );
    }
}

#[tokio::test]
async fn sort_orders_hold_in_both_directions() {
    let c = Catalogue::new().await;
    sqlx::query(
        "UPDATE products SET popularity = length(title) * 10 + (title = 'Fir Wardrobe')::int",
    )
    .execute(&c.api.pool)
    .await
    .unwrap();
    let all = [
        "Alder Shaker",
        "Birch Shaker",
        "Cedar Modern",
        "Damson Modern",
        "Elm Wardrobe",
        "Fir Wardrobe",
    ];
    assert_eq!(c.titles("sort=title").await, all);
    let mut reversed = all.to_vec();
    reversed.reverse();
    assert_eq!(c.titles("sort=-title").await, reversed);
    assert_eq!(
        c.titles("sort=createdAt").await,
        all,
        "created in title order"
    );
    assert_eq!(c.titles("").await, reversed, "newest first by default");
    // Price on consultation sorts as the dearest.
    assert_eq!(
        c.titles("sort=price").await,
        [
            "Fir Wardrobe",
            "Elm Wardrobe",
            "Birch Shaker",
            "Alder Shaker",
            "Cedar Modern",
            "Damson Modern"
        ]
    );
    assert_eq!(
        c.titles("sort=-price&category=BEDROOM").await,
        ["Elm Wardrobe", "Fir Wardrobe"]
    );
    assert_eq!(
        c.titles("sort=-popularity&limit=3").await,
        ["Damson Modern", "Fir Wardrobe", "Elm Wardrobe"],
        "ties broken by id, newest first"
    );
}

#[tokio::test]
async fn cursor_pages_walk_the_whole_list_once_while_products_are_added() {
    let api = Api::spawn().await;
    let mut originals = HashSet::new();
    for i in 0..23 {
        let p = api
            .product(json!({"title": format!("Kitchen {:02}", i * 2)}))
            .await;
        originals.insert(p["id"].as_str().unwrap().to_owned());
    }
    for sort in ["title", "-createdAt", "price"] {
        let mut seen: Vec<String> = Vec::new();
        let mut path = format!("/v1/products?sort={sort}&limit=4");
        let mut inserted = 0;
        loop {
            let (status, page) = api.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            seen.extend(Api::ids(&page));
            // Concurrent writers: new products land before, between and after the pages.
            let title = format!("Kitchen {:02} {sort}", inserted * 8 + 1);
            api.product(json!({"title": title})).await;
            inserted += 1;
            match page["nextCursor"].as_str() {
                Some(cursor) => {
                    assert_eq!(page["hasNextPage"], true);
                    path = format!("/v1/products?sort={sort}&limit=4&cursor={cursor}");
                }
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a product appeared twice");
        for id in &originals {
            assert!(seen.contains(id), "{sort}: a product was skipped");
        }
    }
}

#[tokio::test]
async fn unknown_parameters_bad_values_and_foreign_cursors_are_422() {
    let api = Api::spawn().await;
    for i in 0..3 {
        api.product(json!({"title": format!("P{i}")})).await;
    }
    let (_, page) = api.get("/v1/products?limit=1&sort=title").await;
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    for (query, field) in [
        ("filter[material]=oak".to_owned(), "filter[material]"),
        ("colour=white".to_owned(), "colour"),
        ("sort=weight".to_owned(), "sort"),
        ("limit=101".to_owned(), "limit"),
        ("limit=ten".to_owned(), "limit"),
        ("cursor=!!garbage".to_owned(), "cursor"),
        (format!("cursor={cursor}&sort=-price"), "cursor"),
        ("filter[price]=9..1".to_owned(), "filter[price]"),
        ("category=GARDEN".to_owned(), "category"),
    ] {
        let (status, problem) = api.get(&format!("/v1/products?{query}")).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(fields(&problem), [field], "{query}");
        assert_eq!(problem["status"], 422);
    }
    let (status, _) = api
        .get(&format!("/v1/products?limit=1&sort=title&cursor={cursor}"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn facets_count_published_products_per_value() {
    let c = Catalogue::new().await;
    let (status, all) = c.api.get("/v1/products/filters").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 6, "the draft is not counted");
    let count = |facets: &Value, group: &str, slug: &str| -> i64 {
        facets[group]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["slug"] == slug)
            .map_or(0, |v| v["count"].as_i64().unwrap())
    };
    assert_eq!(count(&all, "colours", "white"), 3);
    assert_eq!(count(&all, "colours", "grey"), 3);
    assert_eq!(count(&all, "styles", "shaker"), 3);
    assert_eq!(count(&all, "finishes", "wood-grain"), 1);
    assert_eq!(all["price"]["min"], 90000);
    assert_eq!(all["price"]["max"], 800000);
    assert_eq!(all["price"]["onConsultation"], 1);

    let (_, kitchen) = c.api.get("/v1/products/filters?category=KITCHEN").await;
    assert_eq!(kitchen["total"], 4);
    assert_eq!(count(&kitchen, "colours", "white"), 2);
    assert_eq!(count(&kitchen, "ranges", "heritage"), 2);
    assert_eq!(count(&kitchen, "finishes", "wood-grain"), 0);
    let (status, _) = c.api.get("/v1/products/filters?colour=white").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn search_ranks_title_matches_first_and_suggest_completes_words() {
    let api = Api::spawn().await;
    let oak = api.colour("Natural Oak", "#C8A165").await;
    let in_description = api
        .product(json!({"title": "Painted Classic", "description": "Doors can be finished to look like oak."}))
        .await;
    let in_colour = api
        .product(json!({"title": "Country Larder", "colourIds": [oak]}))
        .await;
    let in_title = api.product(json!({"title": "Oak Shaker Kitchen"})).await;
    api.product(json!({"title": "Gloss Handleless"})).await;

    let (status, found) = api.get("/v1/products?q=oak").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let ids: Vec<String> = Api::ids(&found);
    assert_eq!(
        ids,
        [
            in_title["id"].as_str().unwrap(),
            in_colour["id"].as_str().unwrap(),
            in_description["id"].as_str().unwrap()
        ]
    );
    // A search can still be sorted and filtered explicitly.
    let (_, sorted) = api.get("/v1/products?q=oak&sort=title").await;
    assert_eq!(
        Api::titles(&sorted),
        ["Country Larder", "Oak Shaker Kitchen", "Painted Classic"]
    );
    let (_, none) = api.get("/v1/products?q=marble").await;
    assert_eq!(none["data"], json!([]));

    let (status, suggestions) = api.get("/v1/products/suggest?q=sha").await;
    assert_eq!(status, StatusCode::OK, "{suggestions}");
    assert_eq!(suggestions[0]["title"], "Oak Shaker Kitchen");
    let (_, typo) = api.get("/v1/products/suggest?q=handlless").await;
    assert_eq!(
        typo[0]["title"], "Gloss Handleless",
        "trigram similarity forgives typos"
    );
    let (status, _) = api.get("/v1/products/suggest").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
