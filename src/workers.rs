//! The table of job kinds: where the features meet the generic job loop (`jobs::runner`).
//! Periodic: the sweep (tickets: SLA breaches, auto-close; people: expired sessions and
//! sign-in failures) and one IMAP poll per active account. Queued by features: `mail_send`,
//! claimed only when a relay is configured (otherwise the mail stays queued).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use crate::core::ids::MailboxId;
use crate::core::time::Clock;
use crate::core::{Error, Result};
use crate::jobs::Job;
use crate::jobs::runner::{self, Handlers, Periodic};
use crate::mail::out::{self, Settings};
use crate::mail::{Limits, imap};
use crate::people::{self, Retention};
use crate::tickets::sweeps;

/// The periodic sweep: records SLA breaches, auto-closes resolved tickets, and deletes expired
/// sessions and sign-in failures past their window.
pub const TICKET_SWEEP: &str = "ticket_sweep";
/// Fetches new mail of one IMAP account (payload: `mailbox_id`).
pub const IMAP_POLL: &str = "imap_poll";

/// What the jobs need from the configuration.
#[derive(Debug, Clone, Copy)]
struct Workers<'a> {
    limits: Limits,
    retention: Retention,
    /// Mail is sent only with settings that name a relay.
    mail: Option<&'a Settings>,
}

impl Handlers for Workers<'_> {
    fn kinds(&self) -> Vec<&'static str> {
        match self.mail {
            Some(Settings { relay: Some(_), .. }) => vec![TICKET_SWEEP, IMAP_POLL, out::SEND_JOB],
            _ => vec![TICKET_SWEEP, IMAP_POLL],
        }
    }

    async fn periodic(&self, conn: &mut PgConnection) -> Result<Vec<Periodic>> {
        let mut jobs = vec![Periodic {
            kind: TICKET_SWEEP,
            payload: json!({}),
            scope: None,
        }];
        for mailbox in imap::due(conn).await? {
            jobs.push(Periodic {
                kind: IMAP_POLL,
                payload: json!({ "mailbox_id": mailbox }),
                scope: Some(mailbox.to_string()),
            });
        }
        Ok(jobs)
    }

    async fn perform(&self, pool: &PgPool, job: &Job, now: Timestamp) -> Result<()> {
        match (job.kind.as_str(), self.mail) {
            (TICKET_SWEEP, _) => {
                // Both halves run even when one fails; the job reports the first failure.
                let people = people::sweep(pool, now, self.retention).await.map(drop);
                let tickets = sweeps::sweep(pool, now).await.map(drop);
                people.and(tickets)
            }
            (IMAP_POLL, _) => {
                let mailbox: MailboxId =
                    serde_json::from_value(job.payload.0["mailbox_id"].clone())
                        .map_err(|e| Error::Internal(anyhow::anyhow!("imap_poll payload: {e}")))?;
                imap::poll(pool, mailbox, self.limits, now).await.map(drop)
            }
            (out::SEND_JOB, Some(mail)) => match out::send::perform(pool, mail, job, now).await? {
                out::send::Sent::Failed(why) => {
                    tracing::warn!(job = job.id, %why, "mail not delivered (permanent)");
                    Ok(())
                }
                out::send::Sent::Sent | out::send::Sent::Nothing => Ok(()),
            },
            (other, _) => Err(Error::Internal(anyhow::anyhow!(
                "no runner for job kind {other}"
            ))),
        }
    }
}

/// The job loop of a server: runs until `stop` turns true, waking every `every` and whenever
/// jobs were added.
pub async fn run(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    limits: Limits,
    retention: Retention,
    every: Duration,
    mail: Settings,
    stop: watch::Receiver<bool>,
) {
    let workers = Workers {
        limits,
        retention,
        mail: Some(&mail),
    };
    runner::run(pool, clock, workers, every, stop).await;
}

/// One round of the job loop with the production table: queue this minute's periodic jobs,
/// then run every due job; returns how many ran. Mail is sent only with `mail` settings that
/// name a relay. Sessions and sign-in failures are kept as long as the default configuration
/// keeps them (the server's `run` takes its own retention).
pub async fn run_jobs_once(
    pool: &PgPool,
    clock: &dyn Clock,
    limits: Limits,
    mail: Option<&Settings>,
) -> Result<usize> {
    let workers = Workers {
        limits,
        retention: crate::config::Config::default().retention(),
        mail,
    };
    runner::tick(pool, clock, &workers).await
}
