//! Live notifications over WebSocket: tickets, per-user delivery, fan-out across replicas
//! through Redis, slow clients, heartbeats and shutdown.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use notification_service::NotificationService;
use notification_service::live::{LiveEvent, LiveHub, LiveKind, LiveSettings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use service_kit::event_bus::{self, OutgoingMessage};
use service_kit::redis::Redis;
use service_kit::shared_types::appointment::{AppointmentType, BookingConfirmed};
use service_kit::shared_types::auth::{UserCreated, UserRole};
use service_kit::shared_types::customer::{TicketStatus, TicketUpdated};
use service_kit::shared_types::order_payment::PaymentSucceeded;
use service_kit::shared_types::{DomainEvent, EventPayload};
use test_support::{INTERNAL_TOKEN_HEADER, TestApp, TestUser, anonymous_token, unique_suffix};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

type Socket = WebSocketStream<TcpStream>;

/// How long a live message may take to arrive before the test fails (a bound, not a measure).
const ARRIVES_WITHIN: Duration = Duration::from_secs(1);
/// How long a socket may take to be closed once the server has reason to close it.
const CLOSED_WITHIN: Duration = Duration::from_secs(10);

/// The service, with its own prefix for auth's session keys unless `overrides` name one.
async fn spawn(overrides: &[(&str, &str)]) -> TestApp {
    let sessions = format!("test-{}:auth", unique_suffix());
    let mut env = vec![("SESSION_KEY_PREFIX", sessions.as_str())];
    env.extend_from_slice(overrides);
    TestApp::spawn_with::<NotificationService>(&env).await
}

async fn redis(app: &TestApp) -> Redis {
    let url = app
        .env
        .get("REDIS_URL")
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    Redis::connect(&url, &app.env["REDIS_KEY_PREFIX"])
        .await
        .expect("Redis is reachable")
}

/// Marks `user`'s session live in auth's allow-list, as auth does at sign-in.
async fn sign_in(app: &TestApp, user: &TestUser) {
    let key = auth_client::session_key(&app.env["SESSION_KEY_PREFIX"], user.session_id);
    let mut conn = redis(app).await.conn();
    redis::cmd("SET")
        .arg(key)
        .arg(user.id.to_string())
        .arg("EX")
        .arg(600)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

/// Ends `user`'s session, as logout or revocation does.
async fn sign_out(app: &TestApp, user: &TestUser) {
    let key = auth_client::session_key(&app.env["SESSION_KEY_PREFIX"], user.session_id);
    let mut conn = redis(app).await.conn();
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

fn customer() -> TestUser {
    TestUser::new(Role::Customer)
}

/// A publisher on the same Redis channel as `app` (what another replica's consumer would be).
async fn publisher(app: &TestApp) -> LiveHub {
    LiveHub::new(redis(app).await, LiveSettings::default())
}

fn event(kind: LiveKind, data: Value) -> LiveEvent {
    LiveEvent::new(kind, data)
}

/// A ticket for `user`, whose session is live.
async fn ticket_for(app: &TestApp, user: &TestUser) -> String {
    sign_in(app, user).await;
    let response = app
        .request_as(Method::POST, "/v1/notifications/ws-ticket", user)
        .send()
        .await
        .expect("request reaches the service");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("JSON body");
    assert!(body["expiresAt"].is_string(), "{body}");
    body["ticket"].as_str().expect("a ticket").to_owned()
}

/// Starts the upgrade as the gateway forwards it (anonymous internal token, ticket in the
/// query); `recv_buffer` shrinks the client's TCP receive buffer (for clients that stop
/// reading).
async fn upgrade(
    app: &TestApp,
    ticket: &str,
    recv_buffer: Option<u32>,
) -> Result<Socket, tungstenite::Error> {
    let addr = app.base_url.trim_start_matches("http://");
    let url = format!("ws://{addr}/v1/notifications/ws?ticket={ticket}");
    let mut request = url.into_client_request().expect("a valid URL");
    request.headers_mut().insert(
        INTERNAL_TOKEN_HEADER,
        anonymous_token().parse().expect("a header value"),
    );
    let socket = TcpSocket::new_v4().expect("a socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    let stream = socket
        .connect(addr.parse().expect("an address"))
        .await
        .expect("the service accepts TCP");
    tokio_tungstenite::client_async(request, stream)
        .await
        .map(|(socket, _)| socket)
}

/// Opens a socket for `user` and waits for the server's `CONNECTED`.
async fn open(app: &TestApp, user: &TestUser) -> Socket {
    open_with(app, user, None).await
}

async fn open_with(app: &TestApp, user: &TestUser, recv_buffer: Option<u32>) -> Socket {
    let ticket = ticket_for(app, user).await;
    let mut socket = upgrade(app, &ticket, recv_buffer)
        .await
        .expect("the upgrade succeeds");
    let hello = greeting(&mut socket).await;
    assert_eq!(hello["type"], "CONNECTED", "{hello}");
    socket
}

/// The next JSON text message, skipping control frames; fails after [`ARRIVES_WITHIN`].
async fn next_message(socket: &mut Socket) -> Value {
    next_message_within(socket, ARRIVES_WITHIN).await
}

/// The server's greeting. Its bound is looser: the one-second promise is about events, and the
/// greeting follows the upgrade, whose speed depends on the machine's load.
async fn greeting(socket: &mut Socket) -> Value {
    next_message_within(socket, CLOSED_WITHIN).await
}

async fn next_message_within(socket: &mut Socket, bound: Duration) -> Value {
    tokio::time::timeout(bound, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str::<Value>(&text).expect("JSON text");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no live message within {bound:?}"))
}

/// Reads until the server closes; the close code, if the close frame made it.
async fn closed(socket: &mut Socket) -> Option<u16> {
    tokio::time::timeout(CLOSED_WITHIN, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the server closes the socket")
}

/// The refusal of an upgrade: its status and problem document.
fn refusal(result: Result<Socket, tungstenite::Error>) -> (StatusCode, Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(content_type, "application/problem+json");
            let body = response.body().clone().unwrap_or_default();
            (
                StatusCode::from_u16(response.status().as_u16()).expect("a status"),
                serde_json::from_slice(&body).expect("a problem document"),
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the upgrade succeeded"),
    }
}

/// `live_connections_dropped_total{reason="..."}` from the service's `/metrics`.
async fn dropped(app: &TestApp, reason: &str) -> u64 {
    metric(
        app,
        &format!("live_connections_dropped_total{{reason=\"{reason}\"}}"),
    )
    .await as u64
}

/// The value of the series `name` (with its labels) in the service's `/metrics`; 0 when absent.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    let needle = format!("{name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&needle))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Publishes `event` on `app`'s broker exchange until its consumer has recorded it (the queue
/// may not exist yet at the first attempt); the event id makes repeats harmless.
async fn deliver<P: EventPayload>(app: &TestApp, event: &DomainEvent<P>) {
    app.deliver(event).await;
}

fn booking_confirmed(user_id: Option<Uuid>) -> DomainEvent<BookingConfirmed> {
    let starts = chrono::Utc::now() + chrono::Duration::days(3);
    DomainEvent::new(
        "appointment",
        BookingConfirmed {
            booking_id: Uuid::now_v7(),
            reference_code: "LW-LIVE01".into(),
            appointment_type: AppointmentType::HomeMeasurement,
            slot_starts_at: starts,
            slot_ends_at: starts + chrono::Duration::hours(1),
            showroom_id: None,
            consultant_id: Some(Uuid::now_v7()),
            user_id,
            customer_name: "Grace Hopper".into(),
            customer_email: "grace@example.com".into(),
            confirmed_at: chrono::Utc::now(),
        },
    )
}

fn payment_succeeded(user_id: Uuid) -> DomainEvent<PaymentSucceeded> {
    DomainEvent::new(
        "order-payment",
        PaymentSucceeded {
            order_id: Uuid::now_v7(),
            payment_id: Uuid::now_v7(),
            user_id: Some(user_id),
            amount: 129_900,
            currency: "GBP".into(),
            invoice_number: Some("INV-2026-000042".into()),
            provider_payment_id: "pi_3Live".into(),
            customer_email: Some("grace@example.com".into()),
            paid_at: chrono::Utc::now(),
        },
    )
}

fn account_of(user_id: Uuid) -> DomainEvent<UserCreated> {
    DomainEvent::new(
        "auth",
        UserCreated {
            user_id,
            email: "grace@example.com".into(),
            first_name: "Grace".into(),
            last_name: "Hopper".into(),
            phone: None,
            role: UserRole::Customer,
            marketing_opt_in: false,
            created_at: chrono::Utc::now(),
        },
    )
}

fn staff_reply(user_id: Uuid) -> DomainEvent<TicketUpdated> {
    DomainEvent::new(
        "customer",
        TicketUpdated {
            ticket_id: Uuid::now_v7(),
            ticket_number: "TKT-000123".into(),
            user_id,
            status: TicketStatus::AwaitingCustomer,
            previous_status: Some(TicketStatus::InProgress),
            staff_replied: true,
            updated_by: Some(Uuid::now_v7()),
            updated_at: chrono::Utc::now(),
        },
    )
}

#[tokio::test]
async fn a_confirmed_booking_reaches_its_customers_socket_within_a_second_and_nobody_elses() {
    let app = spawn(&[]).await;
    let (grace, other) = (customer(), customer());
    let mut graces = open(&app, &grace).await;
    let mut others = open(&app, &other).await;

    let confirmed = booking_confirmed(Some(grace.id));
    deliver(&app, &confirmed).await;

    let received = next_message(&mut graces).await;
    assert_eq!(received["type"], "BOOKING_CONFIRMED");
    assert_eq!(received["id"], confirmed.id.to_string());
    assert_eq!(received["data"]["referenceCode"], "LW-LIVE01");
    assert_eq!(received["data"]["appointmentType"], "HOME_MEASUREMENT");
    assert_eq!(
        received["data"]["bookingId"],
        confirmed.payload.booking_id.to_string()
    );
    assert!(!received.to_string().contains("grace@example.com"));
    // The other user's first message is their own, published after Grace's.
    let theirs = payment_succeeded(other.id);
    deliver(&app, &theirs).await;
    assert_eq!(next_message(&mut others).await["id"], theirs.id.to_string());
}

#[tokio::test]
async fn a_payment_and_a_staff_reply_are_pushed_as_they_are_consumed() {
    let app = spawn(&[]).await;
    let user = customer();
    let mut socket = open(&app, &user).await;

    let paid = payment_succeeded(user.id);
    deliver(&app, &paid).await;
    let received = next_message(&mut socket).await;
    assert_eq!(received["type"], "ORDER_PAID");
    assert_eq!(received["data"]["amount"], 129_900);
    assert_eq!(received["data"]["currency"], "GBP");
    assert_eq!(received["data"]["invoiceNumber"], "INV-2026-000042");

    // The reply's email needs the account's address, which its user.created supplies (the
    // handler waits for it, so the account must exist, as it always does in production).
    deliver(&app, &account_of(user.id)).await;
    let replied = staff_reply(user.id);
    deliver(&app, &replied).await;
    let received = next_message(&mut socket).await;
    assert_eq!(received["type"], "TICKET_UPDATED");
    assert_eq!(received["data"]["ticketNumber"], "TKT-000123");
    assert_eq!(received["data"]["staffReplied"], true);
}

#[tokio::test]
async fn a_redelivered_event_is_not_pushed_again() {
    let app = spawn(&[]).await;
    let user = customer();
    let mut socket = open(&app, &user).await;
    let confirmed = booking_confirmed(Some(user.id));
    deliver(&app, &confirmed).await;
    assert_eq!(
        next_message(&mut socket).await["id"],
        confirmed.id.to_string()
    );

    // The broker delivers it again: the consumer recognises it and does nothing.
    let bus = event_bus::connect(app.bus_config.clone()).await.unwrap();
    let again = OutgoingMessage {
        event_id: confirmed.id,
        topic: confirmed.topic.clone(),
        body: serde_json::to_vec(&confirmed).unwrap(),
    };
    assert!(
        bus.publish_batch(std::slice::from_ref(&again))
            .await
            .error
            .is_none()
    );
    let marker = payment_succeeded(user.id);
    deliver(&app, &marker).await;
    // Events are consumed in order, so the repeat was handled before the marker.
    assert_eq!(next_message(&mut socket).await["id"], marker.id.to_string());
}

#[tokio::test]
async fn an_event_consumed_by_one_replica_reaches_a_socket_held_by_another() {
    let suffix = unique_suffix();
    let shared = [
        ("REDIS_KEY_PREFIX", format!("test-{suffix}:notification")),
        ("SESSION_KEY_PREFIX", format!("test-{suffix}:auth")),
    ];
    let shared: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let consuming = spawn(&shared).await;
    let holding = spawn(&shared).await;
    let user = customer();
    let mut socket = open(&holding, &user).await;

    let confirmed = booking_confirmed(Some(user.id));
    deliver(&consuming, &confirmed).await;

    let received = next_message(&mut socket).await;
    assert_eq!(received["type"], "BOOKING_CONFIRMED");
    assert_eq!(received["id"], confirmed.id.to_string());
}

#[tokio::test]
async fn a_users_event_reaches_their_socket_within_a_second_and_nobody_elses() {
    let app = spawn(&[]).await;
    let hub = publisher(&app).await;
    let (alice, bob) = (customer(), customer());
    let mut alices = open(&app, &alice).await;
    let mut bobs = open(&app, &bob).await;

    let for_alice = event(LiveKind::OrderPaid, json!({ "orderId": Uuid::now_v7() }));
    hub.publish(alice.id, &for_alice).await.unwrap();
    let for_bob = event(LiveKind::TicketUpdated, json!({ "ticketNumber": "T-7" }));
    hub.publish(bob.id, &for_bob).await.unwrap();

    let received = next_message(&mut alices).await;
    assert_eq!(received["id"], for_alice.id.to_string());
    assert_eq!(received["type"], "ORDER_PAID");
    assert_eq!(received["data"], for_alice.data);
    assert!(received["at"].is_string());
    // Bob's first message is his own: Alice's, published before it, never reached him.
    let received = next_message(&mut bobs).await;
    assert_eq!(received["id"], for_bob.id.to_string());
    assert_eq!(received["type"], "TICKET_UPDATED");
}

#[tokio::test]
async fn every_socket_of_a_user_receives_their_events() {
    let app = spawn(&[]).await;
    let hub = publisher(&app).await;
    let user = customer();
    let mut laptop = open(&app, &user).await;
    let mut phone = open(&app, &user).await;

    let message = event(
        LiveKind::BookingConfirmed,
        json!({ "referenceCode": "LW-1" }),
    );
    hub.publish(user.id, &message).await.unwrap();

    for socket in [&mut laptop, &mut phone] {
        assert_eq!(next_message(socket).await["id"], message.id.to_string());
    }
}

#[tokio::test]
async fn replicas_sharing_redis_redeem_each_others_tickets_and_deliver_each_others_events() {
    let suffix = unique_suffix();
    let shared = [
        ("REDIS_KEY_PREFIX", format!("test-{suffix}:notification")),
        ("SESSION_KEY_PREFIX", format!("test-{suffix}:auth")),
    ];
    let shared: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = spawn(&shared).await;
    let second = spawn(&shared).await;
    let user = customer();

    // The load balancer may send the ticket request and the upgrade to different replicas.
    let ticket = ticket_for(&first, &user).await;
    let mut socket = upgrade(&second, &ticket, None).await.expect("upgrade");
    assert_eq!(greeting(&mut socket).await["type"], "CONNECTED");

    // Published by the other replica (its consumer's hub), delivered by the one holding it.
    let message = event(LiveKind::OrderPaid, json!({ "amount": 129900 }));
    publisher(&first)
        .await
        .publish(user.id, &message)
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await["id"],
        message.id.to_string()
    );
}

#[tokio::test]
async fn replicas_with_different_prefixes_do_not_hear_each_other() {
    let here = spawn(&[]).await;
    let elsewhere = spawn(&[]).await;
    let user = customer();
    let mut socket = open(&here, &user).await;

    let stray = event(LiveKind::OrderPaid, json!({ "stray": true }));
    publisher(&elsewhere)
        .await
        .publish(user.id, &stray)
        .await
        .unwrap();
    let own = event(LiveKind::OrderPaid, json!({ "stray": false }));
    publisher(&here).await.publish(user.id, &own).await.unwrap();

    assert_eq!(next_message(&mut socket).await["id"], own.id.to_string());
}

#[tokio::test]
async fn a_slow_client_is_disconnected_without_holding_up_another() {
    let app = spawn(&[("LIVE_BUFFER_CAPACITY", "4")]).await;
    let hub = publisher(&app).await;
    let user = customer();
    // Stops reading after the greeting; a small receive buffer makes its TCP window fill soon.
    let mut slow = open_with(&app, &user, Some(4096)).await;
    let mut fast = open(&app, &user).await;

    // Keep publishing (in rounds, the fast client reading everything) until the server drops
    // the slow one. Its kernel buffers absorb a few megabytes first.
    let padding = "x".repeat(16 << 10);
    let mut published = 0;
    for _round in 0..100 {
        for _ in 0..10 {
            let message = event(
                LiveKind::TicketUpdated,
                json!({ "n": published, "padding": padding }),
            );
            hub.publish(user.id, &message).await.unwrap();
            published += 1;
        }
        for expected in published - 10..published {
            assert_eq!(next_message(&mut fast).await["data"]["n"], expected);
        }
        if dropped(&app, "slow_consumer").await > 0 {
            break;
        }
    }
    assert_eq!(
        dropped(&app, "slow_consumer").await,
        1,
        "the slow client was dropped after {published} messages"
    );

    // The fast client carries on.
    let after = event(LiveKind::OrderPaid, json!({ "after": true }));
    hub.publish(user.id, &after).await.unwrap();
    assert_eq!(next_message(&mut fast).await["id"], after.id.to_string());
    // The slow one, reading again, finds the messages it had buffered and then the end: the
    // close frame (1013) when it got through, else the closed connection.
    let code = closed(&mut slow).await;
    assert!(matches!(code, None | Some(1013)), "closed with {code:?}");
}

#[tokio::test]
async fn tickets_are_single_use() {
    let app = spawn(&[]).await;
    let user = customer();
    let ticket = ticket_for(&app, &user).await;
    let _socket = upgrade(&app, &ticket, None)
        .await
        .expect("the first use succeeds");

    let (status, problem) = refusal(upgrade(&app, &ticket, None).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["status"], 401);
    assert!(problem["detail"].as_str().unwrap().contains("already used"));
}

#[tokio::test]
async fn missing_malformed_and_unknown_tickets_are_refused_before_upgrading() {
    let app = spawn(&[]).await;
    let unknown = "A".repeat(43);
    for ticket in ["", "not-a-ticket", unknown.as_str()] {
        let (status, problem) = refusal(upgrade(&app, ticket, None).await);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "ticket {ticket:?}");
        assert_eq!(
            problem["type"],
            "https://api.lomashwood.co.uk/problems/unauthorized"
        );
    }
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    let app = spawn(&[("LIVE_TICKET_TTL_SECS", "1")]).await;
    let ticket = ticket_for(&app, &customer()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = refusal(upgrade(&app, &ticket, None).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_does_not_burn_the_ticket() {
    let app = spawn(&[]).await;
    let user = customer();
    let ticket = ticket_for(&app, &user).await;

    let plain = app
        .get(&format!("/v1/notifications/ws?ticket={ticket}"))
        .await;
    assert!(plain.status().is_client_error(), "{}", plain.status());
    assert!(plain.status() != StatusCode::UNAUTHORIZED);

    upgrade(&app, &ticket, None)
        .await
        .expect("the ticket still opens a socket");
}

#[tokio::test]
async fn only_signed_in_callers_get_tickets() {
    let app = spawn(&[]).await;
    let response = app
        .request(Method::POST, "/v1/notifications/ws-ticket")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let direct = app
        .client
        .post(app.url("/v1/notifications/ws-ticket"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        direct.status(),
        StatusCode::UNAUTHORIZED,
        "no internal token"
    );
}

#[tokio::test]
async fn the_upgrade_needs_the_gateways_internal_token() {
    let app = spawn(&[]).await;
    let ticket = ticket_for(&app, &customer()).await;
    let addr = app.base_url.trim_start_matches("http://");
    let url = format!("ws://{addr}/v1/notifications/ws?ticket={ticket}");
    let result = tokio_tungstenite::connect_async(url).await;
    match result {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_sockets() {
    let app = spawn(&[("LIVE_MAX_CONNECTIONS_PER_USER", "1")]).await;
    let user = customer();
    let _first = open(&app, &user).await;
    let ticket = ticket_for(&app, &user).await;
    let (status, problem) = refusal(upgrade(&app, &ticket, None).await);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        problem["type"],
        "https://api.lomashwood.co.uk/problems/too-many-live-sockets"
    );
    // Someone else is not affected.
    let _other = open(&app, &customer()).await;
}

#[tokio::test]
async fn the_server_pings_and_a_client_that_answers_stays_connected() {
    let app = spawn(&[
        ("LIVE_PING_INTERVAL_MS", "100"),
        ("LIVE_PONG_TIMEOUT_MS", "1000"),
    ])
    .await;
    let user = customer();
    let mut socket = open(&app, &user).await;

    // Reading answers pings (the client library sends the pong); 25 pings take longer than the
    // pong timeout, which would have closed a client that did not answer.
    let mut pings = 0;
    while pings < 25 {
        match tokio::time::timeout(ARRIVES_WITHIN, socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    let message = event(LiveKind::OrderPaid, json!({}));
    publisher(&app)
        .await
        .publish(user.id, &message)
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await["id"],
        message.id.to_string()
    );
    assert_eq!(dropped(&app, "heartbeat_timeout").await, 0);
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_disconnected() {
    let app = spawn(&[
        ("LIVE_PING_INTERVAL_MS", "100"),
        ("LIVE_PONG_TIMEOUT_MS", "200"),
    ])
    .await;
    let mut socket = open(&app, &customer()).await;

    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dropped(&app, "heartbeat_timeout").await, 1);
    // Reading again, the client finds the pings and then the end: the close frame (1008), or a
    // reset when the pongs it now sends reach a connection the server has already dropped.
    let code = closed(&mut socket).await;
    assert!(matches!(code, None | Some(1008)), "closed with {code:?}");
}

#[tokio::test]
async fn stopping_the_service_closes_sockets_with_going_away() {
    let app = spawn(&[]).await;
    let mut socket = open(&app, &customer()).await;
    app.stop().await;
    assert_eq!(closed(&mut socket).await, Some(1001));
}

#[tokio::test]
async fn client_messages_are_ignored_and_do_not_close_the_socket() {
    let app = spawn(&[]).await;
    let user = customer();
    let mut socket = open(&app, &user).await;
    socket
        .send(Message::text("hello?"))
        .await
        .expect("the client may send text");
    let message = event(LiveKind::OrderPaid, json!({}));
    publisher(&app)
        .await
        .publish(user.id, &message)
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await["id"],
        message.id.to_string()
    );
}

#[tokio::test]
async fn a_socket_is_closed_once_its_session_ends() {
    let app = spawn(&[("LIVE_PING_INTERVAL_MS", "100")]).await;
    let user = customer();
    let mut socket = open(&app, &user).await;
    let other = customer();
    let mut others = open(&app, &other).await;

    sign_out(&app, &user).await;

    assert_eq!(closed(&mut socket).await, Some(1008));
    assert_eq!(dropped(&app, "session_ended").await, 1);
    // Another user's session, still live, keeps its socket.
    let message = event(LiveKind::OrderPaid, json!({}));
    publisher(&app)
        .await
        .publish(other.id, &message)
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut others).await["id"],
        message.id.to_string()
    );
}

#[tokio::test]
async fn a_ticket_whose_session_has_ended_is_refused() {
    let app = spawn(&[]).await;
    let user = customer();
    let ticket = ticket_for(&app, &user).await;
    sign_out(&app, &user).await;

    let (status, problem) = refusal(upgrade(&app, &ticket, None).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(problem["detail"].as_str().unwrap().contains("session"));
}

/// A TCP proxy to Redis whose open connections can be cut, as a Redis failover or a network
/// blip would; new connections are accepted again at once.
struct CuttableProxy {
    url: String,
    cut: tokio::sync::watch::Sender<u64>,
}

impl CuttableProxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect("127.0.0.1:6379").await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { url, cut }
    }

    /// Drops every connection open now.
    fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

#[tokio::test]
async fn the_subscriber_resubscribes_after_losing_its_redis_connection() {
    let proxy = CuttableProxy::start().await;
    let app = spawn(&[("REDIS_URL", &proxy.url)]).await;
    let user = customer();
    let mut socket = open(&app, &user).await;
    // Published straight to Redis, not through the proxy.
    let hub = {
        let redis = Redis::connect("redis://127.0.0.1:6379", &app.env["REDIS_KEY_PREFIX"])
            .await
            .unwrap();
        LiveHub::new(redis, LiveSettings::default())
    };

    proxy.cut();

    // Messages published while the replica is resubscribing are lost (best-effort), so keep
    // publishing until one gets through.
    let mut published = Vec::new();
    let received = tokio::time::timeout(CLOSED_WITHIN, async {
        loop {
            let message = event(LiveKind::OrderPaid, json!({ "attempt": published.len() }));
            hub.publish(user.id, &message).await.unwrap();
            published.push(message.id.to_string());
            match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return serde_json::from_str::<Value>(&text).unwrap();
                }
                Ok(Some(Ok(_))) | Err(_) => continue,
                Ok(other) => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the replica resubscribes and delivers again");
    assert!(published.contains(&received["id"].as_str().unwrap().to_owned()));
    assert!(metric(&app, "live_subscriber_reconnects_total").await >= 1.0);
}
