-- Saved views ("queues"): filters, sort and columns, personal (owner) or shared (no owner).
create table queues (
    id uuid primary key,
    name text not null,
    owner_id uuid references users (id),
    created_by uuid not null references users (id),
    filters jsonb not null default '{}',
    sort text not null default 'sla',
    columns text[] not null default '{}',
    created_at timestamptz not null,
    constraint queues_name_present check (length(trim(name)) > 0),
    constraint queues_sort check (sort in ('sla', 'priority', 'updated', 'created'))
);
create index queues_owner_idx on queues (owner_id, lower(name));

-- Queue filters not covered by an earlier index: by process, and by filing date.
create index tickets_process_queue_idx on tickets (process_id, state_category, id);
create index tickets_created_idx on tickets (created_at, id);
