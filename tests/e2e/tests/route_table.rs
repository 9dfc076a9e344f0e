//! The gateway's route table cannot drift from the services: every public path a service's
//! OpenAPI document declares must be routed by the gateway to that service.
#![allow(clippy::unwrap_used)]

use gateway_service::routes::RouteTable;
use service_kit::Service;

fn unrouted<S: Service>() -> Vec<String> {
    let spec = serde_json::to_value(service_kit::service::openapi::<S>()).unwrap();
    RouteTable::builtin()
        .unwrap()
        .unrouted_paths(S::SPEC.name, &spec)
}

#[test]
fn every_public_path_of_every_service_is_routed_to_it() {
    let missing = [
        unrouted::<auth_service::AuthService>(),
        unrouted::<product_service::ProductService>(),
        unrouted::<order_payment_service::OrderPaymentService>(),
        unrouted::<appointment_service::AppointmentService>(),
        unrouted::<content_service::ContentService>(),
        unrouted::<customer_service::CustomerService>(),
        unrouted::<notification_service::NotificationService>(),
        unrouted::<analytics_service::AnalyticsService>(),
    ]
    .concat();
    assert!(
        missing.is_empty(),
        "served but not routed by the gateway: {missing:?}"
    );
}

#[test]
fn the_check_sees_the_services_paths() {
    // Guard against a vacuous pass: auth and product do declare public paths.
    let spec =
        serde_json::to_value(service_kit::service::openapi::<auth_service::AuthService>()).unwrap();
    assert!(spec["paths"].as_object().unwrap().len() > 10);
    let spec = serde_json::to_value(service_kit::service::openapi::<
        product_service::ProductService,
    >())
    .unwrap();
    assert!(
        spec["paths"]
            .as_object()
            .unwrap()
            .contains_key("/v1/products")
    );
}

#[test]
fn no_two_services_define_one_component_name_differently() {
    // The gateway refuses to merge such documents (its /docs/openapi.json would answer 500).
    fn doc<S: Service>() -> (&'static str, serde_json::Value) {
        (
            S::SPEC.name,
            serde_json::to_value(service_kit::service::openapi::<S>()).unwrap(),
        )
    }
    let specs = [
        doc::<auth_service::AuthService>(),
        doc::<product_service::ProductService>(),
        doc::<order_payment_service::OrderPaymentService>(),
        doc::<appointment_service::AppointmentService>(),
        doc::<content_service::ContentService>(),
        doc::<customer_service::CustomerService>(),
        doc::<notification_service::NotificationService>(),
        doc::<analytics_service::AnalyticsService>(),
    ];
    let merged = gateway_service::docs::merge(&RouteTable::builtin().unwrap(), &specs, &[]);
    let doc = merged.unwrap_or_else(|error| panic!("{error}"));
    assert!(doc["paths"].as_object().unwrap().len() > 200);
}
