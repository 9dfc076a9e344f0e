//! With Redis unreachable, security state can neither be checked nor changed: the service
//! answers 503 rather than pretending. Redis is put behind a TCP relay the test can cut.

use std::net::SocketAddr;

use reqwest::Method;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::helpers::{Api, PASSWORD, problem_code};

/// Forwards connections to the real Redis until cut.
struct RedisRelay {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl RedisRelay {
    async fn start_on(addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut redis) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
                    }
                });
            }
        });
        Self {
            addr,
            task: Some(task),
        }
    }

    /// Closes the listener and every relayed connection.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    async fn restore(&mut self) {
        *self = Self::start_on(&self.addr.to_string()).await;
    }
}

#[tokio::test]
async fn without_redis_logout_and_login_answer_503_and_a_retry_finishes_the_logout() {
    let mut relay = RedisRelay::start_on("127.0.0.1:0").await;
    let url = format!("redis://{}", relay.addr);
    let api = Api::spawn_with(&[("REDIS_URL", url.as_str())]).await;
    let session = api.signed_up("jane@example.com").await;

    relay.cut().await;
    let logout = api
        .as_user(&session, Method::POST, "/v1/auth/logout")
        .send()
        .await
        .unwrap();
    let login = api.login("jane@example.com", PASSWORD).await;

    assert_eq!(logout.status(), 503);
    let problem: Value = logout.json().await.unwrap();
    assert_eq!(problem_code(&problem), "service-unavailable");
    assert_eq!(login.status(), 503);
    // Revoked in Postgres, but the allow-list could not be updated: the client was told so.
    assert!(api.session_allowed(session.session_id).await);

    relay.restore().await;
    let mut retried = None;
    for _ in 0..10 {
        let response = api
            .as_user(&session, Method::POST, "/v1/auth/logout")
            .send()
            .await
            .unwrap();
        if response.status() == 204 {
            retried = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(
        retried.is_some(),
        "logout never succeeded after Redis came back"
    );
    assert!(!api.session_allowed(session.session_id).await);
}
