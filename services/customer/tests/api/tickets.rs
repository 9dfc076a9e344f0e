//! Support tickets: references, threads with internal notes, ownership, transitions, events.

use serde_json::json;
use service_kit::Role;
use test_support::TestUser;

use crate::helpers::{Api, customer, problem_code};

#[tokio::test]
async fn tickets_thread_hide_internal_notes_and_follow_their_transitions() {
    let api = Api::spawn().await;
    let jane = customer();
    let agent = TestUser::new(Role::Consultant);
    let (status, ticket) = api
        .post(
            &jane,
            "/v1/tickets",
            &json!({"subject": "Door hinge", "category": "INSTALLATION", "message": "It squeaks."}),
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let reference = ticket["reference"].as_str().unwrap();
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    assert_eq!(reference, format!("TK-{today}-0001"));
    assert_eq!(ticket["status"], "OPEN");
    let id = ticket["id"].as_str().unwrap();
    let path = format!("/v1/tickets/{id}");
    let (_, second) = api
        .post(
            &jane,
            "/v1/tickets",
            &json!({"subject": "Booking", "category": "BOOKING", "message": "Move it"}),
        )
        .await;
    assert_eq!(second["reference"], format!("TK-{today}-0002"));

    // Someone else's ticket does not exist for them; customers cannot write notes.
    let mallory = customer();
    assert_eq!(api.get(&mallory, &path).await.0, 404);
    assert_eq!(
        api.post(
            &mallory,
            &format!("{path}/messages"),
            &json!({"body": "hi"})
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api.post(
            &jane,
            &format!("{path}/messages"),
            &json!({"body": "x", "internal": true})
        )
        .await
        .0,
        403
    );
    let (_, mine) = api.get(&mallory, "/v1/tickets").await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 0);

    api.post(
        &agent,
        &format!("{path}/messages"),
        &json!({"body": "Customer sounds upset", "internal": true}),
    )
    .await;
    api.post(
        &agent,
        &format!("{path}/messages"),
        &json!({"body": "We'll send a fitter."}),
    )
    .await;
    let (_, seen) = api.get(&jane, &path).await;
    let bodies: Vec<&str> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["It squeaks.", "We'll send a fitter."]);
    let (_, staff_view) = api.get(&agent, &path).await;
    assert_eq!(staff_view["messages"].as_array().unwrap().len(), 3);

    // Transitions: staff move it; a customer's reply to AWAITING_CUSTOMER resumes work.
    let admin_path = format!("/v1/admin/tickets/{id}");
    assert_eq!(
        api.patch(&jane, &admin_path, &json!({"status": "CLOSED"}))
            .await
            .0,
        403
    );
    let (status, moved) = api
        .patch(
            &agent,
            &admin_path,
            &json!({"status": "AWAITING_CUSTOMER", "priority": "HIGH", "assignedTo": agent.id}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["priority"], "HIGH");
    let (_, replied) = api
        .post(
            &jane,
            &format!("{path}/messages"),
            &json!({"body": "Thanks"}),
        )
        .await;
    assert_eq!(replied["status"], "IN_PROGRESS");
    let (status, problem) = api
        .patch(&agent, &admin_path, &json!({"status": "OPEN"}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(problem_code(&problem), "invalid-transition");
    api.patch(&agent, &admin_path, &json!({"status": "RESOLVED"}))
        .await;
    let (status, reopened) = api.post(&jane, &format!("{path}/reopen"), &json!({})).await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["status"], "OPEN");
    api.patch(&agent, &admin_path, &json!({"status": "CLOSED"}))
        .await;
    let (status, _) = api
        .post(&jane, &format!("{path}/messages"), &json!({"body": "more"}))
        .await;
    assert_eq!(status, 409);

    let (_, queue) = api.get(&agent, "/v1/admin/tickets?category=BOOKING").await;
    assert_eq!(queue["total"], 1);
    assert_eq!(api.get(&agent, "/v1/admin/tickets?colour=red").await.0, 422);

    assert_eq!(api.events("ticket.created").await.len(), 2);
    let updates = api.events("ticket.updated").await;
    let statuses: Vec<(&str, bool)> = updates
        .iter()
        .map(|e| {
            (
                e["payload"]["status"].as_str().unwrap(),
                e["payload"]["staffReplied"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("OPEN", true),
            ("AWAITING_CUSTOMER", false),
            ("IN_PROGRESS", false),
            ("RESOLVED", false),
            ("OPEN", false),
            ("CLOSED", false)
        ]
    );
}
