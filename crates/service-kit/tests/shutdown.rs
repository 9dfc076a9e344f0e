//! Graceful shutdown: a request in flight when the signal comes still gets its answer, new
//! connections are refused, and background tasks are told to stop and are waited for — whether
//! HTTP is served on the main runtime or on threads of its own.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use service_kit::service::{Serving, serve, task};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn in_flight_requests_finish_and_tasks_stop_on_shutdown() {
    shut_down_while_serving(0).await;
}

#[tokio::test]
async fn in_flight_requests_finish_and_tasks_stop_on_shutdown_with_serving_threads() {
    shut_down_while_serving(2).await;
}

async fn shut_down_while_serving(http_workers: usize) {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let app = {
        let (entered, release) = (entered.clone(), release.clone());
        Router::new().route(
            "/work",
            get(move || {
                let (entered, release) = (entered.clone(), release.clone());
                async move {
                    entered.notify_one();
                    release.notified().await;
                    "finished"
                }
            }),
        )
    };
    let task_saw_cancel = Arc::new(AtomicBool::new(false));
    let background = {
        let saw = task_saw_cancel.clone();
        task(move |token: CancellationToken| async move {
            token.cancelled().await;
            saw.store(true, Ordering::SeqCst);
        })
    };

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        app,
        vec![background],
        shutdown.clone(),
        Serving {
            service: "test",
            http_workers,
            grace: Duration::from_secs(10),
        },
    ));

    let in_flight = tokio::spawn(reqwest::get(format!("http://{addr}/work")));
    entered.notified().await;
    shutdown.cancel();
    // Give the server a moment to stop accepting before letting the handler finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.notify_one();

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    server.await.unwrap().unwrap();
    assert!(task_saw_cancel.load(Ordering::SeqCst));
    assert!(
        reqwest::get(format!("http://{addr}/work")).await.is_err(),
        "no new connections after shutdown"
    );
}
