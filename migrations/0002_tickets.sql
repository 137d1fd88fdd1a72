-- Projects, tickets and their append-only history.

create table projects (
    id uuid primary key,
    key text not null,
    name text not null,
    kind text not null,
    -- The number the next ticket gets; taken with `update … returning` in the creating
    -- transaction, so numbers have no gaps and no duplicates.
    next_number bigint not null default 1,
    created_at timestamptz not null,
    constraint projects_key_key unique (key),
    constraint projects_key_format check (key ~ '^[A-Z][A-Z0-9]{1,9}$'),
    constraint projects_kind check (kind in ('service_desk', 'rollout', 'development'))
);

create table tickets (
    id uuid primary key,
    project_id uuid not null references projects (id),
    number bigint not null,
    title text not null,
    description_md text not null,
    -- Sanitised HTML rendered from description_md when it was written.
    description_html text not null,
    requester_id uuid not null references users (id),
    state text not null default 'new',
    created_at timestamptz not null,
    updated_at timestamptz not null,
    -- Bumped by every change: the optimistic-concurrency token.
    version integer not null default 1,
    constraint tickets_project_number_key unique (project_id, number),
    constraint tickets_title_present check (length(trim(title)) > 0)
);
-- "My requests": newest first by id (uuid v7 is time-ordered), keyset paginated.
create index tickets_requester_idx on tickets (requester_id, id desc);

create table ticket_events (
    id bigint generated always as identity primary key,
    ticket_id uuid not null references tickets (id),
    actor_id uuid references users (id),
    kind text not null,
    data jsonb not null default '{}',
    created_at timestamptz not null
);
create index ticket_events_ticket_idx on ticket_events (ticket_id, id);

-- History is append-only: the database refuses to rewrite it.
create function refuse_history_change() returns trigger language plpgsql as $$
begin
    raise exception '% is append-only', tg_table_name;
end;
$$;
create trigger ticket_events_append_only
    before update or delete on ticket_events
    for each statement execute function refuse_history_change();
create trigger ticket_events_no_truncate
    before truncate on ticket_events
    for each statement execute function refuse_history_change();
