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
