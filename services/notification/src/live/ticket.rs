//! WebSocket tickets: short-lived, single-use, stored hashed in Redis.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use service_kit::{ApiResult, Caller, Problem};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::LiveHub;

/// Random bytes in a ticket (256 bits: not guessable within its lifetime).
const TICKET_BYTES: usize = 32;

/// A ticket for `GET /v1/notifications/ws?ticket=...`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WsTicket {
    /// Opaque; pass it as the `ticket` query parameter of the upgrade. Usable once.
    pub ticket: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Whom a ticket was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TicketHolder {
    pub(crate) user_id: Uuid,
    pub(crate) session_id: Uuid,
}

impl TicketHolder {
    /// What Redis stores for the ticket: `<user id> <session id>`.
    fn encode(&self) -> String {
        format!("{} {}", self.user_id, self.session_id)
    }

    fn decode(stored: &str) -> Option<Self> {
        let (user_id, session_id) = stored.split_once(' ')?;
        Some(Self {
            user_id: user_id.parse().ok()?,
            session_id: session_id.parse().ok()?,
        })
    }
}

/// The Redis key of `ticket`: its SHA-256, so the stored keys are useless to whoever reads them.
fn key(hub: &LiveHub, ticket: &str) -> String {
    hub.redis()
        .key("ws-ticket", hex(&Sha256::digest(ticket.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A ticket is exactly what [`issue_ticket`] makes: 43 URL-safe base64 characters. Anything
/// else is refused without asking Redis.
fn well_formed(ticket: &str) -> bool {
    ticket.len() == 43
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Issues a ticket for `holder`.
pub(crate) async fn issue(hub: &LiveHub, holder: &TicketHolder) -> redis::RedisResult<WsTicket> {
    let mut bytes = [0u8; TICKET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let ticket = URL_SAFE_NO_PAD.encode(bytes);
    let ttl = hub.settings().ticket_ttl;
    let mut conn = hub.redis().conn();
    redis::cmd("SET")
        .arg(key(hub, &ticket))
        .arg(holder.encode())
        .arg("EX")
        .arg(ttl.as_secs())
        .query_async::<()>(&mut conn)
        .await?;
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    Ok(WsTicket { ticket, expires_at })
}

/// Redeems `ticket`: its holder the first time, `None` ever after, after it expired, or for
/// anything that is not a ticket. `GETDEL` makes reading and burning it one step, so two
/// upgrades racing with the same ticket cannot both succeed.
pub(crate) async fn redeem(
    hub: &LiveHub,
    ticket: &str,
) -> redis::RedisResult<Option<TicketHolder>> {
    if !well_formed(ticket) {
        return Ok(None);
    }
    let mut conn = hub.redis().conn();
    let stored: Option<String> = redis::cmd("GETDEL")
        .arg(key(hub, ticket))
        .query_async(&mut conn)
        .await?;
    Ok(stored.as_deref().and_then(TicketHolder::decode))
}

/// Whether auth still lists `session_id` as live (the allow-list the gateway checks): logout,
/// revocation and suspension remove it.
pub(crate) async fn session_live(hub: &LiveHub, session_id: Uuid) -> redis::RedisResult<bool> {
    let mut conn = hub.redis().conn();
    redis::cmd("EXISTS")
        .arg(auth_client::session_key(
            &hub.settings().session_key_prefix,
            session_id,
        ))
        .query_async::<bool>(&mut conn)
        .await
}

/// Issues a single-use ticket for opening the live WebSocket (browsers cannot send headers on
/// an upgrade, so the ticket carries the caller's identity into it).
#[utoipa::path(
    post,
    path = "/v1/notifications/ws-ticket",
    tag = "live notifications",
    responses(
        (status = 201, description = "A ticket, valid once and for a few seconds", body = WsTicket),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn issue_ticket(
    State(hub): State<LiveHub>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<WsTicket>)> {
    let holder = TicketHolder {
        user_id: caller.user_id,
        session_id: caller.session_id,
    };
    match issue(&hub, &holder).await {
        Ok(ticket) => Ok((StatusCode::CREATED, Json(ticket))),
        Err(error) => {
            tracing::warn!(%error, "cannot store a WebSocket ticket");
            Err(Problem::unavailable(
                "Live notifications are unavailable; try again shortly.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shape_of_an_issued_ticket_is_worth_looking_up() {
        let issued = URL_SAFE_NO_PAD.encode([7u8; TICKET_BYTES]);
        assert!(well_formed(&issued));
        assert!(!well_formed(""));
        assert!(!well_formed(&issued[1..]));
        assert!(!well_formed(&format!("{}*", &issued[1..])));
        assert!(!well_formed(&"a".repeat(1000)));
    }

    #[test]
    fn a_stored_holder_reads_back_and_anything_else_reads_as_nobody() {
        let holder = TicketHolder {
            user_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
        };
        assert_eq!(TicketHolder::decode(&holder.encode()), Some(holder));
        assert_eq!(TicketHolder::decode("not a holder"), None);
        assert_eq!(TicketHolder::decode(""), None);
    }

    #[test]
    fn hex_spells_every_byte_in_two_lowercase_digits() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
