-- Outbound e-mail. Every mail we send is a row of `mail_out` (the outbox), written in the
-- transaction of its cause together with a `mail_send` job. The job renders the message once
-- (Message-ID, In-Reply-To, References, subject, the full RFC 5322 bytes are stored then) and
-- sends exactly those bytes; a retry sends them again.
create table mail_out (
    id uuid primary key,
    ticket_id uuid references tickets (id),
    -- The person it is for, when it is for an account (not for a bare address).
    user_id uuid references users (id),
    to_address text not null,
    kind text not null,
    -- The ticket event it tells of (a reply's text is read from it when rendering).
    event_id bigint references ticket_events (id),
    -- For an acknowledgement: the Message-ID (no angle brackets) of the mail that opened it.
    answers text,
    -- Extra data of the kind (e.g. a set-password link), never shown in lists.
    data jsonb not null default '{}',
    -- Set when rendered: the envelope sender (the From address).
    from_address text,
    -- Set when rendered: our own `uuid@host`, without the angle brackets.
    message_id text,
    in_reply_to text,
    "references" text,
    -- The root id of the ticket's thread this mail referenced.
    thread_root text,
    subject text,
    raw bytea,
    -- It tells of an internal note: a reply to it may become an internal note.
    internal boolean not null default false,
    status text not null default 'queued',
    attempts integer not null default 0,
    last_error text,
    sent_at timestamptz,
    created_at timestamptz not null,
    constraint mail_out_message_id_key unique (message_id),
    constraint mail_out_kind check (kind in ('ack', 'reply', 'state', 'assigned', 'approval',
        'internal_note', 'set_password', 'new_in_group', 'sla_breach')),
    constraint mail_out_status check (status in ('queued', 'sent', 'failed'))
);
-- Per-sender acknowledgement rate limit: acks to one address in the last hour.
create index mail_out_ack_rate on mail_out (lower(to_address), created_at) where kind = 'ack';
-- Threading by the root id of a ticket's thread.
create index mail_out_thread_root on mail_out (thread_root) where thread_root is not null;
-- The admin's outbox: what is still waiting or has failed, newest first.
create index mail_out_open on mail_out (created_at) where status <> 'sent';
-- A ticket's mail (the ticket page, tests).
create index mail_out_ticket on mail_out (ticket_id, created_at) where ticket_id is not null;

-- A recipient whose mail bounced permanently gets no more mail until an admin clears it.
alter table users add column undeliverable_at timestamptz;
alter table users add column undeliverable_why text;

-- A single-use link in an approval-request mail. Only the SHA-256 of the token is kept.
create table approval_tokens (
    token_hash bytea primary key,
    ticket_id uuid not null references tickets (id),
    round_id uuid not null references approval_rounds (id),
    approver_id uuid not null references users (id),
    mail_id uuid references mail_out (id),
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null
);

-- Every Message-ID known to belong to a ticket's thread: stored incoming mail, our own sent
-- mail, and the root ids our mail referenced. `internal`: it was an internal-note mail.
create or replace view mail_thread_ids as
    select message_id, ticket_id, false as internal from mail_in
    where message_id is not null and ticket_id is not null
    union all
    select message_id, ticket_id, internal from mail_out
    where message_id is not null and ticket_id is not null
    union all
    select thread_root, ticket_id, false from mail_out
    where thread_root is not null and ticket_id is not null;
