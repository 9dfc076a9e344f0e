//! In-process backend, for unit tests only: queues live in this process and die with it.
//!
//! It keeps the semantics consumers rely on: per-service queues bound to topics, at-least-once
//! delivery (an unsettled message goes back to its queue when its acknowledger is dropped),
//! delayed retries and a dead-letter queue.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::{
    BusError,
    bus::{
        Acknowledger, Bus, Incoming, MessageStream, OutgoingMessage, PublishOutcome, Subscription,
    },
    config::BusConfig,
    dlq::{DeadLetter, Replay},
};

#[derive(Clone)]
struct Stored {
    body: Arc<Vec<u8>>,
    /// Deliveries so far.
    deliveries: u32,
}

#[derive(Default)]
struct State {
    bindings: HashMap<String, HashSet<String>>,
    queues: HashMap<String, VecDeque<Stored>>,
    dead_letters: HashMap<String, Vec<DeadLetter>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    arrived: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters to tests, so recover from poisoning.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn requeue(&self, queue: &str, message: Stored) {
        self.lock()
            .queues
            .entry(queue.to_owned())
            .or_default()
            .push_back(message);
        self.arrived.notify_waiters();
    }
}

/// The in-process bus.
pub(crate) struct MemoryBus {
    config: BusConfig,
    shared: Arc<Shared>,
}

impl MemoryBus {
    pub(crate) fn new(config: BusConfig) -> Self {
        Self {
            config,
            shared: Arc::default(),
        }
    }
}

impl Bus for MemoryBus {
    fn config(&self) -> &BusConfig {
        &self.config
    }

    fn publish_batch<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, PublishOutcome> {
        Box::pin(async move {
            {
                let mut state = self.shared.lock();
                for message in messages {
                    let body = Arc::new(message.body.clone());
                    let targets: Vec<String> = state
                        .bindings
                        .iter()
                        .filter(|(_, topics)| topics.contains(&message.topic))
                        .map(|(queue, _)| queue.clone())
                        .collect();
                    for queue in targets {
                        state.queues.entry(queue).or_default().push_back(Stored {
                            body: Arc::clone(&body),
                            deliveries: 0,
                        });
                    }
                }
            }
            self.shared.arrived.notify_waiters();
            PublishOutcome {
                published: messages.len(),
                error: None,
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        subscription: &'a Subscription,
    ) -> BoxFuture<'a, Result<Box<dyn MessageStream>, BusError>> {
        Box::pin(async move {
            let queue = self.config.queue_name(&subscription.service);
            let mut state = self.shared.lock();
            state
                .bindings
                .entry(queue.clone())
                .or_default()
                .extend(subscription.topics.iter().cloned());
            state.queues.entry(queue.clone()).or_default();
            Ok(Box::new(MemoryStream {
                shared: Arc::clone(&self.shared),
                queue,
            }) as Box<dyn MessageStream>)
        })
    }

    fn check_ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn queue_depth<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Option<u64>, BusError>> {
        Box::pin(async move {
            let queue = self.config.queue_name(service);
            Ok(self
                .shared
                .lock()
                .queues
                .get(&queue)
                .map(|q| u64::try_from(q.len()).unwrap_or(u64::MAX)))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(async move {
            let queue = self.config.queue_name(service);
            Ok(self
                .shared
                .lock()
                .dead_letters
                .get(&queue)
                .cloned()
                .unwrap_or_default())
        })
    }

    fn replay_dead_letters<'a>(
        &'a self,
        service: &'a str,
        selection: Replay,
    ) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let queue = self.config.queue_name(service);
            let replayed = {
                let mut state = self.shared.lock();
                let all = state.dead_letters.remove(&queue).unwrap_or_default();
                let (chosen, kept): (Vec<_>, Vec<_>) =
                    all.into_iter().partition(|d| d.is_selected(selection));
                state.dead_letters.insert(queue.clone(), kept);
                let target = state.queues.entry(queue).or_default();
                for dead_letter in &chosen {
                    target.push_back(Stored {
                        body: Arc::new(dead_letter.body.clone().into_bytes()),
                        deliveries: 0,
                    });
                }
                chosen.len()
            };
            self.shared.arrived.notify_waiters();
            Ok(replayed)
        })
    }
}

struct MemoryStream {
    shared: Arc<Shared>,
    queue: String,
}

impl MessageStream for MemoryStream {
    fn next(&mut self) -> BoxFuture<'_, Result<Incoming, BusError>> {
        Box::pin(async move {
            loop {
                let arrived = self.shared.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let next = self
                    .shared
                    .lock()
                    .queues
                    .get_mut(&self.queue)
                    .and_then(VecDeque::pop_front);
                if let Some(mut message) = next {
                    message.deliveries += 1;
                    return Ok(Incoming {
                        body: message.body.to_vec(),
                        attempt: message.deliveries,
                        acknowledger: Box::new(MemoryAcknowledger {
                            shared: Arc::clone(&self.shared),
                            queue: self.queue.clone(),
                            message: Some(message),
                        }),
                    });
                }
                arrived.await;
            }
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

struct MemoryAcknowledger {
    shared: Arc<Shared>,
    queue: String,
    /// `None` once settled.
    message: Option<Stored>,
}

impl Drop for MemoryAcknowledger {
    fn drop(&mut self) {
        // Unsettled: back to the queue, as a broker does when a consumer goes away.
        if let Some(message) = self.message.take() {
            self.shared.requeue(&self.queue, message);
        }
    }
}

impl Acknowledger for MemoryAcknowledger {
    fn ack(mut self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        self.message = None;
        Box::pin(async { Ok(()) })
    }

    fn retry(mut self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        let message = self.message.take();
        let shared = Arc::clone(&self.shared);
        let queue = self.queue.clone();
        Box::pin(async move {
            if let Some(message) = message {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    shared.requeue(&queue, message);
                });
            }
            Ok(())
        })
    }

    fn dead_letter(
        mut self: Box<Self>,
        reason: String,
    ) -> BoxFuture<'static, Result<(), BusError>> {
        if let Some(message) = self.message.take() {
            let dead_letter = DeadLetter {
                dead_lettered_at: Some(chrono::Utc::now()),
                ..DeadLetter::from_body(&message.body, reason, message.deliveries)
            };
            self.shared
                .lock()
                .dead_letters
                .entry(self.queue.clone())
                .or_default()
                .push(dead_letter);
        }
        Box::pin(async { Ok(()) })
    }
}
