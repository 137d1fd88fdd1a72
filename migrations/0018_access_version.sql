-- Versions of what makes an actor, so that an app instance can keep each user's groups and
-- grants (`people::sessions::AccessCache`) and still count a revoked grant from the next
-- request on, on every instance: every request reads both versions with its session.
--
-- `users.access_version` moves when that user's own role grants or group memberships change:
-- a row trigger, no shared row (mail from new senders creates users with a grant each, many
-- at once). `access_version` (one row) moves when a change reaches many users at once: a
-- group's grants, a role, its permissions, a group's name. Those are admin edits.
alter table users add column access_version bigint not null default 0;

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

-- Memberships are held by a user or by a group; group members always by a user.
create function bump_user_access() returns trigger language plpgsql as $$
declare
    touched uuid[] := '{}';
begin
    if tg_op in ('INSERT', 'UPDATE') then
        touched := touched || new.user_id;
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        touched := touched || old.user_id;
    end if;
    if tg_table_name = 'memberships' then
        if (tg_op in ('INSERT', 'UPDATE') and new.group_id is not null)
           or (tg_op in ('DELETE', 'UPDATE') and old.group_id is not null) then
            update access_version set version = version + 1;
        end if;
    end if;
    update users set access_version = access_version + 1
     where id = any(touched) and id is not null;
    return null;
end $$;

create trigger memberships_access after insert or update or delete on memberships
    for each row execute function bump_user_access();
create trigger group_members_access after insert or update or delete on group_members
    for each row execute function bump_user_access();
create trigger memberships_access_truncate after truncate on memberships
    for each statement execute function bump_access_version();
create trigger group_members_access_truncate after truncate on group_members
    for each statement execute function bump_access_version();
create trigger roles_access after insert or update or delete or truncate on roles
    for each statement execute function bump_access_version();
create trigger role_permissions_access after insert or update or delete or truncate
    on role_permissions for each statement execute function bump_access_version();
create trigger groups_access after insert or update or delete or truncate on groups
    for each statement execute function bump_access_version();
