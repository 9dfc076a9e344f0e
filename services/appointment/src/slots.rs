//! Materialising time slots from the availability rules (the SQL function `materialise_slots`
//! of migration 0002 does the work; see the crate docs for its rules).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::AppState;

/// What one materialisation run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Materialised {
    /// Slots created.
    pub created: i64,
    /// Slots whose status changed (retired, blocked, reopened).
    pub changed: i64,
}

/// Brings the slots of `consultant` (or of everyone) in step with the rules, `days` ahead.
pub async fn materialise(
    db: &PgPool,
    consultant: Option<Uuid>,
    days: i32,
) -> Result<Materialised, sqlx::Error> {
    let mut tx = db.begin().await?;
    let done = materialise_in(&mut tx, consultant, days).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`materialise`] inside the caller's transaction (rule and exception changes).
pub async fn materialise_in(
    conn: &mut PgConnection,
    consultant: Option<Uuid>,
    days: i32,
) -> Result<Materialised, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT created AS "created!", changed AS "changed!" FROM materialise_slots($1, $2)"#,
        consultant,
        days
    )
    .fetch_one(conn)
    .await?;
    Ok(Materialised {
        created: row.created,
        changed: row.changed,
    })
}

/// The job: runs at once (start-up), then every `SLOT_MATERIALISE_INTERVAL_SECS`, to roll the
/// horizon forward and pick up any change it missed. Off when that is 0 — a run retires every
/// slot no rule produces, so a start-up run would race slots laid by hand (tests, benches).
pub async fn run_job(state: AppState, token: CancellationToken) {
    let every = state.settings.materialise_every;
    if every.is_zero() {
        return;
    }
    loop {
        match materialise(&state.db, None, state.settings.horizon_days).await {
            Ok(done) => {
                if done.created > 0 || done.changed > 0 {
                    state.availability.invalidate().await;
                }
                tracing::info!(
                    created = done.created,
                    changed = done.changed,
                    "slots materialised"
                );
            }
            Err(error) => tracing::error!(%error, "slot materialisation failed"),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every.max(Duration::from_secs(1))) => {}
        }
    }
}
