//! In-app notifications and each person's notification preferences. Owns `notifications`
//! and `notification_preferences`.
//!
//! A notice is fanned out to its recipients by the statement that writes its ticket event:
//! who hears of it (`Audience`), never the actor, only people who may see the ticket (and its
//! internal data, for internal notices) by the policy's SQL, and only those whose preference
//! for that kind of event lets in-app notices (or mails) through.
//! `tickets::record` appends [`push_fan_out`] to the statement that inserts each event that
//! concerns people; the SLA escalation job calls [`notify_group`].
//!
//! Preferences: per kind of event, one switch per channel (in-app, e-mail). Defaults live in
//! code ([`Kind::default_for`]); a user has rows only for kinds they changed. [`push_fan_out`]
//! reads both switches in its one statement, and also queues the mails (`mail::out`), which
//! sends them.

use jiff::Timestamp;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::core::Result;
use crate::core::ids::{GroupId, TicketId, UserId};
use crate::core::time::to_db;
use crate::engine::policy::{self, Actor};
use crate::mail::out::{DELIVERABLE, NoticeMail, push_notice_mails};

/// What kind of thing happened, as people choose what to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    NewInGroup,
    Assigned,
    PublicReply,
    InternalNote,
    StateChange,
    ApprovalRequested,
    SlaBreach,
}

/// How a notice reaches a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    InApp,
    Email,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::NewInGroup,
        Kind::Assigned,
        Kind::PublicReply,
        Kind::InternalNote,
        Kind::StateChange,
        Kind::ApprovalRequested,
        Kind::SlaBreach,
    ];

    /// The stored name.
    pub fn key(self) -> &'static str {
        match self {
            Kind::NewInGroup => "new_in_group",
            Kind::Assigned => "assigned",
            Kind::PublicReply => "public_reply",
            Kind::InternalNote => "internal_note",
            Kind::StateChange => "state_change",
            Kind::ApprovalRequested => "approval_requested",
            Kind::SlaBreach => "sla_breach",
        }
    }

    /// What it is, in words, for the preferences page.
    pub fn label(self) -> &'static str {
        match self {
            Kind::NewInGroup => "A new ticket arrives in the queue of a group I am in",
            Kind::Assigned => "A ticket is assigned to me",
            Kind::PublicReply => "Someone replies publicly on a ticket I take part in",
            Kind::InternalNote => {
                "Someone adds an internal note on a ticket I am assigned to or watch"
            }
            Kind::StateChange => "A ticket I take part in changes state",
            Kind::ApprovalRequested => "My approval is requested",
            Kind::SlaBreach => "A ticket of mine or of my group breaches its SLA",
        }
    }

    pub fn parse(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// What a person gets without having chosen: everything in the app; by e-mail what needs
    /// them personally, not the team's traffic.
    pub fn default_for(self, channel: Channel) -> bool {
        match channel {
            Channel::InApp => true,
            Channel::Email => matches!(
                self,
                Kind::Assigned | Kind::PublicReply | Kind::StateChange | Kind::ApprovalRequested
            ),
        }
    }

    /// The outbox kind of its mails (`mail::out` renders each with its own template).
    fn mail_kind(self) -> &'static str {
        match self {
            Kind::NewInGroup => "new_in_group",
            Kind::Assigned => "assigned",
            Kind::PublicReply => "reply",
            Kind::InternalNote => "internal_note",
            Kind::StateChange => "state",
            Kind::ApprovalRequested => "approval",
            Kind::SlaBreach => "sla_breach",
        }
    }

    /// Notices of this kind carry internal data whatever their event.
    fn always_internal(self) -> bool {
        matches!(self, Kind::InternalNote | Kind::SlaBreach)
    }
}

/// Which approvers of a ticket hear of something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Approvers {
    #[default]
    None,
    /// Everyone ever asked to approve the ticket.
    All,
    /// Those asked in this round.
    Round(i32),
}

/// Who on a ticket hears of something. Only current facts count: the ticket row, its
/// watchers, approvers and group members as they are when the notice is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub requester: bool,
    pub assignee: bool,
    pub watchers: bool,
    pub approvers: Approvers,
    /// The members of the ticket's assignee group.
    pub assignee_group: bool,
    /// The members of this group (e.g. an SLA escalation group).
    pub group: Option<GroupId>,
}

impl Audience {
    /// Everyone who takes part in the ticket: requester, assignee, watchers, approvers.
    pub fn participants() -> Self {
        Self {
            requester: true,
            assignee: true,
            watchers: true,
            approvers: Approvers::All,
            ..Self::default()
        }
    }

    /// Adds `other`'s people to this audience.
    pub fn add(&mut self, other: &Audience) {
        self.requester |= other.requester;
        self.assignee |= other.assignee;
        self.watchers |= other.watchers;
        self.assignee_group |= other.assignee_group;
        self.approvers = match (self.approvers, other.approvers) {
            (Approvers::All, _) | (_, Approvers::All) => Approvers::All,
            (Approvers::Round(a), Approvers::Round(b)) if a != b => Approvers::All,
            (Approvers::None, x) | (x, _) => x,
        };
        self.group = self.group.or(other.group);
    }

    /// Nobody hears of it.
    pub fn is_empty(&self) -> bool {
        *self == Audience::default()
    }

    /// The union members of the recipients sub-select, one per part of the audience (which
    /// is not empty).
    fn push_members(&self, qb: &mut QueryBuilder<Postgres>) {
        let mut first = true;
        let mut next = |qb: &mut QueryBuilder<Postgres>| {
            if !first {
                qb.push(" union ");
            }
            first = false;
        };
        if self.requester {
            next(qb);
            qb.push("select t.requester_id");
        }
        if self.assignee {
            next(qb);
            qb.push("select t.assignee_id");
        }
        if self.watchers {
            next(qb);
            qb.push("select w.user_id from ticket_watchers w where w.ticket_id = t.id");
        }
        if self.approvers != Approvers::None {
            next(qb);
            qb.push(
                "select aq.approver_id from approval_rounds ar
                 join approval_requests aq on aq.round_id = ar.id where ar.ticket_id = t.id",
            );
            if let Approvers::Round(round) = self.approvers {
                qb.push(" and ar.round = ").push_bind(round);
            }
        }
        if self.assignee_group {
            next(qb);
            qb.push(
                "select gm.user_id from group_members gm where gm.group_id = t.assignee_group_id",
            );
        }
        if let Some(group) = self.group {
            next(qb);
            qb.push("select xg.user_id from group_members xg where xg.group_id = ")
                .push_bind(group);
        }
    }
}

/// Something to tell people about a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    pub audience: Audience,
    /// Only for those who may read the ticket's internal data.
    pub internal: bool,
    /// What happened, after the actor's name: "replied", "moved it from New to Open".
    pub text: String,
}

impl Notice {
    /// Only for those who may read the ticket's internal data.
    pub fn is_internal(&self) -> bool {
        self.internal || self.kind.always_internal()
    }
}

/// The ticket event a notice tells of, as the statement that fans it out knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRef {
    /// None (an SLA breach found by a job).
    None,
    /// The event inserted by the statement's CTE `e` (`tickets::events`).
    Inserted,
}

impl EventRef {
    fn sql(self) -> &'static str {
        match self {
            EventRef::None => "null::bigint",
            EventRef::Inserted => "(select id from e)",
        }
    }
}

/// Appends the CTEs (without a leading `with` or comma) that fan `notice` out: `recipients`,
/// `n` (the in-app notices) and, through `mail::out::push_notice_mails`, the mails of those
/// who want it by e-mail with their send jobs. Who may hear of it is worked out once for both
/// channels, and the caller's statement writes it together with its event. `actor` (who did
/// it) never gets it. The audience must not be empty (`Audience::is_empty`).
pub(crate) fn push_fan_out(
    qb: &mut QueryBuilder<Postgres>,
    ticket: TicketId,
    event: EventRef,
    actor: Option<UserId>,
    notice: &Notice,
    now: Timestamp,
) {
    qb.push("recipients as (");
    push_recipients(qb, ticket, actor, notice);
    qb.push(
        "), n as (
         insert into notifications (user_id, ticket_id, event_id, kind, actor_id, text, created_at)
         select user_id, ",
    );
    qb.push_bind(ticket)
        .push(format_args!(", {}, ", event.sql()))
        .push_bind(notice.kind.key())
        .push(", ")
        .push_bind(actor)
        .push(", ")
        .push_bind(&notice.text)
        .push(", ")
        .push_bind(to_db(now))
        .push(" from recipients where in_app returning 1)");
    let mail = NoticeMail {
        kind: notice.kind.mail_kind(),
        text: &notice.text,
        internal: notice.is_internal(),
    };
    push_notice_mails(qb, ticket, event.sql(), mail, now);
}

/// Appends `select …`: the users who hear of `notice` about `ticket` (active, not the actor,
/// allowed to see it), each with their e-mail address and whether they want it in the app
/// (`in_app`) and by e-mail (`by_mail`: also deliverable): their stored choice for the kind,
/// else the default in code.
fn push_recipients(
    qb: &mut QueryBuilder<Postgres>,
    ticket: TicketId,
    actor: Option<UserId>,
    notice: &Notice,
) {
    qb.push("select u.id as user_id, u.email, coalesce(np.in_app, ")
        .push_bind(notice.kind.default_for(Channel::InApp))
        .push(") as in_app, coalesce(np.email, ")
        .push_bind(notice.kind.default_for(Channel::Email))
        .push(format_args!(
            "){} as by_mail from tickets t cross join lateral (",
            DELIVERABLE
        ));
    notice.audience.push_members(qb);
    qb.push(
        ") r(user_id) join users u on u.id = r.user_id
         left join notification_preferences np on np.user_id = u.id and np.kind = ",
    )
    .push_bind(notice.kind.key())
    .push(" where t.id = ")
    .push_bind(ticket)
    .push(" and u.active");
    if let Some(actor) = actor {
        qb.push(" and u.id <> ").push_bind(actor);
    }
    if notice.is_internal() {
        policy::push_user_may_see_internal(qb, "u", "t");
    } else {
        policy::push_user_may_view(qb, "u", "t");
    }
}

/// Tells the members of `group` about `ticket` (e.g. an SLA breach), as the system: only
/// members who may see the ticket (and its internal data, for internal kinds) and want it.
pub async fn notify_group(
    conn: &mut PgConnection,
    group: GroupId,
    ticket: TicketId,
    kind: Kind,
    text: &str,
    now: Timestamp,
) -> Result<u64> {
    let notice = Notice {
        kind,
        audience: Audience {
            group: Some(group),
            ..Audience::default()
        },
        internal: false,
        text: text.to_owned(),
    };
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("with ");
    push_fan_out(&mut qb, ticket, EventRef::None, None, &notice, now);
    qb.push(" select count(*) from n");
    let told: i64 = qb.build_query_scalar().fetch_one(conn).await?;
    Ok(u64::try_from(told).unwrap_or_default())
}

/// The count the bell stops at: the session load reads it (`people::sessions`), so that people
/// need not import this module.
pub use crate::people::sessions::UNREAD_CAP;

/// A notification as the list shows it.
#[derive(Debug, Clone, FromRow)]
pub struct Listed {
    pub id: i64,
    pub project_key: String,
    pub number: i64,
    pub title: String,
    pub text: String,
    pub actor_name: Option<String>,
    pub created_at: jiff_sqlx::Timestamp,
    pub read_at: Option<jiff_sqlx::Timestamp>,
}

impl Listed {
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    pub fn unread(&self) -> bool {
        self.read_at.is_none()
    }
}

/// A page of the list; `next` is the cursor for older ones.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Listed>,
    pub next: Option<i64>,
}

/// The actor's notifications, newest first, `limit` older than the cursor `before`. Tickets the
/// actor can no longer see drop out.
pub async fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    before: Option<i64>,
    limit: i64,
) -> Result<Page> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "select n.id, p.key as project_key, t.number, t.title, n.text,
                a.display_name as actor_name, n.created_at, n.read_at
         from notifications n join tickets t on t.id = n.ticket_id
         join projects p on p.id = t.project_id left join users a on a.id = n.actor_id
         where n.user_id = ",
    );
    qb.push_bind(actor.user_id);
    if let Some(before) = before {
        qb.push(" and n.id < ").push_bind(before);
    }
    policy::push_ticket_scope(&mut qb, actor, "t");
    qb.push(" order by n.id desc limit ").push_bind(limit + 1);
    let mut rows: Vec<Listed> = qb.build_query_as().fetch_all(conn).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Page { rows, next })
}

/// Marks the user's notification read; returns where it points: the ticket key and event.
/// `None` when it is not theirs (or does not exist).
pub async fn open(
    conn: &mut PgConnection,
    user: UserId,
    id: i64,
    now: Timestamp,
) -> Result<Option<(String, Option<i64>)>> {
    Ok(sqlx::query_as(
        "update notifications n set read_at = coalesce(n.read_at, $3)
         from tickets t join projects p on p.id = t.project_id
         where n.id = $1 and n.user_id = $2 and t.id = n.ticket_id
         returning p.key || '-' || t.number, n.event_id",
    )
    .bind(id)
    .bind(user)
    .bind(to_db(now))
    .fetch_optional(conn)
    .await?)
}

/// Marks every unread notification of the user read; returns how many.
pub async fn mark_all_read(conn: &mut PgConnection, user: UserId, now: Timestamp) -> Result<u64> {
    let done =
        sqlx::query("update notifications set read_at = $2 where user_id = $1 and read_at is null")
            .bind(user)
            .bind(to_db(now))
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

/// A person's choice for one kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    pub kind: Kind,
    pub in_app: bool,
    pub email: bool,
}

impl Preference {
    fn default_for(kind: Kind) -> Self {
        Self {
            kind,
            in_app: kind.default_for(Channel::InApp),
            email: kind.default_for(Channel::Email),
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default_for(self.kind)
    }
}

/// The user's preference for every kind: what they chose, else the default.
pub async fn preferences(conn: &mut PgConnection, user: UserId) -> Result<Vec<Preference>> {
    let stored: Vec<(String, bool, bool)> = sqlx::query_as(
        "select kind, in_app, email from notification_preferences where user_id = $1",
    )
    .bind(user)
    .fetch_all(conn)
    .await?;
    Ok(Kind::ALL
        .into_iter()
        .map(|kind| {
            stored.iter().find(|(k, _, _)| k == kind.key()).map_or(
                Preference::default_for(kind),
                |(_, in_app, email)| Preference {
                    kind,
                    in_app: *in_app,
                    email: *email,
                },
            )
        })
        .collect())
}

/// Stores the user's choices: a row only for each kind that differs from the default.
pub async fn save_preferences(
    conn: &mut PgConnection,
    user: UserId,
    choices: &[Preference],
) -> Result<()> {
    sqlx::query("delete from notification_preferences where user_id = $1")
        .bind(user)
        .execute(&mut *conn)
        .await?;
    let changed: Vec<&Preference> = choices.iter().filter(|p| !p.is_default()).collect();
    if changed.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = changed.iter().map(|p| p.kind.key()).collect();
    let in_app: Vec<bool> = changed.iter().map(|p| p.in_app).collect();
    let email: Vec<bool> = changed.iter().map(|p| p.email).collect();
    sqlx::query(
        "insert into notification_preferences (user_id, kind, in_app, email)
         select $1, k, a, e from unnest($2::text[], $3::bool[], $4::bool[]) as x(k, a, e)",
    )
    .bind(user)
    .bind(&kinds)
    .bind(&in_app)
    .bind(&email)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_from_their_keys() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.key()), Some(kind));
        }
        assert_eq!(Kind::parse("everything"), None);
    }

    #[test]
    fn audiences_add_up() {
        let mut a = Audience {
            requester: true,
            approvers: Approvers::Round(1),
            ..Audience::default()
        };
        a.add(&Audience {
            assignee_group: true,
            ..Audience::default()
        });
        assert!(a.requester && a.assignee_group && !a.watchers);
        assert_eq!(a.approvers, Approvers::Round(1));
        a.add(&Audience {
            approvers: Approvers::Round(2),
            ..Audience::default()
        });
        assert_eq!(a.approvers, Approvers::All, "two rounds: everyone asked");
    }

    #[test]
    fn an_audience_is_empty_only_without_anyone_and_lists_each_part_once() {
        assert!(Audience::default().is_empty());
        assert!(!Audience::participants().is_empty());
        let group = Audience {
            group: Some(GroupId::new()),
            ..Audience::default()
        };
        assert!(!group.is_empty());
        let mut qb = QueryBuilder::new("");
        Audience::participants().push_members(&mut qb);
        assert_eq!(qb.sql().as_str().matches(" union ").count(), 3);
    }
}
