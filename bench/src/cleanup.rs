//! Everything a scenario creates is registered here *before* it is created, and undone in reverse
//! order when the scenario ends — normally, with an error, or because a signal cut it short (the
//! scenario's future is dropped, then [`Cleanup::run`] runs). Every step is bounded in time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::procs::ChildProc;

/// Something to undo.
pub enum Item {
    /// A process to stop.
    Child(Arc<ChildProc>),
    /// A database to drop (`DROP DATABASE ... WITH (FORCE)`).
    Database(String),
    /// A pool to close before its database is dropped.
    Pool(PgPool),
    /// In-process tasks (relay, consumer) to cancel and join.
    Tasks {
        /// Cancels them.
        cancel: CancellationToken,
        /// Joined after cancelling.
        handles: Vec<JoinHandle<()>>,
    },
    /// A RabbitMQ topology: the exchanges of `config` and the queues of `services`.
    Rabbit {
        /// Exchange name and queue prefix.
        config: Box<event_bus::BusConfig>,
        /// Consuming services whose queues (and dead-letter queues) go.
        services: Vec<String>,
    },
    /// Redis keys under `<prefix>:`.
    RedisPrefix(String),
}

/// The registry of one scenario run.
pub struct Cleanup {
    items: Mutex<Vec<Item>>,
    admin_url: String,
    redis_url: String,
}

impl Cleanup {
    /// An empty registry; databases are dropped through `admin_url`, keys deleted in `redis_url`.
    pub fn new(admin_url: &str, redis_url: &str) -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            admin_url: admin_url.to_owned(),
            redis_url: redis_url.to_owned(),
        }
    }

    /// Registers `item`.
    pub fn push(&self, item: Item) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(item);
    }

    /// Registers a started process and hands it back.
    pub fn child(&self, child: ChildProc) -> Arc<ChildProc> {
        let child = Arc::new(child);
        self.push(Item::Child(Arc::clone(&child)));
        child
    }

    /// Undoes everything registered, newest first; reports what failed and carries on.
    pub async fn run(&self) {
        let items = std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()));
        if items.is_empty() {
            return;
        }
        println!("  cleaning up ({} item(s))", items.len());
        for item in items.into_iter().rev() {
            match item {
                Item::Child(child) => child.stop(Duration::from_secs(10)).await,
                Item::Tasks { cancel, handles } => {
                    cancel.cancel();
                    for handle in handles {
                        let abort = handle.abort_handle();
                        if timeout(Duration::from_secs(15), handle).await.is_err() {
                            eprintln!("  ! a background task did not stop in 15s; aborted");
                            abort.abort();
                        }
                    }
                }
                Item::Pool(pool) => {
                    if timeout(Duration::from_secs(5), pool.close()).await.is_err() {
                        eprintln!("  ! a database pool did not close in 5s");
                    }
                }
                Item::Database(name) => {
                    let dropped = timeout(
                        Duration::from_secs(20),
                        drop_database(&self.admin_url, &name),
                    )
                    .await;
                    match dropped {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => eprintln!("  ! cannot drop database {name}: {error:#}"),
                        Err(_) => eprintln!("  ! dropping database {name} took over 20s"),
                    }
                }
                Item::Rabbit { config, services } => {
                    let names: Vec<&str> = services.iter().map(String::as_str).collect();
                    let deleted = timeout(
                        Duration::from_secs(20),
                        event_bus::topology::delete_rabbit_topology(&config, &names),
                    )
                    .await;
                    match deleted {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => eprintln!(
                            "  ! cannot delete RabbitMQ exchange {}: {error}",
                            config.exchange
                        ),
                        Err(_) => eprintln!("  ! deleting RabbitMQ topology took over 20s"),
                    }
                }
                Item::RedisPrefix(prefix) => {
                    let deleted = timeout(
                        Duration::from_secs(20),
                        delete_redis_prefix(&self.redis_url, &prefix),
                    )
                    .await;
                    match deleted {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => {
                            eprintln!("  ! cannot delete Redis keys {prefix}:*: {error:#}");
                        }
                        Err(_) => eprintln!("  ! deleting Redis keys {prefix}:* took over 20s"),
                    }
                }
            }
        }
    }
}

/// `CREATE DATABASE name` through the admin URL.
pub async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    check_identifier(name)?;
    let mut admin = PgConnection::connect(admin_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Postgres at {admin_url}: {e}"))?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create database {name}: {e}"))?;
    let _ = admin.close().await;
    Ok(())
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    check_identifier(name)?;
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    let _ = admin.close().await;
    Ok(())
}

/// Our database names are generated, but refuse anything that would need quoting anyway.
fn check_identifier(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        anyhow::bail!("refusing database name {name:?}");
    }
    Ok(())
}

/// `admin_url` with its database replaced by `name`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

async fn delete_redis_prefix(url: &str, prefix: &str) -> anyhow::Result<usize> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let n: usize = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_swap_the_database() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "x_1"),
            "postgres://postgres@127.0.0.1:5432/x_1"
        );
        assert_eq!(
            database_url("postgres://u@h:1/postgres?sslmode=disable", "y"),
            "postgres://u@h:1/y?sslmode=disable"
        );
    }

    #[test]
    fn odd_database_names_are_refused() {
        assert!(check_identifier("lomash_bench_events_ab12").is_ok());
        assert!(check_identifier("x\"; DROP").is_err());
        assert!(check_identifier("").is_err());
    }
}
