-- Inbound e-mail. A mailbox is an address we receive on, tied to a project and (optionally)
-- the process new tickets from it follow. Every message is stored raw in `mail_in` before
-- anything else happens, so a failure later never loses it; the row then records what
-- processing made of it and why.
create table mailboxes (
    id uuid primary key,
    address text not null,
    project_id uuid not null references projects (id),
    process_id uuid references processes (id),
    from_name text not null default '',
    signature text not null default '',
    active boolean not null default true,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint mailboxes_address_key unique (address),
    -- Looked up by the lower-cased recipient: one spelling only.
    constraint mailboxes_address_lower check (address = lower(address) and address like '%_@_%')
);

create table mail_in (
    id bigint generated always as identity primary key,
    received_at timestamptz not null,
    mailbox_id uuid references mailboxes (id),
    source text not null,
    raw bytea not null,
    sha256 bytea not null,
    -- Without the angle brackets, as it appears in References of later replies.
    message_id text,
    status text not null default 'new',
    error text,
    ticket_id uuid references tickets (id),
    -- What processing made of it: new, reply, ignored, bounce; `why` in words.
    outcome text,
    why text,
    processed_at timestamptz,
    constraint mail_in_source check (source in ('smtp', 'pipe', 'imap')),
    constraint mail_in_status check (status in ('new', 'processed', 'ignored', 'failed'))
);
-- Redelivery check and threading (References → ticket).
create index mail_in_message_id on mail_in (message_id) where message_id is not null;
-- Redelivery check for messages without a Message-ID.
create index mail_in_sha256 on mail_in (sha256);
-- The "Mail problems" list, newest first.
create index mail_in_failed on mail_in (id) where status = 'failed';

-- Every Message-ID known to belong to a ticket's thread. Threading looks only here, so
-- outgoing mail joins by replacing this view with a `union all` over its own table.
create view mail_thread_ids as
    select message_id, ticket_id from mail_in
    where message_id is not null and ticket_id is not null;
