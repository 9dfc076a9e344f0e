//! The sender is replica-safe: two senders working the same delivery log send each message once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use notification_service::NotificationService;
use notification_service::delivery::{Sender, send_due};
use notification_service::providers::{
    Email, EmailProvider, ProviderError, Providers, Push, PushProvider, Sms, SmsProvider,
};
use notification_service::storage::ObjectStore;
use service_kit::Service;
use uuid::Uuid;

use crate::helpers::Api;

/// A provider that takes its time and counts what it was given.
#[derive(Default)]
struct Counting {
    sent: Mutex<HashMap<Uuid, u32>>,
}

impl Counting {
    fn record(&self, id: Uuid) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            *self.sent.lock().unwrap().entry(id).or_default() += 1;
            Ok(format!("counted-{id}"))
        })
    }
}

impl EmailProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<String, ProviderError>> {
        self.record(email.id)
    }
}

impl SmsProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<String, ProviderError>> {
        self.record(sms.id)
    }
}

impl PushProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn send<'a>(&'a self, push: &'a Push) -> BoxFuture<'a, Result<String, ProviderError>> {
        self.record(push.id)
    }
}

struct NoFiles;

impl ObjectStore for NoFiles {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, ProviderError>> {
        Box::pin(async move { Err(ProviderError::Permanent(format!("no {key}"))) })
    }
}

#[tokio::test]
async fn two_senders_on_one_delivery_log_send_every_message_exactly_once() {
    // The service runs no sender of its own: the two below do the work.
    let api = Api::spawn_with(&[
        ("NOTIFICATION_SENDER", "false"),
        ("NOTIFICATION_BATCH_SIZE", "3"),
    ])
    .await;
    for n in 0..24 {
        sqlx::query(
            "INSERT INTO notifications (id, channel, template, category, recipient, body_text)
             VALUES ($1, 'EMAIL', 'contact_ack', 'TRANSACTIONAL', $2, 'Thank you')",
        )
        .bind(Uuid::now_v7())
        .bind(format!("person{n}@example.com"))
        .execute(&api.pool)
        .await
        .unwrap();
    }
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'QUEUED'")
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(queued, 24);

    let env = service_kit::Env::from_pairs(api.app.env.clone());
    let config = NotificationService::config(&env).unwrap();
    let counting = Arc::new(Counting::default());
    let sender = Sender {
        db: api.pool.clone(),
        providers: Providers {
            email: counting.clone(),
            sms: counting.clone(),
            push: counting.clone(),
        },
        storage: Arc::new(NoFiles),
        settings: Arc::new(config.notification),
    };
    let drain = |sender: Sender| async move {
        let mut total = 0;
        loop {
            match send_due(&sender).await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(sender.clone())),
        tokio::spawn(drain(sender.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(
        a + b,
        24,
        "every message settled by exactly one sender ({a} + {b})"
    );
    let sent = counting.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 24);
    assert!(
        sent.values().all(|&n| n == 1),
        "a message was sent twice: {sent:?}"
    );
    let settled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE status = 'SENT' AND provider = 'counting'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(settled, 24);
}
