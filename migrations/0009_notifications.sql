-- In-app notifications, per-user notification preferences, and merged tickets.

-- One row per recipient of a ticket event, written in the event's transaction by one
-- `insert … select`. Append-mostly: only `read_at` changes.
create table notifications (
    id bigint generated always as identity primary key,
    user_id uuid not null references users (id),
    ticket_id uuid not null references tickets (id),
    -- The event it tells of; null for notices that are not events (e.g. an SLA breach).
    event_id bigint references ticket_events (id),
    kind text not null,
    actor_id uuid references users (id),
    text text not null,
    created_at timestamptz not null,
    read_at timestamptz,
    constraint notifications_kind check (kind in ('new_in_group', 'assigned', 'public_reply',
        'internal_note', 'state_change', 'approval_requested', 'sla_breach'))
);
-- The list: a user's notifications, newest first (keyset on id).
create index notifications_user_idx on notifications (user_id, id desc);
-- The bell: unread per user, counted on every page with the session.
create index notifications_unread_idx on notifications (user_id) where read_at is null;

-- Only choices that differ from the defaults in code (`notifications::Kind::default_for`);
-- a user without rows gets the defaults. `email` is read by outgoing mail.
create table notification_preferences (
    user_id uuid not null references users (id),
    kind text not null,
    in_app boolean not null,
    email boolean not null,
    primary key (user_id, kind),
    constraint notification_preferences_kind check (kind in ('new_in_group', 'assigned',
        'public_reply', 'internal_note', 'state_change', 'approval_requested', 'sla_breach'))
);

-- A merged ticket points to the ticket it was merged into; that ticket's timeline shows the
-- merged ticket's events. Always one level: merging into a merged ticket is refused, and what
-- was merged into a ticket follows it when it is merged itself.
alter table tickets add column merged_into_id uuid references tickets (id);
alter table tickets add constraint tickets_not_merged_into_self check (merged_into_id <> id);
create index tickets_merged_into_idx on tickets (merged_into_id) where merged_into_id is not null;
