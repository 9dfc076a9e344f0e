//! `booking.reminder_due`: 24 h (DAY_BEFORE) and 2 h (SAME_DAY) before each CONFIRMED booking,
//! exactly once each.
//!
//! A batch of due bookings is claimed `FOR UPDATE SKIP LOCKED` (replicas take different rows);
//! for each, a `reminders_sent (booking, kind)` row and the outbox row are written in the same
//! transaction — the primary key makes a second send impossible even if two runs saw the same
//! booking, and a crash before commit leaves neither. A booking confirmed less than 2 h before it
//! starts gets only the SAME_DAY reminder; a rescheduled booking's reminders start afresh.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared_types::appointment::{BookingReminderDue, ReminderKind};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::catalogue::kind_of;
use crate::error::AppointmentResult;
use crate::event;

/// Bookings handled per transaction.
const BATCH: i64 = 100;

/// Emits every reminder due at `now`; returns how many were sent.
pub async fn send_due(db: &PgPool, now: DateTime<Utc>) -> AppointmentResult<usize> {
    let mut sent = 0;
    loop {
        let mut tx = db.begin().await?;
        let due = sqlx::query!(
            r#"SELECT b.id, b.reference_code, b.appointment_type, b.showroom_id, b.user_id,
                      b.first_name, b.last_name, b.email, b.phone,
                      lower(b.during) AS "starts_at!", upper(b.during) AS "ends_at!",
                      CASE WHEN lower(b.during) <= $1::timestamptz + interval '2 hours'
                           THEN 'SAME_DAY' ELSE 'DAY_BEFORE' END AS "kind!"
               FROM bookings b
               WHERE b.status = 'CONFIRMED'
                 AND b.anonymised_at IS NULL
                 AND lower(b.during) > $1::timestamptz
                 AND lower(b.during) <= $1 + interval '24 hours'
                 AND NOT EXISTS (
                     SELECT 1 FROM reminders_sent r
                     WHERE r.booking_id = b.id
                       AND r.kind = CASE WHEN lower(b.during) <= $1::timestamptz + interval '2 hours'
                                         THEN 'SAME_DAY' ELSE 'DAY_BEFORE' END)
               ORDER BY lower(b.during)
               LIMIT $2
               FOR UPDATE OF b SKIP LOCKED"#,
            now,
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        let fetched = due.len();
        for booking in due {
            let inserted = sqlx::query!(
                "INSERT INTO reminders_sent (booking_id, kind) VALUES ($1, $2)
                 ON CONFLICT ON CONSTRAINT reminders_sent_pkey DO NOTHING",
                booking.id,
                booking.kind
            )
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                continue;
            }
            let payload = BookingReminderDue {
                booking_id: booking.id,
                reference_code: booking.reference_code,
                reminder: if booking.kind == "SAME_DAY" {
                    ReminderKind::SameDay
                } else {
                    ReminderKind::DayBefore
                },
                appointment_type: kind_of(&booking.appointment_type)?.event_type(),
                slot_starts_at: booking.starts_at,
                slot_ends_at: booking.ends_at,
                showroom_id: booking.showroom_id,
                user_id: booking.user_id,
                customer_name: format!("{} {}", booking.first_name, booking.last_name),
                customer_email: booking.email,
                customer_phone: Some(booking.phone),
            };
            event_bus::outbox::publish(&mut tx, &event(payload)).await?;
            sent += 1;
        }
        tx.commit().await?;
        if fetched < BATCH as usize {
            return Ok(sent);
        }
    }
}

/// The periodic job.
pub async fn run_job(db: PgPool, every: Duration, token: CancellationToken) {
    loop {
        match send_due(&db, Utc::now()).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "booking reminders emitted"),
            Err(error) => tracing::error!(%error, "reminder run failed"),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
