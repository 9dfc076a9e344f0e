//! The shared HTTP shell, driven through a real router: every error status as problem+json,
//! readiness, metrics and request ids.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Deserialize;
use service_kit::http::{Shell, wrap};
use service_kit::readiness::ReadinessCheck;
use service_kit::{FieldError, Problem, ValidatedJson};
use tower::ServiceExt;
use validator::Validate;

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct NewThing {
    #[validate(length(min = 2, max = 40, message = "must be 2 to 40 characters"))]
    first_name: String,
    #[validate(range(min = 1, max = 10, message = "must be between 1 and 10"))]
    quantity: u32,
}

async fn create(ValidatedJson(thing): ValidatedJson<NewThing>) -> String {
    format!("{} x{}", thing.first_name, thing.quantity)
}

async fn fails(axum::extract::Path(kind): axum::extract::Path<String>) -> Result<String, Problem> {
    Err(match kind.as_str() {
        "401" => Problem::unauthorized("no token"),
        "403" => Problem::forbidden("admins only"),
        "404" => Problem::not_found("no such thing"),
        "409" => Problem::conflict("slot-taken", "that slot is taken"),
        "422" => Problem::validation(vec![FieldError::new("postcode", "is not a UK postcode")]),
        "429" => Problem::too_many_requests(42),
        "503" => Problem::unavailable("broker unreachable"),
        _ => Problem::internal(&std::io::Error::other(
            "relation \"secret_table\" does not exist",
        )),
    })
}

fn shell(checks: Vec<ReadinessCheck>) -> Shell {
    Shell {
        checks,
        request_timeout: Duration::from_millis(300),
        cors_allowed_origins: vec!["https://shop.example".to_owned()],
        ..Shell::bare("test")
    }
}

fn app(checks: Vec<ReadinessCheck>) -> Router {
    let routes = Router::new()
        .route("/things", post(create))
        .route("/fail/{kind}", get(fails))
        .route(
            "/plain",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    "a plain-text rejection, long enough for the compression layer to gzip it",
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    wrap(routes, shell(checks))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: serde_json::Value,
    text: String,
}

async fn send(app: Router, request: Request<Body>) -> Answer {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        json,
        text,
    }
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn assert_problem(answer: &Answer, status: u16) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        answer.text
    );
    assert_eq!(answer.json["status"], status);
    assert!(
        answer.json["type"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(answer.json["title"].is_string());
    let request_id = answer.headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        answer.json["instance"], request_id,
        "instance is the request id"
    );
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let answer = send(app(vec![]), get_req("/nowhere")).await;
    assert_problem(&answer, 404);
    assert_eq!(
        answer.json["type"],
        "https://api.lomashwood.co.uk/problems/not-found"
    );
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let answer = send(app(vec![]), get_req("/things")).await;
    assert_problem(&answer, 405);
    assert!(
        answer.headers[header::ALLOW]
            .to_str()
            .unwrap()
            .contains("POST")
    );
}

/// A client that accepts gzip gets a bare error compressed by the inner layer; the problem that
/// replaces its body must not keep the `Content-Encoding` of the body it replaced.
#[tokio::test]
async fn a_bare_error_replaced_by_a_problem_is_not_labelled_gzip() {
    let request = Request::get("/plain")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let answer = send(app(vec![]), request).await;
    assert_problem(&answer, 400);
    assert!(
        answer.headers.get(header::CONTENT_ENCODING).is_none(),
        "{:?}",
        answer.headers
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let answer = send(app(vec![]), post_json("/things", "{\"firstName\": ")).await;
    assert_problem(&answer, 400);
}

#[tokio::test]
async fn a_missing_field_is_a_422_naming_it() {
    let answer = send(app(vec![]), post_json("/things", r#"{"firstName":"Ann"}"#)).await;
    assert_problem(&answer, 422);
    assert_eq!(answer.json["errors"][0]["field"], "quantity");
}

#[tokio::test]
async fn a_wrong_type_is_a_422_naming_the_field() {
    let answer = send(
        app(vec![]),
        post_json("/things", r#"{"firstName":"Ann","quantity":"two"}"#),
    )
    .await;
    assert_problem(&answer, 422);
    assert_eq!(answer.json["errors"][0]["field"], "quantity");
}

#[tokio::test]
async fn failed_rules_are_a_422_with_every_field() {
    let answer = send(
        app(vec![]),
        post_json("/things", r#"{"firstName":"A","quantity":99}"#),
    )
    .await;
    assert_problem(&answer, 422);
    let errors = answer.json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["field"], "firstName");
    assert_eq!(errors[0]["message"], "must be 2 to 40 characters");
    assert_eq!(errors[1]["field"], "quantity");
}

#[tokio::test]
async fn valid_json_reaches_the_handler() {
    let answer = send(
        app(vec![]),
        post_json("/things", r#"{"firstName":"Ann","quantity":2}"#),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text, "Ann x2");
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415_problem() {
    let request = Request::post("/things")
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from("<thing/>"))
        .unwrap();
    let answer = send(app(vec![]), request).await;
    assert_problem(&answer, 415);
}

#[tokio::test]
async fn a_too_large_body_is_a_413_problem() {
    let big = format!(r#"{{"firstName":"{}","quantity":1}}"#, "x".repeat(4096));
    let answer = send(app(vec![]), post_json("/things", &big)).await;
    assert_problem(&answer, 413);
}

#[tokio::test]
async fn handler_problems_keep_their_status_and_code() {
    for (status, code) in [
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not-found"),
        (409, "slot-taken"),
        (422, "validation-failed"),
        (429, "rate-limited"),
        (503, "service-unavailable"),
        (500, "internal"),
    ] {
        let answer = send(app(vec![]), get_req(&format!("/fail/{status}"))).await;
        assert_problem(&answer, status);
        assert_eq!(
            answer.json["type"],
            format!("https://api.lomashwood.co.uk/problems/{code}")
        );
    }
}

#[tokio::test]
async fn rate_limited_answers_carry_retry_after() {
    let answer = send(app(vec![]), get_req("/fail/429")).await;
    assert_eq!(answer.headers[header::RETRY_AFTER], "42");
}

#[tokio::test]
async fn internal_errors_leak_nothing() {
    let answer = send(app(vec![]), get_req("/fail/500")).await;
    assert_problem(&answer, 500);
    assert!(!answer.text.contains("secret_table"), "{}", answer.text);
}

#[tokio::test]
async fn a_slow_handler_is_cut_off_with_a_503_problem() {
    let answer = send(app(vec![]), get_req("/slow")).await;
    assert_problem(&answer, 503);
}

#[tokio::test]
async fn a_sane_request_id_is_kept_and_a_bad_one_replaced() {
    let request = Request::get("/health")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let answer = send(app(vec![]), request).await;
    assert_eq!(answer.headers["x-request-id"], "abc-123");

    let request = Request::get("/nowhere")
        .header("x-request-id", "<script>")
        .body(Body::empty())
        .unwrap();
    let answer = send(app(vec![]), request).await;
    let id = answer.headers["x-request-id"].to_str().unwrap();
    assert_ne!(id, "<script>");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(answer.json["instance"], id);
}

#[tokio::test]
async fn health_answers_without_checking_anything() {
    let down = ReadinessCheck::new("postgres", || async { Err("down".to_owned()) });
    let answer = send(app(vec![down]), get_req("/health")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["status"], "ok");
}

#[tokio::test]
async fn ready_is_200_when_every_dependency_answers() {
    let up = ReadinessCheck::new("redis", || async { Ok(()) });
    let answer = send(app(vec![up]), get_req("/ready")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["checks"]["redis"], "ok");
}

#[tokio::test]
async fn ready_is_503_naming_an_unreachable_postgres() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(100))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nothing")
        .unwrap();
    let up = ReadinessCheck::new("redis", || async { Ok(()) });
    let answer = send(
        app(vec![ReadinessCheck::postgres(pool), up]),
        get_req("/ready"),
    )
    .await;
    assert_problem(&answer, 503);
    assert_eq!(answer.json["checks"]["postgres"], "unavailable");
    assert_eq!(answer.json["checks"]["redis"], "ok");
    assert!(answer.json["detail"].as_str().unwrap().contains("postgres"));
}

#[tokio::test]
async fn ready_is_200_against_the_real_postgres() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://postgres@127.0.0.1:5432/postgres")
        .unwrap();
    let answer = send(app(vec![ReadinessCheck::postgres(pool)]), get_req("/ready")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = app(vec![]);
    let _ = send(app.clone(), get_req("/fail/404")).await;
    let answer = send(app, get_req("/metrics")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.text.contains(r#"route="/fail/{kind}""#),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let request = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/things")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = send(app(vec![]), request("https://shop.example")).await;
    assert_eq!(
        allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example"
    );
    let refused = send(app(vec![]), request("https://evil.example")).await;
    assert!(
        !refused
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}
