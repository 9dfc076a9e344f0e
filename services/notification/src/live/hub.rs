//! The hub: publishes live messages to Redis, and on every replica routes what the shared
//! channel carries to that replica's sockets.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use rand::Rng;
use serde::{Deserialize, Serialize};
use service_kit::redis::Redis;
use service_kit::{BackgroundTask, task};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use uuid::Uuid;

use super::{LiveEvent, LiveSettings};

/// How long connecting (and subscribing) to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the subscriber pings its pub/sub connection: a connection that died without a
/// FIN (a half-open TCP connection) would otherwise look idle forever.
const SUBSCRIBER_PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long that ping may take before the connection counts as dead.
const SUBSCRIBER_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// First and longest wait between two reconnection attempts.
const RECONNECT_BASE: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How long shutdown waits for the sockets to send their close frames.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// What the shared channel carries: a message and the user it is for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    user_id: Uuid,
    message: LiveEvent,
}

/// Why a live message could not be published.
#[derive(Debug)]
pub enum PublishError {
    /// Redis refused or did not answer.
    Redis(redis::RedisError),
    /// The message could not be encoded.
    Encode(serde_json::Error),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(e) => write!(f, "cannot publish the live message to Redis: {e}"),
            Self::Encode(e) => write!(f, "cannot encode the live message: {e}"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Redis(e) => Some(e),
            Self::Encode(e) => Some(e),
        }
    }
}

/// A socket of this replica, as the router sees it.
struct Local {
    id: u64,
    sender: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the socket's buffer overflowed: its task closes it with 1013.
    too_slow: CancellationToken,
}

struct Inner {
    redis: Redis,
    channel: String,
    settings: LiveSettings,
    sockets: Mutex<HashMap<Uuid, Vec<Local>>>,
    next_id: AtomicU64,
    /// Cancelled when the service stops: every socket closes with 1001.
    closing: CancellationToken,
    /// Tracks the socket tasks so shutdown can wait for their close frames.
    open: TaskTracker,
}

/// Live notifications of one replica: publishing (to every replica, through Redis) and the
/// registry of the sockets this replica holds. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveHub")
            .field("channel", &self.inner.channel)
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// A hub publishing on `<prefix>:live:events` of `redis`. It routes nothing to local sockets
    /// until [`LiveHub::subscribe`] has started its subscriber.
    pub fn new(redis: Redis, settings: LiveSettings) -> Self {
        let channel = format!("{}:live:events", redis.prefix());
        Self {
            inner: Arc::new(Inner {
                redis,
                channel,
                settings,
                sockets: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                closing: CancellationToken::new(),
                open: TaskTracker::new(),
            }),
        }
    }

    /// Connects the dedicated pub/sub connection and subscribes now, so a started service hears
    /// every message published after it; the returned task then routes messages to local
    /// sockets, reconnects with backoff when the connection drops, and on shutdown closes every
    /// socket (1001) and stops.
    pub async fn subscribe(&self, redis_url: &str) -> anyhow::Result<BackgroundTask> {
        let client = redis::Client::open(redis_url).map_err(|e| {
            anyhow::anyhow!("invalid value for environment variable REDIS_URL: {e}")
        })?;
        let first = connect(&client, &self.inner.channel)
            .await
            .map_err(|e| anyhow::anyhow!("cannot subscribe to live notifications: {e}"))?;
        let hub = self.clone();
        Ok(task(move |token| hub.run_subscriber(client, first, token)))
    }

    /// Sends `event` to every socket `user_id` holds, on whichever replica. Succeeds once Redis
    /// has the message (whether or not the user is connected anywhere).
    pub async fn publish(&self, user_id: Uuid, event: &LiveEvent) -> Result<(), PublishError> {
        let payload = serde_json::to_string(&Envelope {
            user_id,
            message: event.clone(),
        })
        .map_err(PublishError::Encode)?;
        let mut conn = self.inner.redis.conn();
        redis::cmd("PUBLISH")
            .arg(&self.inner.channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(PublishError::Redis)?;
        metrics::counter!("live_messages_published_total").increment(1);
        Ok(())
    }

    /// Publishes when there is someone to tell, and never fails: live messages are best-effort
    /// (the delivery log is the record), so a Redis failure is logged and counted, and must not
    /// make an event handler roll back and redeliver.
    pub async fn push(&self, target: Option<(Uuid, LiveEvent)>) {
        let Some((user_id, event)) = target else {
            return;
        };
        if let Err(error) = self.publish(user_id, &event).await {
            metrics::counter!("live_publish_failures_total").increment(1);
            tracing::warn!(%error, kind = ?event.kind, "live message not published");
        }
    }

    /// The settings of the live channel.
    pub fn settings(&self) -> &LiveSettings {
        &self.inner.settings
    }

    /// The Redis handle (tickets live there too).
    pub(crate) fn redis(&self) -> &Redis {
        &self.inner.redis
    }

    /// How many sockets this replica holds for `user_id`.
    pub fn sockets_of(&self, user_id: Uuid) -> usize {
        self.sockets().get(&user_id).map_or(0, Vec::len)
    }

    /// How many sockets this replica holds.
    pub fn open_sockets(&self) -> usize {
        self.sockets().values().map(Vec::len).sum()
    }

    /// Adds a socket of `user_id`; `None` when the user holds too many on this replica already.
    pub(crate) fn register(&self, user_id: Uuid) -> Option<Registration> {
        let (sender, receiver) = mpsc::channel(self.inner.settings.buffer_capacity);
        let too_slow = CancellationToken::new();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut sockets = self.sockets();
            let mine = sockets.entry(user_id).or_default();
            if mine.len() >= self.inner.settings.max_connections_per_user {
                return None;
            }
            mine.push(Local {
                id,
                sender,
                too_slow: too_slow.clone(),
            });
        }
        metrics::gauge!("live_connections_open").increment(1.0);
        Some(Registration {
            hub: self.clone(),
            user_id,
            id,
            receiver,
            too_slow,
            _tracked: self.inner.open.token(),
        })
    }

    /// Cancelled when the service stops.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.inner.closing
    }

    fn sockets(&self) -> MutexGuard<'_, HashMap<Uuid, Vec<Local>>> {
        // A panic while holding the lock cannot leave the map inconsistent (every update is a
        // single push, retain or remove), so a poisoned lock is still usable.
        self.inner.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unregister(&self, user_id: Uuid, id: u64) {
        let mut sockets = self.sockets();
        if let Some(mine) = sockets.get_mut(&user_id) {
            mine.retain(|local| local.id != id);
            if mine.is_empty() {
                sockets.remove(&user_id);
            }
        }
    }

    /// Queues `text` on every local socket of `user_id` without ever waiting: a socket whose
    /// buffer is full is dropped from the registry and told to close. Returns how many sockets
    /// took the message.
    fn deliver_local(&self, user_id: Uuid, text: &Utf8Bytes) -> usize {
        let mut delivered = 0;
        let mut too_slow = Vec::new();
        {
            let mut sockets = self.sockets();
            let Some(mine) = sockets.get_mut(&user_id) else {
                return 0;
            };
            mine.retain(|local| match local.sender.try_send(text.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    too_slow.push(local.too_slow.clone());
                    false
                }
                // The socket's task has ended; its registration is being dropped.
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if mine.is_empty() {
                sockets.remove(&user_id);
            }
        }
        for socket in too_slow {
            metrics::counter!("live_connections_dropped_total", "reason" => "slow_consumer")
                .increment(1);
            socket.cancel();
        }
        if delivered > 0 {
            metrics::counter!("live_messages_delivered_total").increment(delivered as u64);
        }
        delivered
    }

    /// Routes one message from the channel.
    fn dispatch(&self, payload: &[u8]) {
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "ignored an unreadable live message");
                return;
            }
        };
        if self.sockets_of(envelope.user_id) == 0 {
            return;
        }
        match serde_json::to_string(&envelope.message) {
            Ok(text) => {
                self.deliver_local(envelope.user_id, &Utf8Bytes::from(text));
            }
            Err(error) => tracing::warn!(%error, "cannot encode a live message"),
        }
    }

    async fn run_subscriber(
        self,
        client: redis::Client,
        first: redis::aio::PubSub,
        token: CancellationToken,
    ) {
        let mut next = Some(first);
        let mut failures = 0u32;
        loop {
            let pubsub = match next.take() {
                Some(pubsub) => pubsub,
                None => {
                    let connected = tokio::select! {
                        () = token.cancelled() => break,
                        connected = connect(&client, &self.inner.channel) => connected,
                    };
                    match connected {
                        Ok(pubsub) => {
                            tracing::info!("live notifications: subscriber reconnected");
                            metrics::counter!("live_subscriber_reconnects_total").increment(1);
                            pubsub
                        }
                        Err(error) => {
                            failures += 1;
                            tracing::warn!(%error, failures, "live notifications: cannot resubscribe");
                            tokio::select! {
                                () = token.cancelled() => break,
                                () = tokio::time::sleep(backoff(failures)) => continue,
                            }
                        }
                    }
                }
            };
            failures = 0;
            metrics::gauge!("live_subscriber_connected").set(1.0);
            let stopped = self.listen(pubsub, &token).await;
            metrics::gauge!("live_subscriber_connected").set(0.0);
            if stopped {
                break;
            }
            // Messages published until the next subscription are not seen here (best-effort).
            failures += 1;
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(backoff(failures)) => {}
            }
        }
        self.close_all().await;
    }

    /// Routes messages until the connection fails (`false`) or the service stops (`true`).
    async fn listen(&self, pubsub: redis::aio::PubSub, token: &CancellationToken) -> bool {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(SUBSCRIBER_PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                () = token.cancelled() => return true,
                message = stream.next() => match message {
                    Some(message) => self.dispatch(message.get_payload_bytes()),
                    None => {
                        tracing::warn!("live notifications: lost the pub/sub connection");
                        return false;
                    }
                },
                _ = ping.tick() => {
                    let answered =
                        tokio::time::timeout(SUBSCRIBER_PING_TIMEOUT, sink.ping::<String>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        tracing::warn!("live notifications: the pub/sub connection stopped answering");
                        return false;
                    }
                }
            }
        }
    }

    /// Tells every socket to close (1001) and waits, briefly, for their close frames.
    async fn close_all(&self) {
        self.inner.closing.cancel();
        self.inner.open.close();
        if tokio::time::timeout(CLOSE_GRACE, self.inner.open.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.open_sockets(),
                "live sockets outlived the close grace"
            );
        }
    }
}

/// A socket's place in the registry; dropping it removes the socket.
pub(crate) struct Registration {
    hub: LiveHub,
    user_id: Uuid,
    id: u64,
    /// The socket's bounded buffer of messages to send.
    pub(crate) receiver: mpsc::Receiver<Utf8Bytes>,
    /// Cancelled when the buffer overflowed.
    pub(crate) too_slow: CancellationToken,
    _tracked: TaskTrackerToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.user_id, self.id);
        metrics::gauge!("live_connections_open").decrement(1.0);
    }
}

async fn connect(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "Redis did not answer",
        ))),
    }
}

/// `base × 2^(failures-1)` capped, with "equal jitter" so replicas do not reconnect in step.
fn backoff(failures: u32) -> Duration {
    let full = RECONNECT_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RECONNECT_MAX);
    let half = full / 2;
    let jitter = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::rng().random_range(0..=jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnection_backoff_grows_and_stays_capped() {
        assert!(backoff(1) <= RECONNECT_BASE);
        for failures in 1..40 {
            let wait = backoff(failures);
            assert!(wait <= RECONNECT_MAX, "{wait:?}");
            assert!(wait >= RECONNECT_BASE / 2, "{wait:?}");
        }
        assert!(backoff(30) >= RECONNECT_MAX / 2);
    }
}
