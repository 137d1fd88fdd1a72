-- IMAP polling: at most one account per mailbox, fetched once a minute by the job runner.
-- Processed messages are moved to `processed_folder` (created if missing); `last_uid` with
-- `uid_validity` says how far the folder was read. The password is needed to log in, so it is
-- stored as given; it is never shown back, logged or printed (see docs/mail.md).
create table imap_accounts (
    mailbox_id uuid primary key references mailboxes (id) on delete cascade,
    host text not null,
    port integer not null,
    tls text not null default 'implicit',
    username text not null,
    password text not null,
    folder text not null default 'INBOX',
    processed_folder text not null default 'Processed',
    uid_validity bigint,
    last_uid bigint not null default 0,
    last_polled_at timestamptz,
    last_error text,
    active boolean not null default true,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint imap_accounts_port check (port between 1 and 65535),
    constraint imap_accounts_tls check (tls in ('none', 'implicit', 'starttls')),
    constraint imap_accounts_folders check (folder <> processed_folder)
);
