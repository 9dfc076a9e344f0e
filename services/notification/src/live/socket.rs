//! `GET /v1/notifications/ws`: the upgrade, and the life of one socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use service_kit::Problem;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::hub::Registration;
use super::ticket::{self, TicketHolder};
use super::{LiveEvent, LiveHub, LiveKind};

/// The largest message a client may send (it has nothing to say beyond pongs and close).
const MAX_CLIENT_MESSAGE: usize = 4 << 10;
/// How long a close frame may take to leave, and the client's answer to arrive.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The query of the upgrade request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UpgradeQuery {
    /// A ticket from `POST /v1/notifications/ws-ticket`.
    ticket: Option<String>,
}

/// Opens the live notification WebSocket of the ticket's holder. The server then sends JSON
/// text messages `{id, type, data, at}`: `CONNECTED` first, then `BOOKING_CONFIRMED`,
/// `ORDER_PAID` and `TICKET_UPDATED` as they happen; it pings regularly and closes a socket
/// that does not answer or whose session ended (1008), or that does not keep up with its
/// messages (1013).
#[utoipa::path(
    get,
    path = "/v1/notifications/ws",
    tag = "live notifications",
    params(
        UpgradeQuery,
        // The handshake of RFC 6455 section 4.1: without it the request is a plain GET (400).
        ("Connection" = String, Header, description = "`Upgrade`", pattern = "^[Uu][Pp][Gg][Rr][Aa][Dd][Ee]$"),
        ("Upgrade" = String, Header, description = "`websocket`", pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`", pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes in base64", pattern = "^[A-Za-z0-9+/]{22}==$"),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown, expired or already used ticket, or its session ended", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many live sockets open for this user", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Shutting down, or Redis is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn connect(
    State(hub): State<LiveHub>,
    Query(query): Query<UpgradeQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(ticket) = query.ticket.as_deref() else {
        return refused("Pass a ticket from POST /v1/notifications/ws-ticket.");
    };
    let holder = match ticket::redeem(&hub, ticket).await {
        Ok(Some(holder)) => holder,
        Ok(None) => return refused("The ticket is unknown, expired or already used."),
        Err(error) => {
            tracing::warn!(%error, "cannot redeem a WebSocket ticket");
            return Problem::unavailable("Live notifications are unavailable; try again shortly.")
                .into_response();
        }
    };
    match ticket::session_live(&hub, holder.session_id).await {
        Ok(true) => {}
        Ok(false) => return refused("The session the ticket was issued to has ended."),
        Err(error) => {
            tracing::warn!(%error, "cannot check the session of a WebSocket ticket");
            return Problem::unavailable("Live notifications are unavailable; try again shortly.")
                .into_response();
        }
    }
    if hub.closing().is_cancelled() {
        return Problem::unavailable("This instance is shutting down; reconnect.").into_response();
    }
    if hub.sockets_of(holder.user_id) >= hub.settings().max_connections_per_user {
        return Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-live-sockets",
            "Too many live sockets",
        )
        .with_detail("Close another live notification socket first.")
        .into_response();
    }
    upgrade
        // Clients send nothing but pongs and a close: a small read buffer (128 KiB by default,
        // allocated per socket) keeps an idle socket cheap.
        .read_buffer_size(MAX_CLIENT_MESSAGE)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| run(socket, hub, holder))
}

fn refused(detail: &str) -> Response {
    metrics::counter!("live_tickets_refused_total").increment(1);
    Problem::unauthorized(detail).into_response()
}

/// Why a socket ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The service is stopping (1001).
    Shutdown,
    /// Its buffer overflowed (1013).
    TooSlow,
    /// No pong in time (1008).
    NoPong,
    /// The session was logged out or revoked (1008).
    SessionEnded,
    /// The client closed, vanished or broke the protocol: nothing left to say.
    Gone,
}

impl End {
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::Shutdown => (close_code::AWAY, "server shutting down; reconnect"),
            Self::TooSlow => (close_code::AGAIN, "too slow to keep up; reconnect"),
            Self::NoPong => (close_code::POLICY, "no pong in time"),
            Self::SessionEnded => (close_code::POLICY, "session ended"),
            Self::Gone => return None,
        };
        Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })
    }
}

/// One socket: registered with the hub for its user, fed from its bounded buffer, pinged, and
/// closed on shutdown, overflow or a missing pong.
async fn run(mut socket: WebSocket, hub: LiveHub, holder: TicketHolder) {
    let Some(mut registration) = hub.register(holder.user_id) else {
        // Another socket of the same user won the last place since the check.
        close(&mut socket, End::TooSlow).await;
        return;
    };
    tracing::debug!(user_id = %holder.user_id, session_id = %holder.session_id, "live socket open");
    let settings = hub.settings().clone();
    let end = serve(&mut socket, &hub, &holder, &mut registration, &settings).await;
    // Leave the registry before the (possibly slow) close, so nothing more is queued for it.
    drop(registration);
    let reason = match end {
        End::NoPong => Some("heartbeat_timeout"),
        End::SessionEnded => Some("session_ended"),
        // Counted where the hub let go of it.
        End::TooSlow | End::Shutdown | End::Gone => None,
    };
    if let Some(reason) = reason {
        metrics::counter!("live_connections_dropped_total", "reason" => reason).increment(1);
    }
    tracing::debug!(user_id = %holder.user_id, ?end, "live socket closed");
    close(&mut socket, end).await;
}

async fn serve(
    socket: &mut WebSocket,
    hub: &LiveHub,
    holder: &TicketHolder,
    registration: &mut Registration,
    settings: &super::LiveSettings,
) -> End {
    let mut guard = Guard {
        closing: hub.closing().clone(),
        too_slow: registration.too_slow.clone(),
        pong_deadline: None,
    };
    let hello = LiveEvent::new(
        LiveKind::Connected,
        json!({
            "pingIntervalMs": settings.ping_interval.as_millis() as u64,
            "pongTimeoutMs": settings.pong_timeout.as_millis() as u64,
        }),
    );
    let hello = match serde_json::to_string(&hello) {
        Ok(text) => text,
        Err(_) => return End::Gone,
    };
    if let Err(end) = guard.send(socket, Message::Text(hello.into())).await {
        return end;
    }
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let sent = tokio::select! {
            biased;
            () = guard.closing.cancelled() => return End::Shutdown,
            () = guard.too_slow.cancelled() => return End::TooSlow,
            () = guard.expired() => return End::NoPong,
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Pong(_))) => guard.pong_deadline = None,
                    // Pings are answered by the protocol layer; text and binary mean nothing here.
                    Some(Ok(Message::Ping(_) | Message::Text(_) | Message::Binary(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Gone,
                }
                Ok(())
            }
            queued = registration.receiver.recv() => match queued {
                Some(text) => guard.send(socket, Message::Text(text)).await,
                // The hub let go of this socket: only an overflow does that.
                None => return End::TooSlow,
            },
            _ = ping.tick() => {
                match ticket::session_live(hub, holder.session_id).await {
                    Ok(true) => {}
                    Ok(false) => return End::SessionEnded,
                    // Redis is failing: pub/sub delivers nothing meanwhile either; check again
                    // at the next ping rather than drop every socket at once.
                    Err(error) => tracing::debug!(%error, "cannot check a live socket's session"),
                }
                if guard.pong_deadline.is_none() {
                    guard.pong_deadline = Some(Instant::now() + settings.pong_timeout);
                }
                guard.send(socket, Message::Ping(Default::default())).await
            }
        };
        if let Err(end) = sent {
            return end;
        }
    }
}

/// What may interrupt a send to a client that stopped reading.
struct Guard {
    closing: CancellationToken,
    too_slow: CancellationToken,
    pong_deadline: Option<Instant>,
}

impl Guard {
    /// Resolves when the pong deadline passes (never while no ping awaits its pong).
    async fn expired(&self) {
        match self.pong_deadline {
            Some(deadline) => sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }

    /// Sends `message`, unless the service stops, the buffer overflows or the pong deadline
    /// passes first: a client that stopped reading blocks the write, and must not hold its
    /// socket open by doing so.
    async fn send(&self, socket: &mut WebSocket, message: Message) -> Result<(), End> {
        tokio::select! {
            biased;
            () = self.closing.cancelled() => Err(End::Shutdown),
            () = self.too_slow.cancelled() => Err(End::TooSlow),
            () = self.expired() => Err(End::NoPong),
            sent = socket.send(message) => sent.map_err(|_| End::Gone),
        }
    }
}

/// Sends the close frame for `end` and waits briefly for the client's answer, so the client
/// reads the close code rather than a reset; gives up quickly on a client that is not reading.
async fn close(socket: &mut WebSocket, end: End) {
    let Some(frame) = end.close_frame() else {
        return;
    };
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let sent = tokio::time::timeout_at(deadline, socket.send(Message::Close(Some(frame)))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout_at(deadline, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
