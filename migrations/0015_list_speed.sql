-- Lists at scale: an index for the visibility scope, and a version for cached reference lists.

-- The ticket visibility scope looks up the tickets an actor approves (or approved) by
-- approver; the primary key starts with the round.
create index approval_requests_approver_idx on approval_requests (approver_id, round_id);

-- A number that changes whenever reference data shown in filter lists changes (projects'
-- keys and names, processes, groups, systems, organisation units). Each request reads it
-- with its session; an app instance reloads its cached lists only when it moved, so the
-- caches of several instances never serve stale names.
create table reference_version (
    id boolean primary key default true check (id),
    version bigint not null
);
insert into reference_version (version) values (1);

create function bump_reference_version() returns trigger language plpgsql as $$
begin
    update reference_version set version = version + 1;
    return null;
end $$;

-- `projects.next_number` changes with every new ticket: only the listed columns count.
create trigger projects_reference after insert or delete or update of key, name on projects
    for each statement execute function bump_reference_version();
create trigger projects_reference_truncate after truncate on projects
    for each statement execute function bump_reference_version();
create trigger processes_reference after insert or update or delete or truncate on processes
    for each statement execute function bump_reference_version();
create trigger groups_reference after insert or update or delete or truncate on groups
    for each statement execute function bump_reference_version();
create trigger systems_reference after insert or update or delete or truncate on systems
    for each statement execute function bump_reference_version();
create trigger org_units_reference after insert or update or delete or truncate on org_units
    for each statement execute function bump_reference_version();
