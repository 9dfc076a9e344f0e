//! Appointment types, showrooms and consultants.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Api, error_fields};

fn showroom_body(name: &str, postcode: &str) -> Value {
    json!({
        "name": name,
        "address": "112 Clapham High Street, London",
        "postcode": postcode,
        "phone": "020 7123 4001",
        "email": "clapham@lomashwood.co.uk",
        "openingHours": [{"weekday": 1, "opens": "09:00", "closes": "17:30"}],
        "latitude": 51.46,
        "longitude": -0.13,
    })
}

#[tokio::test]
async fn the_three_appointment_types_are_public() {
    let api = Api::spawn().await;
    let body: Value = api
        .send(Method::GET, "/v1/appointment-types", None, None)
        .await
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["HOME_MEASUREMENT", "SHOWROOM_VISIT", "VIRTUAL_CONSULTATION"]
    );
    assert_eq!(body[0]["durationMinutes"], 90);
}

#[tokio::test]
async fn admins_manage_showrooms_and_the_public_searches_them() {
    let api = Api::spawn().await;
    let admin = Api::admin();
    let clapham = api
        .post_as(
            "/v1/admin/showrooms",
            Some(&admin),
            &showroom_body("Clapham", "sw4 7uj"),
        )
        .await;
    assert_eq!(clapham.status(), 201);
    let clapham: Value = clapham.json().await.unwrap();
    assert_eq!(clapham["postcode"], "SW4 7UJ");
    assert_eq!(clapham["phone"], "+442071234001");
    api.post_as(
        "/v1/admin/showrooms",
        Some(&admin),
        &showroom_body("Clerkenwell", "EC1M 4AY"),
    )
    .await;
    api.post_as(
        "/v1/admin/showrooms",
        Some(&admin),
        &showroom_body("Balham", "SW12 9AA"),
    )
    .await;
    let id = clapham["id"].as_str().unwrap();

    let duplicate = api
        .post_as(
            "/v1/admin/showrooms",
            Some(&admin),
            &showroom_body("Clapham", "SW4 7UJ"),
        )
        .await;
    let invalid = api
        .post_as(
            "/v1/admin/showrooms",
            Some(&admin),
            &showroom_body("Bad", "nowhere"),
        )
        .await;
    let by_customer = api
        .post_as(
            "/v1/admin/showrooms",
            Some(&Api::customer()),
            &showroom_body("X", "SW4 7UJ"),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    assert_eq!(invalid.status(), 422);
    assert_eq!(
        error_fields(&invalid.json().await.unwrap()),
        vec!["postcode"]
    );
    assert_eq!(by_customer.status(), 403);

    let near: Value = api
        .send(Method::GET, "/v1/showrooms?near=SW4%200AB", None, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = near
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Clapham", "Balham", "Clerkenwell"]);
    let search: Value = api
        .send(Method::GET, "/v1/showrooms?search=ec1", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(search.as_array().unwrap().len(), 1);
    assert_eq!(search[0]["name"], "Clerkenwell");

    // Merge patch: change the name, clear the coordinates, keep the rest.
    let patched = api
        .app
        .request_as(Method::PATCH, &format!("/v1/admin/showrooms/{id}"), &admin)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"name": "Clapham High St", "latitude": null, "longitude": null}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["name"], "Clapham High St");
    assert!(patched["latitude"].is_null());
    assert_eq!(patched["postcode"], "SW4 7UJ");
    assert_eq!(patched["openingHours"][0]["opens"], "09:00:00");

    let hidden = api
        .app
        .request_as(Method::PATCH, &format!("/v1/admin/showrooms/{id}"), &admin)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"active": false}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 200);
    let gone = api
        .send(Method::GET, &format!("/v1/showrooms/{id}"), None, None)
        .await;
    assert_eq!(gone.status(), 404);
    let missing = api
        .send(
            Method::GET,
            &format!("/v1/showrooms/{}", Uuid::now_v7()),
            None,
            None,
        )
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn admins_manage_consultants_and_the_public_sees_active_ones() {
    let api = Api::spawn().await;
    let admin = Api::admin();
    let user = Uuid::now_v7();
    let created = api
        .post_as(
            "/v1/admin/consultants",
            Some(&admin),
            &json!({"userId": user, "name": "Amelia Hart", "specialisation": "KITCHEN",
                    "coverage": ["sw", "EC1A"], "bio": "Kitchens."}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["coverage"], json!(["EC1A", "SW"]));
    let again = api
        .post_as(
            "/v1/admin/consultants",
            Some(&admin),
            &json!({"userId": user, "name": "Twin", "specialisation": "BOTH"}),
        )
        .await;
    let bad = api
        .post_as(
            "/v1/admin/consultants",
            Some(&admin),
            &json!({"userId": Uuid::now_v7(), "name": "X", "specialisation": "BOTH", "coverage": ["SW4 0AB"]}),
        )
        .await;
    assert_eq!(again.status(), 409);
    assert_eq!(bad.status(), 422);

    let public: Value = api
        .send(
            Method::GET,
            "/v1/consultants?specialisation=BEDROOM",
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(public.as_array().unwrap().is_empty());
    let kitchens: Value = api
        .send(
            Method::GET,
            "/v1/consultants?specialisation=KITCHEN",
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kitchens[0]["name"], "Amelia Hart");
    assert!(
        kitchens[0].get("coverage").is_none(),
        "public view hides admin fields"
    );

    let id = created["id"].as_str().unwrap();
    let off = api
        .app
        .request_as(
            Method::PATCH,
            &format!("/v1/admin/consultants/{id}"),
            &admin,
        )
        .header("content-type", "application/merge-patch+json")
        .body(json!({"active": false}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    let all: Value = api
        .send(Method::GET, "/v1/consultants", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(all.as_array().unwrap().is_empty());
    let table: Value = api
        .get_as("/v1/admin/consultants", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(table["total"], 1);
    assert_eq!(table["data"][0]["active"], false);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let doc = appointment_service_openapi();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/appointment-types",
        "/v1/showrooms",
        "/v1/showrooms/{id}",
        "/v1/consultants",
        "/v1/availability",
        "/v1/appointments",
        "/v1/appointments/mine",
        "/v1/appointments/{id}",
        "/v1/appointments/{id}/cancel",
        "/v1/appointments/{id}/reschedule",
        "/v1/appointments/{id}/confirm",
        "/v1/consultants/me/appointments",
        "/v1/admin/appointments",
        "/v1/brochures",
        "/v1/admin/brochures/export",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
}

fn appointment_service_openapi() -> Value {
    serde_json::to_value(service_kit::service::openapi::<
        appointment_service::AppointmentService,
    >())
    .unwrap()
}
