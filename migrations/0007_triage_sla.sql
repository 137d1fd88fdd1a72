-- Triage (impact × urgency → priority, routing, tiers) and SLA clocks (calendars, policies,
-- due timestamps stored on the ticket so queues sort and filter by them with an index).

-- Priority 1 (critical) … 4 (low); impact and urgency 1 (high) … 3 (low), set at triage.
alter table tickets add column priority smallint not null default 3;
alter table tickets add column impact smallint;
alter table tickets add column urgency smallint;
alter table tickets add constraint tickets_priority check (priority between 1 and 4);
alter table tickets add constraint tickets_impact check (impact between 1 and 3);
alter table tickets add constraint tickets_urgency check (urgency between 1 and 3);

-- A project's own impact × urgency matrix; cells without a row use the default
-- (impact + urgency - 1, at most 4).
create table priority_matrix (
    project_id uuid not null references projects (id),
    impact smallint not null,
    urgency smallint not null,
    priority smallint not null,
    primary key (project_id, impact, urgency),
    constraint priority_matrix_values check (
        impact between 1 and 3 and urgency between 1 and 3 and priority between 1 and 4)
);

-- Routing on creation: the first rule (by position) whose conditions all match gives the
-- group. A condition left empty matches anything.
create table routing_rules (
    id uuid primary key,
    project_id uuid not null references projects (id),
    position integer not null,
    process_id uuid references processes (id),
    system_id uuid references systems (id),
    site_id uuid references org_units (id),
    group_id uuid not null references groups (id),
    created_at timestamptz not null
);
create index routing_rules_project_idx on routing_rules (project_id, position);

-- Tiers: escalating a ticket moves it to its group's next tier.
alter table groups add column escalates_to uuid references groups (id);
alter table groups add constraint groups_not_own_tier check (escalates_to <> id);

-- Business-time calendars: a zone, working intervals per weekday (Monday first, each a list
-- of ["09:00", "17:00"] pairs) and holidays.
create table sla_calendars (
    id uuid primary key,
    name text not null,
    time_zone text not null,
    week jsonb not null,
    holidays date[] not null default '{}',
    created_at timestamptz not null,
    constraint sla_calendars_name_present check (length(trim(name)) > 0)
);
create unique index sla_calendars_name_key on sla_calendars (lower(name));

-- Targets in business minutes by project × process × priority; an empty project or process
-- matches any, the most specific policy wins.
create table sla_policies (
    id uuid primary key,
    project_id uuid references projects (id),
    process_id uuid references processes (id),
    priority smallint not null,
    calendar_id uuid not null references sla_calendars (id),
    first_response_minutes integer,
    resolution_minutes integer,
    -- "Due soon" from this share of the target on.
    warn_percent smallint not null default 80,
    created_at timestamptz not null,
    constraint sla_policies_priority check (priority between 1 and 4),
    constraint sla_policies_targets check (
        coalesce(first_response_minutes, 1) > 0 and coalesce(resolution_minutes, 1) > 0),
    constraint sla_policies_warn check (warn_percent between 1 and 99)
);
create unique index sla_policies_scope_key on sla_policies (
    coalesce(project_id, '00000000-0000-0000-0000-000000000000'),
    coalesce(process_id, '00000000-0000-0000-0000-000000000000'),
    priority);

-- The calendar a project counts business days in (auto-close), when it has one.
alter table projects add column calendar_id uuid references sla_calendars (id);

-- Milestones of a ticket's life, stamped once.
alter table tickets add column picked_up_at timestamptz;
alter table tickets add column first_response_at timestamptz;
alter table tickets add column resolved_at timestamptz;
-- The SLA projection, recomputed from the ticket's events on every change that moves a
-- clock (`sla::refresh`). A due is null while its clock is paused or stopped.
alter table tickets add column sla_policy_id uuid references sla_policies (id);
alter table tickets add column first_response_due timestamptz;
alter table tickets add column resolution_due timestamptz;
-- The earliest running due and when it becomes "due soon": what queues sort and filter by.
alter table tickets add column sla_due timestamptz;
alter table tickets add column sla_warn_at timestamptz;
alter table tickets add column sla_paused boolean not null default false;
alter table tickets add column first_response_breached_at timestamptz;
alter table tickets add column resolution_breached_at timestamptz;
-- When a resolved ticket closes by itself, if its process says so.
alter table tickets add column auto_close_at timestamptz;

-- Queues: by group or assignee and state category, sorted by SLA due (nulls last), priority
-- or recency; keyset on id.
create index tickets_group_queue_sla_idx on tickets (assignee_group_id, state_category, sla_due, id);
create index tickets_group_queue_priority_idx on tickets (assignee_group_id, state_category, priority, id);
create index tickets_assignee_queue_sla_idx on tickets (assignee_id, state_category, sla_due, id)
    where assignee_id is not null;
create index tickets_project_queue_sla_idx on tickets (project_id, state_category, sla_due, id);
create index tickets_updated_idx on tickets (updated_at, id);
-- The escalation job's scans: running clocks not yet recorded as breached.
create index tickets_first_response_breach_idx on tickets (first_response_due)
    where first_response_due is not null and first_response_breached_at is null;
create index tickets_resolution_breach_idx on tickets (resolution_due)
    where resolution_due is not null and resolution_breached_at is null;
create index tickets_auto_close_idx on tickets (auto_close_at) where auto_close_at is not null;
