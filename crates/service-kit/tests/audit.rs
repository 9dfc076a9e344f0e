//! The audit trail against a real Postgres: rows written in the change's transaction, the table
//! append-only, and `GET …/audit` for SUPER_ADMIN only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use service_kit::audit::{self, Entry, REDACTED};
use service_kit::http::{Shell, wrap};
use service_kit::{Caller, InternalClaims, InternalKeys, Role};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

const AUDIT_SQL: &str = include_str!("../../../migrations/product/0003_audit.sql");

/// A fresh database holding only the audit table, dropped at the end of the test.
struct Db {
    name: String,
    pool: PgPool,
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl Db {
    async fn new() -> Self {
        let name = format!("test_audit_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .unwrap();
        conn.close().await.unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        let pool = PgPool::connect(&format!("{base}/{name}")).await.unwrap();
        sqlx::raw_sql(AUDIT_SQL).execute(&pool).await.unwrap();
        Self { name, pool }
    }

    async fn drop(self) {
        self.pool.close().await;
        let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        )))
        .await
        .unwrap();
    }

    async fn rows(&self) -> Vec<(Uuid, String, String, String, String, Value, Option<String>)> {
        sqlx::query_as(
            "SELECT actor_id, actor_role, entity, entity_id, action, changes, request_id \
             FROM audit_log ORDER BY occurred_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

fn caller(role: Role, request_id: &str) -> Caller {
    Caller {
        user_id: Uuid::now_v7(),
        role,
        session_id: Uuid::now_v7(),
        amr: vec!["pwd".into(), "otp".into()],
        request_id: Some(request_id.to_owned()),
    }
}

#[tokio::test]
async fn a_committed_change_writes_one_redacted_row_and_a_rolled_back_one_none() {
    let db = Db::new().await;
    let admin = caller(Role::Admin, "req-1");

    let mut tx = db.pool.begin().await.unwrap();
    Entry::new(&admin, "order", "o-1", "status.shipped")
        .before(&json!({"status": "PAID", "email": "ann@example.com", "totalMinor": 100}))
        .after(&json!({"status": "SHIPPED", "email": "bob@example.com", "totalMinor": 100}))
        .record(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.pool.begin().await.unwrap();
    Entry::new(&admin, "order", "o-2", "status.shipped")
        .after(&json!({"status": "SHIPPED"}))
        .record(&mut tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let rows = db.rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (actor, role, entity, entity_id, action, changes, request_id) = &rows[0];
    assert_eq!(*actor, admin.user_id);
    assert_eq!(role, "ADMIN");
    assert_eq!(
        (entity.as_str(), entity_id.as_str(), action.as_str()),
        ("order", "o-1", "status.shipped")
    );
    assert_eq!(request_id.as_deref(), Some("req-1"));
    assert_eq!(
        *changes,
        json!({
            "status": {"before": "PAID", "after": "SHIPPED"},
            "email": {"before": REDACTED, "after": REDACTED}
        })
    );
    assert!(!changes.to_string().contains("example.com"));
    db.drop().await;
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_deleted_or_truncated() {
    let db = Db::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    Entry::new(&caller(Role::Admin, "r"), "product", "p-1", "delete")
        .before(&json!({"slug": "oak"}))
        .record(&mut conn)
        .await
        .unwrap();
    drop(conn);
    for statement in [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(&db.pool)
            .await
            .expect_err(statement);
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    let rows = db.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].4, "delete");
    db.drop().await;
}

fn app(pool: PgPool) -> Router {
    let (routes, openapi) = OpenApiRouter::<PgPool>::new()
        .nest("/v1/things", audit::router())
        .split_for_parts();
    wrap(
        routes.with_state(pool),
        Shell {
            openapi: service_kit::http::openapi_json(&openapi),
            internal_keys: Some(InternalKeys::development()),
            ..Shell::bare("test")
        },
    )
}

fn token(user: &Caller) -> String {
    InternalKeys::development()
        .mint(
            InternalClaims::user("gateway", user.user_id, user.role, user.session_id)
                .with_amr(user.amr.clone()),
        )
        .unwrap()
}

async fn get(app: &Router, path: &str, token: Option<String>) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("x-internal-token", token);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn seed(db: &Db, actor: &Caller, entity: &str, n: usize) {
    for i in 0..n {
        // One transaction each, so occurred_at differs as it does for real requests.
        let mut tx = db.pool.begin().await.unwrap();
        Entry::new(actor, entity, format!("{entity}-{i}"), "update")
            .after(&json!({"n": i}))
            .record(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn only_a_super_admin_reads_the_trail_filtered_and_paged_newest_first() {
    let db = Db::new().await;
    let admin = caller(Role::Admin, "r-admin");
    let other = caller(Role::Admin, "r-other");
    seed(&db, &admin, "product", 5).await;
    seed(&db, &other, "price", 2).await;
    let app = app(db.pool.clone());
    let boss = caller(Role::SuperAdmin, "r-boss");

    let (status, body) = get(&app, "/v1/things/audit", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = get(&app, "/v1/things/audit", Some(token(&admin))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let customer = caller(Role::Customer, "r-c");
    let (status, _) = get(&app, "/v1/things/audit", Some(token(&customer))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = get(&app, "/v1/things/audit", Some(token(&boss))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 7);
    assert_eq!(body["data"][0]["entityId"], "price-1", "newest first");
    assert_eq!(body["data"][0]["service"], "product");
    assert_eq!(body["data"][0]["actorRole"], "ADMIN");
    assert_eq!(body["data"][0]["requestId"], "r-other");

    // Filters.
    let path = format!("/v1/things/audit?actor={}&entity=product", admin.user_id);
    let (_, body) = get(&app, &path, Some(token(&boss))).await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entityId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "product-4",
            "product-3",
            "product-2",
            "product-1",
            "product-0"
        ]
    );
    let (_, body) = get(
        &app,
        "/v1/things/audit?entity=price&entityId=price-0&action=update",
        Some(token(&boss)),
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (_, body) = get(
        &app,
        "/v1/things/audit?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z",
        Some(token(&boss)),
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);

    // Keyset pages: 3 + 3 + 1, no row twice.
    let mut seen = Vec::new();
    let mut path = "/v1/things/audit?limit=3".to_owned();
    loop {
        let (status, body) = get(&app, &path, Some(token(&boss))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for row in body["data"].as_array().unwrap() {
            seen.push(row["id"].as_str().unwrap().to_owned());
        }
        match body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/things/audit?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    seen.dedup();
    assert_eq!(seen.len(), 7);

    let rows_before = db.rows().await.len();
    assert_eq!(rows_before, 7, "reading the trail writes no rows");
    db.drop().await;
}

#[tokio::test]
async fn bad_filters_are_422() {
    let db = Db::new().await;
    let app = app(db.pool.clone());
    let boss = caller(Role::SuperAdmin, "r");
    for query in [
        "actor=not-a-uuid",
        "from=yesterday",
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "colour=red",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (status, body) = get(
            &app,
            &format!("/v1/things/audit?{query}"),
            Some(token(&boss)),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
    db.drop().await;
}

#[tokio::test]
async fn the_route_is_in_the_openapi_document_under_the_prefix() {
    let db = Db::new().await;
    let app = app(db.pool.clone());
    let (status, spec) = get(&app, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let op = &spec["paths"]["/v1/things/audit"]["get"];
    assert!(op.is_object(), "{spec}");
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "entity", "entityId", "actor", "action", "from", "to", "cursor", "limit",
    ] {
        assert!(params.contains(&name), "{name} missing: {params:?}");
    }
    db.drop().await;
}
