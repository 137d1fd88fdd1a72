-- Processes as data: each has published, immutable versions of its definition (fields,
-- states, transitions, screen rules) and an editable draft. Tickets follow one version.

create table processes (
    id uuid primary key,
    key text not null,
    name text not null,
    description text not null default '',
    -- The definition being edited; published versions are in process_versions.
    draft jsonb not null,
    active boolean not null default true,
    created_at timestamptz not null,
    constraint processes_key_key unique (key),
    constraint processes_key_format check (key ~ '^[a-z][a-z0-9_]{1,49}$')
);

create table process_versions (
    process_id uuid not null references processes (id),
    version integer not null,
    definition jsonb not null,
    published_at timestamptz not null,
    published_by uuid references users (id),
    primary key (process_id, version)
);

-- The change board that approves change requests in a project.
alter table projects add column change_board_group_id uuid references groups (id);

alter table tickets add column process_id uuid references processes (id);
alter table tickets add column process_version integer;
alter table tickets add column state_category text not null default 'new';
alter table tickets add constraint tickets_state_category
    check (state_category in ('new', 'open', 'waiting', 'resolved', 'closed'));
-- Field values by field key. Common references also get columns of their own, so queues
-- can filter by them with an index.
alter table tickets add column field_values jsonb not null default '{}';
alter table tickets add column system_id uuid references systems (id);
alter table tickets add column site_id uuid references org_units (id);
alter table tickets add column parent_id uuid references tickets (id);
alter table tickets add constraint tickets_process_version_fk
    foreign key (process_id, process_version) references process_versions (process_id, version);
create index tickets_state_idx on tickets (project_id, state_category, id desc);
create index tickets_system_idx on tickets (system_id, id desc) where system_id is not null;
create index tickets_site_idx on tickets (site_id, id desc) where site_id is not null;
create index tickets_parent_idx on tickets (parent_id) where parent_id is not null;
-- Filters on any other field value (`field_values @> '{"severity": "blocker"}'`).
create index tickets_field_values_idx on tickets using gin (field_values jsonb_path_ops);

-- Approval rounds: one per entry into a state with an approval step. A re-submission
-- starts a new round; earlier rounds stay.
create table approval_rounds (
    id uuid primary key,
    ticket_id uuid not null references tickets (id),
    state text not null,
    round integer not null,
    rule jsonb not null,
    status text not null default 'pending',
    created_at timestamptz not null,
    decided_at timestamptz,
    constraint approval_rounds_status check (status in ('pending', 'approved', 'rejected', 'superseded')),
    constraint approval_rounds_ticket_round_key unique (ticket_id, round)
);
create index approval_rounds_pending_idx on approval_rounds (ticket_id) where status = 'pending';

create table approval_requests (
    round_id uuid not null references approval_rounds (id),
    approver_id uuid not null references users (id),
    decision text,
    comment text not null default '',
    decided_at timestamptz,
    primary key (round_id, approver_id),
    constraint approval_requests_decision check (decision in ('approve', 'reject'))
);
-- "Waiting on me".
create index approval_requests_open_idx on approval_requests (approver_id) where decision is null;

-- Typed links between tickets, shown on both sides.
create table ticket_links (
    id uuid primary key,
    from_ticket uuid not null references tickets (id),
    to_ticket uuid not null references tickets (id),
    kind text not null,
    created_at timestamptz not null,
    created_by uuid references users (id),
    constraint ticket_links_kind check (kind in ('duplicates', 'blocks', 'relates_to', 'caused_by')),
    constraint ticket_links_not_self check (from_ticket <> to_ticket),
    constraint ticket_links_key unique (from_ticket, to_ticket, kind)
);
create index ticket_links_to_idx on ticket_links (to_ticket);

-- The Admin role administers processes too.
insert into role_permissions (role_id, permission)
select id, 'admin.processes' from roles where name = 'Admin'
on conflict do nothing;
