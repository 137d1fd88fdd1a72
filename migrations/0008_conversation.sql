-- Conversation on a ticket: canned responses, attachments. Public replies and internal notes
-- are `comment` events (0002); watchers are `ticket_watchers` (0003).

-- Reusable replies with {{placeholders}}, offered on the ticket page to those who write
-- internal notes: shared by every project (project_id null) or one project's own.
create table canned_responses (
    id uuid primary key,
    project_id uuid references projects (id),
    title text not null,
    body text not null,
    created_by uuid references users (id),
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint canned_responses_title_present check (length(trim(title)) > 0),
    constraint canned_responses_body_present check (length(trim(body)) > 0)
);
create unique index canned_responses_title_key on canned_responses (
    coalesce(project_id, '00000000-0000-0000-0000-000000000000'::uuid),
    lower(title)
);
-- The ticket page's picker: one project's and the shared ones, by title.
create index canned_responses_project_idx on canned_responses (project_id, lower(title));

-- Files on tickets, in the database like everything else (app servers stay stateless).
-- `event_id` is the comment or note a file came with; `internal` copies that note's
-- visibility (or the uploader's choice) so lists filter without reading events.
create table attachments (
    id uuid primary key,
    ticket_id uuid not null references tickets (id),
    event_id bigint references ticket_events (id),
    internal boolean not null default false,
    filename text not null,
    content_type text not null,
    size bigint not null,
    sha256 bytea not null,
    uploaded_by uuid references users (id),
    created_at timestamptz not null,
    data bytea not null,
    constraint attachments_filename_present check (length(trim(filename)) > 0),
    constraint attachments_size_matches check (size = length(data)),
    constraint attachments_sha256_length check (length(sha256) = 32)
);
create index attachments_ticket_idx on attachments (ticket_id, created_at, id);
-- Most uploads are already compressed (images, archives, office files): do not try again.
alter table attachments alter column data set storage external;

insert into role_permissions (role_id, permission)
select id, 'admin.canned' from roles where name = 'Admin'
on conflict do nothing;
