//! Materialising slots from weekly rules and exceptions.

use chrono::{Datelike, Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::Api;

async fn counts(api: &Api) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT status, count(*) FROM time_slots WHERE lower(during) > now() GROUP BY status ORDER BY status",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn rules_materialise_slots_idempotently_and_changes_follow() {
    let api = Api::spawn_with(&[
        ("BOOKING_HORIZON_DAYS", "28"),
        ("BOOKING_MIN_NOTICE_HOURS", "0"),
    ])
    .await;
    let admin = Api::admin();
    let c = api.consultant("Amelia Hart", &["SW"]).await;
    // Every day of the week, 09:00–13:00: two 90-minute home visits (30-minute buffer).
    let mut rules = Vec::new();
    for weekday in 1..=7 {
        let response = api
            .post_as(
                &format!("/v1/admin/consultants/{}/rules", c.id),
                Some(&admin),
                &json!({"weekday": weekday, "startsAt": "09:00", "endsAt": "13:00",
                        "appointmentType": "HOME_MEASUREMENT"}),
            )
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let rule: Value = response.json().await.unwrap();
        rules.push(rule["id"].as_str().unwrap().to_owned());
    }
    let open_after_rules: i64 = counts(&api).await.iter().map(|(_, n)| n).sum();
    assert!((56..=58).contains(&open_after_rules), "{open_after_rules}");

    let again: Value = api
        .post_as("/v1/admin/slots/materialise", Some(&admin), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again,
        json!({"created": 0, "changed": 0}),
        "a re-run changes nothing"
    );

    // Local wall-clock times (London) are kept across DST.
    let local_starts: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT to_char(lower(during) AT TIME ZONE 'Europe/London', 'HH24:MI')
         FROM time_slots ORDER BY 1",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert_eq!(local_starts, vec!["09:00", "11:00"]);

    // Book one, then remove today's+tomorrow's weekday rules: open slots retire, the booked stays.
    let slot: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM time_slots WHERE status = 'OPEN' AND lower(during) < now() + interval '20 days'
         ORDER BY lower(during) DESC LIMIT 1",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    api.booked(slot, None).await;
    let booked_weekday: i32 = sqlx::query_scalar(
        "SELECT extract(isodow FROM lower(during) AT TIME ZONE 'Europe/London')::int FROM time_slots WHERE id = $1",
    )
    .bind(slot)
    .fetch_one(&api.pool)
    .await
    .unwrap();
    let delete = api
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/v1/admin/availability-rules/{}",
                rules[booked_weekday as usize - 1]
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(delete.status(), 204);
    let after = counts(&api).await;
    assert!(after.contains(&("BOOKED".to_owned(), 1)), "{after:?}");
    let retired = after.iter().find(|(s, _)| s == "RETIRED").map(|(_, n)| *n);
    assert!(matches!(retired, Some(5..=10)), "{after:?}");
    assert_eq!(api.slot_status(slot).await, "BOOKED");
}

#[tokio::test]
async fn exceptions_block_slots_and_lifting_them_reopens() {
    let api = Api::spawn_with(&[("BOOKING_HORIZON_DAYS", "14")]).await;
    let admin = Api::admin();
    let c = api.consultant("Amelia Hart", &["SW"]).await;
    for weekday in 1..=7 {
        api.post_as(
            &format!("/v1/admin/consultants/{}/rules", c.id),
            Some(&admin),
            &json!({"weekday": weekday, "startsAt": "10:00", "endsAt": "12:00",
                    "appointmentType": "VIRTUAL_CONSULTATION"}),
        )
        .await;
    }
    let start = Utc::now() + Duration::days(3);
    let holiday = api
        .post_as(
            &format!("/v1/admin/consultants/{}/exceptions", c.id),
            Some(&admin),
            &json!({"startsAt": start, "endsAt": start + Duration::days(2), "reason": "Holiday"}),
        )
        .await;
    assert_eq!(holiday.status(), 201);
    let blocked = counts(&api).await;
    let blocked_n = blocked
        .iter()
        .find(|(s, _)| s == "BLOCKED")
        .map(|(_, n)| *n);
    assert!(
        matches!(blocked_n, Some(3..=4)),
        "{blocked:?} ({})",
        start.weekday()
    );

    let id = holiday.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lifted = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/admin/availability-exceptions/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(lifted.status(), 204);
    assert!(!counts(&api).await.iter().any(|(s, _)| s == "BLOCKED"));
}

#[tokio::test]
async fn rules_are_validated_and_admin_only() {
    let api = Api::spawn().await;
    let c = api.consultant("Amelia Hart", &["SW"]).await;
    let path = format!("/v1/admin/consultants/{}/rules", c.id);
    let admin = Api::admin();

    let backwards = api
        .post_as(&path, Some(&admin), &json!({"weekday": 1, "startsAt": "13:00", "endsAt": "09:00", "appointmentType": "HOME_MEASUREMENT"}))
        .await;
    let no_showroom = api
        .post_as(&path, Some(&admin), &json!({"weekday": 1, "startsAt": "09:00", "endsAt": "13:00", "appointmentType": "SHOWROOM_VISIT"}))
        .await;
    let bad_day = api
        .post_as(&path, Some(&admin), &json!({"weekday": 8, "startsAt": "09:00", "endsAt": "13:00", "appointmentType": "HOME_MEASUREMENT"}))
        .await;
    let customer = api
        .post_as(&path, Some(&Api::customer()), &json!({"weekday": 1, "startsAt": "09:00", "endsAt": "13:00", "appointmentType": "HOME_MEASUREMENT"}))
        .await;
    let nobody = api
        .post_as(
            &format!("/v1/admin/consultants/{}/rules", uuid::Uuid::now_v7()),
            Some(&admin),
            &json!({"weekday": 1, "startsAt": "09:00", "endsAt": "13:00", "appointmentType": "HOME_MEASUREMENT"}),
        )
        .await;

    assert_eq!(backwards.status(), 422);
    assert_eq!(no_showroom.status(), 422);
    assert_eq!(bad_day.status(), 422);
    assert_eq!(customer.status(), 403);
    assert_eq!(nobody.status(), 404);
}
