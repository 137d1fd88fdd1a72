-- Who may do what: organisation units and sites, groups, roles over a permission catalog
-- fixed in code, memberships (user or group -> role, global or per project), systems, domain
-- rules for new users, set-password links, ticket relations, and the admin audit log.

create table org_units (
    id uuid primary key,
    parent_id uuid references org_units (id),
    name text not null,
    kind text not null,
    created_at timestamptz not null,
    constraint org_units_kind check (kind in ('region', 'country', 'site', 'business_unit')),
    constraint org_units_name_present check (length(trim(name)) > 0),
    constraint org_units_not_own_parent check (parent_id <> id)
);
create unique index org_units_sibling_name_key on org_units (coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));
create index org_units_parent_idx on org_units (parent_id);

alter table users add column org_unit_id uuid references org_units (id);
create index users_org_unit_idx on users (org_unit_id);
-- Admin user search: name or e-mail prefix, in order.
create index users_search_idx on users (lower(display_name), id);

create table groups (
    id uuid primary key,
    name text not null,
    description text not null default '',
    created_at timestamptz not null,
    constraint groups_name_present check (length(trim(name)) > 0)
);
create unique index groups_name_key on groups (lower(name));

create table group_members (
    group_id uuid not null references groups (id),
    user_id uuid not null references users (id),
    primary key (group_id, user_id)
);
create index group_members_user_idx on group_members (user_id);

create table roles (
    id uuid primary key,
    name text not null,
    description text not null default '',
    created_at timestamptz not null,
    constraint roles_name_present check (length(trim(name)) > 0)
);
create unique index roles_name_key on roles (lower(name));

-- Permission names come from the catalog in `engine::policy`; unknown ones are ignored there.
create table role_permissions (
    role_id uuid not null references roles (id) on delete cascade,
    permission text not null,
    primary key (role_id, permission)
);

alter table projects add column point_of_contact_id uuid references users (id);
-- Whether requesters also see the tickets of their organisation unit in this project.
alter table projects add column requester_visibility text not null default 'own';
alter table projects add constraint projects_requester_visibility
    check (requester_visibility in ('own', 'org_unit'));

create table memberships (
    id uuid primary key,
    role_id uuid not null references roles (id),
    user_id uuid references users (id),
    group_id uuid references groups (id),
    -- null: in every project
    project_id uuid references projects (id),
    created_at timestamptz not null,
    constraint memberships_one_holder check ((user_id is null) <> (group_id is null))
);
create unique index memberships_key on memberships (
    role_id,
    coalesce(user_id, group_id),
    coalesce(project_id, '00000000-0000-0000-0000-000000000000'::uuid)
);
create index memberships_user_idx on memberships (user_id) where user_id is not null;
create index memberships_group_idx on memberships (group_id) where group_id is not null;

create table systems (
    id uuid primary key,
    name text not null,
    owner_id uuid references users (id),
    support_group_id uuid references groups (id),
    criticality text not null default 'medium',
    created_at timestamptz not null,
    constraint systems_criticality check (criticality in ('low', 'medium', 'high', 'critical')),
    constraint systems_name_present check (length(trim(name)) > 0)
);
create unique index systems_name_key on systems (lower(name));

-- A new user whose e-mail domain matches gets this organisation unit and role (global).
create table domain_rules (
    id uuid primary key,
    domain text not null,
    org_unit_id uuid references org_units (id),
    role_id uuid references roles (id),
    created_at timestamptz not null,
    constraint domain_rules_domain_format check (domain ~ '^[a-z0-9.-]+\.[a-z]{2,}$')
);
create unique index domain_rules_domain_key on domain_rules (domain);

-- Single-use links to set a password (new accounts, resets). Only a hash is kept.
create table password_tokens (
    token_hash bytea primary key,
    user_id uuid not null references users (id),
    created_by uuid references users (id),
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz
);
create index password_tokens_user_idx on password_tokens (user_id);

-- Relations that act as roles on a ticket.
alter table tickets add column assignee_id uuid references users (id);
alter table tickets add column assignee_group_id uuid references groups (id);
-- The requester's organisation unit when filed, for "tickets of my unit" visibility.
alter table tickets add column org_unit_id uuid references org_units (id);
create index tickets_assignee_idx on tickets (assignee_id, id desc) where assignee_id is not null;
create index tickets_assignee_group_idx on tickets (assignee_group_id, id desc) where assignee_group_id is not null;
create index tickets_org_unit_idx on tickets (org_unit_id, id desc) where org_unit_id is not null;
create index tickets_project_idx on tickets (project_id, id desc);

create table ticket_watchers (
    ticket_id uuid not null references tickets (id),
    user_id uuid not null references users (id),
    primary key (ticket_id, user_id)
);
create index ticket_watchers_user_idx on ticket_watchers (user_id, ticket_id);

-- Every admin change: who, when, what, before and after. Append-only.
create table admin_audit (
    id bigint generated always as identity primary key,
    actor_id uuid references users (id),
    at timestamptz not null,
    entity text not null,
    entity_id text not null,
    action text not null,
    before jsonb,
    after jsonb
);
create index admin_audit_entity_idx on admin_audit (entity, entity_id, id);
create trigger admin_audit_append_only
    before update or delete on admin_audit
    for each statement execute function refuse_history_change();
create trigger admin_audit_no_truncate
    before truncate on admin_audit
    for each statement execute function refuse_history_change();

-- Built-in roles, as editable data.
create function seed_role(role_name text, role_description text, permissions text[]) returns void
language plpgsql as $$
declare
    new_id uuid := gen_random_uuid();
begin
    insert into roles (id, name, description, created_at) values (new_id, role_name, role_description, now());
    insert into role_permissions (role_id, permission) select new_id, unnest(permissions);
end;
$$;
select seed_role('Requester', 'Files requests and follows their own.',
    array['ticket.create', 'ticket.comment_public']);
select seed_role('Agent L1', 'First-line help desk: triage, reply, resolve.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.comment_internal',
          'ticket.edit', 'ticket.assign', 'ticket.transition', 'project.view']);
select seed_role('Agent L2', 'Second-line support.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.comment_internal',
          'ticket.edit', 'ticket.assign', 'ticket.transition', 'project.view']);
select seed_role('Agent L3', 'Third-line support and specialists.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.comment_internal',
          'ticket.edit', 'ticket.assign', 'ticket.transition', 'project.view']);
select seed_role('Developer', 'Builds, tests and deploys changes and fixes.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.comment_internal',
          'ticket.edit', 'ticket.transition', 'project.view']);
select seed_role('Change approver', 'Approves or rejects changes and access requests.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.approve', 'project.view']);
select seed_role('Project manager', 'Runs rollout projects and reads reports.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.comment_internal',
          'project.view', 'project.manage', 'report.view']);
select seed_role('Admin', 'Maintains people, roles, projects and the organisation.',
    array['ticket.create', 'ticket.view_all', 'ticket.comment_public', 'ticket.comment_internal',
          'ticket.edit', 'ticket.assign', 'ticket.transition', 'project.view', 'project.manage',
          'report.view', 'admin.users', 'admin.groups', 'admin.roles', 'admin.projects',
          'admin.org', 'admin.systems', 'admin.audit']);
drop function seed_role(text, text, text[]);

-- Existing accounts: administrators keep their power through the Admin role, everybody can
-- file requests; the flag itself goes.
insert into memberships (id, role_id, user_id, created_at)
select gen_random_uuid(), r.id, u.id, now()
from users u join roles r on r.name = case when u.is_admin then 'Admin' else 'Requester' end;
alter table users drop column is_admin;
