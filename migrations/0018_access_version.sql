-- A number that changes whenever what makes an actor changes: role grants (memberships),
-- group members, roles, their permissions, group names. Every request reads it with its
-- session; an app instance keeps each user's groups and grants while it holds
-- (`people::sessions::AccessCache`), so a revoked role counts from the next request on, on
-- every instance.
create table access_version (
    id boolean primary key default true check (id),
    version bigint not null
);
insert into access_version (version) values (1);

create function bump_access_version() returns trigger language plpgsql as $$
begin
    update access_version set version = version + 1;
    return null;
end $$;

create trigger memberships_access after insert or update or delete or truncate on memberships
    for each statement execute function bump_access_version();
create trigger group_members_access after insert or update or delete or truncate on group_members
    for each statement execute function bump_access_version();
create trigger roles_access after insert or update or delete or truncate on roles
    for each statement execute function bump_access_version();
create trigger role_permissions_access after insert or update or delete or truncate
    on role_permissions for each statement execute function bump_access_version();
create trigger groups_access after insert or update or delete or truncate on groups
    for each statement execute function bump_access_version();
