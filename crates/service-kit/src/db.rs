//! Postgres: the pool, the database created if missing, and embedded migrations.

use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

/// How long a request waits for a pooled connection unless `DATABASE_ACQUIRE_TIMEOUT_MS` says.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects a pool to `url`; with `migrator`, creates the database if missing and applies the
/// embedded migrations first (several replicas may start at once: sqlx takes an advisory lock).
pub async fn connect(
    url: &str,
    max_connections: u32,
    migrator: Option<&Migrator>,
) -> anyhow::Result<PgPool> {
    connect_with_timeout(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT, migrator).await
}

/// [`connect`], waiting at most `acquire_timeout` for a pooled connection.
pub async fn connect_with_timeout(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    migrator: Option<&Migrator>,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid value for environment variable DATABASE_URL: {e}"))?;
    if migrator.is_some() && !Postgres::database_exists(url).await.unwrap_or(true) {
        // Another replica may create it between the check and here; that's fine.
        if let Err(error) = Postgres::create_database(url).await {
            tracing::warn!(%error, "could not create the database; assuming it exists");
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Postgres: {e}"))?;
    if let Some(migrator) = migrator {
        migrator
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    }
    Ok(pool)
}

/// Applies `migrator` to the database at `url`, creating the database if missing (the `migrate`
/// subcommand and the Kubernetes migration Job).
pub async fn migrate(url: &str, migrator: &Migrator) -> anyhow::Result<()> {
    let pool = connect(url, 2, Some(migrator)).await?;
    pool.close().await;
    Ok(())
}
