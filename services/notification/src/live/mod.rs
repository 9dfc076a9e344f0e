//! Live notifications: a signed-in user's own events pushed over a WebSocket (seed 003).
//!
//! # Protocol
//! 1. `POST /v1/notifications/ws-ticket` (signed in) answers `{ticket, expiresAt}`: a random,
//!    single-use ticket valid for `LIVE_TICKET_TTL_SECS` (30 s). Browsers cannot set headers on a
//!    WebSocket upgrade, so the ticket is what carries the identity into it.
//! 2. `GET /v1/notifications/ws?ticket=...` upgrades. The ticket is redeemed with `GETDEL` before
//!    upgrading: unknown, expired or already used → `401` problem, no socket.
//! 3. The server sends JSON text messages `{id, type, data, at}`: first `CONNECTED`, then the
//!    user's events (`BOOKING_CONFIRMED`, `ORDER_PAID`, `TICKET_UPDATED`). It pings every
//!    `LIVE_PING_INTERVAL_MS`; a client that does not answer with a pong within
//!    `LIVE_PONG_TIMEOUT_MS` is closed (1008). Messages from the client are read (for pongs and
//!    close) and otherwise ignored.
//! 4. A socket lives no longer than its session: the ticket names the session, the upgrade is
//!    refused (401) when the session has ended already, and at every ping the server checks
//!    auth's allow-list of live sessions (`<SESSION_KEY_PREFIX>:session:<id>` in Redis, the key
//!    the gateway checks too), closing the socket (1008) once logout or revocation removed it.
//!    While Redis cannot answer, sockets stay open (nothing is delivered through them then).
//!
//! # Design decisions
//! - **Fan-out across replicas** goes through one shared Redis pub/sub channel,
//!   `<REDIS_KEY_PREFIX>:live:events`, carrying `{userId, message}`. Every replica subscribes
//!   once and drops what has no local socket. Per-user channels would spare replicas the
//!   messages of users they do not hold, but cost a SUBSCRIBE/UNSUBSCRIBE per socket, a race
//!   between a socket opening and its subscription taking effect, and a subscription set that
//!   must be rebuilt on every reconnect. Live messages here are a few per booking, payment or
//!   ticket reply, so every replica reading all of them is cheap, and one channel keeps the
//!   subscriber trivially correct. The prefix keeps tests (and environments sharing a Redis)
//!   apart.
//! - **Bounded memory per socket**: each socket has an mpsc buffer of `LIVE_BUFFER_CAPACITY`
//!   messages, filled with `try_send` by the subscriber. A full buffer means the client stopped
//!   reading: that socket is dropped (close code 1013, "try again later") and counted, while the
//!   subscriber and every other socket carry on untouched. Nothing ever waits on a slow client.
//! - **Best-effort delivery**: the delivery log is the record, live messages are a courtesy.
//!   A message published while a replica's subscriber is reconnecting, or while the user has no
//!   socket open, is not replayed. The event consumer publishes at the end of its handler, just
//!   before its transaction commits (the consumer gives no hook after commit): if the commit
//!   then fails, the event is redelivered and the message published again. Every message
//!   therefore carries the domain event's id as `id`, so a client can drop a repeat.
//! - **Tickets** are stored hashed (SHA-256) under `<prefix>:ws-ticket:<hash>` with a TTL, so
//!   neither a Redis dump nor `MONITOR` reveals a usable ticket; they carry the user id and
//!   session id of the caller who asked for them.
//! - **Shutdown**: when the service stops, every socket is closed with 1001 ("going away") and the
//!   subscriber stops; clients reconnect to another replica.
//!
//! # Metrics
//! `live_connections_open` (gauge), `live_connections_dropped_total{reason}` (`slow_consumer`,
//! `heartbeat_timeout`, `session_ended`), `live_messages_published_total`, `live_messages_delivered_total`,
//! `live_publish_failures_total`, `live_tickets_refused_total`, `live_subscriber_connected`
//! (gauge: 1 while this replica's pub/sub connection is up), `live_subscriber_reconnects_total`.

mod event;
mod hub;
mod socket;
mod ticket;

use std::time::Duration;

use axum::extract::FromRef;
use service_kit::config::{ConfigError, Env};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use event::{LiveEvent, LiveKind};
pub use hub::{LiveHub, PublishError};
pub use ticket::WsTicket;

/// Settings of the live channel.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// How long a WebSocket ticket may wait before it is redeemed.
    pub ticket_ttl: Duration,
    /// How often the server pings each socket.
    pub ping_interval: Duration,
    /// How long a socket may take to answer a ping before it is closed.
    pub pong_timeout: Duration,
    /// Messages buffered per socket before it counts as too slow and is dropped.
    pub buffer_capacity: usize,
    /// Sockets one user may hold on one replica at once.
    pub max_connections_per_user: usize,
    /// Auth's Redis key prefix: a session is live while `<prefix>:session:<id>` exists.
    pub session_key_prefix: String,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            ticket_ttl: Duration::from_secs(30),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            buffer_capacity: 32,
            max_connections_per_user: 10,
            session_key_prefix: "auth".to_owned(),
        }
    }
}

impl LiveSettings {
    /// Reads the `LIVE_*` variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let ticket_ttl_secs: u64 = env.get(
            "LIVE_TICKET_TTL_SECS",
            defaults.ticket_ttl.as_secs(),
            "Lifetime of a WebSocket ticket from POST /v1/notifications/ws-ticket, in seconds (1-300)",
        )?;
        if !(1..=300).contains(&ticket_ttl_secs) {
            return Err(invalid("LIVE_TICKET_TTL_SECS", "must be between 1 and 300"));
        }
        let ping_interval = env.millis(
            "LIVE_PING_INTERVAL_MS",
            defaults.ping_interval,
            "How often the server pings each live WebSocket",
        )?;
        if ping_interval.is_zero() {
            return Err(invalid("LIVE_PING_INTERVAL_MS", "must be above 0"));
        }
        let pong_timeout = env.millis(
            "LIVE_PONG_TIMEOUT_MS",
            defaults.pong_timeout,
            "How long a live WebSocket may take to answer a ping before it is closed",
        )?;
        if pong_timeout.is_zero() {
            return Err(invalid("LIVE_PONG_TIMEOUT_MS", "must be above 0"));
        }
        let buffer_capacity: usize = env.get(
            "LIVE_BUFFER_CAPACITY",
            defaults.buffer_capacity,
            "Messages buffered per live WebSocket; a client that lets it fill is disconnected",
        )?;
        if !(1..=4096).contains(&buffer_capacity) {
            return Err(invalid(
                "LIVE_BUFFER_CAPACITY",
                "must be between 1 and 4096",
            ));
        }
        let max_connections_per_user: usize = env.get(
            "LIVE_MAX_CONNECTIONS_PER_USER",
            defaults.max_connections_per_user,
            "Live WebSockets one user may hold on one replica at once",
        )?;
        if max_connections_per_user == 0 {
            return Err(invalid("LIVE_MAX_CONNECTIONS_PER_USER", "must be above 0"));
        }
        let session_key_prefix = env.get(
            "SESSION_KEY_PREFIX",
            defaults.session_key_prefix,
            "Auth's Redis key prefix: live sessions are <prefix>:session:<id>",
        )?;
        Ok(Self {
            ticket_ttl: Duration::from_secs(ticket_ttl_secs),
            ping_interval,
            pong_timeout,
            buffer_capacity,
            max_connections_per_user,
            session_key_prefix,
        })
    }
}

fn invalid(variable: &str, reason: &str) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `POST /v1/notifications/ws-ticket` and `GET /v1/notifications/ws`, for any state that holds
/// a [`LiveHub`].
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    LiveHub: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(ticket::issue_ticket))
        .routes(routes!(socket::connect))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings =
            LiveSettings::from_env(&Env::from_pairs::<&str, &str>([])).expect("valid defaults");
        assert_eq!(settings.ticket_ttl, Duration::from_secs(30));
        assert_eq!(settings.buffer_capacity, 32);
        assert!(settings.pong_timeout < settings.ping_interval);
    }

    #[test]
    fn out_of_range_values_name_their_variable() {
        for (name, value) in [
            ("LIVE_TICKET_TTL_SECS", "0"),
            ("LIVE_TICKET_TTL_SECS", "3600"),
            ("LIVE_PING_INTERVAL_MS", "0"),
            ("LIVE_PONG_TIMEOUT_MS", "0"),
            ("LIVE_BUFFER_CAPACITY", "0"),
            ("LIVE_MAX_CONNECTIONS_PER_USER", "0"),
            ("LIVE_BUFFER_CAPACITY", "lots"),
        ] {
            let error =
                LiveSettings::from_env(&Env::from_pairs([(name, value)])).expect_err("refused");
            assert_eq!(error.variable, name, "{name}={value}");
        }
    }
}
