//! The demo seed and the generator behind `--products N`.

use reqwest::StatusCode;

use crate::helpers::Api;

#[tokio::test]
async fn seeding_loads_every_facet_once_and_generates_products_on_demand() {
    let api = Api::spawn().await;
    let args = vec!["--products".to_owned(), "300".to_owned()];
    product_service::seed::run(api.pool.clone(), args.clone())
        .await
        .unwrap();
    product_service::seed::run(api.pool.clone(), args)
        .await
        .unwrap();

    assert_eq!(
        api.scalar("SELECT count(*) FROM products WHERE sku LIKE 'GEN-%'")
            .await,
        300
    );
    assert_eq!(
        api.scalar("SELECT count(*) FROM products WHERE sku LIKE 'LW-DEMO-%'")
            .await,
        20
    );
    assert_eq!(api.scalar("SELECT count(*) FROM styles").await, 6);
    assert_eq!(api.scalar("SELECT count(*) FROM sales").await, 3);
    assert_eq!(api.scalar("SELECT count(*) FROM packages").await, 3);

    let (status, facets) = api.get("/v1/products/filters?category=BEDROOM").await;
    assert_eq!(status, StatusCode::OK);
    for group in ["colours", "styles", "finishes", "ranges"] {
        assert!(!facets[group].as_array().unwrap().is_empty(), "{group}");
    }
    let (_, sales) = api.get("/v1/sales").await;
    assert_eq!(
        sales["data"].as_array().unwrap().len(),
        2,
        "the future sale is not listed yet"
    );
    let (_, found) = api.get("/v1/products?q=sage&limit=100").await;
    assert!(
        Api::titles(&found)
            .iter()
            .any(|t| t == "Heritage Sage Shaker Kitchen")
    );
}
