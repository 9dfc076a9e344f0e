//! Every service boots against its own fresh database, applies its migrations and serves the
//! common endpoints; the gateway reports ready only when all of them are.
#![allow(clippy::unwrap_used)]

use service_kit::Service;
use test_support::TestApp;

async fn assert_serves_common_endpoints<S: Service>() -> TestApp {
    let app = TestApp::spawn::<S>().await;
    let name = S::SPEC.name;

    let health = app.get("/health").await;
    assert_eq!(health.status(), 200, "{name} /health");
    assert!(health.headers().contains_key("x-request-id"));
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["service"], name);

    let ready = app.get("/ready").await;
    let status = ready.status();
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(status, 200, "{name} /ready: {body}");
    assert_eq!(body["checks"]["redis"], "ok", "{name}: {body}");
    if S::SPEC.database.is_some() {
        assert_eq!(body["checks"]["postgres"], "ok", "{name}: {body}");
    }

    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("http_requests_total"),
        "{name} metrics: {text}"
    );

    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status(), 200);
    let spec: serde_json::Value = spec.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["info"]["title"].as_str().unwrap().contains(name));

    if S::REQUIRES_INTERNAL_TOKEN {
        // Straight to the service, bypassing the gateway: refused before routing.
        let direct = app
            .client
            .get(app.url("/v1/anything"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            direct.status(),
            401,
            "{name} accepted a request without an internal token"
        );
    }

    let missing = app.get("/no-such-route").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    app
}

async fn assert_migrated(app: &TestApp, tables: &[&str]) {
    let pool = app.pool().await;
    for table in tables {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = $1)",
        )
        .bind(table)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(exists, "table {table} missing");
    }
}

#[tokio::test]
async fn auth_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<auth_service::AuthService>().await;
    assert_migrated(&app, &["outbox"]).await;
}

#[tokio::test]
async fn product_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<product_service::ProductService>().await;
    assert_migrated(&app, &["outbox", "processed_events"]).await;
}

#[tokio::test]
async fn order_payment_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<order_payment_service::OrderPaymentService>().await;
    assert_migrated(&app, &["outbox", "processed_events"]).await;
}

#[tokio::test]
async fn appointment_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<appointment_service::AppointmentService>().await;
    assert_migrated(&app, &["outbox", "processed_events"]).await;
}

#[tokio::test]
async fn content_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<content_service::ContentService>().await;
    assert_migrated(&app, &["outbox"]).await;
}

#[tokio::test]
async fn customer_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<customer_service::CustomerService>().await;
    assert_migrated(&app, &["outbox", "processed_events"]).await;
}

#[tokio::test]
async fn notification_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<notification_service::NotificationService>().await;
    assert_migrated(&app, &["outbox", "processed_events"]).await;
}

#[tokio::test]
async fn analytics_boots_and_migrates() {
    let app = assert_serves_common_endpoints::<analytics_service::AnalyticsService>().await;
    assert_migrated(&app, &["processed_events"]).await;
}

#[tokio::test]
async fn the_gateway_is_ready_only_when_its_upstreams_are() {
    let product = TestApp::spawn::<product_service::ProductService>().await;
    let mut overrides: Vec<(String, String)> = gateway_service::UPSTREAMS
        .iter()
        .map(|(name, _)| {
            // Every upstream but product points at a closed port.
            (
                gateway_service::upstream_var(name),
                "http://127.0.0.1:1".to_owned(),
            )
        })
        .collect();
    overrides.retain(|(var, _)| var != "UPSTREAM_PRODUCT_URL");
    overrides.push(("UPSTREAM_PRODUCT_URL".into(), product.base_url.clone()));
    let overrides: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let gateway = TestApp::spawn_with::<gateway_service::GatewayService>(&overrides).await;

    assert_eq!(gateway.get("/health").await.status(), 200);
    let ready = gateway.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["product"], "ok", "{body}");
    assert_eq!(body["checks"]["auth"], "unavailable", "{body}");
}

#[tokio::test]
async fn a_stopped_service_drains_and_releases_its_port() {
    let app = TestApp::spawn::<product_service::ProductService>().await;
    let url = app.url("/health");
    app.stop().await;
    assert!(
        reqwest::get(url).await.is_err(),
        "port still answers after stop"
    );
}

/// `.env.example` documents every variable each service reads (derived from the config
/// structs, so a new setting that is not documented fails here).
#[test]
fn env_example_lists_every_variable_the_services_read() {
    fn vars<S: Service>() -> Vec<String> {
        let env = service_kit::Env::from_pairs::<&str, &str>([]);
        S::config(&env).unwrap();
        env.described().into_iter().map(|v| v.name).collect()
    }
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example"))
            .expect(".env.example exists at the repository root");
    let documented: Vec<&str> = example
        .lines()
        .filter_map(|l| l.trim_start_matches('#').trim().split('=').next())
        .collect();
    let all = [
        vars::<gateway_service::GatewayService>(),
        vars::<auth_service::AuthService>(),
        vars::<product_service::ProductService>(),
        vars::<order_payment_service::OrderPaymentService>(),
        vars::<appointment_service::AppointmentService>(),
        vars::<content_service::ContentService>(),
        vars::<customer_service::CustomerService>(),
        vars::<notification_service::NotificationService>(),
        vars::<analytics_service::AnalyticsService>(),
    ]
    .concat();
    let missing: Vec<&String> = all
        .iter()
        .filter(|v| !documented.contains(&v.as_str()))
        .collect();
    assert!(missing.is_empty(), "not in .env.example: {missing:?}");
}
