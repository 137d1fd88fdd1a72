//! Background work on tickets, run by the job loop: record SLA breaches as they happen and
//! close resolved tickets whose process closes them by itself. Each ticket is its own
//! transaction, claimed with `SKIP LOCKED`, so several instances share the work safely and a
//! ticket someone is changing is simply taken on the next sweep.

use jiff::Timestamp;
use sqlx::PgPool;

use super::event_data::EventData;
use super::events::record;
use super::ticket::find_for_system;
use super::{flow, sla};
use crate::core::Result;
use crate::core::ids::TicketId;
use crate::core::time::to_db;
use crate::engine::sla::{FIRST_RESPONSE, RESOLUTION};
use crate::engine::workflow::Category;

/// How many tickets one pass takes; the job loops until a pass finds fewer.
pub const BATCH: i64 = 100;

/// Records an `sla_breached` event for every running clock past its due.
pub async fn record_breaches(pool: &PgPool, now: Timestamp) -> Result<usize> {
    let mut done = 0;
    loop {
        let mut tx = pool.begin().await?;
        let due: Vec<(TicketId, bool, bool)> = sqlx::query_as(
            "select id,
                    coalesce(first_response_due <= $1 and first_response_breached_at is null, false),
                    coalesce(resolution_due <= $1 and resolution_breached_at is null, false)
             from tickets
             where id in (
                 select id from tickets where first_response_due <= $1 and first_response_breached_at is null
                 union
                 select id from tickets where resolution_due <= $1 and resolution_breached_at is null)
             limit $2
             for update skip locked",
        )
        .bind(to_db(now))
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for (ticket, first, resolution) in &due {
            for (breached, clock) in [(*first, FIRST_RESPONSE), (*resolution, RESOLUTION)] {
                if breached {
                    record(
                        &mut tx,
                        *ticket,
                        None,
                        &EventData::SlaBreached {
                            clock: clock.to_owned(),
                        },
                        now,
                    )
                    .await?;
                }
            }
            sla::refresh(&mut tx, *ticket).await?;
        }
        tx.commit().await?;
        done += due.len();
        if (due.len() as i64) < BATCH {
            return Ok(done);
        }
    }
}

/// Closes resolved tickets whose auto-close time has come, through the transition the
/// requester would take (else straight into the process's first closed state).
pub async fn auto_close(pool: &PgPool, now: Timestamp) -> Result<usize> {
    let mut done = 0;
    loop {
        let mut tx = pool.begin().await?;
        let due: Vec<TicketId> = sqlx::query_scalar(
            "select id from tickets where auto_close_at <= $1 order by auto_close_at
             limit $2 for update skip locked",
        )
        .bind(to_db(now))
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for id in &due {
            let ticket = find_for_system(&mut tx, *id).await?;
            let def = ticket.definition(&mut tx).await?;
            let target = def.as_ref().and_then(|def| {
                let closed = |key: &str| {
                    def.state(key)
                        .is_some_and(|s| s.category == Category::Closed)
                };
                def.transitions
                    .iter()
                    .find(|t| t.leaves(&ticket.state) && closed(&t.to))
                    .map(|t| (t.to.clone(), t.key.clone()))
                    .or_else(|| {
                        def.states
                            .iter()
                            .find(|s| s.category == Category::Closed)
                            .map(|s| (s.key.clone(), String::new()))
                    })
            });
            match (def, target) {
                (Some(def), Some((state, transition))) if ticket.state_category == "resolved" => {
                    let days = def.resolution.auto_close_days.unwrap_or_default();
                    let label = format!("Closed automatically after {days} business days");
                    flow::apply(
                        &mut tx,
                        None,
                        &ticket,
                        &def,
                        def.enter(&state),
                        (&transition, &label),
                        now,
                    )
                    .await?;
                }
                // No longer resolved, or no closed state: nothing to close; forget the time.
                _ => {
                    sqlx::query("update tickets set auto_close_at = null where id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        done += due.len();
        if (due.len() as i64) < BATCH {
            return Ok(done);
        }
    }
}

/// One sweep: breaches, then auto-close.
pub async fn sweep(pool: &PgPool, now: Timestamp) -> Result<(usize, usize)> {
    let breaches = record_breaches(pool, now).await?;
    let closed = auto_close(pool, now).await?;
    if breaches + closed > 0 {
        tracing::info!(breaches, closed, "ticket sweep");
    }
    Ok((breaches, closed))
}
