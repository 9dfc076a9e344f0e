//! Serving HTTP on threads of their own, each with a single-threaded runtime — the shape of
//! nginx's worker processes.
//!
//! On the gateway's proxy path this is worth about a third more requests per second than serving
//! on the work-stealing main runtime (measured, `bench/RESULTS.md`): a connection, its upstream
//! connection and their wake-ups stay on one thread, so a request crosses no thread boundary and
//! no idle worker is woken to steal it. Each thread's runtime has its own timers and I/O driver;
//! what a service shares across threads (its state, the Redis and database clients of the main
//! runtime) works from any of them.
//!
//! One acceptor on the main runtime deals connections out in turn. Letting every thread accept
//! from the shared socket instead leaves the balance to whichever thread wakes first: a burst of
//! new connections (a load balancer's pool opening) all lands on one thread, and one core works
//! while the other idles.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

/// A connection accepted on the main runtime, on its way to a serving thread.
type Handed = (std::net::TcpStream, SocketAddr);

/// Serves `app` on `serving.http_workers` threads until `shutdown`, then drains within the grace
/// period; returns the deadline the background tasks have left. The counterpart of
/// `serve_here` for [`super::serve`].
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: &CancellationToken,
    serving: super::Serving,
) -> anyhow::Result<tokio::time::Instant> {
    let mut workers = Workers::spawn(
        serving.service,
        listener,
        app,
        serving.http_workers,
        shutdown.clone(),
    )?;
    tokio::select! {
        // Shutdown first: the threads stop soon after it, and that is no error.
        biased;
        () = shutdown.cancelled() => {
            tracing::info!("shutting down: draining in-flight requests and tasks");
            let deadline = tokio::time::Instant::now() + serving.grace;
            match tokio::time::timeout_at(deadline, workers.all_stopped()).await {
                Ok(outcome) => outcome?,
                Err(_) => {
                    tracing::warn!("in-flight requests outlived the grace period");
                    workers.stop_now();
                }
            }
            Ok(deadline)
        }
        outcome = workers.next_stopped() => {
            // A thread stopped on its own: an error; stop everything.
            shutdown.cancel();
            workers.stop_now();
            outcome?;
            Ok(tokio::time::Instant::now() + serving.grace)
        }
    }
}

/// The serving threads of one service.
pub(super) struct Workers {
    running: FuturesUnordered<oneshot::Receiver<io::Result<()>>>,
    stop_now: CancellationToken,
    /// Stops the threads when this is dropped — when the task serving the service is dropped
    /// with its runtime, as at the end of a test — so they never outlive their service.
    _abandoned: DropGuard,
}

impl Workers {
    /// Starts `count` threads (at least one) serving `app`, and deals them the connections
    /// `listener` accepts until `graceful` is cancelled; then they finish their connections and
    /// stop. [`Workers::stop_now`] drops everything at once.
    pub(super) fn spawn(
        service: &'static str,
        listener: TcpListener,
        app: Router,
        count: usize,
        graceful: CancellationToken,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let stop_now = CancellationToken::new();
        let workers = Self {
            running: FuturesUnordered::new(),
            _abandoned: stop_now.clone().drop_guard(),
            stop_now,
        };
        let mut queues = Vec::new();
        for index in 0..count.max(1) {
            let (queue, handed) = mpsc::unbounded_channel();
            let connections = HandedConnections { handed, local_addr };
            let app = app.clone();
            let graceful = graceful.clone();
            let stop_now = workers.stop_now.clone();
            let (done, finished) = oneshot::channel();
            std::thread::Builder::new()
                .name(format!("{service}-http-{index}"))
                .spawn(move || {
                    let outcome = serve_on_this_thread(connections, app, graceful, stop_now);
                    let _ = done.send(outcome);
                })?;
            workers.running.push(finished);
            queues.push(queue);
        }
        tokio::spawn(deal(listener, queues, graceful, workers.stop_now.clone()));
        Ok(workers)
    }

    /// Resolves when the next thread stops, with its outcome; never, once all have stopped.
    pub(super) async fn next_stopped(&mut self) -> io::Result<()> {
        match self.running.next().await {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(io::Error::other("an HTTP worker thread panicked")),
            None => std::future::pending().await,
        }
    }

    /// Resolves when every thread has stopped, with the first failure if any.
    pub(super) async fn all_stopped(&mut self) -> io::Result<()> {
        let mut outcome = Ok(());
        while !self.running.is_empty() {
            if let Err(error) = self.next_stopped().await
                && outcome.is_ok()
            {
                outcome = Err(error);
            }
        }
        outcome
    }

    /// Drops every connection, finished or not.
    pub(super) fn stop_now(&self) {
        self.stop_now.cancel();
    }
}

/// Accepts until shutdown, handing each connection to the next thread in turn.
async fn deal(
    listener: TcpListener,
    queues: Vec<mpsc::UnboundedSender<Handed>>,
    graceful: CancellationToken,
    stop_now: CancellationToken,
) {
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            () = graceful.cancelled() => return,
            () = stop_now.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let handed = match accepted.and_then(|(stream, peer)| Ok((stream.into_std()?, peer))) {
            Ok(handed) => handed,
            Err(error) => {
                // Out of file descriptors and the like: axum's own accept loop waits a second too.
                tracing::error!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // A thread that has stopped is skipped; when none is left, `serve` is stopping anyway.
        let mut handed = handed;
        for _ in 0..queues.len() {
            let queue = &queues[next];
            next = (next + 1) % queues.len();
            match queue.send(handed) {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => handed = back,
            }
        }
    }
}

/// The connections a serving thread is dealt, as axum's listener.
struct HandedConnections {
    handed: mpsc::UnboundedReceiver<Handed>,
    local_addr: SocketAddr,
}

impl axum::serve::Listener for HandedConnections {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.handed.recv().await else {
                // The acceptor has stopped: shutdown, which ends `serve` for this thread.
                return std::future::pending().await;
            };
            // Registered with this thread's runtime.
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, peer),
                Err(error) => tracing::warn!(%error, "cannot take over a connection"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

fn serve_on_this_thread(
    connections: HandedConnections,
    app: Router,
    graceful: CancellationToken,
    stop_now: CancellationToken,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Returning drops the runtime and with it every connection task still running.
    runtime.block_on(async move {
        // An answer may leave in several writes (a streamed body): Nagle's algorithm would hold
        // the later ones back until the client acknowledges the first, up to a delayed ACK.
        let connections = connections.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let server = axum::serve(
            connections,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(graceful.cancelled_owned());
        tokio::select! {
            outcome = server.into_future() => outcome,
            () = stop_now.cancelled() => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What a handler saw: the thread serving it and the peer address.
    async fn who(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
        format!(
            "{} {peer}",
            std::thread::current().name().unwrap_or("unnamed")
        )
    }

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "finished"
    }

    /// One keep-alive request on `stream`; the body of the answer.
    async fn get_on(stream: &mut TcpStream, path: &str) -> String {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed mid-answer");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if body.len() >= length {
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    return body.to_owned();
                }
            }
        }
    }

    async fn start(count: usize) -> (SocketAddr, Workers, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/who", get(who))
            .route("/slow", get(slow));
        let graceful = CancellationToken::new();
        let workers = Workers::spawn("test", listener, app, count, graceful.clone()).unwrap();
        (addr, workers, graceful)
    }

    #[tokio::test]
    async fn connections_are_dealt_to_the_threads_in_turn_and_keep_their_thread() {
        let (addr, mut workers, graceful) = start(2).await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let local = stream.local_addr().unwrap();
            let first = get_on(&mut stream, "/who").await;
            let (thread, peer) = first.split_once(' ').unwrap();
            assert_eq!(
                peer,
                local.to_string(),
                "the handler sees the client's address"
            );
            assert!(thread.starts_with("test-http-"), "{thread}");
            // Keep-alive: the next request on the connection is served by the same thread.
            assert_eq!(get_on(&mut stream, "/who").await, first);
            seen.push(thread.to_owned());
        }
        assert_eq!(
            seen,
            ["test-http-0", "test-http-1", "test-http-0", "test-http-1"]
        );
        graceful.cancel();
        tokio::time::timeout(Duration::from_secs(5), workers.all_stopped())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_lets_a_request_in_flight_finish_and_refuses_new_connections() {
        let (addr, mut workers, graceful) = start(2).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let in_flight = tokio::spawn(async move { get_on(&mut stream, "/slow").await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        graceful.cancel();
        assert_eq!(in_flight.await.unwrap(), "finished");
        tokio::time::timeout(Duration::from_secs(5), workers.all_stopped())
            .await
            .unwrap()
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listening socket is closed once serving stops"
        );
    }

    #[tokio::test]
    async fn dropping_the_workers_stops_their_threads() {
        let (addr, workers, _graceful) = start(1).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        get_on(&mut stream, "/who").await;
        drop(workers);
        // The thread drops its runtime and with it the connection: the client reads the end.
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}
