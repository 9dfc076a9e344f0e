//! `<service>-service dlq list | replay [EVENT_ID] --actor <who>`: the dead-letter commands of
//! every service binary (and of `cargo xtask events dlq`, which runs them).
//!
//! Listing is a read and records nothing. A replay changes what the service will apply, so it is
//! audited like an admin's write (issue 14): it needs `--actor <who>` (a staff user id or an
//! operator handle, see [`Operator`]) and the service's database, and it writes one
//! `audit_log` row — entity `dead_letter_queue`, id the service's name, action `dlq.replay` —
//! whose diff holds the replayed event ids, their topics and the count. The database is checked
//! before the broker is touched, so a replay that could not be audited does not happen; a replay
//! the broker breaks off part-way is still recorded, with its error.

use std::collections::BTreeSet;

use anyhow::{Context, anyhow, bail};
use event_bus::{Bus, DeadLetter, Replay, dlq};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{Entry, Operator};

/// The audit `entity` of dead-letter operations.
pub const AUDIT_ENTITY: &str = "dead_letter_queue";
/// The audit `action` of a replay.
pub const REPLAY_ACTION: &str = "dlq.replay";

const USAGE: &str = "dlq list | dlq replay [EVENT_ID] --actor <user id or operator handle>";

/// What the audit row of a replay holds (ids, topics and counts only: nothing personal).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplayRecord {
    /// `all`, or `event` for one event id.
    selection: &'static str,
    /// The ids of the selected dead letters, as listed just before the replay.
    event_ids: Vec<Uuid>,
    /// Selected dead letters that had no readable event id (undecodable bodies).
    without_event_id: usize,
    /// Their topics.
    topics: BTreeSet<String>,
    /// How many messages the broker moved back to the queue (absent when it failed part-way).
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    /// The broker's error, when the replay broke off.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs one `dlq` command for `service` against `bus`, recording audited commands in `db` (the
/// service's database; `None` for a service without one, which refuses to replay). Returns the
/// text to print.
///
/// # Errors
/// A usage error (no `--actor` on a replay, a malformed event id or actor), an unknown event
/// id, an unreachable broker or database, or an audit row that could not be written.
pub async fn run(
    bus: &dyn Bus,
    db: Option<&PgPool>,
    service: &str,
    args: &[String],
) -> anyhow::Result<String> {
    let command =
        Command::parse(args).map_err(|e| anyhow!("{e}\nusage: {service}-service {USAGE}"))?;
    match command {
        Command::List => list(bus, service).await,
        Command::Replay { selection, actor } => replay(bus, db, service, selection, actor).await,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    List,
    Replay { selection: Replay, actor: Operator },
}

impl Command {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut positional = Vec::new();
        let mut actor = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            if let Some(value) = arg.strip_prefix("--actor=") {
                actor = Some(value.to_owned());
            } else if arg == "--actor" {
                let value = rest.next().ok_or("--actor needs a value")?;
                actor = Some(value.clone());
            } else if arg.starts_with("--") {
                return Err(format!("unknown option `{arg}`"));
            } else {
                positional.push(arg.as_str());
            }
        }
        match positional.as_slice() {
            ["list"] => Ok(Self::List),
            ["replay", event @ ..] if event.len() <= 1 => {
                let selection = match event.first() {
                    Some(id) => Replay::Event(
                        id.parse()
                            .map_err(|e| format!("`{id}` is not an event id: {e}"))?,
                    ),
                    None => Replay::All,
                };
                let actor = actor.ok_or(
                    "dlq replay needs --actor <who> (your staff user id or an operator handle): \
                     replays are recorded in the audit trail",
                )?;
                Ok(Self::Replay {
                    selection,
                    actor: actor.parse()?,
                })
            }
            _ => Err("unknown dlq command".to_owned()),
        }
    }
}

async fn list(bus: &dyn Bus, service: &str) -> anyhow::Result<String> {
    use std::fmt::Write;
    let letters = dlq::list(bus, service).await?;
    let mut out = format!(
        "{} message(s) in {service}'s dead-letter queue\n",
        letters.len()
    );
    for letter in letters {
        let _ = writeln!(
            out,
            "{}  {}  deliveries={}  at={}  reason={}",
            letter
                .event_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            letter.topic.as_deref().unwrap_or("-"),
            letter.death_count,
            letter
                .dead_lettered_at
                .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
            letter.reason,
        );
    }
    Ok(out)
}

async fn replay(
    bus: &dyn Bus,
    db: Option<&PgPool>,
    service: &str,
    selection: Replay,
    actor: Operator,
) -> anyhow::Result<String> {
    let db = db.ok_or_else(|| {
        anyhow!("{service} has no database to record the audit row in; replay refused")
    })?;
    // The audit table is checked first: a replay that cannot be recorded must not happen.
    let mut tx = db
        .begin()
        .await
        .context("cannot reach the database to audit the replay; nothing replayed")?;
    sqlx::query("SELECT 1 FROM audit_log LIMIT 0")
        .execute(&mut *tx)
        .await
        .context("cannot write the audit trail (audit_log); nothing replayed")?;

    let selected: Vec<DeadLetter> = dlq::list(bus, service)
        .await?
        .into_iter()
        .filter(|letter| letter.is_selected(selection))
        .collect();
    if selected.is_empty() {
        return match selection {
            Replay::Event(id) => Err(anyhow!(
                "no message with event id {id} in {service}'s dead-letter queue; nothing replayed"
            )),
            Replay::All => Ok(format!(
                "{service}'s dead-letter queue is empty; nothing replayed\n"
            )),
        };
    }

    let replayed = dlq::replay(bus, service, selection).await;
    let record = ReplayRecord {
        selection: match selection {
            Replay::All => "all",
            Replay::Event(_) => "event",
        },
        event_ids: selected.iter().filter_map(|l| l.event_id).collect(),
        without_event_id: selected.iter().filter(|l| l.event_id.is_none()).count(),
        topics: selected.iter().filter_map(|l| l.topic.clone()).collect(),
        count: replayed.as_ref().ok().copied(),
        error: replayed.as_ref().err().map(ToString::to_string),
    };
    let audited = async {
        Entry::by_operator(&actor, AUDIT_ENTITY, service, REPLAY_ACTION)
            .after(&record)
            .record(&mut tx)
            .await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = audited {
        // Rare (the table was writable a moment ago), and the replay cannot be undone: say
        // loudly what happened so it can be recorded by hand.
        tracing::error!(
            service,
            actor = %actor,
            event_ids = ?record.event_ids,
            count = ?record.count,
            %error,
            "a dead-letter replay could not be audited"
        );
        bail!(
            "replayed {:?} message(s) but could not write the audit row: {error}; \
             record it by hand: actor {actor}, event ids {:?}",
            record.count,
            record.event_ids
        );
    }
    let count = replayed.context("the replay broke off (recorded in the audit trail)")?;
    Ok(format!(
        "replayed {count} message(s) to {service}'s queue (audited as {actor})\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn a_replay_needs_an_actor() {
        let error = Command::parse(&args(&["replay"])).expect_err("no actor");
        assert!(error.contains("--actor"), "{error}");
        let error = Command::parse(&args(&["replay", "--actor"])).expect_err("no value");
        assert!(error.contains("--actor"), "{error}");
    }

    #[test]
    fn actors_are_user_ids_or_handles_never_e_mail_addresses() {
        let id = Uuid::now_v7();
        assert_eq!(
            Command::parse(&args(&["replay", "--actor", &id.to_string()])),
            Ok(Command::Replay {
                selection: Replay::All,
                actor: Operator::User(id),
            })
        );
        let event = Uuid::now_v7();
        assert_eq!(
            Command::parse(&args(&[
                "replay",
                &event.to_string(),
                "--actor=on-call_1.a"
            ])),
            Ok(Command::Replay {
                selection: Replay::Event(event),
                actor: Operator::Handle("on-call_1.a".to_owned()),
            })
        );
        for bad in ["ann@example.com", "Ann Smith", ""] {
            let error = Command::parse(&args(&["replay", "--actor", bad])).expect_err(bad);
            assert!(error.contains("operator handle"), "{bad}: {error}");
        }
    }

    #[test]
    fn malformed_commands_are_refused() {
        assert_eq!(Command::parse(&args(&["list"])), Ok(Command::List));
        for bad in [
            &["replay", "not-a-uuid", "--actor", "ops"][..],
            &["replay", "--actor", "ops", "--force"],
            &["replay", "a", "b", "--actor", "ops"],
            &["discard"],
            &[],
        ] {
            assert!(Command::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_handle_always_maps_to_the_same_actor_id() {
        let a = Operator::Handle("ops".to_owned());
        assert_eq!(a.id(), Operator::Handle("ops".to_owned()).id());
        assert_ne!(a.id(), Operator::Handle("ops2".to_owned()).id());
        assert_eq!(a.id().get_version_num(), 8);
    }
}
