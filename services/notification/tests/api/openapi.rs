//! The routes this service serves; a change here is an API change (and the gateway's route table
//! must follow).

use notification_service::NotificationService;

#[test]
fn the_openapi_document_lists_every_route() {
    let routes = service_kit::service::route_list::<NotificationService>();
    let mut expected: Vec<String> = [
        "GET /v1/notifications",
        "GET /v1/notifications/audit",
        "POST /v1/notifications/{id}/resend",
        "GET /v1/notifications/dev/outbox",
        "POST /v1/notifications/templates/{name}/preview",
        "GET /v1/notifications/preferences",
        "PUT /v1/notifications/preferences",
        "GET /v1/notifications/unsubscribe/{token}",
        "POST /v1/notifications/unsubscribe/{token}",
        "POST /v1/notifications/devices",
        "DELETE /v1/notifications/devices",
        "GET /v1/notifications/ws",
        "POST /v1/notifications/ws-ticket",
    ]
    .map(str::to_owned)
    .to_vec();
    expected.sort();
    assert_eq!(routes, expected);
}

/// Schema names are unique across the platform (the gateway merges every document into one
/// namespace, first definition wins) and describe what is sent: schemathesis found preferences
/// validated against product's `Category` and outbox attachments declared an object.
#[test]
fn the_document_names_its_schemas_apart_and_types_attachments_as_a_list() {
    let doc = serde_json::to_value(service_kit::service::openapi::<NotificationService>())
        .expect("the document serialises");
    let schemas = &doc["components"]["schemas"];
    assert!(schemas.get("Category").is_none(), "{}", schemas["Category"]);
    assert_eq!(
        schemas["NotificationCategory"]["enum"],
        serde_json::json!(["TRANSACTIONAL", "MARKETING"])
    );
    assert_eq!(
        schemas["OutboxMessage"]["properties"]["attachments"]["type"],
        "array"
    );
}
