//! The race: many clients, one slot (and many clients, overlapping slots of one consultant) —
//! exactly one booking, every time, and an SQL audit finds no overlapping active bookings.

use chrono::Duration;
use futures::future::join_all;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Api, in_hours, problem_code};

const CLIENTS: usize = 50;

/// Fires one booking request per slot in `slots`, all at once, as guests; returns (201s, 409s).
///
/// One anonymous token (short-lived, so minted per round) serves every request of a round:
/// minting 10 000 Ed25519 tokens in an unoptimised test build would cost more than the race.
async fn storm(api: &Api, token: &str, slots: &[Uuid]) -> (usize, usize) {
    let requests = slots.iter().map(|slot| async move {
        let response = api
            .app
            .client
            .post(api.app.url("/v1/appointments"))
            .header(test_support::INTERNAL_TOKEN_HEADER, token)
            .json(&Api::booking_body(*slot))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if status == 409 {
            assert_eq!(problem_code(&body), "slot-unavailable", "{body}");
            assert_eq!(body["code"], "SLOT_UNAVAILABLE");
        }
        status
    });
    let statuses = join_all(requests).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!(
        created + conflicts,
        statuses.len(),
        "only 201 and 409 are acceptable: {statuses:?}"
    );
    (created, conflicts)
}

#[tokio::test]
async fn fifty_clients_racing_for_one_slot_yield_exactly_one_booking_over_200_rounds() {
    // Eight connections make the fifty requests queue for the pool; on a CI box whose two cores
    // other tests saturate, the default 5 s wait for one can run out before a round is through.
    let api = Api::spawn_with(&[
        ("DATABASE_MAX_CONNECTIONS", "8"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "60000"),
    ])
    .await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let base = in_hours(48);
    let mut slots = Vec::new();
    for round in 0..200 {
        slots.push(
            api.home_slot(&consultant, base + Duration::hours(2 * round))
                .await,
        );
    }

    for (round, slot) in slots.iter().enumerate() {
        let (created, conflicts) = storm(
            &api,
            &test_support::anonymous_token(),
            &vec![*slot; CLIENTS],
        )
        .await;
        assert_eq!(created, 1, "round {round}: exactly one booking");
        assert_eq!(conflicts, CLIENTS - 1, "round {round}: everyone else 409");
    }

    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    let per_slot: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT slot_id FROM bookings GROUP BY slot_id HAVING count(*) > 1) d",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    let booked_slots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM time_slots WHERE status = 'BOOKED'")
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(bookings, 200);
    assert_eq!(per_slot, 0);
    assert_eq!(booked_slots, 200);
    assert_eq!(api.overlapping_active_bookings().await, 0);
    // No side effects from the losers: one event and one history line per booking.
    assert_eq!(api.events("booking.created").await.len(), 200);
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM booking_history")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(history, 200);
}

#[tokio::test]
async fn fifty_clients_racing_for_overlapping_slots_of_one_consultant_yield_one_booking() {
    // Eight connections make the fifty requests queue for the pool; on a CI box whose two cores
    // other tests saturate, the default 5 s wait for one can run out before a round is through.
    let api = Api::spawn_with(&[
        ("DATABASE_MAX_CONNECTIONS", "8"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "60000"),
    ])
    .await;
    let consultant = api.consultant("Tom Reid", &["SW"]).await;
    let base = in_hours(48);
    for round in 0..50i64 {
        // Fifty different slots, each starting a minute after the last and lasting 90
        // minutes: every pair overlaps, none is identical.
        let start = base + Duration::hours(4 * round);
        let mut slots = Vec::new();
        for i in 0..CLIENTS as i64 {
            slots.push(
                api.home_slot(&consultant, start + Duration::minutes(i))
                    .await,
            );
        }
        let (created, conflicts) = storm(&api, &test_support::anonymous_token(), &slots).await;
        assert_eq!(created, 1, "round {round}: exactly one booking");
        assert_eq!(conflicts, CLIENTS - 1, "round {round}");
    }
    assert_eq!(api.overlapping_active_bookings().await, 0);
    let booked_slots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM time_slots WHERE status = 'BOOKED'")
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(
        booked_slots, 50,
        "losers' slots were released with their rollback"
    );
}
