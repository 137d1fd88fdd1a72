//! Publishing a process version as one ticket command: `processes::publish` stores the
//! version, and the open tickets in states it removed move where the mapping says, each with
//! its event, entering their new state as if they had moved there.

use jiff::Timestamp;
use sqlx::PgConnection;

use super::event_data::EventData;
use super::events::record;
use super::{flow, rounds, sla};
use crate::core::ids::{ProcessId, TicketId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::workflow::Definition;
use crate::processes::{self, PublishError};

/// Publishes the process's draft as a new version and moves its open tickets out of the
/// states it removes (`mapping`: old state → new state), in the caller's transaction.
pub async fn publish_process(
    conn: &mut PgConnection,
    process: ProcessId,
    mapping: &[(String, String)],
    by: Option<UserId>,
    now: Timestamp,
) -> Result<std::result::Result<i32, PublishError>> {
    let published = match processes::publish(conn, process, mapping, by, now).await? {
        Ok(published) => published,
        Err(refused) => return Ok(Err(refused)),
    };
    let version = published.version;
    for (from, to) in &published.moves {
        move_stranded(
            conn,
            process,
            version,
            from,
            to,
            &published.definition,
            by,
            now,
        )
        .await?;
    }
    Ok(Ok(version))
}

/// Moves the open tickets of a process out of a state a new version removed; an event each.
/// A ticket mapped into a state with an approval step (or `on_enter` effects) enters it as if
/// it had moved there: a new round, or on if nobody can be asked.
#[allow(clippy::too_many_arguments)]
async fn move_stranded(
    conn: &mut PgConnection,
    process: ProcessId,
    version: i32,
    from: &str,
    to: &str,
    def: &Definition,
    by: Option<UserId>,
    now: Timestamp,
) -> Result<()> {
    let Some(target) = def.state(to) else {
        return Err(Error::Invalid(FieldErrors::one(
            "mapping",
            format!("There is no state {to:?}."),
        )));
    };
    let moved: Vec<TicketId> = sqlx::query_scalar(
        "update tickets set state = $4, state_category = $5, process_version = $2, updated_at = $6, version = version + 1
         where process_id = $1 and state = $3 and state_category <> 'closed' returning id",
    )
    .bind(process)
    .bind(version)
    .bind(from)
    .bind(to)
    .bind(target.category.as_str())
    .bind(to_db(now))
    .fetch_all(&mut *conn)
    .await?;
    for id in &moved {
        record(
            conn,
            *id,
            by,
            &EventData::StateMapped {
                from: from.to_owned(),
                to: target.label.clone(),
                version,
                category: target.category.as_str().to_owned(),
            },
            now,
        )
        .await?;
        rounds::end_pending(conn, *id, now).await?;
        // Entering with effects ends in `touch`, which replays the clocks; else the new
        // category still moves them.
        if !flow::enter(conn, None, *id, def, to, now).await? {
            sla::refresh(conn, *id).await?;
        }
    }
    Ok(())
}
