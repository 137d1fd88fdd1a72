//! Approve / Reject links in approval-request mail: a random token, single use, for one
//! approver's open request on one ticket, valid `VALID_FOR`. Only its SHA-256 is stored. The
//! decision itself goes through `tickets::approvals::decide`, as the approver.

use jiff::{SignedDuration, Timestamp};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::core::ids::{ApprovalRoundId, TicketId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, Result};
use crate::people::sessions::{random_token, token_hash};

pub const VALID_FOR: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A token for `approver`'s undecided request in the ticket's pending round; `None` when
/// there is none (decided already).
pub(super) async fn create(
    conn: &mut PgConnection,
    ticket: TicketId,
    approver: UserId,
    mail: Uuid,
    now: Timestamp,
) -> Result<Option<String>> {
    let round: Option<ApprovalRoundId> = sqlx::query_scalar(
        "select r.id from approval_rounds r join approval_requests q on q.round_id = r.id
         where r.ticket_id = $1 and r.status = 'pending' and q.approver_id = $2
           and q.decision is null
         order by r.round desc limit 1",
    )
    .bind(ticket)
    .bind(approver)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(round) = round else {
        return Ok(None);
    };
    let token = random_token();
    sqlx::query(
        "insert into approval_tokens (token_hash, ticket_id, round_id, approver_id, mail_id,
                                      expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(token_hash(&token))
    .bind(ticket)
    .bind(round)
    .bind(approver)
    .bind(mail)
    .bind(to_db(now.saturating_add(VALID_FOR).unwrap_or(now)))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(Some(token))
}

/// What a link's token is good for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Usable: the approver's open request on this ticket.
    Valid {
        ticket: TicketId,
        approver: UserId,
    },
    /// Used before (or the request was decided another way).
    Used,
    Expired,
    Unknown,
}

/// Looks a token up without using it (the confirmation page).
pub async fn check(conn: &mut PgConnection, token: &str, now: Timestamp) -> Result<Link> {
    let row: Option<(TicketId, UserId, bool, bool, bool)> = sqlx::query_as(
        "select k.ticket_id, k.approver_id, k.used_at is not null, k.expires_at <= $2,
                not exists (select 1 from approval_requests q join approval_rounds r
                            on r.id = q.round_id
                            where q.round_id = k.round_id and q.approver_id = k.approver_id
                              and q.decision is null and r.status = 'pending')
         from approval_tokens k where k.token_hash = $1",
    )
    .bind(token_hash(token))
    .bind(to_db(now))
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        None => Link::Unknown,
        Some((_, _, true, _, _)) | Some((_, _, _, _, true)) => Link::Used,
        Some((_, _, _, true, _)) => Link::Expired,
        Some((ticket, approver, false, false, false)) => Link::Valid { ticket, approver },
    })
}

/// Uses the token up (row-locked: of two concurrent posts one wins); what it was good for.
pub async fn consume(conn: &mut PgConnection, token: &str, now: Timestamp) -> Result<Link> {
    let link = check(conn, token, now).await?;
    if !matches!(link, Link::Valid { .. }) {
        return Ok(link);
    }
    let done = sqlx::query(
        "update approval_tokens set used_at = $2
         where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(to_db(now))
    .execute(conn)
    .await?;
    if done.rows_affected() == 1 {
        Ok(link)
    } else {
        Ok(Link::Used)
    }
}

/// A token taken as text from a URL: the shape `random_token` makes, else unknown.
pub fn plausible(token: &str) -> Result<()> {
    if (20..=100).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
