//! `booking.reminder_due`: exactly once per booking and kind, whatever runs concurrently.

use appointment_service::reminders::send_due;
use chrono::Duration;

use crate::helpers::{Api, in_hours};

#[tokio::test]
async fn reminders_go_out_24h_and_2h_before_confirmed_bookings_exactly_once() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let starts = in_hours(48);
    let confirmed = api
        .booked(api.home_slot(&consultant, starts).await, None)
        .await;
    api.set_status(confirmed, "CONFIRMED").await;
    // Pending bookings get no reminders.
    let _pending = api
        .booked(
            api.home_slot(&consultant, starts + Duration::hours(3))
                .await,
            None,
        )
        .await;

    let too_early = send_due(&api.pool, starts - Duration::hours(30))
        .await
        .unwrap();
    let day_before = send_due(&api.pool, starts - Duration::hours(23))
        .await
        .unwrap();
    let repeat = send_due(&api.pool, starts - Duration::hours(22))
        .await
        .unwrap();
    let same_day = send_due(&api.pool, starts - Duration::minutes(90))
        .await
        .unwrap();
    let repeat_same_day = send_due(&api.pool, starts - Duration::minutes(30))
        .await
        .unwrap();
    let after_start = send_due(&api.pool, starts + Duration::minutes(1))
        .await
        .unwrap();

    assert_eq!((too_early, day_before, repeat), (0, 1, 0));
    assert_eq!((same_day, repeat_same_day, after_start), (1, 0, 0));
    let events = api.events("booking.reminder_due").await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["reminder"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["DAY_BEFORE", "SAME_DAY"]);
    assert_eq!(events[0]["payload"]["bookingId"], confirmed.to_string());
    assert_eq!(events[0]["payload"]["customerPhone"], "+447700900123");
}

#[tokio::test]
async fn concurrent_reminder_runs_like_two_replicas_send_each_reminder_once() {
    let api = Api::spawn().await;
    let base = in_hours(48);
    for c in 0..10 {
        let consultant = api.consultant(&format!("Consultant {c}"), &["SW"]).await;
        for i in 0..3 {
            let id = api
                .booked(
                    api.home_slot(&consultant, base + Duration::hours(2 * i))
                        .await,
                    None,
                )
                .await;
            api.set_status(id, "CONFIRMED").await;
        }
    }
    // A moment when all thirty are inside their day-before window.
    let now = base - Duration::hours(19);

    let runs = (0..6).map(|_| send_due(&api.pool, now));
    let sent: usize = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();

    assert_eq!(sent, 30);
    assert_eq!(api.events("booking.reminder_due").await.len(), 30);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reminders_sent")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(rows, 30);
}

#[tokio::test]
async fn a_rescheduled_booking_is_reminded_of_its_new_time() {
    let api = Api::spawn().await;
    let consultant = api.consultant("Amelia Hart", &["SW"]).await;
    let jane = Api::customer();
    let starts = in_hours(48);
    let id = api
        .booked(api.home_slot(&consultant, starts).await, Some(&jane))
        .await;
    api.set_status(id, "CONFIRMED").await;
    assert_eq!(
        send_due(&api.pool, starts - Duration::hours(23))
            .await
            .unwrap(),
        1
    );
    let later = starts + Duration::hours(48);
    let new_slot = api.home_slot(&consultant, later).await;

    let moved = api
        .post_as(
            &format!("/v1/appointments/{id}/reschedule"),
            Some(&jane),
            &serde_json::json!({"slotId": new_slot}),
        )
        .await;
    assert_eq!(moved.status(), 200);

    assert_eq!(
        send_due(&api.pool, later - Duration::hours(23))
            .await
            .unwrap(),
        1
    );
}
