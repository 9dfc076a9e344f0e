//! `/ready`: is every dependency this service needs reachable right now?

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

/// How long one dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// One dependency check of `/ready`.
#[derive(Clone)]
pub struct ReadinessCheck {
    name: &'static str,
    check: Arc<CheckFn>,
}

impl ReadinessCheck {
    /// A check from a closure returning `Err(reason)` when the dependency is down.
    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// Postgres answers `SELECT 1`.
    pub fn postgres(pool: sqlx::PgPool) -> Self {
        Self::new("postgres", move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    }

    /// Redis answers `PING`.
    pub fn redis(redis: crate::redis::Redis) -> Self {
        Self::new("redis", move || {
            let redis = redis.clone();
            async move { redis.ping().await }
        })
    }

    /// The dependency's name as reported.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the check with a timeout.
    pub async fn run(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    }
}

/// Runs every check concurrently; returns each one's outcome in order.
pub async fn run_all(checks: &[ReadinessCheck]) -> Vec<(&'static str, Result<(), String>)> {
    let outcomes = futures::future::join_all(checks.iter().map(ReadinessCheck::run)).await;
    checks
        .iter()
        .map(ReadinessCheck::name)
        .zip(outcomes)
        .collect()
}
