//! Redis: a reconnecting connection manager plus the service's key prefix.
//!
//! Redis is never a system of record here; every key has a TTL and everything in it can be
//! rebuilt from Postgres.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A cloneable Redis handle whose keys are namespaced `<prefix>:<entity>:<id>`.
#[derive(Clone)]
pub struct Redis {
    manager: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Redis {
    /// Connects, failing fast when the server does not answer within a few seconds.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            anyhow::anyhow!("invalid value for environment variable REDIS_URL: {e}")
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach Redis: {e}"))?;
        Ok(Self {
            manager,
            prefix: prefix.to_owned(),
        })
    }

    /// A connection to issue commands on (cheap to clone, multiplexed).
    pub fn conn(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The key prefix of this service.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:<entity>:<id>`.
    pub fn key(&self, entity: &str, id: impl std::fmt::Display) -> String {
        format!("{}:{entity}:{id}", self.prefix)
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
